/**
 * The agent's unit actors: one standalone actor of src/machines/agent-unit.ts per local unit, in
 * a Map (not children of the agent actor: stopping a parent with N spawned children is O(N²) in
 * XState 5; 10,000 children took 59 s). Here the schedule becomes each unit's desired state,
 * driver results and observed states become its events, and its retry timers are kept. What a
 * unit reports goes to the Reporter; the ops it asks for go to `requestOp` (the OpBatcher).
 */
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { DriverOp, DriverOpResult, DriverUnitState } from '../drivers/driver';
import {
  type AgentUnitContext,
  type AgentUnitMachine,
  type AgentUnitStateValue,
  type RetryPolicy,
  type UnitDesire,
  agentUnitMachine,
} from '../machines/agent-unit';
import type { ReportedUnit, ScheduleDelta, ScheduleFull, ScheduledUnit } from '../protocol';
import type { Clock, Logger, TimerHandle } from '../runtime';
import type { Reporter } from './agent-reporter';
import { type AgentStats, type AgentUnitView, byName } from './agent-types';

export interface UnitHostOptions {
  clock: Clock;
  log: Logger;
  stats: AgentStats;
  reporter: Pick<Reporter, 'changed' | 'gone'>;
  /** Queues a driver op a unit asked for; its result comes back through `deliverResults`. */
  requestOp(op: DriverOp): void;
  unitRetry?: Partial<RetryPolicy>;
  inspect?: (event: InspectionEvent) => void;
}

type UnitActor = Actor<AgentUnitMachine>;

export class UnitHost {
  private readonly unitLogic: AgentUnitMachine;
  private readonly actors = new Map<string, UnitActor>();
  /** The driver's latest state of each managed unit (what a full report sends). */
  private readonly known = new Map<string, DriverUnitState>();
  /** Start ops applied per unit since this agent started (reported as `starts`). */
  private readonly starts = new Map<string, number>();
  private readonly timers = new Map<string, TimerHandle>();
  /** Driver states seen before adoption finished, replayed after it. */
  private early: DriverUnitState[] | null = [];

  constructor(private readonly opts: UnitHostOptions) {
    // One provided machine for every unit: effects find their unit in context.
    this.unitLogic = agentUnitMachine.provide({
      actions: {
        requestOp: (_, op: DriverOp) => opts.requestOp(op),
        armRetryTimer: ({ context }: { context: AgentUnitContext }, p: { at: number }) =>
          this.armRetry(context.unit, p.at),
      },
    }) as AgentUnitMachine;
  }

  /**
   * Adoption: each unit actor starts in the state the driver reports, and issues no op (its
   * desired state is unknown until the full schedule arrives). Then the states the driver
   * sent meanwhile are applied.
   */
  adopt(found: readonly DriverUnitState[]): void {
    for (const s of [...found].sort((a, b) => byName(a.unit, b.unit))) {
      this.known.set(s.unit, s);
      this.spawn(s.unit, { target: 'unknown' }, s);
    }
    const early = this.early ?? [];
    this.early = null;
    for (const s of early) this.onDriverState(s);
  }

  unitState(unit: string): AgentUnitStateValue | undefined {
    return this.actors.get(unit)?.getSnapshot().value as AgentUnitStateValue | undefined;
  }

  /** Every unit, sorted by name. */
  views(): AgentUnitView[] {
    return [...this.actors.entries()]
      .sort(([a], [b]) => byName(a, b))
      .map(([unit, a]) => {
        const s = a.getSnapshot();
        return {
          unit,
          state: s.value as AgentUnitStateValue,
          desired: s.context.desired.target,
          loadedHash: s.context.loadedHash,
          observed: this.known.get(unit) ?? null,
          retryAt: s.context.retryAt,
          lastError: s.context.lastError,
        };
      });
  }

  /** What a full report sends: the latest driver state of every managed unit. */
  reported(): ReportedUnit[] {
    const units: ReportedUnit[] = [];
    for (const unit of this.actors.keys()) {
      const s = this.known.get(unit);
      if (s) units.push(this.reportOf(s));
    }
    return units;
  }

  // ---- schedule → unit actors ----

  applyDelta(d: ScheduleDelta): void {
    for (const unit of [...d.remove].sort(byName)) this.desire(unit, { target: 'not-scheduled' });
    for (const u of [...d.put].sort((a, b) => byName(a.unit, b.unit)))
      this.desire(u.unit, desireOf(u));
  }

