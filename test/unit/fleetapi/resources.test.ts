import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import { DISCOVERY_JSON } from '../../../src/fleetapi/discovery';
import { startFleetApiServer } from '../../../src/fleetapi';
import { DEFAULT_MACHINES, type EngineCluster } from '../../helpers/engine-cluster';
import type { Served } from './http';
import { request, serve, serveClusterEachTest } from './http';

const [M1, M2, M3] = DEFAULT_MACHINES.map((m) => m.id);

let cluster: EngineCluster;
let api: Served;

serveClusterEachTest((c, a) => {
  cluster = c;
  api = a;
});

describe('GET /fleet/v1/state', () => {
  beforeEach(async () => {
    await cluster.seed([
      { name: 'a.service', target: 'launched' },
      {
        name: 'g.service',
        text: '[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n',
        target: 'launched',
      },
    ]);
  });

  it('lists one state per unit and machine with fleet field names, in fleet key order', async () => {
    const r = await api.req('GET', '/fleet/v1/state?alt=json');
    expect(r.status).toBe(200);
    const states = (r.json as { states: Record<string, string>[] }).states;
    expect(states.map((s) => `${s.name}@${s.machineID}`)).toEqual([
      `a.service@${cluster.unitRecord('a.service')!.machine}`,
      ...[M1, M2, M3].sort().map((m) => `g.service@${m}`),
    ]);
    expect(Object.keys(states[0])).toEqual([
      'hash',
      'machineID',
      'name',
      'systemdActiveState',
      'systemdLoadState',
      'systemdSubState',
    ]);
    expect(states[0]).toMatchObject({
      systemdLoadState: 'loaded',
      systemdActiveState: 'active',
      systemdSubState: 'running',
    });
  });

  it('filters by machineID and unitName', async () => {
    const byMachine = await api.req('GET', `/fleet/v1/state?alt=json&machineID=${M2}`);
    const rows = (byMachine.json as { states: { machineID: string }[] }).states;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((s) => s.machineID === M2)).toBe(true);
    const byUnit = await api.req('GET', '/fleet/v1/state?unitName=g.service');
    const names = (byUnit.json as { states: { name: string }[] }).states.map((s) => s.name);
    expect(names).toEqual(['g.service', 'g.service', 'g.service']);
    const none = await api.req('GET', '/fleet/v1/state?unitName=nope.service');
    expect(none.text).toBe('{}');
  });

  it('skips pages a filter empties, so a page is empty only at the end', async () => {
    const small = await serve(cluster.api, 1);
    try {
      const pages: string[][] = [];
      let url = '/fleet/v1/state?alt=json&unitName=g.service';
      for (let i = 0; i < 10; i++) {
        const page = (await small.req('GET', url)).json as {
          states?: { name: string; machineID: string }[];
          nextPageToken?: string;
        };
        pages.push((page.states ?? []).map((s) => `${s.name}@${s.machineID}`));
        if (!page.nextPageToken) break;
        url = `/fleet/v1/state?alt=json&unitName=g.service&nextPageToken=${page.nextPageToken}`;
      }
      // a.service's row comes first and is skipped, not sent as an empty page.
      expect(pages).toEqual([M1, M2, M3].sort().map((m) => [`g.service@${m}`]));
    } finally {
      await small.close();
    }
  });

  it('GET /state/{name} gives one state, 404 for a unit with none', async () => {
    const r = await api.req('GET', '/fleet/v1/state/a.service?alt=json');
    expect((r.json as { name: string }).name).toBe('a.service');
    const missing = await api.req('GET', '/fleet/v1/state/b.service');
    expect(missing.status).toBe(404);
  });
});

