import http from 'node:http';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { connect, type NatsConnection } from 'nats';
import type { ApiClient } from '../../src/api/client';
import { connectApi } from '../../src/api/client';
import type { ClusterApi } from '../../src/api/types';
import { ErrorCode, FlotillaError } from '../../src/errors';
import { EVENT_TYPES } from '../../src/events/types';
import { FlotillaService } from '../../src/gen/flotilla/v1/flotilla';
import { PROTOCOL_VERSION, subjects } from '../../src/protocol';
import { announcedPort } from '../helpers/announced';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { hostileText } from '../helpers/hostile';

/**
 * Random input against real daemons: a cluster of two flotillad (a leader with an agent and a
 * follower with an agent, on real etcd and NATS) gets random messages on every gRPC method
 * (through the leader and through the follower, which forwards), random bytes as gRPC
 * messages, random requests on fleet's HTTP API, and random bytes and wrong protocol messages
 * on every NATS subject the leader and the agents listen on. Property: every call ends, within
 * its deadline, with an answer or a clear refusal (never INTERNAL, never a long echo of the
 * input), and afterwards both daemons still run and the cluster still places a unit.
 * Bounded: a fixed number of runs per method, each property capped in time.
 */
jest.setTimeout(240_000);

let cluster: TestCluster;
let leader: ApiClient;
let follower: ApiClient;
let fleetPort: number;
let httpPort: number;
const machines: string[] = [];

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  cluster = await startCluster({
    nodes: [
      // Port 0: the daemon picks its ports and announces them (read back below).
      { flags: ['--fleet-api-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'] },
      { disableEngine: true },
    ],
  });
  const node = cluster.nodes[0];
  fleetPort = await until(
    async () => announcedPort(node.output, 'fleet API v1'),
    'the fleet API port',
  );
  httpPort = await until(async () => announcedPort(node.output, 'HTTP'), 'the HTTP port');
  leader = connectApi(cluster.nodes[0].endpoint, { requestTimeoutMs: 15_000 });
  follower = connectApi(cluster.nodes[1].endpoint, { requestTimeoutMs: 15_000 });
  const m = await until(async () => {
    const r = await leader.listMachines({});
    return r.machines.length === 2 ? r.machines : undefined;
  }, 'both machines joined');
  machines.push(...m.map((x) => x.id));
  await until(
    async () => ((await follower.getClusterStatus({})).leaderMachineId ? true : undefined),
    'the follower knows the leader',
  );
});

afterAll(async () => {
  leader?.close();
  follower?.close();
  await cluster?.dispose();
});

// ------------------------------------------------------------------------- arbitraries

const unitName = fc.oneof(
  fc.constantFrom('a.service', 'web@1.service', 'web@.service', 'é.service', 'a.busname'),
  fc.nat(50).map((n) => `fz${n}.service`),
  hostileText(30),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constant(`${'x'.repeat(120_000)}.service`),
);
const text = fc.oneof(hostileText(30), fc.string({ maxLength: 30 }));
const option = fc.record({
  section: fc.oneof(fc.constantFrom('Unit', 'Service', 'X-Fleet'), text),
  name: fc.oneof(
    fc.constantFrom('ExecStart', 'Description', 'Global', 'Conflicts', 'MachineOf'),
    text,
  ),
  value: fc.oneof(fc.constantFrom('/bin/sleep 1000', 'true', '*'), text),
});
const targetState = fc.oneof(fc.constantFrom('', 'inactive', 'loaded', 'launched'), text);
const machineId = fc.oneof(
  fc.constantFrom('', '../../etc', 'a.>', 'a *'),
  fc.nat(1).map((i) => machines[i]),
  text,
);
const pageToken = fc.oneof(
  fc.constant(''),
  text,
  text.map((t) => Buffer.from(`units:${t}`).toString('base64url')),
);

