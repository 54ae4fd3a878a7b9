/**
 * The process driver: runs a service's `ExecStart=` as a child process, for dev mode on machines
 * without systemd. Per unit, in its units directory:
 *
 *   <unit>         the unit file (written by `load`)
 *   <unit>.state   JSON: hash, last state, result, since (survives restarts)
 *   <unit>.pid     "<pid> <starttime> <boot id> <keeper pid>" while it runs (starttime from /proc
 *                  guards against PID reuse; the boot id tells a process gone with a reboot from
 *                  one that died)
 *   <unit>.exit    the main process's last wait status, written by its keeper
 *   <unit>.log     stdout and stderr of the process, appended
 *
 * Processes are detached (their own session and process group, output to the log file, not to a
 * pipe of ours) so they survive an agent or daemon restart, as units survive under systemd. A new
 * driver finds them by their pidfiles and adopts them: same PID, active (running), no restart.
 *
 * The exit status of a process can only be read by its parent, and a restarted daemon is not the
 * parent of what it adopts. So the main process is not our child but the child of a *keeper*, a
 * `/bin/sh` of a few lines (KEEPER below, ~1 MiB) that starts it with `setsid`, hands us its PID,
 * waits for it and writes its status to `<unit>.exit` before exiting with it. Our own keepers are
 * followed by their 'exit' event; adopted processes are polled cheaply (`kill(pid, 0)` every
 * `pollMs`) and, once gone, their status is read from the file: a unit killed after adoption
 * reads `Result: signal` as under systemd, not "unknown". Only a process whose keeper was killed
 * too (or one started before keepers existed) dies with result "unknown". As a shell reports it,
 * a status above 128 is taken as death by a signal.
 *
 * After a reboot (the directory outlived it, e.g. not under /run) nothing of the last boot runs
 * and, as under systemd, nothing failed in this boot either: every unit starts inactive (dead),
 * so the agent starts again what should run instead of reporting it failed.
 *
 * systemd's specifiers (%i, %n, %H…) are expanded as systemd does (specifiers.ts).
 * Targets and slices are active once started (no process); other types than services fail to
 * start, saying so in their log, rather than be retried for ever.
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
import { isValidUnitName, unitType } from '../unit';

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
  /** The keeper of the main process (its parent), when there is one. */
  keeperPid?: number;
  /** Our child: the keeper, or the process itself when it runs without one. */
  child?: ChildProcess;
  /** Found running at open(), or its keeper is gone: not followed by 'exit', polled. */
  adopted: boolean;
  /** How the main process ended when its keeper wrote it (`ignoreFailure` of its ExecStart). */
  ignoreFailure?: boolean;
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

const SIDE_FILES = /\.(state|pid|exit|log|tmp)$/;

/**
 * The keeper (see the top of this file): `sh -c KEEPER keeper EXITFILE PATH ARGS…`. The process
 * gets its own session (`setsid` execs in place: a background job is no group leader), fd 3
 * closed; its PID goes out on fd 3; `wait` is repeated until the process is really gone.
 */
const KEEPER = [
  'f=$1; shift',
  'setsid "$@" 3>&- &',
  'p=$!',
  'echo "$p" >&3',
  'exec 3>&-',
  'while :; do wait "$p"; s=$?; kill -0 "$p" 2>/dev/null || break; done',
  'echo "$s" > "$f.tmp" && mv -f "$f.tmp" "$f"',
  'exit "$s"',
].join('\n');
const SETSID = ['/usr/bin/setsid', '/bin/setsid'].find((p) => fs.existsSync(p));

