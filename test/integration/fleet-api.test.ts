import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * A real `flotillad --dev` serving fleet's API v1 on a unix socket and a TCP port, driven with
 * the requests the original fleetctl sends: its generated client (fleet schema/v1-gen.go) adds
 * `?alt=json` to every URL, sends Set bodies marshalled from schema.Unit (alphabetical keys,
 * empty ones left out) with Content-Type application/json, and reads fleet's error entity. The
 * dev daemon's process driver really runs the unit's ExecStart.
 */
jest.setTimeout(60_000);

let dir: string;
let sock: string;
let fleetPort: number;
let daemon: DevDaemon | undefined;
const output = (): string => daemon?.output() ?? '';

const UA = { 'user-agent': 'google-api-go-client/0.5' };

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function fleet(via: 'unix' | 'tcp', method: string, urlPath: string, body?: object): Promise<Res> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const headers: http.OutgoingHttpHeaders = { ...UA };
  if (data !== undefined) headers['content-type'] = 'application/json';
  const target = via === 'unix' ? { socketPath: sock } : { host: '127.0.0.1', port: fleetPort };
  return new Promise((resolve, reject) => {
    const r = http.request({ ...target, method, path: urlPath, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: text ? (JSON.parse(text) as unknown) : undefined,
        }),
      );
    });
    r.on('error', reject);
    r.end(data);
  });
}

/** Polls `fn` (at most `tries` times, 100 ms apart) until it returns a value. */
async function eventually<T>(fn: () => Promise<T | undefined>, tries = 150): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met; daemon output:\n${output()}`);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetapi-'));
  sock = path.join(dir, 'run', 'fleet.sock');
  // Both listen on ports the daemon picks (port 0) and announces.
  daemon = await startDevDaemon({
    dir,
    readyListener: 'fleet API v1',
    kind: 'flotillad --dev (fleet API)',
    args: ['--fleet-api-listen', `unix://${sock},127.0.0.1:0`, '--token-limit', '2'],
  });
  fleetPort = daemon.portOf('fleet API v1');
  // The leader is elected and this machine's agent has joined.
  await eventually(async () => {
    const r = await fleet('unix', 'GET', '/fleet/v1/machines?alt=json');
    return r.status === 200 && r.json?.machines?.length === 1 ? true : undefined;
  });
});

