/**
 * The process driver: runs a service's `ExecStart=` as a child process, for dev mode on machines
 * without systemd. Per unit, in its units directory:
 *
 *   <unit>         the unit file (written by `load`)
 *   <unit>.state   JSON: hash, last state, result, since (survives restarts)
 *   <unit>.pid     "<pid> <starttime> <boot id>" while it runs (starttime from /proc guards against
 *                  PID reuse; the boot id tells a process gone with a reboot from one that died)
 *   <unit>.log     stdout and stderr of the process, appended
 *
 * Children are detached (their own process group, output to the log file, not to a pipe of ours)
 * so they survive an agent or daemon restart, as units survive under systemd. A new driver finds
 * them by their pidfiles and adopts them: same PID, active (running), no restart. Our own
 * children are followed by their 'exit' event; adopted ones cannot be wait()ed by a new process,
 * so they alone are polled cheaply (`kill(pid, 0)` every `pollMs`), and since their exit status
 * is then unknowable they are reported failed with result "unknown" when they die.
 *
 * After a reboot (the directory outlived it, e.g. not under /run) nothing of the last boot runs
 * and, as under systemd, nothing failed in this boot either: every unit starts inactive (dead),
 * so the agent starts again what should run instead of reporting it failed.
 *
 * systemd's specifiers (%i, %n, %H…) are expanded as systemd does (specifiers.ts).
 * Not modelled: Type= other than simple, Restart=, User=, dependencies, other unit types.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Driver, DriverOp, DriverOpResult, DriverUnitState } from './driver';
import { type Logger, silentLogger } from '../runtime';
import { ErrorCode, FlotillaError } from '../errors';
import { serviceSpec } from './unit-file';

export interface ProcessDriverOptions {
  /** Where unit files, pidfiles, state and logs live (created if missing). */
  unitsDirectory: string;
  /** Poll period for adopted processes (default 1000 ms). */
  pollMs?: number;
  /** SIGTERM, then SIGKILL after this long (default 5000 ms). */
  stopTimeoutMs?: number;
  /** Base environment of children (default process.env); Environment= is added on top. */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** This boot's ID (default /proc/sys/kernel/random/boot_id); set by tests to feign a reboot. */
  bootId?: string;
}

interface PUnit {
  hash: string;
  active: string;
  sub: string;
  result?: string;
  /** The main process's exit status when it failed with one. */
  exitStatus?: number;
  since: number;
  pid?: number;
  child?: ChildProcess;
  /** Found running at open(): not our child, polled. */
  adopted: boolean;
  stopping: boolean;
  exitWaiters: (() => void)[];
}

interface StateFile {
  hash: string;
  active: string;
  sub: string;
  result?: string;
  exitStatus?: number;
  since: number;
  /** The boot this state was written in (absent in files written before it was recorded). */
  boot?: string;
}

