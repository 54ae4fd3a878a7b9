import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killGroup } from '../harness/registry';
import { REPO_ROOT, runCli, tableObjects } from '../helpers/cli';
import { FLOTILLAD } from '../helpers/cluster';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * `flotillad --dev`: a one-machine cluster with no external services, state kept in a data
 * directory across restarts — what the README's first steps rely on.
 */
jest.setTimeout(60_000);

let dir: string;
/** The gRPC port the first start picked (port 0); restarts listen on it again. */
let port = 0;
let daemon: DevDaemon | undefined;

async function startDev(): Promise<void> {
  daemon = await startDevDaemon({ dir, port: port || undefined });
  port = daemon.port;
}

async function stopDev(): Promise<number | null> {
  return (await daemon?.stop()) ?? null;
}

const cli = (args: string[]) => runCli(args, { endpoint: `127.0.0.1:${port}`, cwd: REPO_ROOT });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-dev-'));
});

afterAll(async () => {
  const p = daemon?.proc;
  if (p?.pid && p.exitCode === null) killGroup(p.pid, 'SIGKILL');
  // The hello unit's process belongs to the process driver: stop it by its pidfile.
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('flotillad --dev', () => {
  it('prints the endpoint, runs examples/hello.service, and keeps its state across a restart', async () => {
    await startDev();
    const start = await cli(['start', 'examples/hello.service']);
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(
      /Unit hello\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/,
    );
    expect(daemon!.output()).toContain(`endpoint: 127.0.0.1:${port}`);

    // SIGHUP re-reads the configuration: new metadata reaches the leader with the next heartbeat.
    fs.writeFileSync(path.join(dir, 'none.conf'), 'metadata=role=dev,zone=a\n');
    daemon!.proc.kill('SIGHUP');
    let machines: Record<string, string>[] = [];
    for (let i = 0; i < 150; i++) {
      machines = tableObjects((await cli(['list-machines'])).stdout);
      if (machines[0]?.metadata === 'role=dev,zone=a') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(machines).toEqual([expect.objectContaining({ metadata: 'role=dev,zone=a' })]);
    fs.rmSync(path.join(dir, 'none.conf'));

    const running = tableObjects((await cli(['list-units'])).stdout);
    expect(running).toEqual([
      expect.objectContaining({ unit: 'hello.service', active: 'active', sub: 'running' }),
    ]);
    const pidBefore = /Main PID: (\d+)/.exec((await cli(['status', 'hello.service'])).stdout)?.[1];
    expect(Number(pidBefore)).toBeGreaterThan(0);

    // A restart of the daemon: the unit keeps running and is adopted, the cluster state is kept.
    expect(await stopDev()).toBe(0);
    process.kill(Number(pidBefore), 0); // still alive (throws if not)
    await startDev();
    // The agent re-announces itself and reports what runs; wait for that report.
    for (let i = 0; i < 100; i++) {
      const rows = tableObjects((await cli(['list-units'])).stdout);
      if (rows.some((r) => r.unit === 'hello.service' && r.active === 'active')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const files = tableObjects((await cli(['list-unit-files'])).stdout);
    expect(files).toEqual([expect.objectContaining({ unit: 'hello.service', dstate: 'launched' })]);
    const status = await cli(['status', 'hello.service']);
    expect(status.stderr).toBe('');
    const pidAfter = /Main PID: (\d+)/.exec(status.stdout)?.[1];
    expect(pidAfter).toBe(pidBefore);

    const stop = await cli(['stop', 'hello.service']);
    expect(stop.code).toBe(0);
    expect(stop.stderr).toContain('Successfully stopped units [hello.service].');
    await stopDev();
    await startDev();
    const after = tableObjects((await cli(['list-unit-files'])).stdout);
    expect(after).toEqual([expect.objectContaining({ unit: 'hello.service', dstate: 'loaded' })]);
    await cli(['destroy', 'hello.service']);
    expect(await stopDev()).toBe(0);
  });

  it('exits 2 with a message naming the key for an invalid value', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [FLOTILLAD, '--dev', '--agent-ttl', 'soon'], {
        cwd: dir,
        env: { PATH: process.env.PATH, FLOTILLA_CONFIG: path.join(dir, 'none.conf') },
      });
      let stderr = '';
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'flotillad: invalid value for agent_ttl (flag --agent-ttl): "soon" (want a duration such as 30s, 500ms or 2m)\n',
    );
  });
});