afterAll(async () => {
  await daemon?.stop();
  // Units run by the process driver outlive the daemon: stop them by their pidfiles.
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

const HELLO = [
  { name: 'Description', section: 'Unit', value: 'Hello from fleetctl' },
  { name: 'ExecStart', section: 'Service', value: '/bin/sleep 1000' },
];

describe('fleetctl against flotillad --dev over the fleet API', () => {
  it('serves fleetctl start, list-units, list-unit-files, list-machines, stop and destroy', async () => {
    // fleetctl start hello.service: Unit() (404: not there yet), CreateUnit, SetUnitTargetState.
    const missing = await fleet('unix', 'GET', '/fleet/v1/units/hello.service?alt=json');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({
      error: { code: 404, message: 'unit hello.service does not exist' },
    });
    const created = await fleet('unix', 'PUT', '/fleet/v1/units/hello.service?alt=json', {
      name: 'hello.service',
      options: HELLO,
    });
    expect(created.status).toBe(201);
    const launched = await fleet('unix', 'PUT', '/fleet/v1/units/hello.service?alt=json', {
      desiredState: 'launched',
      name: 'hello.service',
    });
    expect(launched.status).toBe(204);

    // fleetctl waits until the unit's currentState reaches the desired one.
    const machine = (await fleet('tcp', 'GET', '/fleet/v1/machines?alt=json')).json.machines[0];
    expect(machine).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      primaryIP: '127.0.0.1',
    });
    const unit = await eventually(async () => {
      const r = await fleet('unix', 'GET', '/fleet/v1/units/hello.service?alt=json');
      return r.json?.currentState === 'launched' ? r : undefined;
    });
    expect(unit.text).toBe(
      JSON.stringify({
        currentState: 'launched',
        desiredState: 'launched',
        machineID: machine.id,
        name: 'hello.service',
        options: HELLO,
      }),
    );

    // fleetctl list-units: UnitStates() pages through /state.
    const states = await eventually(async () => {
      const r = await fleet('tcp', 'GET', '/fleet/v1/state?alt=json');
      return r.json?.states?.[0]?.systemdSubState === 'running' ? r : undefined;
    });
    expect(states.json).toEqual({
      states: [
        {
          hash: expect.stringMatching(/^[0-9a-f]{40}$/),
          machineID: machine.id,
          name: 'hello.service',
          systemdActiveState: 'active',
          systemdLoadState: 'loaded',
          systemdSubState: 'running',
        },
      ],
    });
    // The ExecStart really runs.
    const pidFile = path.join(dir, 'state', 'units', 'hello.service.pid');
    // "<pid> <starttime>" while it runs.
    const pid = parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid, 0)).not.toThrow();
    const filtered = await fleet(
      'unix',
      'GET',
      `/fleet/v1/state?alt=json&machineID=${machine.id}&unitName=hello.service`,
    );
    expect(filtered.json.states).toHaveLength(1);
    expect((await fleet('unix', 'GET', '/fleet/v1/state?alt=json&unitName=x.service')).text).toBe(
      '{}',
    );

    // fleetctl stop: desiredState loaded; the process ends.
    const stop = await fleet('tcp', 'PUT', '/fleet/v1/units/hello.service?alt=json', {
      desiredState: 'loaded',
      name: 'hello.service',
    });
    expect(stop.status).toBe(204);
    await eventually(async () => {
      const r = await fleet('unix', 'GET', '/fleet/v1/units/hello.service?alt=json');
      return r.json?.currentState === 'loaded' ? true : undefined;
    });
    await eventually(async () => (fs.existsSync(pidFile) ? undefined : true));

    // fleetctl destroy: DELETE, then the unit is gone.
    expect((await fleet('unix', 'DELETE', '/fleet/v1/units/hello.service?alt=json')).status).toBe(
      204,
    );
    expect((await fleet('unix', 'GET', '/fleet/v1/units/hello.service?alt=json')).status).toBe(404);
    expect((await fleet('unix', 'DELETE', '/fleet/v1/units/hello.service?alt=json')).status).toBe(
      404,
    );
  });

  it('pages list-unit-files by token_limit (2) with nextPageToken', async () => {
    for (const name of ['a.service', 'b.service', 'c.service']) {
      const r = await fleet('unix', 'PUT', `/fleet/v1/units/${name}?alt=json`, {
        name,
        options: [{ name: 'ExecStart', section: 'Service', value: '/bin/sleep 1000' }],
      });
      expect(r.status).toBe(201);
    }
    const pages: string[][] = [];
    let url = '/fleet/v1/units?alt=json';
    for (let i = 0; i < 5; i++) {
      const r = await fleet('tcp', 'GET', url);
      expect(r.status).toBe(200);
      pages.push(r.json.units.map((u: { name: string; desiredState: string }) => u.name));
      expect(r.json.units.every((u: { desiredState: string }) => u.desiredState === 'inactive'));
      if (!r.json.nextPageToken) break;
      url = `/fleet/v1/units?alt=json&nextPageToken=${encodeURIComponent(r.json.nextPageToken)}`;
    }
    expect(pages).toEqual([['a.service', 'b.service'], ['c.service']]);
    const bad = await fleet('unix', 'GET', '/fleet/v1/units?alt=json&nextPageToken=8fefec2c');
    expect(bad.status).toBe(400);
    for (const name of ['a.service', 'b.service', 'c.service']) {
      expect((await fleet('unix', 'DELETE', `/fleet/v1/units/${name}?alt=json`)).status).toBe(204);
    }
  });

  it('refuses bad requests with 400/409 and a message naming the problem', async () => {
    const badName = await fleet('unix', 'PUT', '/fleet/v1/units/hello?alt=json', {
      name: 'hello',
      options: HELLO,
    });
    expect(badName.status).toBe(400);
    expect(badName.json.error.message).toContain('unit name "hello" has no type suffix');
    expect(badName.headers['x-flotilla-error-code']).toBe('UNIT_NAME_INVALID');

    const mismatch = await fleet('unix', 'PUT', '/fleet/v1/units/a.service?alt=json', {
      name: 'b.service',
      options: HELLO,
    });
    expect(mismatch.json).toEqual({
      error: {
        code: 400,
        message: 'name in URL "a.service" differs from unit name in request body "b.service"',
      },
    });

    const badOptions = await fleet('unix', 'PUT', '/fleet/v1/units/g.service?alt=json', {
      name: 'g.service',
      options: [
        ...HELLO,
        { name: 'Global', section: 'X-Fleet', value: 'true' },
        { name: 'MachineOf', section: 'X-Fleet', value: 'x.service' },
      ],
    });
    expect(badOptions.status).toBe(400);
    expect(badOptions.json.error.message).toBe(
      'g.service: [X-Fleet] Global cannot be used with MachineOf',
    );
    expect(badOptions.headers['x-flotilla-error-code']).toBe('UNIT_OPTIONS_INVALID');

    const noOptions = await fleet('unix', 'PUT', '/fleet/v1/units/new.service?alt=json', {
      desiredState: 'launched',
      name: 'new.service',
    });
    expect(noOptions.status).toBe(409);
    expect(noOptions.json.error.message).toBe(
      'unit new.service does not exist and options field empty',
    );

    const badState = await fleet('unix', 'PUT', '/fleet/v1/units/s.service?alt=json', {
      desiredState: 'started',
      name: 's.service',
      options: HELLO,
    });
    expect(badState.status).toBe(400);
    expect(badState.json.error.message).toContain('invalid target state "started"');

    expect((await fleet('tcp', 'GET', '/fleet/v1/nothing?alt=json')).status).toBe(404);
    expect((await fleet('tcp', 'POST', '/fleet/v1/units?alt=json', {})).status).toBe(405);
  });

  it('patches machine metadata and serves the discovery document', async () => {
    const { id } = (await fleet('unix', 'GET', '/fleet/v1/machines?alt=json')).json.machines[0];
    const patch = await fleet('unix', 'PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${id}/metadata/role`, value: 'api' },
    ]);
    expect(patch.status).toBe(204);
    const m = await eventually(async () => {
      const r = await fleet('tcp', 'GET', '/fleet/v1/machines?alt=json');
      return r.json.machines[0].metadata?.role === 'api' ? r.json.machines[0] : undefined;
    });
    expect(m.metadata).toEqual({ role: 'api' });

    const disco = await fleet('tcp', 'GET', '/fleet/v1/discovery');
    expect(disco.status).toBe(200);
    expect(disco.json.id).toBe('fleet:v1');
  });

  it('stops cleanly on SIGTERM: exit 0, the unix socket removed', async () => {
    expect(await daemon!.stop()).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
  });
});
