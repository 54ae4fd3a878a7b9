import fs from 'node:fs';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import os from 'node:os';
import path from 'node:path';
import type { ApiClient } from '../../src/api/client';
import { connectApi } from '../../src/api/client';
import { ErrorCode, FlotillaError } from '../../src/errors';
import { UnitView } from '../../src/gen/flotilla/v1/flotilla';
import { runCli } from '../helpers/cli';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * Hostile input against a real `flotillad --dev` (gRPC, fleet's HTTP API and the CLI): every
 * refusal of docs/security.md "Input validation", and the daemon still answering afterwards.
 * Before these checks, a non-ASCII unit name crashed the leader (it reached a gRPC trailer), a
 * newline in an option became a directive on the agent, `Global` with `Conflicts` evicted every
 * unit, and unknown machines, enums and page tokens were accepted.
 */
jest.setTimeout(60_000);

const MAX_UNIT_BYTES = 8192;
let dir: string;
let grpcPort: number;
let fleetPort: number;
let httpPort: number;
let daemon: DevDaemon | undefined;
let api: ApiClient;
let machineId: string;

const cli = (args: string[]) =>
  runCli(args, { endpoint: `127.0.0.1:${grpcPort}`, cwd: dir, timeoutMs: 30_000 });

function request(
  port: number,
  method: string,
  urlPath: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers, agent: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

/** The FlotillaError a call failed with (fails the test when it succeeded). */
async function refusal(p: Promise<unknown>): Promise<FlotillaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FlotillaError);
    return err as FlotillaError;
  }
  throw new Error('the call was accepted');
}

/** The daemon still serves: the leader answers a read. */
async function stillServing(): Promise<void> {
  expect(daemon!.proc.exitCode).toBeNull();
  const s = await api.getClusterStatus({});
  expect(s.leaderMachineId).toBe(machineId);
}

/** A call with raw request bytes, as a client that is not Flotilla's; its error, if any. */
function rawCall(method: string, bytes: Buffer): Promise<grpc.ServiceError | undefined> {
  const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  const path = `/flotilla.v1.Flotilla/${method}`;
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    const done = (err: grpc.ServiceError | null | undefined): void => {
      client.close();
      resolve(err ?? undefined);
    };
    if (method === 'Watch') {
      const call = client.makeServerStreamRequest(path, id, id, bytes);
      call.on('data', () => undefined);
      call.on('error', done);
      call.on('end', () => done(undefined));
    } else client.makeUnaryRequest(path, id, id, bytes, (err) => done(err));
  });
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