  /** A full schedule: everything in it is desired, everything else is not scheduled here. */
  applyFull(full: ScheduleFull): void {
    this.opts.stats.fullSchedules++;
    const wanted = new Set(full.units.map((u) => u.unit));
    for (const unit of [...this.actors.keys()].sort(byName))
      if (!wanted.has(unit)) this.desire(unit, { target: 'not-scheduled' });
    for (const u of [...full.units].sort((a, b) => byName(a.unit, b.unit)))
      this.desire(u.unit, desireOf(u));
  }

  // ---- driver → unit actors ----

  deliverResults(results: DriverOpResult[]): void {
    const now = this.opts.clock.now();
    for (const r of results) {
      if (r.op.kind === 'start') this.countStart(r.op.unit);
      if (r.ok) {
        this.send(r.op.unit, { type: 'OP_SUCCEEDED', op: r.op });
      } else {
        this.opts.stats.opFailures++;
        const error = r.error ?? `${r.op.kind} ${r.op.unit} failed`;
        this.opts.log.warn('driver op failed; will retry', {
          unit: r.op.unit,
          op: r.op.kind,
          error,
        });
        this.send(r.op.unit, { type: 'OP_FAILED', op: r.op, error, now });
      }
    }
  }

  onDriverState(s: DriverUnitState): void {
    if (this.early) {
      this.early.push(s);
      return;
    }
    // States of units the agent does not manage (e.g. just unloaded) are not reported.
    if (!this.actors.has(s.unit)) return;
    this.known.set(s.unit, s);
    this.opts.reporter.changed(this.reportOf(s));
    this.send(s.unit, { type: 'STATE_OBSERVED', state: s });
  }

  // ---- shutdown ----

  clearTimers(): void {
    for (const t of this.timers.values()) this.opts.clock.clearTimeout(t);
    this.timers.clear();
  }

  /** Stops every unit actor (the units themselves keep running). */
  stopAll(): void {
    for (const a of this.actors.values()) a.stop();
  }

  // ---- internals ----

  private desire(unit: string, desired: UnitDesire): void {
    const a = this.actors.get(unit);
    if (a) this.send(unit, { type: 'DESIRED_CHANGED', desired });
    else if (desired.target === 'loaded' || desired.target === 'launched')
      this.spawn(unit, desired, null);
  }

  private spawn(unit: string, desired: UnitDesire, observed: DriverUnitState | null): void {
    const a = createActor(this.unitLogic, {
      input: { unit, desired, observed, retry: this.opts.unitRetry },
      inspect: this.opts.inspect,
    });
    this.actors.set(unit, a);
    a.start();
    this.afterEvent(unit, a);
  }

  private send(unit: string, ev: Parameters<UnitActor['send']>[0]): void {
    const a = this.actors.get(unit);
    if (!a) return;
    a.send(ev);
    this.afterEvent(unit, a);
  }

  /** An unloaded unit that is not scheduled here is forgotten and reported gone. */
  private afterEvent(unit: string, a: UnitActor): void {
    const s = a.getSnapshot();
    if (s.value !== 'absent' || s.context.desired.target !== 'not-scheduled') return;
    a.stop();
    this.actors.delete(unit);
    this.known.delete(unit);
    this.starts.delete(unit);
    const t = this.timers.get(unit);
    if (t !== undefined) this.opts.clock.clearTimeout(t);
    this.timers.delete(unit);
    this.opts.reporter.gone(unit);
  }

  /**
   * A start op was applied (whatever its outcome): the unit's report carries the new count even
   * when systemd's state ends where it was (a unit that exits 0 at once, or fails as before).
   */
  private countStart(unit: string): void {
    if (!this.actors.has(unit)) return;
    this.starts.set(unit, (this.starts.get(unit) ?? 0) + 1);
    const s = this.known.get(unit);
    if (s) this.opts.reporter.changed(this.reportOf(s));
  }

  /** The driver's state as reported: with the unit's start count once it was started. */
  private reportOf(s: DriverUnitState): ReportedUnit {
    const starts = this.starts.get(s.unit);
    return starts === undefined ? s : { ...s, starts };
  }

  private armRetry(unit: string, at: number): void {
    const { clock } = this.opts;
    const old = this.timers.get(unit);
    if (old !== undefined) clock.clearTimeout(old);
    const h = clock.setTimeout(
      () => {
        this.timers.delete(unit);
        // A timer may fire a millisecond before `at` by the wall clock (timers run on the
        // monotonic clock): a TICK the guard found early would never be re-armed.
        this.send(unit, { type: 'TICK', now: Math.max(clock.now(), at) });
      },
      Math.max(0, at - clock.now()),
    );
    this.timers.set(unit, h);
  }
}

function desireOf(u: ScheduledUnit): UnitDesire {
  return { target: u.target, hash: u.hash, contents: u.contents };
}