/** One random call of each method, as [method, run(api, signal)]. */
const calls: [string, fc.Arbitrary<(api: ClusterApi, signal: AbortSignal) => Promise<unknown>>][] =
  [
    [
      'createUnits',
      fc
        .record({
          units: fc.array(
            fc.record({ name: unitName, options: fc.array(option, { maxLength: 4 }), targetState }),
            { maxLength: 3 },
          ),
          replace: fc.boolean(),
        })
        .map((r) => (api) => api.createUnits(r)),
    ],
    [
      'setTargetStates',
      fc
        .record({ names: fc.array(unitName, { maxLength: 3 }), targetState })
        .map((r) => (api) => api.setTargetStates(r)),
    ],
    [
      'destroyUnits',
      fc
        .record({ names: fc.array(unitName, { maxLength: 3 }) })
        .map((r) => (api) => api.destroyUnits(r)),
    ],
    ['getUnit', fc.record({ name: unitName }).map((r) => (api) => api.getUnit(r))],
    [
      'listUnits',
      fc
        .record({
          pageSize: fc.nat({ max: 2 ** 32 - 1 }),
          pageToken,
          view: fc.integer({ min: -3, max: 9 }),
        })
        .map((r) => (api) => api.listUnits(r)),
    ],
    [
      'listUnitStates',
      fc
        .record({ pageSize: fc.nat({ max: 2 ** 32 - 1 }), pageToken })
        .map((r) => (api) => api.listUnitStates(r)),
    ],
    ['listMachines', fc.constant((api: ClusterApi) => api.listMachines({}))],
    [
      'setMachineMetadata',
      fc
        .record({ machineId, metadata: fc.dictionary(text, text, { maxKeys: 4 }) })
        .map((r) => (api) => api.setMachineMetadata(r)),
    ],
    ['getClusterStatus', fc.constant((api: ClusterApi) => api.getClusterStatus({}))],
    ['unitStatus', fc.record({ name: unitName, machineId }).map((r) => (api) => api.unitStatus(r))],
    [
      'watch',
      fc
        .record({
          fromIndex: fc.nat(1_000_000),
          types: fc.array(fc.oneof(fc.constantFrom(...EVENT_TYPES), text), { maxLength: 3 }),
        })
        .map((r) => (api, signal) => drain(api.watch(r, signal))),
    ],
    [
      'unitJournal',
      fc
        .record({ name: unitName, machineId, lines: fc.nat(), follow: fc.boolean() })
        .map((r) => (api, signal) => drain(api.unitJournal(r, signal))),
    ],
  ];

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // Reading until the signal ends the stream.
  }
}

/** Runs `call` with a deadline; the outcome must be an answer or a clear refusal. */
async function outcome(call: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 500);
  try {
    await call(ac.signal);
  } catch (err) {
    if (ac.signal.aborted && !(err instanceof FlotillaError)) return;
    expect(err).toBeInstanceOf(FlotillaError);
    const e = err as FlotillaError;
    // A stream the client cancelled ends as CANCELLED/UNAVAILABLE on its side: not a refusal.
    if (ac.signal.aborted && e.code !== ErrorCode.Internal) return;
    expect([e.code, e.message]).not.toEqual([ErrorCode.Internal, expect.anything()]);
    expect(e.message.length).toBeLessThan(5000);
  } finally {
    clearTimeout(timer);
  }
}

async function assertHealthy(): Promise<void> {
  for (const n of cluster.nodes) expect([n.index, n.running]).toEqual([n.index, true]);
  await leader.getClusterStatus({});
  await follower.getClusterStatus({});
  const metrics = await get(httpPort, '/metrics');
  expect(metrics.text).toContain('flotilla_api_internal_errors_total{api="grpc"} 0');
  expect(metrics.text).toContain('flotilla_api_internal_errors_total{api="fleet"} 0');
}

function get(port: number, p: string): Promise<{ status: number; text: string }> {
  return request(port, 'GET', p, undefined, undefined);
}

function request(
  port: number,
  method: string,
  p: string,
  body: string | undefined,
  contentType: string | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    const r = http.request(
      { host: '127.0.0.1', port, method, path: p, headers, agent: false, timeout: 15_000 },
      (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
      },
    );
    r.on('timeout', () => r.destroy(new Error(`${method} ${p}: no answer in 15 s`)));
    r.on('error', reject);
    r.end(body);
  });
}

