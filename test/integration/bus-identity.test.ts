import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, nkeyAuthenticator, type NatsConnection } from 'nats';
import { encode, PROTOCOL_VERSION, subjects } from '../../src/protocol';
import { runCli, tableObjects } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import type { Readiness } from '../../src/daemon/health';

/**
 * Per-machine identities on a real nats-server configured with what `flotilla bus-auth` writes:
 * a cluster runs with the credentials, and an agent's credentials cannot speak for another
 * machine, publish schedules or resyncs, nor read another machine's schedule.
 */
jest.setTimeout(120_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bus-auth-'));
const keys = path.join(dir, 'keys');
const CLUSTER = `b${randomBytes(4).toString('hex')}`;
const S = subjects(CLUSTER);
const [A, B, C] = [0, 1, 2].map(() => randomBytes(16).toString('hex'));
const seedOf = (m: string): string => path.join(keys, `${m}.nk`);

/** Three machines; C never campaigns and gets agent-only credentials. */
const ALL = ['--cluster', CLUSTER, '--machines', [A, B, C].join(','), '--agent-only', C];
const ALL_OUT = [...ALL, '--out', keys];
let cluster: TestCluster;
/** C's /healthz, /readyz and /metrics. */
let httpC: number;
const clients: NatsConnection[] = [];

const busAuth = (args: string[]) => runCli(['bus-auth', ...args], { mode: 'dist' });

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  // Any running daemon (the last test stops the leader).
  const endpoint = cluster.nodes.find((n) => n.running)!.endpoint;
  const r = await runCli(args, { endpoint, cwd: dir, mode: 'dist' });
  return { stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A raw NATS client with a machine's seed, as an attacker holding that machine's file would use. */
async function clientAs(machine: string): Promise<{ nc: NatsConnection; violations: string[] }> {
  const seed = fs.readFileSync(seedOf(machine), 'utf8').trim();
  const dial = () =>
    connect({
      servers: cluster.nats.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
      inboxPrefix: S.inbox(machine),
      timeout: 20_000,
    });
  // On a loaded shared machine the handshake has been seen to time out once: dial again.
  const nc = await dial().catch(() => dial());
  clients.push(nc);
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error' && String(s.data).includes('PERMISSIONS_VIOLATION'))
        violations.push(String(s.data));
  })();
  return { nc, violations };
}

beforeAll(async () => {
  const gen = await busAuth(ALL_OUT);
  expect(gen.code).toBe(0);
  cluster = await startCluster({
    clusterName: CLUSTER,
    nodes: [
      { machineId: A, flags: ['--nats-nkey-seed-file', seedOf(A)] },
      { machineId: B, flags: ['--nats-nkey-seed-file', seedOf(B)] },
      {
        machineId: C,
        disableEngine: true,
        flags: ['--nats-nkey-seed-file', seedOf(C)],
      },
    ],
    nats: { config: fs.readFileSync(path.join(keys, 'flotilla-auth.conf'), 'utf8') },
  });
  httpC = await cluster.nodes[2].listenerPort('HTTP');
});