const SIDE_FILES = /\.(state|pid|log|tmp)$/;
const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|target|path|mount|slice)$/;

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** This machine's boot ID, or '' where the kernel does not say (then reboots go unnoticed). */
export function currentBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or null. */
export function procStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` runs (EPERM counts: it exists, it is just not ours to signal). A zombie does not:
 * it has exited and only waits to be reaped — by init, which in some containers and microVMs
 * never reaps orphans, so a unit killed while its agent was down would otherwise look alive for
 * ever and be "adopted" instead of started again.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !zombie(pid);
}

/** Whether /proc says `pid` has exited but is not reaped yet (state Z or X). */
function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

export class ProcessDriver implements Driver {
  readonly kind = 'process' as const;
  readonly dir: string;
  private readonly units = new Map<string, PUnit>();
  private readonly listeners = new Set<(s: DriverUnitState) => void>();
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly stopTimeoutMs: number;
  private readonly bootId: string;
  private poller: ReturnType<typeof setInterval> | undefined;
  private opened = false;

  constructor(private readonly opts: ProcessDriverOptions) {
    this.dir = path.resolve(opts.unitsDirectory);
    this.log = opts.log ?? silentLogger;
    this.pollMs = opts.pollMs ?? 1000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    this.bootId = opts.bootId ?? currentBootId();
  }

  /** Whether `boot` (from a file) names another boot than this one: written before a reboot. */
  private otherBoot(boot: string | undefined): boolean {
    return boot !== undefined && boot !== '' && this.bootId !== '' && boot !== this.bootId;
  }

  private file(unit: string, ext = ''): string {
    return path.join(this.dir, unit + ext);
  }

  /** Creates the directory and adopts what it holds: units with a live pidfile are running. */
  async open(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    for (const name of fs.readdirSync(this.dir).sort()) {
      if (SIDE_FILES.test(name) || !UNIT_NAME.test(name)) continue;
      this.units.set(name, this.readUnit(name));
    }
    this.opened = true;
    this.poller = setInterval(() => this.pollAdopted(), this.pollMs);
    this.poller.unref();
  }

  private readUnit(unit: string): PUnit {
    let st: Partial<StateFile> = {};
    try {
      st = JSON.parse(fs.readFileSync(this.file(unit, '.state'), 'utf8')) as StateFile;
    } catch {
      // No state file: a unit file put there by hand; its hash is unknown ('').
    }
    const u: PUnit = {
      hash: st.hash ?? '',
      active: 'inactive',
      sub: 'dead',
      since: st.since ?? Date.now(),
      adopted: false,
      stopping: false,
      exitWaiters: [],
    };
    const rebooted = this.otherBoot(st.boot);
    if (st.active === 'failed' && !rebooted) {
      u.active = 'failed';
      u.sub = 'failed';
      u.result = st.result;
      u.exitStatus = st.exitStatus;
    }
    if (rebooted) return this.afterReboot(unit, u);
    let pidLine: string | undefined;
    try {
      pidLine = fs.readFileSync(this.file(unit, '.pid'), 'utf8').trim();
    } catch {
      return u;
    }
    const [pidStr, start, boot] = pidLine.split(/\s+/);
    if (this.otherBoot(boot)) return this.afterReboot(unit, u);
    const pid = Number(pidStr);
    const alive = Number.isInteger(pid) && pid > 0 && pidAlive(pid);
    // A recorded start time that differs means the PID was reused by another process.
    const current = alive ? procStartTime(pid) : null;
    if (alive && (!start || start === '-' || current === null || current === start)) {
      Object.assign(u, { active: 'active', sub: 'running', pid, adopted: true, result: undefined });
    } else {
      // It died while nobody watched: the exit status is lost.
      Object.assign(u, {
        active: 'failed',
        sub: 'failed',
        result: 'unknown',
        exitStatus: undefined,
        since: Date.now(),
      });
      this.rm(this.file(unit, '.pid'));
      this.writeState(unit, u);
    }
    return u;
  }

  /** A unit last seen in an earlier boot: its process went with the reboot, nothing failed. */
  private afterReboot(unit: string, u: PUnit): PUnit {
    this.rm(this.file(unit, '.pid'));
    this.writeState(unit, u);
    return u;
  }

  async close(): Promise<void> {
    this.opened = false;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    // Children keep running; we only stop listening to them.
    for (const u of this.units.values()) u.child?.removeAllListeners('exit');
    this.units.clear();
  }

  onState(listener: (s: DriverUnitState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async list(): Promise<DriverUnitState[]> {
    return [...this.units.keys()].sort().map((n) => this.stateOf(n));
  }

  private stateOf(unit: string): DriverUnitState {
    const u = this.units.get(unit);
    if (!u) return { unit, load: 'not-found', active: 'inactive', sub: 'dead', hash: '' };
    const s: DriverUnitState = { unit, load: 'loaded', active: u.active, sub: u.sub, hash: u.hash };
    if (u.pid !== undefined) s.mainPid = u.pid;
    if (u.result !== undefined) s.result = u.result;
    if (u.active === 'failed' && u.exitStatus !== undefined) s.exitStatus = u.exitStatus;
    return s;
  }

  private emit(unit: string): void {
    if (!this.opened) return;
    const s = this.stateOf(unit);
    for (const l of this.listeners) l(s);
  }

  private set(unit: string, u: PUnit, active: string, sub: string, result?: string): void {
    u.active = active;
    u.sub = sub;
    u.result = result;
    u.since = Date.now();
    this.writeState(unit, u);
    this.emit(unit);
  }

  private writeState(unit: string, u: PUnit): void {
    const st: StateFile = { hash: u.hash, active: u.active, sub: u.sub, since: u.since };
    if (this.bootId) st.boot = this.bootId;
    if (u.result !== undefined) st.result = u.result;
    if (u.exitStatus !== undefined) st.exitStatus = u.exitStatus;
    this.writeAtomic(this.file(unit, '.state'), JSON.stringify(st));
  }

  private writeAtomic(file: string, data: string): void {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  }

  private rm(file: string): void {
    fs.rmSync(file, { force: true });
  }

  async apply(ops: DriverOp[]): Promise<DriverOpResult[]> {
    const results: DriverOpResult[] = new Array(ops.length);
    const idx = ops.map((op, i) => ({ op, i }));
    // Phases in fleet's order; ops of one phase run concurrently (different units).
    for (const kind of ['unload', 'load', 'stop', 'start'] as const) {
      const phase = idx.filter((x) => x.op.kind === kind);
      await Promise.all(
        phase.map(async ({ op, i }) => {
          try {
            await this.applyOne(op);
            results[i] = { op, ok: true };
          } catch (err) {
            results[i] = { op, ok: false, error: `${op.kind} ${op.unit}: ${errMsg(err)}` };
          }
        }),
      );
    }
    return results;
  }

  private async applyOne(op: DriverOp): Promise<void> {
    if (!UNIT_NAME.test(op.unit))
      throw new FlotillaError(
        ErrorCode.UnitNameInvalid,
        `invalid unit name ${JSON.stringify(op.unit)}`,
      );
    switch (op.kind) {
      case 'load':
        return this.load(op.unit, op.contents, op.hash);
      case 'unload':
        return this.unload(op.unit);
      case 'start':
        return this.start(op.unit);
      case 'stop':
        return this.stop(op.unit);
    }
  }

  private load(unit: string, contents: string, hash: string): void {
    this.writeAtomic(this.file(unit), contents);
    const u = this.units.get(unit);
    if (u) {
      u.hash = hash;
      this.writeState(unit, u);
      this.emit(unit);
      return;
    }
    const nu: PUnit = {
      hash,
      active: 'inactive',
      sub: 'dead',
      since: Date.now(),
      adopted: false,
      stopping: false,
      exitWaiters: [],
    };
    this.units.set(unit, nu);
    this.writeState(unit, nu);
    this.emit(unit);
  }

  private async unload(unit: string): Promise<void> {
    if (!this.units.has(unit)) return;
    await this.stop(unit);
    this.units.delete(unit);
    for (const ext of ['', '.state', '.pid', '.log']) this.rm(this.file(unit, ext));
    this.emit(unit);
  }

  private async start(unit: string): Promise<void> {
    const u = this.units.get(unit);
    if (!u) throw new FlotillaError(ErrorCode.UnitNotFound, `Unit ${unit} not loaded.`);
    if (u.pid !== undefined) return; // already running
    const spec = serviceSpec(unit, fs.readFileSync(this.file(unit), 'utf8'));
    let cwd = spec.workingDirectory;
    if (cwd === '~') cwd = os.homedir();
    if (cwd !== undefined && !fs.existsSync(cwd)) {
      if (!spec.workingDirectoryOptional) {
        this.set(unit, u, 'failed', 'failed', 'exit-code');
        this.appendLog(unit, `flotilla: ${unit}: working directory ${cwd} does not exist`);
        return;
      }
      cwd = undefined;
    }
    const logFd = fs.openSync(this.file(unit, '.log'), 'a');
    let child: ChildProcess;
    try {
      this.appendLog(
        unit,
        `flotilla: starting ${unit}: ${[spec.exec.path, ...spec.exec.args].join(' ')}`,
        logFd,
      );
      child = spawn(spec.exec.path, spec.exec.args, {
        argv0: spec.exec.argv0,
        cwd: cwd ?? '/', // systemd's default for system services
        env: { ...(this.opts.env ?? process.env), ...spec.env },
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    const ignoreFailure = spec.exec.ignoreFailure;
    const spawned = await new Promise<boolean>((resolve) => {
      child.once('spawn', () => {
        // Recorded before any 'exit' can be delivered (that comes in a later I/O callback).
        u.child = child;
        u.pid = child.pid;
        u.adopted = false;
        u.stopping = false;
        child.on('exit', (code) => this.onExit(unit, child, code, ignoreFailure));
        resolve(true);
      });
      child.once('error', (err) => {
        if (u.child === child) return; // an error after spawning (e.g. a failed kill): not ours
        this.appendLog(
          unit,
          `flotilla: ${unit}: failed to execute ${spec.exec.path}: ${err.message}`,
        );
        resolve(false);
      });
    });
    if (!spawned || child.pid === undefined) {
      // systemd: status=203/EXEC, Result=exit-code. The start job ran; the unit failed.
      this.set(unit, u, 'failed', 'failed', 'exit-code');
      return;
    }
    child.unref();
    this.writeAtomic(
      this.file(unit, '.pid'),
      `${child.pid} ${procStartTime(child.pid) ?? '-'} ${this.bootId}\n`,
    );
    this.set(unit, u, 'active', 'running');
  }

  private onExit(
    unit: string,
    child: ChildProcess,
    code: number | null,
    ignoreFailure: boolean,
  ): void {
    const u = this.units.get(unit);
    if (!u || u.child !== child) return;
    u.exitStatus = code ?? undefined;
    this.exited(unit, u, () => {
      if (u.stopping || code === 0 || (ignoreFailure && code !== null))
        return ['inactive', 'dead', 'success'];
      if (code !== null) return ['failed', 'failed', 'exit-code'];
      return ['failed', 'failed', 'signal'];
    });
  }

  /** The main process is gone: record how, wake stop() waiters. */
  private exited(unit: string, u: PUnit, how: () => [string, string, string]): void {
    const [active, sub, result] = how();
    u.pid = undefined;
    u.child = undefined;
    u.adopted = false;
    this.rm(this.file(unit, '.pid'));
    this.set(unit, u, active, sub, result);
    u.stopping = false;
    const w = u.exitWaiters;
    u.exitWaiters = [];
    for (const r of w) r();
  }

  private pollAdopted(): void {
    for (const [unit, u] of this.units) {
      if (!u.adopted || u.pid === undefined) continue;
      if (pidAlive(u.pid)) continue;
      u.exitStatus = undefined;
      this.exited(unit, u, () =>
        u.stopping ? ['inactive', 'dead', 'success'] : ['failed', 'failed', 'unknown'],
      );
    }
  }

  private async stop(unit: string): Promise<void> {
    const u = this.units.get(unit);
    if (!u || u.pid === undefined) return;
    const pid = u.pid;
    u.stopping = true;
    u.active = 'deactivating';
    u.sub = 'stop-sigterm';
    this.emit(unit);
    const gone = new Promise<void>((r) => u.exitWaiters.push(r));
    this.signal(pid, 'SIGTERM');
    // Adopted processes are not our children: watch them closely while stopping.
    const watch = u.adopted ? setInterval(() => this.pollAdopted(), 20) : undefined;
    try {
      const timedOut = await Promise.race([
        gone.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), this.stopTimeoutMs).unref()),
      ]);
      if (timedOut) {
        this.appendLog(unit, `flotilla: ${unit}: stop timed out, sending SIGKILL`);
        this.signal(pid, 'SIGKILL');
        await gone;
      }
    } finally {
      if (watch) clearInterval(watch);
    }
  }

  /** Signals the process group (children are group leaders), falling back to the pid. */
  private signal(pid: number, sig: NodeJS.Signals): void {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone.
      }
    }
  }

  private appendLog(unit: string, line: string, fd?: number): void {
    const text = `${new Date().toISOString()} ${line}\n`;
    try {
      if (fd !== undefined) fs.writeSync(fd, text);
      else fs.appendFileSync(this.file(unit, '.log'), text);
    } catch (err) {
      this.log.warn('cannot write unit log', { unit, error: errMsg(err) });
    }
  }

  async status(unit: string): Promise<string> {
    const u = this.units.get(unit);
    if (!u) return `Unit ${unit} could not be found.`;
    let description = unit;
    try {
      description = serviceSpec(unit, fs.readFileSync(this.file(unit), 'utf8')).description;
    } catch {
      // Keep the name.
    }
    const since = new Date(u.since);
    const ago = Math.max(0, Math.round((Date.now() - u.since) / 1000));
    const detail = u.active === 'failed' ? `Result: ${u.result ?? 'unknown'}` : u.sub;
    const lines = [
      `● ${unit} - ${description}`,
      `     Loaded: loaded (${this.file(unit)}; static)`,
      `     Active: ${u.active} (${detail}) since ${since.toUTCString()}; ${ago}s ago`,
    ];
    if (u.pid !== undefined) {
      let comm = '';
      try {
        comm = fs.readFileSync(`/proc/${u.pid}/comm`, 'utf8').trim();
      } catch {
        // Not on Linux, or just exited.
      }
      lines.push(`   Main PID: ${u.pid}${comm ? ` (${comm})` : ''}`);
    }
    const tail = this.tail(unit, 10);
    if (tail.length > 0) lines.push('', ...tail);
    return lines.join('\n');
  }

  /** The last `n` lines of the unit's log (reads at most the last MiB). */
  private tail(unit: string, n: number): string[] {
    if (n <= 0) return [];
    let fd: number;
    try {
      fd = fs.openSync(this.file(unit, '.log'), 'r');
    } catch {
      return [];
    }
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 1 << 20);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      return lines.slice(-n);
    } finally {
      fs.closeSync(fd);
    }
  }

  async *journal(
    unit: string,
    lines: number,
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<string> {
    if (!this.units.has(unit) && !fs.existsSync(this.file(unit, '.log')))
      throw new FlotillaError(ErrorCode.UnitNotFound, `Unit ${unit} could not be found.`);
    for (const l of this.tail(unit, lines)) yield l;
    if (!follow) return;
    let offset = (() => {
      try {
        return fs.statSync(this.file(unit, '.log')).size;
      } catch {
        return 0;
      }
    })();
    let partial = '';
    while (!signal?.aborted) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
      let size: number;
      try {
        size = fs.statSync(this.file(unit, '.log')).size;
      } catch {
        continue;
      }
      if (size < offset) offset = 0; // truncated or recreated
      if (size === offset) continue;
      const fd = fs.openSync(this.file(unit, '.log'), 'r');
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = size;
      const chunk = (partial + buf.toString('utf8')).split('\n');
      partial = chunk.pop() ?? '';
      for (const l of chunk) yield l;
    }
  }
}