// ------------------------------------------------------------------------------- tests

describe('random input never crashes or hangs a daemon', () => {
  it.each(calls)(
    'gRPC %s with random messages, on the leader and through the follower',
    async (_m, call) => {
      await fc.assert(
        fc.asyncProperty(call, fc.boolean(), async (run, viaFollower) => {
          const api = viaFollower ? follower : leader;
          await outcome((signal) => run(api, signal));
        }),
        { numRuns: 25, interruptAfterTimeLimit: 20_000 },
      );
      await assertHealthy();
    },
  );

  it('random bytes as the message of every gRPC method', async () => {
    const raw = new Client(cluster.nodes[0].endpoint, credentials.createInsecure());
    try {
      const paths = Object.values(FlotillaService).map((m) => m.path);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...paths),
          fc.uint8Array({ maxLength: 300 }),
          async (p, bytes) => {
            await new Promise<void>((resolve) => {
              const done = (err: ServiceError | null): void => {
                // A refusal (bad message, INVALID_ARGUMENT, NOT_FOUND…) or an answer; bytes
                // that do not decode are the client's fault, never INTERNAL.
                if (err) expect([0, status.INTERNAL]).not.toContain(err.code);
                resolve();
              };
              const deadline = Date.now() + 10_000;
              const method = Object.values(FlotillaService).find((m) => m.path === p)!;
              if (method.responseStream) {
                const s = raw.makeServerStreamRequest(
                  p,
                  (b: Buffer) => b,
                  (b: Buffer) => b,
                  Buffer.from(bytes),
                  new Metadata(),
                  { deadline: Date.now() + 500 },
                );
                s.on('data', () => undefined);
                s.on('error', () => resolve());
                s.on('end', () => resolve());
              } else {
                raw.makeUnaryRequest(
                  p,
                  (b: Buffer) => b,
                  (b: Buffer) => b,
                  Buffer.from(bytes),
                  new Metadata(),
                  { deadline },
                  done,
                );
              }
            });
          },
        ),
        { numRuns: 150, interruptAfterTimeLimit: 30_000 },
      );
    } finally {
      raw.close();
    }
    await assertHealthy();
  });

  it("fleet's HTTP API with random methods, paths and bodies", async () => {
    const segment = fc.oneof(
      fc.constantFrom('units', 'state', 'machines', 'discovery', 'a.service', '', '..', '%', '%zz'),
      hostileText(12).map(encodeURIComponent),
    );
    const pathArb = fc
      .tuple(fc.constantFrom('/fleet/v1/', '/', '/fleet/'), fc.array(segment, { maxLength: 3 }))
      .chain(([prefix, segs]) =>
        fc
          .oneof(
            fc.constant(''),
            text.map((t) => `?nextPageToken=${encodeURIComponent(t)}`),
            text.map((t) => `?unitName=${encodeURIComponent(t)}&machineID=x`),
          )
          .map((q) => `${prefix}${segs.join('/')}${q}`),
      );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify({ name: 'a.service', options: v })),
      fc
        .array(fc.record({ op: text, path: text, value: text }), { maxLength: 3 })
        .map((ops) => JSON.stringify(ops)),
      hostileText(100),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'POST'),
        pathArb,
        body,
        fc.constantFrom(undefined, 'application/json', 'text/plain'),
        async (method, p, b, ct) => {
          const r = await request(fleetPort, method, p, b, ct);
          expect(r.status).toBeGreaterThanOrEqual(200);
          expect([r.status, r.text]).not.toEqual([500, expect.anything()]);
        },
      ),
      { numRuns: 300, interruptAfterTimeLimit: 40_000 },
    );
    await assertHealthy();
  });

  it('random bytes and wrong protocol messages on every NATS subject of the leader and the agents', async () => {
    const nc: NatsConnection = await connect({ servers: cluster.nats.url });
    const s = subjects(cluster.clusterName);
    const requests = new Set([
      s.legacy.scheduleGet,
      ...machines.flatMap((m) => [s.scheduleGet(m), s.agentRpc(m)]),
      // Requests addressed to each engine by name, and to each agent under each engine's name.
      ...machines.flatMap((l) =>
        machines.flatMap((m) => [s.scheduleGetOf(l, m), s.agentRpcFrom(m, l)]),
      ),
    ]);
    const targets = [
      s.legacy.report,
      s.legacy.heartbeat,
      s.resync,
      ...requests,
      ...machines.flatMap((m) => [s.report(m), s.heartbeat(m), s.schedule(m)]),
      // Leader-named subjects, under each machine's name (the leader's too).
      ...machines.flatMap((l) => [s.resyncFrom(l), ...machines.map((m) => s.scheduleFrom(m, l))]),
    ];
    // Valid JSON envelopes of the protocol's version with fields of the wrong kinds, or of
    // another version; and plain random bytes.
    const wrong = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.json().map((j) => new TextEncoder().encode(j)),
      fc
        .record({
          v: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.integer()),
          kind: fc.oneof(fc.constantFrom('status', 'journal', 'full', 'delta'), text),
          machine: fc.oneof(fc.integer(), fc.constant(null), fc.array(text)),
          seq: fc.oneof(text, fc.constant(-1), fc.double()),
          units: fc.oneof(fc.constant('x'), fc.array(fc.jsonValue(), { maxLength: 2 })),
          unit: fc.oneof(fc.integer(), fc.constant({})),
        })
        .map((o) => new TextEncoder().encode(JSON.stringify(o))),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...targets), wrong, async (subject, data) => {
          if (requests.has(subject)) {
            // Requests: an error reply or none (the sender's timeout), never a crash.
            await nc.request(subject, data, { timeout: 300 }).catch(() => undefined);
          } else nc.publish(subject, data);
        }),
        { numRuns: 400, interruptAfterTimeLimit: 40_000 },
      );
      await nc.flush();
    } finally {
      await nc.close();
    }
    await assertHealthy();
    const metrics = await get(httpPort, '/metrics');
    expect(Number(/flotilla_engine_malformed_total (\d+)/.exec(metrics.text)?.[1])).toBeGreaterThan(
      0,
    );
  });

  it('a 120 KB or non-ASCII name through the forwarding follower is refused, not stalled', async () => {
    const quick = connectApi(cluster.nodes[1].endpoint, { requestTimeoutMs: 5000 });
    try {
      for (const name of [`${'x'.repeat(120_000)}.service`, 'é.service']) {
        for (const call of [
          () => quick.getUnit({ name }),
          () =>
            quick.createUnits({
              units: [
                {
                  name,
                  options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }],
                  targetState: '',
                },
              ],
              replace: false,
            }),
        ]) {
          const e = await call().then(
            () => undefined,
            (err: unknown) => err as FlotillaError,
          );
          expect(e).toBeInstanceOf(FlotillaError);
          expect([ErrorCode.UnitNotFound, ErrorCode.UnitNameInvalid]).toContain(e!.code);
          expect(e!.message.length).toBeLessThan(300);
        }
      }
    } finally {
      quick.close();
    }
    await assertHealthy();
  });

  it('afterwards the cluster still places and launches a unit', async () => {
    // Units the fuzzing created may conflict with anything: start from a clean cluster.
    const all = await leader.listUnits({ pageSize: 10_000, pageToken: '', view: 1 });
    await leader.destroyUnits({ names: all.units.map((u) => u.name) });
    await follower.createUnits({
      units: [
        {
          name: 'after-fuzz.service',
          options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' }],
          targetState: 'launched',
        },
      ],
      replace: true,
    });
    await until(async () => {
      const u = await leader.getUnit({ name: 'after-fuzz.service' });
      return u.currentState === 'launched' ? true : undefined;
    }, 'after-fuzz.service launched');
    await assertHealthy();
  });
});