/** A time as `systemctl status` prints it, in UTC: `Sun 2026-12-06 22:01:16 UTC`. */
export function systemdTime(d: Date): string {
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  return `${day} ${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

/** systemd's Result and status for a wait status as `sh` reports it (128+N: signal N). */
function resultOfStatus(status: number, ignoreFailure: boolean): [string, string, string] {
  if (status === 0 || (ignoreFailure && status <= 128)) return ['inactive', 'dead', 'success'];
  if (status > 128) return ['failed', 'failed', 'signal'];
  return ['failed', 'failed', 'exit-code'];
}

/** Whether `file` can be executed: an absolute path, or found on `PATH` (as execvp does). */
function executable(file: string, env: NodeJS.ProcessEnv): boolean {
  const can = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (file.includes('/')) return can(file);
  return (env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && can(path.join(d, file)));
}
/**
 * Types without a process of their own: started, they are simply active, as systemd has them
 * (`active (active)`) once their dependencies, which this driver does not model, are.
 */
const GROUPING_TYPES = new Set(['target', 'slice']);

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
      if (SIDE_FILES.test(name) || !isValidUnitName(name)) continue;
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
    const [pidStr, start, boot, keeper] = pidLine.split(/\s+/);
    if (this.otherBoot(boot)) return this.afterReboot(unit, u);
    const pid = Number(pidStr);
    const alive = Number.isInteger(pid) && pid > 0 && pidAlive(pid);
    // A recorded start time that differs means the PID was reused by another process.
    const current = alive ? procStartTime(pid) : null;
    if (alive && (!start || start === '-' || current === null || current === start)) {
      Object.assign(u, { active: 'active', sub: 'running', pid, adopted: true, result: undefined });
      if (keeper && Number(keeper) > 0) u.keeperPid = Number(keeper);
      u.ignoreFailure = this.ignoresFailure(unit);
    } else {
      // It died while nobody watched: its keeper wrote how, if it had one.
      const status = this.readExit(unit);
      const [active, sub, result] =
        status === undefined
          ? ['failed', 'failed', 'unknown']
          : resultOfStatus(status, this.ignoresFailure(unit));
      Object.assign(u, {
        active,
        sub,
        result: active === 'failed' ? result : undefined,
        exitStatus: result === 'exit-code' ? status : undefined,
        since: Date.now(),
      });
      this.rm(this.file(unit, '.pid'));
      this.writeState(unit, u);
    }
    return u;
  }

  /** The status the unit's keeper wrote, if any. */
  private readExit(unit: string): number | undefined {
    try {
      const n = Number(fs.readFileSync(this.file(unit, '.exit'), 'utf8').trim());
      return Number.isInteger(n) && n >= 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether the unit's ExecStart= has systemd's `-` prefix (false when it cannot be read). */
  private ignoresFailure(unit: string): boolean {
    try {
      return serviceSpec(unit, fs.readFileSync(this.file(unit), 'utf8')).exec.ignoreFailure;
    } catch {
      return false;
    }
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
    if (!isValidUnitName(op.unit))
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
    for (const ext of ['', '.state', '.pid', '.exit', '.log']) this.rm(this.file(unit, ext));
    this.emit(unit);
  }

  private async start(unit: string): Promise<void> {
    const u = this.units.get(unit);
    if (!u) throw new FlotillaError(ErrorCode.UnitNotFound, `Unit ${unit} not loaded.`);
    if (u.pid !== undefined) return; // already running
    const type = unitType(unit);
    if (GROUPING_TYPES.has(type)) {
      if (u.active !== 'active') this.set(unit, u, 'active', 'active');
      return;
    }
    if (type !== 'service') {
      // What this driver can never run fails once, saying why, instead of an operation the
      // agent would retry for ever.
      this.appendLog(
        unit,
        `flotilla: ${unit}: the process driver runs services, targets and slices, not ${type} units (--driver systemd runs them)`,
      );
      this.set(unit, u, 'failed', 'failed', 'resources');
      return;
    }
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
    const env = { ...(this.opts.env ?? process.env), ...spec.env };
    const { path: exe, args, argv0, ignoreFailure } = spec.exec;
    // The keeper cannot set another argv[0] (dash has no `exec -a`): such a rare unit runs as
    // our child alone, its status then lost if it outlives us.
    const keeper = SETSID !== undefined && argv0 === exe;
    if (keeper && !executable(exe, env)) {
      // What spawn would say without a keeper; systemd: status=203/EXEC, Result=exit-code.
      this.appendLog(unit, `flotilla: ${unit}: failed to execute ${exe}: spawn ${exe} ENOENT`);
      this.set(unit, u, 'failed', 'failed', 'exit-code');
      return;
    }
    this.rm(this.file(unit, '.exit'));
    const logFd = fs.openSync(this.file(unit, '.log'), 'a');
    let child: ChildProcess;
    try {
      this.appendLog(unit, `flotilla: starting ${unit}: ${[exe, ...args].join(' ')}`, logFd);
      child = keeper
        ? spawn(
            '/bin/sh',
            ['-c', KEEPER, 'flotilla-keeper', this.file(unit, '.exit'), exe, ...args],
            {
              cwd: cwd ?? '/', // systemd's default for system services
              env,
              detached: true,
              stdio: ['ignore', logFd, logFd, 'pipe'],
            },
          )
        : spawn(exe, args, {
            argv0,
            cwd: cwd ?? '/',
            env,
            detached: true,
            stdio: ['ignore', logFd, logFd],
          });
    } finally {
      fs.closeSync(logFd);
    }
    // Listened to at once: a process that ends at once (ExecStart=/bin/true) may take its keeper
    // with it before the PID has arrived.
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (code, signal) => resolve([code, signal])),
    );
    const spawned = await new Promise<boolean>((resolve) => {
      child.once('spawn', () => resolve(true));
      child.once('error', (err) => {
        if (u.child === child) return; // an error after spawning (e.g. a failed kill): not ours
        this.appendLog(unit, `flotilla: ${unit}: failed to execute ${exe}: ${err.message}`);
        resolve(false);
      });
    });
    // The main process: the keeper's child, whose PID the keeper sends on fd 3.
    const pid = !spawned ? undefined : keeper ? await this.keptPid(child) : child.pid;
    if (pid === undefined) {
      if (spawned) child.kill('SIGKILL');
      this.set(unit, u, 'failed', 'failed', 'exit-code');
      return;
    }
    u.child = child;
    u.pid = pid;
    u.keeperPid = keeper ? child.pid : undefined;
    u.ignoreFailure = ignoreFailure;
    u.adopted = false;
    u.stopping = false;
    child.unref();
    this.writeAtomic(
      this.file(unit, '.pid'),
      `${pid} ${procStartTime(pid) ?? '-'} ${this.bootId}${keeper ? ` ${child.pid}` : ''}\n`,
    );
    this.set(unit, u, 'active', 'running');
    // The process may be gone already (ExecStart=/bin/true): then it ends right after this.
    void ended.then(([code, signal]) => this.onExit(unit, child, keeper, code, signal));
  }

  /** The PID a keeper sends on fd 3 (undefined when it ends without sending one). */
  private keptPid(child: ChildProcess): Promise<number | undefined> {
    const out = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    return new Promise((resolve) => {
      let text = '';
      out.setEncoding('utf8');
      out.on('data', (d: string) => (text += d));
      out.once('error', () => resolve(undefined));
      out.once('end', () => {
        out.destroy();
        const n = Number(text.trim());
        resolve(Number.isInteger(n) && n > 0 ? n : undefined);
      });
    });
  }

  /** Our child ended: the keeper with the main process's status, or the process itself. */
  private onExit(
    unit: string,
    child: ChildProcess,
    keeper: boolean,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    const u = this.units.get(unit);
    if (!u || u.child !== child) return;
    if (keeper && code === null && u.pid !== undefined && pidAlive(u.pid)) {
      // The keeper was killed, the process lives on: follow it by polling, status unknown.
      u.child = undefined;
      u.keeperPid = undefined;
      u.adopted = true;
      this.writeAtomic(
        this.file(unit, '.pid'),
        `${u.pid} ${procStartTime(u.pid) ?? '-'} ${this.bootId}\n`,
      );
      return;
    }
    const status = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : undefined);
    this.ended(unit, u, status);
  }

  /** The main process ended with `status` as a shell reports it (undefined: not known). */
  private ended(unit: string, u: PUnit, status: number | undefined): void {
    u.exitStatus = status !== undefined && status > 0 && status <= 128 ? status : undefined;
    this.exited(unit, u, () => {
      if (u.stopping) return ['inactive', 'dead', 'success'];
      if (status === undefined) return ['failed', 'failed', 'unknown'];
      return resultOfStatus(status, u.ignoreFailure ?? false);
    });
  }

  /** The main process is gone: record how, wake stop() waiters. */
  private exited(unit: string, u: PUnit, how: () => [string, string, string]): void {
    const [active, sub, result] = how();
    u.pid = undefined;
    u.keeperPid = undefined;
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
      // Gone: its keeper writes its status, then exits.
      const status = this.readExit(unit);
      if (status === undefined && u.keeperPid !== undefined && pidAlive(u.keeperPid)) continue;
      this.ended(unit, u, status);
    }
  }

  private async stop(unit: string): Promise<void> {
    const u = this.units.get(unit);
    if (u && u.pid === undefined && u.active === 'active') this.set(unit, u, 'inactive', 'dead');
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
      `     Active: ${u.active} (${detail}) since ${systemdTime(since)}; ${ago}s ago`,
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
