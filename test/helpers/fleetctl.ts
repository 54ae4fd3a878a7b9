import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './cli';

/**
 * The original fleetctl v1.0.0 (`shared/fleet/fleetctl` beside the clone: `../shared/fleet/`
 * from the repository root in CI; a git worktree one level deeper finds it too). Override with
 * FLEETCTL=/path/to/fleetctl.
 */
export function fleetctlPath(): string {
  if (process.env.FLEETCTL) return process.env.FLEETCTL;
  let d = path.dirname(REPO_ROOT);
  for (;;) {
    const p = path.join(d, 'shared', 'fleet', 'fleetctl');
    if (fs.existsSync(p)) return p;
    const up = path.dirname(d);
    if (up === d) return path.join(path.dirname(REPO_ROOT), 'shared', 'fleet', 'fleetctl');
    d = up;
  }
}

export interface FleetctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs fleetctl against `endpoint` (`unix:///…` or `http://127.0.0.1:port`). It is killed after
 * `timeoutMs` (default 30 s) and the call then fails with its output: a fleetctl that hangs
 * fails the test instead of CI.
 */
export function fleetctl(
  endpoint: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<FleetctlResult> {
  const bin = fleetctlPath();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    // fleetctl reads FLEETCTL_* from the environment: give it none of ours.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    const p = spawn(bin, ['--endpoint', endpoint, ...args], {
      cwd: opts.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(
        new Error(
          `fleetctl ${args.join(' ')} did not end within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    }, timeoutMs);
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Rows of a fleetctl table printed with --no-legend (tab-separated, tabs collapsed). */
export function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(/\t+/));
}

/** Exit 0; otherwise fails with fleetctl's output. */
export function expectOk(r: FleetctlResult): void {
  if (r.code !== 0) throw new Error(`fleetctl exited ${r.code}\n${r.stdout}${r.stderr}`);
}

/** Polls `fn` every 250 ms until it returns a value, at most `ms`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms ${String(last ?? '')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until fleetctl lists `n` machines (every agent joined). */
export function machinesListed(endpoint: string, n: number): Promise<true> {
  return eventually(async () => {
    const r = await fleetctl(endpoint, ['list-machines', '--no-legend']);
    return r.code === 0 && rows(r.stdout).length === n ? true : undefined;
  });
}
