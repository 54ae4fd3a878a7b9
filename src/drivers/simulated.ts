/**
 * An in-memory model of systemd for benchmarks with many agents in one process (and fast tests).
 * Never a substitute for the systemd driver's own tests: it models only what the agent relies on
 * — unit files with a hash, start/stop jobs with activating/deactivating transitions, a main PID,
 * failures with systemd's Result, one daemon-reload per batch — with configurable latency.
 *
 * Units live in a `SimulatedSystem`, not in the driver, so a second driver on the same system
 * models an agent restart: it finds the units still running and adopts them.
 *
 * Cost: one small object per unit and one timer per batch (not per unit), so 20,000 units per
 * process stay cheap.
 */
import type { Driver, DriverOp, DriverOpResult, DriverUnitState } from './driver';
import { type Clock, realClock } from '../runtime';

export interface SimulatedUnit {
  contents: string;
  hash: string;
  active: string;
  sub: string;
  mainPid?: number;
  result?: string;
  since: number;
  log?: string[];
}

/** The simulated machine: units and PIDs, shared by the drivers opened on it. */
export class SimulatedSystem {
  readonly units = new Map<string, SimulatedUnit>();
  private nextPid = 10_000;
  /** Drivers opened on this system, told about every state change. */
  readonly drivers = new Set<SimulatedDriver>();
  /** Followers of a unit's log (journal with follow). */
  readonly logFollowers = new Map<string, Set<(line: string) => void>>();

  allocPid(): number {
    return this.nextPid++;
  }

  /** The unit's process exits on its own: `result` 'success' → inactive, otherwise failed. */
  exit(unit: string, result = 'exit-code', now = Date.now()): void {
    const u = this.units.get(unit);
    if (!u || (u.active !== 'active' && u.active !== 'activating')) return;
    this.set(
      unit,
      u,
      result === 'success' ? 'inactive' : 'failed',
      result === 'success' ? 'dead' : 'failed',
      now,
      result,
    );
  }

  /** Appends a line to the unit's log (kept: the last 50), telling its followers. */
  log(unit: string, u: SimulatedUnit, line: string): void {
    (u.log ??= []).push(line);
    if (u.log.length > 50) u.log.splice(0, u.log.length - 50);
    for (const f of this.logFollowers.get(unit) ?? []) f(line);
  }

  set(
    unit: string,
    u: SimulatedUnit,
    active: string,
    sub: string,
    now: number,
    result?: string,
  ): void {
    u.active = active;
    u.sub = sub;
    u.since = now;
    if (active !== 'active' && active !== 'activating' && active !== 'deactivating')
      u.mainPid = undefined;
    u.result = result;
    const line = `${new Date(now).toISOString()} ${unit}: ${active} (${sub})${result && result !== 'success' ? ` result=${result}` : ''}`;
    this.log(unit, u, line);
    const state = stateOf(unit, u);
    for (const d of this.drivers) d.notify(state);
  }
}

export function stateOf(unit: string, u: SimulatedUnit | undefined): DriverUnitState {
  if (!u) return { unit, load: 'not-found', active: 'inactive', sub: 'dead', hash: '' };
  const s: DriverUnitState = { unit, load: 'loaded', active: u.active, sub: u.sub, hash: u.hash };
  if (u.mainPid !== undefined) s.mainPid = u.mainPid;
  if (u.result !== undefined) s.result = u.result;
  return s;
}

export interface SimulatedDriverOptions {
  /** The machine to act on (default: a fresh one). Share it to model an agent restart. */
  system?: SimulatedSystem;
  /** How long one batch's jobs take (they run concurrently, as systemd jobs do). Default 2 ms. */
  opLatencyMs?: number;
  /** One daemon-reload per batch with loads or unloads. Default 1 ms. */
  reloadLatencyMs?: number;
  /** activating → active after a start. Default 3 ms. */
  startDelayMs?: number;
  /** Failure injection: return an error message to make `op` fail. */
  failOp?: (op: DriverOp) => string | undefined;
  /** Failure injection: return a Result (e.g. 'exit-code') to make the unit fail right after starting. */
  failOnStart?: (unit: string) => string | undefined;
  clock?: Clock;
}

export interface SimulatedOpCounts {
  load: number;
  unload: number;
  start: number;
  stop: number;
  batches: number;
  reloads: number;
  failed: number;
}

const ORDER: Record<DriverOp['kind'], number> = { unload: 0, load: 1, stop: 2, start: 3 };

export class SimulatedDriver implements Driver {
  readonly kind = 'simulated' as const;
  readonly system: SimulatedSystem;
  readonly counts: SimulatedOpCounts = {
    load: 0,
    unload: 0,
    start: 0,
    stop: 0,
    batches: 0,
    reloads: 0,
    failed: 0,
  };
  /** Every op applied, in order (tests assert "no stop, no start"). */
  readonly opLog: DriverOp[] = [];
  private readonly listeners = new Set<(s: DriverUnitState) => void>();
  private readonly clock: Clock;
  private open_ = false;
  private readonly opLatency: number;
  private readonly reloadLatency: number;
  private readonly startDelay: number;
  /** Keep the op log bounded for long benchmarks. */
  private static readonly OP_LOG_MAX = 100_000;

  constructor(private readonly opts: SimulatedDriverOptions = {}) {
    this.system = opts.system ?? new SimulatedSystem();
    this.clock = opts.clock ?? realClock;
    this.opLatency = opts.opLatencyMs ?? 2;
    this.reloadLatency = opts.reloadLatencyMs ?? 1;
    this.startDelay = opts.startDelayMs ?? 3;
  }

