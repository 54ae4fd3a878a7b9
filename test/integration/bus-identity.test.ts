import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, nkeyAuthenticator, type NatsConnection } from 'nats';
import { encode, PROTOCOL_VERSION, subjects } from '../../src/protocol';
import { runCli, tableObjects } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';

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
const clients: NatsConnection[] = [];

const busAuth = (args: string[]) => runCli(['bus-auth', ...args], { mode: 'dist' });

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const r = await runCli(args, { endpoint: cluster.endpoints()[0], cwd: dir, mode: 'dist' });
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
  const nc = await connect({
    servers: cluster.nats.url,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    inboxPrefix: S.inbox(machine),
    // The shared CI machine can be slow to schedule the handshake.
    timeout: 30_000,
  });
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
      { machineId: C, disableEngine: true, flags: ['--nats-nkey-seed-file', seedOf(C)] },
    ],
    nats: { config: fs.readFileSync(path.join(keys, 'flotilla-auth.conf'), 'utf8') },
  });
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
    for (const subject of [`flotilla.${CLUSTER}.engine.>`, S.schedule(A), S.agentRpc(A), S.resync])
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
      [S.agentRpc(A), encode({ v: PROTOCOL_VERSION, kind: 'status', unit: marker })],
    ];
    for (const [subject, data] of forged) attacker.nc.publish(subject, data);
    // Reading another machine's schedule, or every report, is refused as well.
    const subErrors: string[] = [];
    for (const subject of [S.schedule(A), S.reportAll, `flotilla.${CLUSTER}.>`])
      attacker.nc.subscribe(subject, { callback: (e) => e && subErrors.push(subject) });
    await attacker.nc.flush().catch(() => undefined);
    await waitFor('every violation reported', async () => attacker.violations.length >= 9);
    await witness.nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([]);
    expect(subErrors.sort()).toEqual([S.schedule(A), S.reportAll, `flotilla.${CLUSTER}.>`].sort());
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
});
