import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { HarnessError, HarnessErrorCode } from './errors';
import { killGroup, track, untrack } from './registry';

export interface ServerSpec {
  /** Human name used in errors ("etcd", "nats-server", "systemd --user"). */
  name: string;
  /** Absolute path of the binary; checked before spawning. */
  binary: string;
  /** Debian package that provides the binary, named in the "missing" error. */
  debianPackage: string;
  /** The command actually run (defaults to binary + args). */
  command?: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Temp directory owned by this server, removed on dispose. */
  dir: string;
  cgroups?: string[];
  /** Resolves true once the server answers real requests. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

/** Throws the harness's "missing binary" error if `binary` cannot be executed. */
export function requireBinary(name: string, binary: string, debianPackage: string): void {
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    throw new HarnessError(
      HarnessErrorCode.BinaryMissing,
      `${name} binary not found at ${binary}: install the Debian package ${debianPackage} ` +
        `(apt-get install -y ${debianPackage})`,
    );
  }
}

/**
 * A server process the harness owns: started detached (its own process group),
 * recorded for the global teardown, and stopped by PID. `start()` races the
 * readiness probe against the process exiting, so a server that dies at once
 * fails the test at once with its last output.
 */
export class ManagedServer {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly spec: ServerSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  async start(): Promise<void> {
    const { spec } = this;
    requireBinary(spec.name, spec.binary, spec.debianPackage);
    this.output = '';
    const child = spawn(spec.command ?? spec.binary, spec.args, {
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (child.pid === undefined) {
      const err = await spawnError;
      throw new HarnessError(
        HarnessErrorCode.ExitedEarly,
        `${spec.name} failed to start: ${err.message}`,
      );
    }
    track({ pid: child.pid, kind: spec.name, dir: spec.dir, cgroups: spec.cgroups });

    const deadline = Date.now() + (spec.readyTimeoutMs ?? 20000);
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    while (true) {
      if (exitedEarly || !this.running) {
        const code = await this.exited;
        await this.stop();
        throw new HarnessError(
          HarnessErrorCode.ExitedEarly,
          `${spec.name} exited (code ${code}) before it was ready; last output:\n${this.output.trim()}`,
        );
      }
      if (await spec.ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new HarnessError(
          HarnessErrorCode.NotReady,
          `${spec.name} did not become ready within ${spec.readyTimeoutMs ?? 20000} ms; last output:\n${this.output.trim()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Recent stdout/stderr of the server, for error messages. */
  get log(): string {
    return this.output;
  }

  /** Sends a signal to the server's process group without waiting. */
  signal(sig: NodeJS.Signals): void {
    if (this.child?.pid !== undefined && this.running) killGroup(this.child.pid, sig);
  }

  /** Stops the process group: `signal`, then SIGKILL after `graceMs`. Keeps the temp dir. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    if (this.running) {
      killGroup(child.pid, signal);
      const timer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // Anything else left in the group (children that ignored SIGTERM).
    killGroup(child.pid, 'SIGKILL');
    untrack(child.pid);
  }

  /** Stops the server and removes its temp directory. */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.spec.dir, { recursive: true, force: true });
  }
}
