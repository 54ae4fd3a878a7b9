import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isAlive, killGroup } from '../harness/registry';
import { REPO_ROOT, runCli, tableObjects } from '../helpers/cli';
import { fleetctl, rows } from '../helpers/fleetctl';

/**
 * `npm run cluster -- --machines 3` (dist/scripts/cluster.js): real etcd, NATS and three
 * daemons on loopback; the printed endpoint serves a 3-machine cluster; Ctrl-C (SIGINT) tears
 * everything down, the units included, and removes the temp directory.
 */
jest.setTimeout(180_000);

const SCRIPT = path.join(REPO_ROOT, 'dist', 'scripts', 'cluster.js');
let proc: ChildProcess | undefined;

function running(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

afterAll(() => {
  if (proc?.pid && proc.exitCode === null) killGroup(proc.pid, 'SIGKILL');
});

describe('npm run cluster', () => {
  it('starts a 3-machine cluster on loopback and tears it down on Ctrl-C', async () => {
    let out = '';
    proc = spawn(process.execPath, [SCRIPT, '--machines', '3'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => proc!.once('exit', (c) => r(c)));
    const end = Date.now() + 120_000;
    while (!/^ready$/m.test(out)) {
      if (proc.exitCode !== null) throw new Error(`cluster script exited:\n${out}`);
      if (Date.now() > end) throw new Error(`cluster script not ready:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const endpoint = /export FLOTILLA_ENDPOINT=(\S+)/.exec(out)![1];
    const logs = [...out.matchAll(/log (\S+flotillad\.log)/g)].map((m) => m[1]);
    expect(logs).toHaveLength(3);
    const tmp = path.dirname(path.dirname(logs[0]));

    let machines: Record<string, string>[] = [];
    for (let i = 0; i < 100 && machines.length < 3; i++) {
      machines = tableObjects((await runCli(['list-machines'], { endpoint })).stdout);
      if (machines.length < 3) await new Promise((r) => setTimeout(r, 200));
    }
    expect(machines.map((m) => m.metadata).sort()).toEqual([
      'machine=1,zone=a',
      'machine=2,zone=b',
      'machine=3,zone=c',
    ]);
    // The original fleetctl, as the printed line says, on every machine's fleet API socket.
    const socks = [...out.matchAll(/fleet API (unix:\/\/\S+)/g)].map((m) => m[1]);
    expect(socks).toHaveLength(3);
    expect(out).toContain(`fleetctl --endpoint ${socks[0]} list-machines`);
    for (const sock of socks) {
      const r = await fleetctl(sock, ['list-machines', '--no-legend', '--fields', 'metadata']);
      expect(r.code).toBe(0);
      expect(rows(r.stdout).flat().sort()).toEqual([
        'machine=1,zone=a',
        'machine=2,zone=b',
        'machine=3,zone=c',
      ]);
    }
    const start = await runCli(['start', 'examples/hello.service'], { endpoint, cwd: REPO_ROOT });
    expect(start.code).toBe(0);
    const pidfiles = logs.map((l) => path.join(path.dirname(l), 'units', 'hello.service.pid'));
    let pid = 0;
    for (let i = 0; i < 100 && pid === 0; i++) {
      const f = pidfiles.find((p) => fs.existsSync(p));
      pid = f ? parseInt(fs.readFileSync(f, 'utf8'), 10) || 0 : 0;
      if (pid === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(pid).toBeGreaterThan(0);

    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/done \(3 daemons, 1 units stopped\)/);
    expect(fs.existsSync(tmp)).toBe(false);
    // Killed: gone, or a zombie waiting for whoever inherited it to reap it.
    for (let i = 0; i < 50 && running(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(running(pid)).toBe(false);
  });
});
