import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { tcpOpen } from '../harness/ports';
import { track, untrack } from '../harness/registry';
import { announcedPort, type Listener } from './announced';
import { FLOTILLAD } from './cluster';
import { killUnitProcesses } from './unit-processes';

/** A `flotillad --dev` process of a test. */
export interface DevDaemon {
  readonly proc: ChildProcess;
  /** The gRPC port it listens on (the one it picked when started without `port`). */
  readonly port: number;
  /** Everything it wrote on stdout and stderr so far. */
  output(): string;
  /** The port of a listener it announced (a fleet API or HTTP address given with port 0). */
  portOf(what: Listener): number;
  /** SIGTERM, and its exit code once it has exited. */
  stop(): Promise<number | null>;
}

/**
 * Starts `flotillad --dev` with its state under `<dir>/state`, serving gRPC on `port` (loopback;
 * default: a port the daemon picks and announces), no configuration file, and `args` added;
 * resolves once `readyPort` (default the gRPC port) accepts connections. Fails with the daemon's
 * output if it exits or is not listening within 20 s.
 */
export async function startDevDaemon(o: {
  dir: string;
  port?: number;
  args?: string[];
  readyPort?: number;
  /** Also wait until this listener (given with port 0 in `args`) is announced and accepts. */
  readyListener?: Listener;
  kind?: string;
  /** Extra environment (FLEET_*, FLOTILLA_FLEET_CONFIG…). */
  env?: Record<string, string>;
}): Promise<DevDaemon> {
  let output = '';
  const proc = spawn(
    process.execPath,
    [
      FLOTILLAD,
      '--dev',
      '--data-dir',
      path.join(o.dir, 'state'),
      '--grpc-listen',
      `127.0.0.1:${o.port ?? 0}`,
      '--http-listen',
      '127.0.0.1:0',
      ...(o.args ?? []),
    ],
    {
      cwd: o.dir,
      env: {
        PATH: process.env.PATH,
        FLOTILLA_CONFIG: path.join(o.dir, 'none.conf'),
        FLOTILLA_FLEET_CONFIG: path.join(o.dir, 'none-fleet.conf'),
        ...o.env,
      },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  proc.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  track({ pid: proc.pid!, kind: o.kind ?? 'flotillad --dev' });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const end = Date.now() + 20_000;
  let port = o.port ?? 0;
  const ready = async (): Promise<boolean> => {
    if (port === 0) port = announcedPort(output, 'API') ?? 0;
    const probe = o.readyPort ?? (o.readyListener ? announcedPort(output, o.readyListener) : port);
    return port !== 0 && probe !== undefined && probe !== 0 && (await tcpOpen(probe));
  };
  while (!(await ready())) {
    if (proc.exitCode !== null) throw new Error(`flotillad --dev exited:\n${output}`);
    if (Date.now() > end) throw new Error(`flotillad --dev did not listen:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    port,
    output: () => output,
    portOf(what) {
      const p = announcedPort(output, what);
      if (p === undefined) throw new Error(`flotillad --dev announced no ${what} port:\n${output}`);
      return p;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await exited;
      untrack(proc.pid!);
      return code;
    },
  };
}

/** Units a dev daemon's process driver started outlive it: kills them by their pidfiles. */
export function killDevUnits(dir: string): void {
  killUnitProcesses(path.join(dir, 'state', 'units'));
}

/**
 * Runs flotillad (`--dev` with its state under `<dir>/refused`, unless `dev` is false) with
 * `args`, expecting it to refuse to start: resolves with its exit code and output; fails if it
 * still runs after 20 s.
 */
export function runRefused(
  dir: string,
  args: string[],
  dev = true,
): Promise<{ code: number | null; output: string }> {
  const mode = dev ? ['--dev', '--data-dir', path.join(dir, 'refused')] : [];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [FLOTILLAD, ...mode, ...args], {
      env: { PATH: process.env.PATH, FLOTILLA_CONFIG: path.join(dir, 'none.conf') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track({ pid: proc.pid!, kind: 'flotillad (refused)' });
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`flotillad did not refuse to start:\n${output}`));
    }, 20_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      untrack(proc.pid!);
      resolve({ code, output });
    });
  });
}
