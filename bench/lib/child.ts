/** Line-oriented child processes for the benchmarks (floor, agents), in their own groups. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { killGroup, track, untrack } from '../../test/harness/registry';

export class LineChild {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  stderr = '';
  private readonly exited: Promise<void>;

  /** `script` is relative to dist/bench/lib (this file's directory once built). */
  constructor(
    script: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
    nodeArgs: string[] = [],
  ) {
    this.proc = spawn(process.execPath, [...nodeArgs, path.join(__dirname, script), ...args], {
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track({ pid: this.proc.pid!, kind: 'bench-child' });
    this.exited = new Promise((r) => this.proc.once('exit', () => r()));
    readline.createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.lines.push(l);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.proc.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-20_000);
    });
    this.proc.once('exit', () => {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(line: string): void {
    this.proc.stdin!.write(line + '\n');
  }

  /** The next line of output (throws if the child exits or `timeoutMs` passes first). */
  async next(timeoutMs = 600_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null)
        throw new Error(
          `child exited (${this.proc.exitCode ?? this.proc.signalCode}): ${this.stderr}`,
        );
      if (performance.now() > deadline) throw new Error(`child silent for ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1000);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }

  async nextJson<T>(timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.next(timeoutMs)) as T;
  }

  /** SIGTERM, then SIGKILL to the whole group after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      killGroup(this.pid, 'SIGTERM');
      const t = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    untrack(this.pid);
  }

  async kill(): Promise<void> {
    killGroup(this.pid, 'SIGKILL');
    await this.exited;
    untrack(this.pid);
  }

  async waitExit(): Promise<void> {
    await this.exited;
    untrack(this.pid);
  }
}