describe('/fleet/v1/machines', () => {
  it('lists machines as fleet did: id, sorted metadata (left out when empty), primaryIP', async () => {
    const r = await api.req('GET', '/fleet/v1/machines?alt=json');
    expect(r.status).toBe(200);
    expect(r.text).toBe(
      `{"machines":[{"id":"${M1}","metadata":{"disk":"ssd","region":"us-east"},"primaryIP":"10.0.0.1"},{"id":"${M2}","primaryIP":"10.0.0.2"},{"id":"${M3}","metadata":{"region":"eu-west"},"primaryIP":"10.0.0.3"}]}`,
    );
  });

  it('pages machines with the token after the list, as MachinePage put it', async () => {
    const small = await serve(cluster.api, 2);
    try {
      const first = await small.req('GET', '/fleet/v1/machines');
      const page = first.json as { machines: { id: string }[]; nextPageToken: string };
      expect(page.machines.map((m) => m.id)).toEqual([M1, M2]);
      expect(first.text).toMatch(/^\{"machines":.*,"nextPageToken":"[^"]+"\}$/);
      const second = await small.req(
        'GET',
        `/fleet/v1/machines?nextPageToken=${page.nextPageToken}`,
      );
      expect(second.json).toEqual({ machines: [expect.objectContaining({ id: M3 })] });
    } finally {
      await small.close();
    }
  });

  it('applies add, replace and remove in order over the current metadata: 204', async () => {
    // One per-key change of each machine's overlay (docs/fleet-api.md): the agent's own keys
    // that the request does not name (disk) are left as they are.
    const r = await api.req('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${M1}/metadata/role`, value: 'db' },
      { op: 'add', path: `/${M1}/metadata/tier`, value: 'gold' },
      { op: 'replace', path: `/${M1}/metadata/region`, value: 'us-west' },
      { op: 'remove', path: `/${M1}/metadata/tier` },
      { op: 'add', path: `/${M2}/metadata/role`, value: 'web' },
      { op: 'remove', path: `/${M2}/metadata/role` },
    ]);
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect(await cluster.machineMetadata(M1)).toEqual({
      disk: 'ssd',
      region: 'us-west',
      role: 'db',
    });
    expect(await cluster.machineMetadata(M2)).toEqual({});
    expect(cluster.api.count('setMachineMetadata')).toBe(2);
  });

  it("records the removal of a key the agent reports: hidden until added again, the agent's other keys not pinned", async () => {
    const patch = (ops: object[]) => api.req('PATCH', '/fleet/v1/machines', ops);
    const r = await patch([{ op: 'remove', path: `/${M1}/metadata/disk` }]);
    expect(r.status).toBe(204);
    expect(await cluster.machineMetadata(M1)).toEqual({ region: 'us-east' });
    // The machine's configuration changes: its new region shows (the patch did not copy the
    // agent's keys into the overlay), its disk stays hidden.
    cluster.setAgentMetadata(M1, { region: 'us-central', disk: 'nvme' });
    await cluster.until(
      () => cluster.engine.state.machines.get(M1)?.reported.region === 'us-central',
      'the new metadata announced',
    );
    expect(await cluster.machineMetadata(M1)).toEqual({ region: 'us-central' });
    // Added again through the API: the API's value; removed again: hidden again.
    await patch([{ op: 'add', path: `/${M1}/metadata/disk`, value: 'hdd' }]);
    expect(await cluster.machineMetadata(M1)).toEqual({ disk: 'hdd', region: 'us-central' });
    await patch([{ op: 'remove', path: `/${M1}/metadata/disk` }]);
    expect(await cluster.machineMetadata(M1)).toEqual({ region: 'us-central' });
    // Removing a key nobody set changes nothing, as in fleet.
    expect((await patch([{ op: 'remove', path: `/${M2}/metadata/nothing` }])).status).toBe(204);
    expect(await cluster.machineMetadata(M2)).toEqual({});
  });

  it.each([
    [
      { op: 'move', path: `/${M1}/metadata/a`, value: 'x' },
      'invalid op "move": expect add, remove, or replace',
    ],
    [
      { op: 'add', path: `/${M1}/meta/a`, value: 'x' },
      `machine metadata path "/${M1}/meta/a" invalid`,
    ],
    [{ op: 'add', path: `/${M1}/metadata/a` }, 'add and replace require a value'],
  ])('refuses %j with 400 and applies nothing', async (op, message) => {
    const r = await api.req('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${M1}/metadata/ok`, value: 'yes' },
      op,
    ]);
    expect(r.status).toBe(400);
    expect((r.json as { error: { message: string } }).error.message).toContain(message);
    expect(cluster.api.count('setMachineMetadata')).toBe(0);
  });

  it('refuses a machine the cluster does not list with 404 and applies nothing', async () => {
    const r = await api.req('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${M1}/metadata/ok`, value: 'yes' },
      { op: 'add', path: '/0123456789abcdef0123456789abcdef/metadata/a', value: 'x' },
    ]);
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      error: { code: 404, message: 'machine 0123456789abcdef0123456789abcdef not found' },
    });
    expect(cluster.api.count('setMachineMetadata')).toBe(0);
  });

  it('passes the engine refusal of a value on as 400', async () => {
    cluster.api.failNext(
      'setMachineMetadata',
      new FlotillaError(
        ErrorCode.InvalidArgument,
        'invalid metadata value for "a": "x,y" contains \',\' or \'=\'',
      ),
    );
    const r = await api.req('PATCH', '/fleet/v1/machines', [
      { op: 'add', path: `/${M1}/metadata/a`, value: 'x,y' },
    ]);
    expect(r.status).toBe(400);
  });
});

