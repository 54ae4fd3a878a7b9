import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, tableObjects } from '../helpers/cli';
import { startCluster, type DaemonNode, type TestCluster } from '../helpers/cluster';

/**
 * etcd with authentication (docs/security.md, step 4): the machines that campaign use a
 * read-write user on the cluster's prefix, agent-only machines a read-only one. An agent-only
 * daemon works with read-only credentials (it only watches the leader key), and those
 * credentials can neither write Flotilla's keys nor win the election.
 */
jest.setTimeout(120_000);

const CLUSTER = `e${randomBytes(4).toString('hex')}`;
const PREFIX = `/flotilla/${CLUSTER}/`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-etcd-auth-'));
const [A, C, D] = [0, 1, 2].map(() => randomBytes(16).toString('hex'));
let cluster: TestCluster;

function etcdctl(args: string[], user?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      'etcdctl',
      [`--endpoints=${cluster.etcd.endpoints[0]}`, ...(user ? [`--user=${user}`] : []), ...args],
      { env: { PATH: process.env.PATH, ETCDCTL_API: '3' }, timeout: 20_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

async function must(args: string[], user?: string): Promise<string> {
  const r = await etcdctl(args, user);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.out}`);
  return r.out;
}

/** A daemon of this cluster logging in to etcd as `user` (password in a 0600 file). */
function daemon(
  machineId: string,
  user: string,
  extra: string[],
  logLevel: 'debug' | 'info' = 'info',
): Promise<DaemonNode> {
  const pw = path.join(dir, `${user}.password`);
  fs.writeFileSync(pw, `${user}-pw\n`, { mode: 0o600 });
  return cluster.addNode({
    machineId,
    logLevel,
    flags: ['--etcd-username', user, '--etcd-password-file', pw, ...extra],
  });
}

const cli = (node: DaemonNode, args: string[]) =>
  runCli(args, { endpoint: node.endpoint, cwd: dir, mode: 'dist' });

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let ctl: DaemonNode;
let worker: DaemonNode;

beforeAll(async () => {
  cluster = await startCluster({ nodes: [], clusterName: CLUSTER });
  // The setup docs/security.md describes: root, a read-write and a read-only role on the prefix.
  await must(['user', 'add', 'root:root-pw', '--interactive=false']);
  await must(['user', 'grant-role', 'root', 'root']);
  await must(['role', 'add', 'flotilla-rw']);
  await must(['role', 'grant-permission', 'flotilla-rw', '--prefix=true', 'readwrite', PREFIX]);
  await must(['role', 'add', 'flotilla-ro']);
  await must(['role', 'grant-permission', 'flotilla-ro', '--prefix=true', 'read', PREFIX]);
  for (const [user, role] of [
    ['ctl', 'flotilla-rw'],
    ['worker', 'flotilla-ro'],
  ]) {
    await must(['user', 'add', `${user}:${user}-pw`, '--interactive=false']);
    await must(['user', 'grant-role', user, role]);
  }
  await must(['auth', 'enable']);
  ctl = await daemon(A, 'ctl', []);
  worker = await daemon(C, 'worker', ['--disable-engine']);
  fs.writeFileSync(
    path.join(dir, 'on-c.service'),
    `[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineID=${C}\n`,
  );
});

afterAll(async () => {
  await cluster?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('etcd with authentication', () => {
  it('an agent-only daemon works with read-only credentials: it joins, runs a unit, serves and forwards', async () => {
    await waitFor('two machines', async () => {
      const r = await cli(worker, ['list-machines', '--no-legend']);
      return r.code === 0 && r.stdout.trim().split('\n').length === 2;
    });
    // Written through the agent-only daemon: it forwards to the leader, which writes.
    expect((await cli(worker, ['start', 'on-c.service'])).code).toBe(0);
    await waitFor('on-c active on C', async () => {
      const u = tableObjects((await cli(worker, ['list-units', '--full'])).stdout);
      const row = u.find((x) => x.unit === 'on-c.service');
      return row?.machine?.startsWith(`${C}/`) === true && row.active === 'active';
    });
    const status = await cli(worker, ['cluster', '--json']);
    expect(JSON.parse(status.stdout).leaderMachineId).toBe(A);
    expect(worker.output).not.toMatch(/permission denied/i);
  });

  it('offline tools log in with the read-only credentials: password from a file or the environment; on the command line it works with a warning; wrong is refused', async () => {
    const store = ['--etcd-servers', cluster.etcd.endpoints[0], '--cluster', CLUSTER];
    const offline = (args: string[], env: Record<string, string> = {}) =>
      runCli(['replay', ...store, '--etcd-username', 'worker', ...args], { cwd: dir, env });
    const fromFile = await offline(['--etcd-password-file', path.join(dir, 'worker.password')]);
    expect(fromFile.stderr).not.toMatch(/warning/);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toContain('on-c.service');
    const fromEnv = await offline([], { FLOTILLA_ETCD_PASSWORD: 'worker-pw' });
    expect(fromEnv.stderr).toBe(fromFile.stderr);
    expect(fromEnv.stdout).toBe(fromFile.stdout);
    const onArgv = await offline(['--etcd-password', 'worker-pw']);
    expect(onArgv.code).toBe(0);
    expect(onArgv.stderr).toMatch(
      /^warning: --etcd-password on the command line is visible to every user of this machine; use --etcd-password-file or FLOTILLA_ETCD_PASSWORD$/m,
    );
    expect(onArgv.stdout).toBe(fromFile.stdout);
    const wrong = await offline([], { FLOTILLA_ETCD_PASSWORD: 'not-it' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/authentication failed|invalid user ID or password/i);
  });

  it("the read-only credentials read the cluster's keys but cannot write them", async () => {
    const leader = await must(['get', `${PREFIX}leader`, '--print-value-only'], 'worker:worker-pw');
    expect(leader).toContain(A);
    for (const args of [
      ['put', `${PREFIX}leader`, JSON.stringify({ machine: C, address: 'x:1', epoch: 99 })],
      ['put', `${PREFIX}epoch`, '99'],
      ['del', '--prefix', PREFIX],
    ]) {
      const r = await etcdctl(args, 'worker:worker-pw');
      expect(r.code).not.toBe(0);
      expect(r.out).toContain('permission denied');
    }
    expect(await must(['get', `${PREFIX}leader`, '--print-value-only'], 'ctl:ctl-pw')).toContain(A);
  });

  it('a daemon with the read-only credentials cannot win the election, says why once and backs off; units keep running', async () => {
    // Debug level, to see each refused attempt; every campaign line is kept (`output` is capped).
    const candidate = await daemon(D, 'worker', [], 'debug');
    const lines: string[] = [];
    let partial = '';
    candidate.proc?.stderr?.on('data', (b: Buffer) => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((l) => /campaign/i.test(l)));
    });
    await ctl.kill(); // a crash: its lease expires after the 3 s TTL and the key goes
    const refused = (l: string) => / DEBUG campaign still refused: permission denied/.test(l);
    // The first refusal, then three more attempts: 1 s, then 2 s, then 4 s later.
    await waitFor('three retried refusals', async () => lines.filter(refused).length >= 3);
    const errors = lines.filter((l) => / ERROR /.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('campaign failed: permission denied');
    expect(errors[0]).toContain(`these etcd credentials cannot write ${PREFIX}`);
    expect(errors[0]).toContain('set disable_engine=true on agent-only machines');
    // Not the old warning every second; the attempts come further and further apart.
    expect(lines.filter((l) => /WARN campaign failed/.test(l))).toEqual([]);
    const at = lines.filter(refused).map((l) => Date.parse(l.split(' ')[0]));
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i] / gaps[i - 1]).toBeGreaterThan(1.5);
    const status = await cli(worker, ['cluster', '--json']).catch(() => undefined);
    expect(status?.stdout ?? '').not.toContain(`"leaderMachineId":"${D}"`);
    expect(
      (await must(['get', `${PREFIX}leader`, '--print-value-only'], 'ctl:ctl-pw')).trim(),
    ).toBe('');
    // The read-write machine comes back and leads again; the agent-only machine's unit ran on.
    await ctl.start();
    await waitFor('A leads again', async () => {
      const r = await cli(worker, ['cluster', '--json']);
      return r.code === 0 && JSON.parse(r.stdout).leaderMachineId === A;
    });
    const u = tableObjects((await cli(worker, ['list-units', '--full'])).stdout);
    expect(u.find((x) => x.unit === 'on-c.service')).toMatchObject({ active: 'active' });
  });
});