afterAll(async () => {
  for (const nc of clients) await nc.close().catch(() => undefined);
  await cluster?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('flotilla bus-auth', () => {
  it('writes one seed per machine (mode 0600) and keeps them when run again', async () => {
    for (const m of [A, B, C]) expect(fs.statSync(seedOf(m)).mode & 0o777).toBe(0o600);
    const auth = fs.readFileSync(path.join(keys, 'flotilla-auth.conf'), 'utf8');
    expect(auth).toContain(`# ${C}: agent only`);
    expect(auth).not.toMatch(/SU[A-Z2-7]{56}/); // no seed in the server's file
    const before = fs.readFileSync(seedOf(A), 'utf8');
    const again = await busAuth(ALL_OUT);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`kept  ${seedOf(A)}`);
    expect(fs.readFileSync(seedOf(A), 'utf8')).toBe(before);
  });

  it('refuses names a NATS subject cannot carry, and missing flags', async () => {
    const bad = await busAuth(['--machines', 'a.b,c', '--out', path.join(dir, 'x')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('machine "a.b" cannot be part of a NATS subject');
    const wild = await busAuth(['--cluster', '*', '--machines', 'a', '--out', dir]);
    expect(wild.stderr).toContain('cluster "*" cannot be part of a NATS subject');
    const none = await busAuth(['--out', dir]);
    expect(none.stderr).toContain('--machines is required');
  });
});

describe('a cluster on a bus with per-machine identities', () => {
  it('runs: every machine joins, a unit starts on an agent-only machine and its journal is read over the bus', async () => {
    await waitFor('3 machines', async () => {
      const r = await cli(['list-machines', '--full', '--no-legend']);
      return r.stdout.trim().split('\n').filter(Boolean).length === 3;
    });
    fs.writeFileSync(
      path.join(dir, 'on-c.service'),
      `[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineID=${C}\n`,
    );
    expect((await cli(['start', 'on-c.service'])).code).toBe(0);
    const units = tableObjects((await cli(['list-units', '--full'])).stdout);
    expect(units.find((u) => u.unit === 'on-c.service')?.machine).toMatch(new RegExp(`^${C}/`));
    expect((await cli(['journal', '--lines', '5', 'on-c.service'])).code).toBe(0);
  });

  it("an agent's credentials cannot speak for another machine, as the engine, or read others' schedules", async () => {
    const attacker = await clientAs(C);
    // A second connection as A (an engine): it may read the engine's subjects and A's own.
    const witness = await clientAs(A);
    const seen: string[] = [];
    const marker = `forged-${randomBytes(4).toString('hex')}`;
    for (const subject of [
      `flotilla.${CLUSTER}.engine.>`,
      S.scheduleFromAny(A),
      S.agentRpcFromAny(A),
      S.resyncFromAny,
    ])
      witness.nc.subscribe(subject, {
        callback: (_e, m) => {
          if (new TextDecoder().decode(m.data).includes(marker)) seen.push(m.subject);
        },
      });
    await witness.nc.flush();
    expect(witness.violations).toEqual([]);
    const hb = (machine: string) =>
      encode({ v: PROTOCOL_VERSION, machine, ip: marker, metadata: {}, epoch: 0 });
    const forged: [string, Uint8Array][] = [
      [S.heartbeat(A), hb(A)],
      [S.legacy.heartbeat, hb(A)],
      [
        S.report(A),
        encode({ v: PROTOCOL_VERSION, machine: A, full: true, units: [], gone: [marker] }),
      ],
      [
        S.schedule(A),
        encode({
          v: PROTOCOL_VERSION,
          kind: 'delta',
          epoch: 1_000_000,
          seq: 1,
          put: [{ unit: `${marker}.service`, hash: 'x', contents: 'x', target: 'launched' }],
          remove: [],
        }),
      ],
      [S.resync, encode({ v: PROTOCOL_VERSION, epoch: 1_000_000, marker })],
      // Nor under its own name, as an engine would.
      [
        S.scheduleFrom(A, C),
        encode({ v: PROTOCOL_VERSION, kind: 'delta', epoch: 1, seq: 1, put: [], remove: [marker] }),
      ],
      [S.resyncFrom(C), encode({ v: PROTOCOL_VERSION, epoch: 1_000_000, marker })],
      [S.agentRpc(A), encode({ v: PROTOCOL_VERSION, kind: 'status', unit: marker })],
      [S.agentRpcFrom(A, C), encode({ v: PROTOCOL_VERSION, kind: 'status', unit: marker })],
    ];
    for (const [subject, data] of forged) attacker.nc.publish(subject, data);
    // Reading another machine's schedule, or every report, is refused as well.
    const subErrors: string[] = [];
    for (const subject of [S.scheduleFromAny(A), S.reportAll, `flotilla.${CLUSTER}.>`])
      attacker.nc.subscribe(subject, { callback: (e) => e && subErrors.push(subject) });
    await attacker.nc.flush().catch(() => undefined);
    await waitFor('every violation reported', async () => attacker.violations.length >= 12);
    await witness.nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([]);
    expect(subErrors.sort()).toEqual(
      [S.scheduleFromAny(A), S.reportAll, `flotilla.${CLUSTER}.>`].sort(),
    );
    // Its own subjects it may use: a heartbeat naming another machine there is dropped by the
    // leader (the machine a message speaks for must be its subject's).
    const ghost = randomBytes(16).toString('hex');
    attacker.nc.publish(S.heartbeat(C), hb(ghost));
    await attacker.nc.flush();
    await new Promise((r) => setTimeout(r, 500));
    const machines = (await cli(['list-machines', '--full', '--no-legend'])).stdout;
    expect(machines).not.toContain(ghost);
    expect(machines).not.toContain(marker);
    await attacker.nc.close();
    await witness.nc.close();
  });

  it("a forged schedule is refused and does not shift the agent's sequence: later changes apply", async () => {
    fs.writeFileSync(
      path.join(dir, 'on-a.service'),
      `[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineID=${A}\n`,
    );
    expect((await cli(['start', 'on-a.service'])).code).toBe(0);
    const agentOnly = await clientAs(C);
    // The next sequence numbers of every plausible epoch, as the probe did: none reaches A.
    for (let epoch = 1; epoch <= 5; epoch++)
      for (let seq = 1; seq <= 20; seq++)
        agentOnly.nc.publish(
          S.schedule(A),
          encode({
            v: PROTOCOL_VERSION,
            kind: 'delta',
            epoch,
            seq,
            put: [],
            remove: ['on-a.service'],
          }),
        );
    await agentOnly.nc.flush().catch(() => undefined);
    await waitFor('violations', async () => agentOnly.violations.length > 0);
    await new Promise((r) => setTimeout(r, 500));
    // The leader's next real changes to A apply: unload, then start again.
    // Still running on A, untouched by the forged removals.
    const units = tableObjects((await cli(['list-units', '--full'])).stdout);
    expect(units.find((u) => u.unit === 'on-a.service')?.active).toBe('active');
    expect((await cli(['unload', 'on-a.service'])).code).toBe(0);
    await waitFor('on-a.service unloaded', async () => {
      const u = tableObjects((await cli(['list-units', '--full'])).stdout);
      return !u.some((x) => x.unit === 'on-a.service');
    });
    expect((await cli(['start', 'on-a.service'])).code).toBe(0);
    await agentOnly.nc.close();
  });

  it("an agent cannot make the leader publish for it: a schedule request's reply goes only to its own inbox", async () => {
    const readyC = async () =>
      (await (await fetch(`http://127.0.0.1:${httpC}/readyz`)).json()) as Readiness;
    const metricC = async (name: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${httpC}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    };
    const leader = await waitFor('the leader', async () => (await readyC()).checks.leader?.machine);
    const other = leader === A ? B : A;
    const attacker = await clientAs(C);
    const witness = await clientAs(other);
    const seen: string[] = [];
    for (const subject of [S.resyncFromAny, S.scheduleFromAny(other)])
      witness.nc.subscribe(subject, { callback: (_e, m) => seen.push(m.subject) });
    await witness.nc.flush();
    const resyncsBefore = await metricC('flotilla_agent_resyncs_total');
    // C may ask the leader for its own schedule; the reply subject is the requester's choice,
    // and the leader publishes its answer with its own rights (it may publish resyncs and
    // schedules): every reflected subject is refused.
    const req = encode({ v: PROTOCOL_VERSION, machine: C });
    for (const reply of [
      S.resyncFrom(leader),
      S.scheduleFrom(other, leader),
      S.agentRpcFrom(other, leader),
      `${S.inbox(other)}.x.1`,
    ])
      for (let i = 0; i < 20; i++) attacker.nc.publish(S.scheduleGetOf(leader, C), req, { reply });
    await attacker.nc.flush();
    // Its own inbox it gets answered on (the request goes after the forged ones).
    const own = await attacker.nc.request(S.scheduleGetOf(leader, C), req, { timeout: 10_000 });
    expect(JSON.parse(new TextDecoder().decode(own.data))).toMatchObject({ kind: 'full' });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen).toEqual([]);
    expect(await metricC('flotilla_agent_resyncs_total')).toBe(resyncsBefore);
    expect(attacker.violations).toEqual([]);
    await attacker.nc.close();
    await witness.nc.close();
  });

  it("deeply nested JSON on an agent's own subjects is dropped unparsed: the leader keeps its lease", async () => {
    const leaderNow = async () =>
      (await (await fetch(`http://127.0.0.1:${httpC}/readyz`)).json()) as Readiness;
    const before = await waitFor('the leader', async () => (await leaderNow()).checks.leader);
    const attacker = await clientAs(C);
    // 1 MB each (NATS's max_payload): V8 took ~2 s to parse one; twenty cost the leader its
    // 5 s etcd lease.
    const deep = new TextEncoder().encode(`${'['.repeat(500_000)}${']'.repeat(500_000)}`);
    for (let i = 0; i < 20; i++) {
      attacker.nc.publish(S.report(C), deep);
      attacker.nc.publish(S.heartbeat(C), deep);
    }
    await attacker.nc.flush();
    await new Promise((r) => setTimeout(r, 8000));
    const after = (await leaderNow()).checks.leader;
    expect(after).toMatchObject({ machine: before.machine, epoch: before.epoch });
    expect(attacker.violations).toEqual([]);
    await attacker.nc.close();
  });

  it('an agent acts only on the leader of the current epoch: not another engine, not a deposed leader', async () => {
    const leaderOfC = async (): Promise<{ machine: string; epoch: number } | undefined> => {
      const r = await fetch(`http://127.0.0.1:${httpC}/readyz`).catch(() => undefined);
      const l = r ? ((await r.json()) as Readiness).checks.leader : undefined;
      return l?.machine !== undefined && l.epoch !== undefined
        ? { machine: l.machine, epoch: l.epoch }
        : undefined;
    };
    const refusals = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${httpC}/metrics`)).text();
      const m = /^flotilla_agent_not_from_leader_total (\d+)/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const activeOnC = async (unit: string): Promise<boolean> => {
      const u = tableObjects((await cli(['list-units', '--full'])).stdout).find(
        (x) => x.unit === unit,
      );
      return u?.machine?.startsWith(`${C}/`) === true && u.active === 'active';
    };
    const delta = (epoch: number, seq: number, remove: string[]) =>
      encode({
        v: PROTOCOL_VERSION,
        kind: 'delta',
        epoch,
        seq,
        put: [
          {
            unit: 'forged.service',
            hash: 'x',
            contents: '[Service]\nExecStart=/bin/id\n',
            target: 'launched',
          },
        ],
        remove,
      });
    for (const u of ['led1', 'led2', 'led3'])
      fs.writeFileSync(
        path.join(dir, `${u}.service`),
        `[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineID=${C}\n`,
      );
    expect((await cli(['start', 'led1.service'])).code).toBe(0);
    await waitFor('led1 active on C', () => activeOnC('led1.service'));
    const leader = await waitFor('a leader C knows', leaderOfC);
    const other = leader.machine === A ? B : A;

    // The other engine-capable identity forges the current epoch's next deltas under its own
    // name (the bus allows it that name only) and a resync: C refuses them all.
    const engine2 = await clientAs(other);
    const before = await refusals();
    for (let seq = 1; seq <= 50; seq++)
      engine2.nc.publish(S.scheduleFrom(C, other), delta(leader.epoch, seq, ['led1.service']));
    engine2.nc.publish(S.resyncFrom(other), encode({ v: PROTOCOL_VERSION, epoch: leader.epoch }));
    await engine2.nc.flush();
    // Under the leader's name, on the unnamed subject, or reading the leader's requests: the
    // server refuses.
    engine2.nc.publish(S.scheduleFrom(C, leader.machine), delta(leader.epoch, 1, ['led1.service']));
    engine2.nc.publish(S.schedule(C), delta(leader.epoch, 1, ['led1.service']));
    engine2.nc.subscribe(S.scheduleGetOfAll(leader.machine), { callback: () => undefined });
    await engine2.nc.flush().catch(() => undefined);
    await waitFor('51 refusals on C', async () => (await refusals()) >= before + 51);
    await waitFor('three violations', async () => engine2.violations.length >= 3);
    expect(await activeOnC('led1.service')).toBe(true);
    // Its requests for a unit's status or journal get no answer from C; under the leader's
    // name or on the unnamed subject the server refuses them.
    const before3 = await refusals();
    const status = {
      v: PROTOCOL_VERSION,
      epoch: leader.epoch,
      kind: 'status',
      unit: 'led1.service',
    };
    const journal = { ...status, kind: 'journal', lines: 5 };
    for (const req of [status, journal])
      await expect(
        engine2.nc.request(S.agentRpcFrom(C, other), encode(req), { timeout: 1500 }),
      ).rejects.toThrow();
    await waitFor('two refused requests on C', async () => (await refusals()) >= before3 + 2);
    for (const subject of [S.agentRpcFrom(C, leader.machine), S.agentRpc(C)])
      await expect(
        engine2.nc.request(subject, encode(status), { timeout: 1500 }),
      ).rejects.toThrow();
    await waitFor('five violations', async () => engine2.violations.length >= 5);
    // The leader's own requests are answered.
    const st = await cli(['status', 'led1.service']);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain('led1.service');
    expect((await cli(['journal', '--lines', '3', 'led1.service'])).code).toBe(0);
    // The leader's next change applies: the forgeries took no sequence number.
    expect((await cli(['start', 'led2.service'])).code).toBe(0);
    await waitFor('led2 active on C', () => activeOnC('led2.service'));

    // The leader is deposed (stopped: it resigns); the other engine leads a new epoch.
    const node = cluster.nodes.find((n) => n.machineId === leader.machine)!;
    await node.stop();
    const next = await waitFor('a new leader', async () => {
      const l = await leaderOfC();
      return l && l.machine === other && l.epoch > leader.epoch ? l : undefined;
    });
    const deposed = await clientAs(leader.machine);
    const before2 = await refusals();
    // Its old epoch, and the new one (which is not its own).
    for (let seq = 1; seq <= 20; seq++) {
      deposed.nc.publish(
        S.scheduleFrom(C, leader.machine),
        delta(leader.epoch, seq + 10, ['led1.service']),
      );
      deposed.nc.publish(
        S.scheduleFrom(C, leader.machine),
        delta(next.epoch, seq, ['led1.service']),
      );
    }
    deposed.nc.publish(
      S.resyncFrom(leader.machine),
      encode({ v: PROTOCOL_VERSION, epoch: next.epoch + 1 }),
    );
    await deposed.nc.flush();
    await waitFor('41 refusals on C', async () => (await refusals()) >= before2 + 41);
    expect(deposed.violations).toEqual([]);
    // The new leader commands C.
    expect((await cli(['start', 'led3.service'])).code).toBe(0);
    await waitFor('led3 active on C', () => activeOnC('led3.service'));
    expect(await activeOnC('led1.service')).toBe(true);
    const units = (await cli(['list-units', '--full'])).stdout;
    expect(units).not.toContain('forged.service');
  });
});
