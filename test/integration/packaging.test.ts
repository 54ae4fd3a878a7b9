import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startSystemd, type SystemdManager } from '../harness';
import { isAlive } from '../harness/registry';
import { REPO_ROOT, runCli } from '../helpers/cli';
import { announcedPort } from '../helpers/announced';
import { FLOTILLAD } from '../helpers/cluster';
import { killDevUnits } from '../helpers/dev-daemon';

/**
 * packaging/flotillad.service and flotillad.socket under a real systemd user manager: the
 * shipped unit (only ExecStart, the watchdog period and the output file changed for the test)
 * runs `flotillad --dev`, which becomes active through READY=1, keeps the watchdog fed, serves
 * the fleet API on the socket systemd passes it, and on stop leaves its units running.
 */
jest.setTimeout(120_000);

let manager: SystemdManager | undefined;
let dir: string;

afterAll(async () => {
  killDevUnits(dir);
  await manager?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function systemctl(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'systemctl',
      ['--user', ...args],
      { env: manager!.env, timeout: 90_000 },
      (err, out, stderr) =>
        err
          ? reject(new Error(`systemctl ${args.join(' ')}: ${err.message} ${stderr}`))
          : resolve(out),
    ),
  );
}

async function show(unit: string): Promise<Record<string, string>> {
  const out = await systemctl(
    'show',
    unit,
    '-p',
    'ActiveState,SubState,StatusText,MainPID,NRestarts,Result',
  );
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function fleetGet(socketPath: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: p, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** The shipped unit file with the lines a test must change replaced. */
function testUnit(): string {
  const shipped = fs.readFileSync(path.join(REPO_ROOT, 'packaging', 'flotillad.service'), 'utf8');
  const exec =
    `ExecStart=${process.execPath} ${FLOTILLAD} --dev --data-dir ${dir}/state ` +
    `--grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0\n` +
    `Environment=FLOTILLA_CONFIG=${dir}/none.conf`;
  const out = shipped
    .replace(/^ExecStart=.*$/m, exec)
    .replace(/^WatchdogSec=.*$/m, 'WatchdogSec=2s')
    .replace(/^StandardOutput=.*$/m, `StandardOutput=append:${dir}/flotillad.log`)
    .replace(/^StandardError=.*$/m, `StandardError=append:${dir}/flotillad.log`)
    .replace(/^After=.*$/m, '')
    .replace(/^Wants=.*$/m, '');
  expect(out).toMatch(/^Type=notify$/m);
  expect(out).toMatch(/^KillMode=process$/m);
  return out;
}

describe('packaging/flotillad.service under systemd', () => {
  it('reports ready, feeds the watchdog, serves the activated socket, and leaves units running on stop', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-pkg-'));
    manager = await startSystemd();
    const units = path.join(manager.env.HOME!, '.config', 'systemd', 'user');
    fs.mkdirSync(units, { recursive: true });
    fs.writeFileSync(path.join(units, 'flotillad.service'), testUnit());
    const sock = path.join(dir, 'fleet.sock');
    const socketUnit = fs
      .readFileSync(path.join(REPO_ROOT, 'packaging', 'flotillad.socket'), 'utf8')
      .replace(/^ListenStream=.*$/m, `ListenStream=${sock}`);
    fs.writeFileSync(path.join(units, 'flotillad.socket'), socketUnit);
    await systemctl('daemon-reload');
    await systemctl('start', 'flotillad.socket');

    // Type=notify: `start` returns once READY=1 arrived (or fails on the start timeout).
    await systemctl('start', 'flotillad.service');
    const log = (): string => fs.readFileSync(path.join(dir, 'flotillad.log'), 'utf8');
    const up = await show('flotillad.service');
    expect({ ...up, log: up.ActiveState === 'active' ? '' : log() }).toMatchObject({
      ActiveState: 'active',
      SubState: 'running',
      log: '',
    });
    expect(up.StatusText).toMatch(/serving .*agent registered/);
    // Its listeners are on port 0: it announced the ports it picked before reporting ready.
    const port = announcedPort(log(), 'API');
    const httpPort = announcedPort(log(), 'HTTP');
    expect({ port, httpPort, log: port && httpPort ? '' : log() }).toEqual({
      port: expect.any(Number),
      httpPort: expect.any(Number),
      log: '',
    });
    const readyz = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(readyz.status).toBe(200);

    // The fleet API on the socket systemd passed.
    const machines = await fleetGet(sock, '/fleet/v1/machines');
    expect(machines.status).toBe(200);
    expect(JSON.parse(machines.body).machines).toHaveLength(1);

    const cli = (args: string[]) => runCli(args, { endpoint: `127.0.0.1:${port}`, cwd: REPO_ROOT });
    expect((await cli(['start', 'examples/hello.service'])).code).toBe(0);
    let pid = 0;
    for (let i = 0; i < 100 && pid === 0; i++) {
      pid = Number(
        /Main PID: (\d+)/.exec((await cli(['status', 'hello.service'])).stdout)?.[1] ?? 0,
      );
      if (pid === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(pid).toBeGreaterThan(0);

    // WatchdogSec=2s: several periods pass without systemd killing the daemon.
    await new Promise((r) => setTimeout(r, 5000));
    const still = await show('flotillad.service');
    expect(still).toMatchObject({ ActiveState: 'active', NRestarts: '0', MainPID: up.MainPID });
    expect(log()).toContain('systemd watchdog on');

    // Stop: the daemon exits cleanly; the unit it ran (a child in its cgroup) keeps running.
    await systemctl('stop', 'flotillad.service');
    const down = await show('flotillad.service');
    expect(down).toMatchObject({ ActiveState: 'inactive', Result: 'success' });
    expect(isAlive(pid)).toBe(true);
    expect(log()).toContain('shutting down; units keep running');
  });
});