describe('the rest of fleet mux', () => {
  it('serves the discovery document at /discovery and /discovery.json, 400 for other methods', async () => {
    for (const p of ['/fleet/v1/discovery', '/fleet/v1/discovery.json']) {
      const r = await api.req('GET', p);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.text).toBe(DISCOVERY_JSON);
    }
    const doc = JSON.parse(DISCOVERY_JSON) as { id: string; resources: Record<string, unknown> };
    expect(doc.id).toBe('fleet:v1');
    expect(Object.keys(doc.resources)).toEqual(['Machines', 'Units', 'UnitState']);
    const post = await api.req('POST', '/fleet/v1/discovery', {});
    expect(post.status).toBe(400);
  });

  it.each([
    ['GET', '/', 405, ''],
    ['GET', '/fleet/v1', 405, ''],
    ['GET', '/fleet/v1/', 404, ''],
    ['GET', '/fleet/v2/units', 404, ''],
    ['GET', '/v1-alpha/units', 404, ''],
    ['GET', '/fleet/v1/units/', 404, ''],
    ['GET', '/fleet/v1/units/a.service/x', 404, ''],
    ['GET', '/fleet/v1/machines/abc', 404, ''],
    ['POST', '/fleet/v1/units', 405, 'only GET supported against this resource'],
    [
      'PATCH',
      '/fleet/v1/units/a.service',
      405,
      'only GET, PUT and DELETE supported against this resource',
    ],
    ['DELETE', '/fleet/v1/state', 405, 'only GET supported against this resource'],
    ['PUT', '/fleet/v1/machines', 405, 'only GET and PATCH supported against this resource'],
  ])('%s %s is %i', async (method, p, status, message) => {
    const r = await api.req(method, p);
    expect(r.status).toBe(status);
    expect(r.json).toEqual({ error: { code: status, message } });
  });
});

describe('startFleetApiServer', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetapi-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serves on a unix socket and TCP, replaces a stale socket, removes its sockets on close', async () => {
    const sock = path.join(dir, 'run', 'fleet.sock');
    // A socket file left by a dead process: bound, moved aside while its server closes (so
    // the close cannot unlink it), then put back with nobody listening.
    fs.mkdirSync(path.dirname(sock));
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(sock, () => r()));
    fs.renameSync(sock, sock + '.keep');
    await new Promise<void>((r) => dead.close(() => r()));
    fs.renameSync(sock + '.keep', sock);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);

    const h = await startFleetApiServer({
      api: cluster.api,
      listen: [`unix://${sock}`, '127.0.0.1:0'],
    });
    try {
      expect(h.addresses[0]).toBe(`unix://${sock}`);
      expect(h.addresses[1]).toMatch(/^127\.0\.0\.1:\d+$/);
      const viaSocket = await request({ socketPath: sock }, 'GET', '/fleet/v1/machines?alt=json');
      expect(viaSocket.status).toBe(200);
      const port = Number(h.addresses[1].split(':')[1]);
      const viaTcp = await request({ port }, 'GET', '/fleet/v1/units?alt=json');
      expect(viaTcp.status).toBe(200);
      // A second server on the same live socket is refused.
      await expect(
        startFleetApiServer({ api: cluster.api, listen: [`unix://${sock}`] }),
      ).rejects.toThrow(/another process is serving on this socket/);
    } finally {
      await h.close();
    }
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('refuses a path that is not a socket, and a relative unix path', async () => {
    const file = path.join(dir, 'fleet.sock');
    fs.writeFileSync(file, 'x');
    await expect(
      startFleetApiServer({ api: cluster.api, listen: [`unix://${file}`] }),
    ).rejects.toThrow(/exists and is not a socket/);
    await expect(
      startFleetApiServer({ api: cluster.api, listen: ['unix://fleet.sock'] }),
    ).rejects.toThrow(/needs an absolute path/);
  });
});