  async open(): Promise<void> {
    this.open_ = true;
    this.system.drivers.add(this);
  }

  async close(): Promise<void> {
    this.open_ = false;
    this.system.drivers.delete(this);
  }

  /** Called by the system for every state change. */
  notify(state: DriverUnitState): void {
    if (!this.open_) return;
    for (const l of this.listeners) l(state);
  }

  onState(listener: (state: DriverUnitState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }

  async apply(ops: DriverOp[]): Promise<DriverOpResult[]> {
    const sorted = ops
      .map((op, i) => ({ op, i }))
      .sort((a, b) => ORDER[a.op.kind] - ORDER[b.op.kind] || a.i - b.i);
    this.counts.batches++;
    const results: DriverOpResult[] = new Array(ops.length);
    const hasReload = ops.some((o) => o.kind === 'load' || o.kind === 'unload');
    await this.sleep(this.opLatency + (hasReload ? this.reloadLatency : 0));
    if (hasReload) this.counts.reloads++;
    const started: string[] = [];
    const now = this.clock.now();
    for (const { op, i } of sorted) {
      this.counts[op.kind]++;
      if (this.opLog.length < SimulatedDriver.OP_LOG_MAX) this.opLog.push(op);
      const error = this.opts.failOp?.(op);
      if (error !== undefined) {
        this.counts.failed++;
        results[i] = { op, ok: false, error: `${op.kind} ${op.unit}: ${error}` };
        continue;
      }
      const err = this.applyOne(op, now, started);
      if (err !== undefined) this.counts.failed++;
      results[i] = err === undefined ? { op, ok: true } : { op, ok: false, error: err };
    }
    if (started.length > 0) {
      // One timer for the whole batch: activating → active (or failed, by injection).
      this.clock.setTimeout(() => {
        const t = this.clock.now();
        for (const unit of started) {
          const u = this.system.units.get(unit);
          if (!u || u.active !== 'activating') continue;
          const fail = this.opts.failOnStart?.(unit);
          if (fail !== undefined) this.system.set(unit, u, 'failed', 'failed', t, fail);
          else this.system.set(unit, u, 'active', 'running', t, 'success');
        }
      }, this.startDelay);
    }
    return results;
  }

  /** Applies one op; returns systemd's error when it is refused. */
  private applyOne(op: DriverOp, now: number, started: string[]): string | undefined {
    const sys = this.system;
    const u = sys.units.get(op.unit);
    switch (op.kind) {
      case 'load':
        if (u) {
          u.contents = op.contents;
          u.hash = op.hash;
          sys.set(op.unit, u, u.active, u.sub, now, u.result);
        } else {
          const nu: SimulatedUnit = {
            contents: op.contents,
            hash: op.hash,
            active: 'inactive',
            sub: 'dead',
            since: now,
          };
          sys.units.set(op.unit, nu);
          sys.set(op.unit, nu, 'inactive', 'dead', now);
        }
        return;
      case 'unload':
        if (!u) return;
        if (u.active !== 'inactive' && u.active !== 'failed')
          sys.set(op.unit, u, 'inactive', 'dead', now, 'success');
        sys.units.delete(op.unit);
        for (const d of sys.drivers) d.notify(stateOf(op.unit, undefined));
        return;
      case 'start':
        if (!u) return `start ${op.unit}: Unit ${op.unit} not found.`;
        if (u.active === 'active' || u.active === 'activating') return;
        u.mainPid = sys.allocPid();
        sys.set(op.unit, u, 'activating', 'start', now);
        started.push(op.unit);
        return;
      case 'stop':
        if (!u || u.active === 'inactive' || u.active === 'failed') return;
        sys.set(op.unit, u, 'deactivating', 'stop-sigterm', now);
        sys.set(op.unit, u, 'inactive', 'dead', now, 'success');
        return;
    }
  }

  async list(): Promise<DriverUnitState[]> {
    return [...this.system.units.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([unit, u]) => stateOf(unit, u));
  }

  async status(unit: string): Promise<string> {
    const u = this.system.units.get(unit);
    if (!u) return `Unit ${unit} could not be found.`;
    const desc = /^Description=(.*)$/m.exec(u.contents)?.[1] ?? unit;
    const lines = [
      `● ${unit} - ${desc}`,
      `     Loaded: loaded (simulated/${unit}; static)`,
      `     Active: ${u.active} (${u.sub}) since ${new Date(u.since).toUTCString()}`,
    ];
    if (u.mainPid !== undefined) lines.push(`   Main PID: ${u.mainPid} (simulated)`);
    return lines.join('\n');
  }

  async *journal(
    unit: string,
    lines: number,
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<string> {
    const log = this.system.units.get(unit)?.log ?? [];
    for (const l of log.slice(-Math.max(0, lines))) yield l;
    if (!follow || signal?.aborted) return;
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    const listener = (line: string) => {
      queue.push(line);
      wake?.();
    };
    const onAbort = () => wake?.();
    let set = this.system.logFollowers.get(unit);
    if (!set) this.system.logFollowers.set(unit, (set = new Set()));
    set.add(listener);
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        while (queue.length > 0) yield queue.shift()!;
        if (signal?.aborted) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      set.delete(listener);
      if (set.size === 0) this.system.logFollowers.delete(unit);
    }
  }
}