const SERVICE = [
  { section: 'Unit', name: 'Description', value: 'input test' },
  { section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' },
];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-input-'));
  // Every listener on a port the daemon picks (port 0) and announces; HTTP comes up last.
  daemon = await startDevDaemon({
    dir,
    readyListener: 'HTTP',
    kind: 'flotillad --dev (input)',
    args: [
      '--fleet-api-listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--max-unit-bytes',
      String(MAX_UNIT_BYTES),
    ],
  });
  grpcPort = daemon.port;
  fleetPort = daemon.portOf('fleet API v1');
  httpPort = daemon.portOf('HTTP');
  api = connectApi(`127.0.0.1:${grpcPort}`, { requestTimeoutMs: 10_000 });
  for (let i = 0; i < 200; i++) {
    const m = await api.listMachines({}).catch(() => undefined);
    if (m && m.machines.length === 1) {
      machineId = m.machines[0].id;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(machineId).toMatch(/^[0-9a-f]{32}$/);
});

afterAll(async () => {
  api?.close();
  await daemon?.stop();
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('unit names', () => {
  it('a non-ASCII name is answered, not a crash (CLI and gRPC, twice)', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await cli(['status', 'é.service']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('é.service');
    }
    const get = await refusal(api.getUnit({ name: 'é.service' }));
    expect(get.code).toBe(ErrorCode.UnitNotFound);
    expect(get.details.unit).toBe('é.service');
    const create = await refusal(
      api.createUnits({
        units: [{ name: 'é.service', options: SERVICE, targetState: '' }],
        replace: false,
      }),
    );
    expect(create.code).toBe(ErrorCode.UnitNameInvalid);
    expect(create.message).toContain('"é"');
    await stillServing();
  });

  it('a 120 KB name is refused at once, and the refusal quotes a short prefix of it', async () => {
    const huge = `${'x'.repeat(120_000)}.service`;
    const quick = connectApi(`127.0.0.1:${grpcPort}`, { requestTimeoutMs: 5000 });
    try {
      const create = await refusal(
        quick.createUnits({
          units: [{ name: huge, options: SERVICE, targetState: '' }],
          replace: false,
        }),
      );
      expect(create.code).toBe(ErrorCode.UnitNameInvalid);
      expect(create.message.length).toBeLessThan(300);
      const get = await refusal(quick.getUnit({ name: huge }));
      expect(get.code).toBe(ErrorCode.UnitNotFound);
      expect(get.message.length).toBeLessThan(300);
      expect(String(get.details.unit).length).toBeLessThan(300);
    } finally {
      quick.close();
    }
    await stillServing();
  });

  it('busname and snapshot units (gone from systemd) are refused by the API', async () => {
    for (const name of ['a.busname', 'a.snapshot']) {
      const e = await refusal(
        api.createUnits({ units: [{ name, options: SERVICE, targetState: '' }], replace: false }),
      );
      expect(e.code).toBe(ErrorCode.UnitNameInvalid);
      expect(e.message).toContain(`unknown type "${name.slice(2)}"`);
    }
  });
});

describe('unit files', () => {
  const smuggled: [string, { section: string; name: string; value: string }][] = [
    [
      'a newline in a value',
      {
        section: 'Service',
        name: 'ExecStart',
        value: '/bin/true\nExecStartPre=/bin/touch /tmp/pwned',
      },
    ],
    [
      'a carriage return in a value',
      { section: 'Service', name: 'ExecStart', value: '/bin/true\rExecStartPre=/bin/id' },
    ],
    [
      'a NUL in a value',
      { section: 'Service', name: 'ExecStart', value: '/bin/true\u0000ExecStartPre=/bin/id' },
    ],
    [
      'a newline in a section',
      { section: 'Unit]\n[Service', name: 'ExecStartPre', value: '/bin/id' },
    ],
    [
      'a newline in a name',
      { section: 'Service', name: 'Description\nExecStartPre', value: '/bin/id' },
    ],
    ['a value ending in a continuation', { section: 'Unit', name: 'Description', value: 'x \\' }],
    [
      'an escaped backslash before a newline',
      { section: 'Unit', name: 'Description', value: 'x \\\\\nExecStartPre=/bin/id' },
    ],
    [
      'a continued line systemd reads as a comment',
      { section: 'Unit', name: 'Description', value: 'x \\\n#y' },
    ],
  ];
  it.each(smuggled)('%s is refused over gRPC and nothing is stored', async (_case, option) => {
    const e = await refusal(
      api.createUnits({
        units: [
          { name: 'smuggle.service', options: [...SERVICE, option], targetState: 'launched' },
        ],
        replace: false,
      }),
    );
    expect(e.code).toBe(ErrorCode.UnitFileInvalid);
    expect(e.message).toMatch(/^smuggle\.service: option 3 /);
    expect((await refusal(api.getUnit({ name: 'smuggle.service' }))).code).toBe(
      ErrorCode.UnitNotFound,
    );
  });

  it('a newline in a value is refused over fleet API too (400), and a continuation is accepted', async () => {
    const put = (name: string, value: string) =>
      request(
        fleetPort,
        'PUT',
        `/fleet/v1/units/${name}`,
        JSON.stringify({
          name,
          desiredState: 'inactive',
          options: [{ section: 'Service', name: 'ExecStart', value }],
        }),
      );
    const bad = await put('smuggle2.service', '/bin/true\nExecStartPre=/bin/id');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.message).toContain('a newline in the value must follow');
    const ok = await put('continued.service', '/bin/sleep \\\n  1000');
    expect(ok.status).toBe(201);
    const u = await api.getUnit({ name: 'continued.service' });
    expect(u.options[0].value).toBe('/bin/sleep \\\n  1000');
  });

  it('a file with no section is refused by the CLI, naming the file', async () => {
    fs.writeFileSync(path.join(dir, 'nosection.service'), 'ExecStart=/bin/true\n');
    const r = await cli(['submit', 'nosection.service']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nosection.service:1: the file has no [Section] header');
    const e = await refusal(
      api.createUnits({
        units: [{ name: 'empty.service', options: [], targetState: '' }],
        replace: false,
      }),
    );
    expect(e.code).toBe(ErrorCode.UnitFileInvalid);
    expect(e.message).toContain('the unit file is empty');
  });

  it('a scope unit file is refused: systemd never loads one from a file', async () => {
    // (The CLI, as fleetctl, reads "job.scope" as job.scope.service; the API is asked directly.)
    const e = await refusal(
      api.createUnits({
        units: [
          {
            name: 'job.scope',
            options: [{ section: 'Scope', name: 'Slice', value: 'user.slice' }],
            targetState: 'launched',
          },
        ],
        replace: false,
      }),
    );
    expect(e.code).toBe(ErrorCode.UnitFileInvalid);
    expect(e.message).toContain('job.scope: systemd makes scope units only at run time');
    await expect(api.getUnit({ name: 'job.scope' })).rejects.toMatchObject({
      code: ErrorCode.UnitNotFound,
    });
  });

  it('a unit over max_unit_bytes is refused with the same message whatever its size', async () => {
    for (const size of [MAX_UNIT_BYTES, 10 * 1024 * 1024]) {
      const options = [
        ...SERVICE,
        ...Array.from({ length: Math.ceil(size / 1000) }, (_, i) => ({
          section: 'Service',
          name: 'Environment',
          value: `V${i}=${'v'.repeat(990)}`,
        })),
      ];
      const e = await refusal(
        api.createUnits({
          units: [{ name: 'big.service', options, targetState: '' }],
          replace: false,
        }),
      );
      expect(e.code).toBe(ErrorCode.UnitFileInvalid);
      expect(e.message).toMatch(
        new RegExp(
          `^big\\.service: the unit file is \\d+ bytes; the limit is ${MAX_UNIT_BYTES} \\(max_unit_bytes\\)$`,
        ),
      );
    }
    await stillServing();
  });

  it('Global with Conflicts is refused, as fleet did', async () => {
    fs.writeFileSync(
      path.join(dir, 'evict.service'),
      '[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nGlobal=true\nConflicts=*\n',
    );
    const r = await cli(['submit', 'evict.service']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Global cannot be used with Conflicts');
    for (const extra of ['MachineOf=web.service', `MachineID=${'0'.repeat(32)}`]) {
      const e = await refusal(
        api.createUnits({
          units: [
            {
              name: 'g.service',
              options: [
                ...SERVICE,
                { section: 'X-Fleet', name: 'Global', value: 'true' },
                { section: 'X-Fleet', name: extra.split('=')[0], value: extra.split('=')[1] },
              ],
              targetState: '',
            },
          ],
          replace: false,
        }),
      );
      expect(e.code).toBe(ErrorCode.UnitOptionsInvalid);
    }
  });
});

describe('other fields', () => {
  it('metadata only for known machines, and bounded', async () => {
    const unknown = await refusal(
      api.setMachineMetadata({ machineId: '../../etc', metadata: { a: 'b' } }),
    );
    expect(unknown.code).toBe(ErrorCode.MachineNotFound);
    const big = await refusal(
      api.setMachineMetadata({ machineId, metadata: { a: 'v'.repeat(100_000) } }),
    );
    expect(big.code).toBe(ErrorCode.InvalidArgument);
    expect(big.message.length).toBeLessThan(300);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect((await refusal(api.setMachineMetadata({ machineId, metadata: many }))).code).toBe(
      ErrorCode.InvalidArgument,
    );
    const badKey = await refusal(api.setMachineMetadata({ machineId, metadata: { 'a/b': 'c' } }));
    expect(badKey.code).toBe(ErrorCode.InvalidArgument);
    await api.setMachineMetadata({ machineId, metadata: { role: 'web' } });
    const fleet = await request(
      fleetPort,
      'PATCH',
      '/fleet/v1/machines',
      JSON.stringify([{ op: 'add', path: '/../../etc/metadata/x', value: 'y' }]),
    );
    expect(fleet.status).toBe(400);
  });

  it('unknown enum values, event types and bad page tokens are INVALID_ARGUMENT', async () => {
    const view = await refusal(api.listUnits({ pageSize: 1, pageToken: '', view: 7 as UnitView }));
    expect(view.code).toBe(ErrorCode.InvalidArgument);
    expect(view.details.field).toBe('view');
    for (const pageToken of [
      'garbage',
      'x'.repeat(5000),
      Buffer.from('states:a').toString('base64url'),
    ]) {
      const e = await refusal(api.listUnits({ pageSize: 1, pageToken, view: 0 }));
      expect(e.code).toBe(ErrorCode.InvalidArgument);
      expect(e.details.field).toBe('page_token');
    }
    expect((await refusal(api.listUnitStates({ pageSize: 1, pageToken: 'garbage' }))).code).toBe(
      ErrorCode.InvalidArgument,
    );
    const target = await refusal(
      api.setTargetStates({ names: ['continued.service'], targetState: 'FULL' }),
    );
    expect(target.code).toBe(ErrorCode.InvalidArgument);
    const fleet = await request(fleetPort, 'GET', '/fleet/v1/units?nextPageToken=garbage');
    expect(fleet.status).toBe(400);
    // A token the server issued still works.
    await api.createUnits({
      units: [{ name: 'page2.service', options: SERVICE, targetState: '' }],
      replace: false,
    });
    const first = await api.listUnits({
      pageSize: 1,
      pageToken: '',
      view: UnitView.UNIT_VIEW_BASIC,
    });
    expect(first.nextPageToken).not.toBe('');
    const second = await api.listUnits({ pageSize: 1, pageToken: first.nextPageToken, view: 0 });
    expect(second.units[0].name).not.toBe(first.units[0].name);
  });

  it('fleet API: a "__proto__" key is ignored as fleet ignored it, a body over 4 MiB is refused (413), and so is deep nesting', async () => {
    // Keys were copied into a plain object: "__proto__" set its prototype, and the unit's
    // options were read from there.
    const proto = await request(
      fleetPort,
      'PUT',
      '/fleet/v1/units/proto.service',
      '{"desiredState":"inactive","__proto__":{"options":[{"section":"Service","name":"ExecStart","value":"/bin/id"}]}}',
    );
    expect(proto.status).toBe(409);
    expect(JSON.parse(proto.text).error.message).toBe(
      'unit proto.service does not exist and options field empty',
    );
    const huge = JSON.stringify({
      desiredState: 'inactive',
      options: [{ section: 'Service', name: 'Environment', value: 'A='.padEnd(5_000_000, 'x') }],
    });
    const big = await request(fleetPort, 'PUT', '/fleet/v1/units/huge.service', huge).catch(
      (err: Error) => ({ status: 0, text: err.message }),
    );
    // Deep nesting is refused before it is parsed (2 MB of "[[[…" held the loop for seconds).
    const deep = await request(
      fleetPort,
      'PUT',
      '/fleet/v1/units/deep.service',
      `{"options":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`,
    );
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.text).error.message).toBe(
      'unable to decode body: JSON nested deeper than 32 levels',
    );
    expect(big.status).toBe(413);
    expect(JSON.parse(big.text).error.message).toContain(
      'request body is larger than 4194304 bytes',
    );
    await stillServing();
  });

  it('malformed protobuf bytes are INVALID_ARGUMENT naming the method, not INTERNAL', async () => {
    for (const bytes of [
      [0xff, 0xff, 0xff, 0xff, 0x0f],
      [0x0a, 0x10, 0x0a],
    ]) {
      const e = await rawCall('CreateUnits', Buffer.from(bytes));
      expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e?.details).toMatch(/^malformed CreateUnits request: its \d+ bytes are not a valid/);
    }
    const stream = await rawCall('Watch', Buffer.from([0xff]));
    expect(stream?.code).toBe(grpc.status.INVALID_ARGUMENT);
    await stillServing();
  });

  it('a request of millions of tiny options is refused before it is decoded', async () => {
    // One unit with 1.2 million empty options: 6 MB on the wire, ~250 MB of heap once decoded
    // (a 60 MB one took a daemon to 2.6 GB). Counted on the wire and refused.
    const option = Buffer.from([0x12, 0x00]); // UnitSpec.options = {}
    const unit = Buffer.concat([
      Buffer.from([0x0a, 0x09]),
      Buffer.from('x.service'),
      Buffer.alloc(option.length * 1_200_000, option),
    ]);
    const msg = Buffer.concat([Buffer.from([0x0a]), varint(unit.length), unit]);
    const e = await rawCall('CreateUnits', msg);
    expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e?.details).toContain('holds more than 500000 fields');
    expect(e?.details).toContain('send it in smaller requests');
    // As many names (2 bytes each) in DestroyUnits: the same.
    const names = Buffer.alloc(2 * 1_000_000, Buffer.from([0x0a, 0x00]));
    expect((await rawCall('DestroyUnits', names))?.code).toBe(grpc.status.INVALID_ARGUMENT);
    await stillServing();
  });

  it('the daemon served every refusal above and counts no internal error', async () => {
    await stillServing();
    const metrics = await request(httpPort, 'GET', '/metrics');
    expect(metrics.text).toContain('flotilla_api_internal_errors_total{api="grpc"} 0');
    expect(metrics.text).toContain('flotilla_api_internal_errors_total{api="fleet"} 0');
  });
});
