import { ErrorCode, FlotillaError } from '../errors';
import { isDurable, type EventBody, type FlotillaEvent } from '../events/types';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { subjects, type Subjects } from '../protocol';
import { publishResync } from './agent-subjects';
import { CommitPipeline, readDurable } from './commit';
import { EffectQueue } from './effects';
import { lifecycleOf, phaseName, type UnitLifecycle } from './lifecycle';
import { Membership } from './membership';
import { Projections } from './projections';
import { Snapshots } from './snapshots';
import type { ClusterState } from './state';
import { emptyState } from './state';
import {
  emptyStats,
  type AppendOptions,
  type EngineContext,
  type EngineOptions,
  type EngineStats,
} from './types';
import { WatchRing } from './watch';

export type { AppendOptions, EngineOptions, EngineStats } from './types';

/**
 * The leader's engine for one term: a façade over its parts, each with one job.
 *
 * - commit.ts: every change is an event, queued, numbered and committed to the store in group
 *   commits before it is folded and its caller answered (durable events; transient ones are
 *   folded at once); a failed write re-reads the durable state (recovery).
 * - projections.ts: the fold, and what is derived from it (scheduler indexes, global units,
 *   desired schedules, deltas to agents). One committed event's way to its effects:
 *   `Projections.fold` then `Projections.route`.
 * - effects.ts: effects are applied in turns of bounded length; each turn ends with placement
 *   planned and committed, and every affected machine's changes published on its subject only.
 * - membership.ts: the agents (heartbeats, reports, schedule requests), their actors, liveness
 *   and settling. snapshots.ts: snapshots and compaction. watch.ts: the watch ring.
 */
export class Engine {
  readonly epoch: number;
  readonly stats: EngineStats = emptyStats();
  state: ClusterState = emptyState();

  private stopped = false;
  private readonly ctx: EngineContext;
  private readonly commits: CommitPipeline;
  private readonly projections: Projections;
  private readonly membership: Membership;
  private readonly effects: EffectQueue;
  private readonly snapshots: Snapshots;
  private readonly ring: WatchRing;
  private readonly subj: Subjects;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The placement decisions being committed (full schedules wait for them: afterPlacement). */
  private placing: Promise<void> | undefined;
  private readonly stoppedListeners = new Set<(reason: string) => void>();

  private constructor(private readonly opts: EngineOptions) {
    this.epoch = opts.term.epoch;
    this.subj = subjects(opts.cluster);
    this.log = (opts.log ?? silentLogger).child({ component: 'engine', epoch: opts.term.epoch });
    this.clock = opts.clock ?? Date.now;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    this.ctx = {
      epoch: this.epoch,
      opts,
      stats: this.stats,
      log: this.log,
      clock: this.clock,
      subj: this.subj,
      get state() {
        return engine.state;
      },
      get stopped() {
        return engine.stopped;
      },
      append: (bodies, o) => this.append(bodies, o),
    };
    this.commits = new CommitPipeline(this.ctx, {
      committed: (events, stored) => this.committed(events, stored),
      admitBulk: (max) => this.effects.pending < max,
      recovered: (fresh) => {
        this.install(fresh, true);
        this.log.info('recovered state from the store', { index: fresh.index });
        this.planAndPublish();
      },
      stop: (reason) => void this.stop(reason),
    });
    this.membership = new Membership(this.ctx, {
      get desired() {
        return engine.projections.desired;
      },
      send: (machine, fn) => this.projections.send(machine, fn),
      afterPlacement: (fn) => this.afterPlacement(fn),
      settled: () => this.planAndPublish(),
      holdsLease: () => this.holdsLease(),
      recovering: () => this.commits.needsRecovery,
    });
    this.projections = new Projections(this.ctx, this.membership);
    this.effects = new EffectQueue((budget) => this.runEffects(budget));
    this.snapshots = new Snapshots(this.ctx);
    this.ring = new WatchRing(opts.watchBuffer ?? 20_000);
  }

  /**
   * Restores the durable state (latest snapshot + log tail), appends LeaderElected, asks every
   * agent for one resync, and starts serving. Placement waits until agents have resynced (or one
   * TTL has passed), so a failover never moves a unit whose machine is merely slow to answer.
   */
  static async start(opts: EngineOptions): Promise<Engine> {
    const engine = new Engine(opts);
    await engine.restore();
    // Let lease keepalives and other I/O through after the (synchronous) fold of a large state.
    await new Promise((r) => setImmediate(r));
    engine.membership.subscribe();
    engine.opts.term.onLost((reason) => void engine.stop(`leadership lost: ${reason}`));
    await engine.append([
      { type: 'LeaderElected', machine: opts.machineId, address: opts.address },
    ]);
    publishResync(engine.opts, engine.subj, engine.epoch);
    engine.startTimers();
    engine.log.info('engine started', {
      index: engine.state.index,
      units: engine.state.units.size,
    });
    return engine;
  }

  private async restore(): Promise<void> {
    const r = await readDurable(this.opts.term);
    for (const e of r.tail) this.snapshots.retention.mark(e.index, e.time);
    this.stats.restoredEvents = r.tail.length;
    // The snapshot on the store is the last one until this term writes another.
    if (r.snapshotIndex !== undefined) this.stats.lastSnapshotIndex = r.snapshotIndex;
    this.membership.inheritedState = r.state.index > 0;
    this.install(r.state, false);
    this.snapshots.lastAt = this.clock();
    this.snapshots.eventsSince = r.tail.length;
  }

  /**
   * Makes `state` current: rebuilds the scheduler's indexes, the actors and the desired
   * schedule from it. Used at the start of a term and after recovering from a failed write.
   */
  private install(state: ClusterState, publish: boolean): void {
    const now = this.clock();
    this.state = state;
    // Everything derived is rebuilt from `state` below: pending effects are part of it.
    this.effects.clear();
    this.commits.follow(state);
    const machines = this.projections.install(state, publish);
    this.membership.install(machines, now);
  }

  // ---------------------------------------------------------------- writes

  /**
   * Commits events and resolves with the index of the last one once they are durable (durable
   * types) and folded. Rejects with STORE_UNAVAILABLE (retryable) or FENCED; a rejected write
   * was not acknowledged and is not in this leader's state.
   */
  append(bodies: EventBody[], opts: AppendOptions = {}): Promise<number> {
    return this.commits.append(bodies, opts);
  }

  /**
   * Committed events: folded into the state and the watch ring at once (what a write's caller
   * is answered after); their effects follow in order, in turns of bounded length (runEffects).
   */
  private committed(events: FlotillaEvent[], stored: boolean): void {
    if (stored) {
      this.snapshots.retention.mark(events[events.length - 1].index, events[0].time);
      if (events.some(isDurable)) this.snapshots.lastCommitAt = this.clock();
    }
    for (const e of events) {
      this.projections.fold(e);
      this.ring.remember(e);
    }
    this.effects.push(events);
  }

  /**
   * Applies pending effects for about `budgetMs`, then hands the event loop back (API calls,
   * store answers, lease keepalives and agents' messages go in between) and carries on in the
   * next turn. Each turn ends with the desired schedules recomputed, placement planned and the
   * changes published, so agents hear of the first units of a burst while the rest is applied.
   */
  private runEffects(budgetMs: number): void {
    if (this.stopped) return;
    const touched = new Set<string>();
    let durable = 0;
    this.effects.run(budgetMs, (e) => {
      if (isDurable(e)) durable++;
      this.projections.route(e, touched);
    });
    // Only durable events lengthen a new leader's restore: transient ones (reports) do not
    // make a snapshot due.
    this.snapshots.eventsSince += durable;
    for (const u of touched) this.projections.recompute(u);
    this.membership.maybeSettle();
    this.planAndPublish();
    this.snapshots.maybe(this.stopped || this.commits.needsRecovery);
    if (!this.effects.empty) this.effects.schedule();
    // Bulk writes held back for the backlog may go now.
    if (this.commits.queued > 0) void this.commits.pump();
  }

  /** Runs the scheduler (once settled) and publishes every machine's pending schedule changes. */
  private planAndPublish(): void {
    const { projections } = this;
    if (
      this.membership.settled &&
      !this.stopped &&
      !this.commits.needsRecovery &&
      projections.mayPlan()
    ) {
      const { bodies, decisions } = projections.plan();
      if (bodies.length > 0) {
        const placing = this.append(bodies).then(
          (last) => projections.committedUpTo(decisions, last),
          (err: unknown) => {
            // Not applied to the scheduler: its units are decided again by the next plan.
            projections.abandon(decisions);
            this.log.warn('placement not committed; will retry', {
              error: (err as Error).message,
            });
          },
        );
        this.placing = placing;
        void placing.then(() => {
          if (this.placing === placing) this.placing = undefined;
        });
      }
    }
    this.projections.publish();
  }

  /**
   * Runs `fn` (a full schedule's answer) once no placement is being committed, with every
   * committed effect applied and published. A machine that comes back after it was lost gets its
   * units placed on it again (those that fit nowhere else: pinned, global, constrained); a full
   * schedule built between its MachineJoined and that placement would omit them, and its agent
   * would stop units only to start them again a moment later.
   */
  private afterPlacement(fn: () => void): void {
    // Committed events are folded at once but their effects (the scheduler's machines, the
    // global units, placement) come in later turns: a MachineJoined folded a moment ago would
    // otherwise give a rejoining machine an empty schedule.
    this.effects.flush();
    const placing = this.placing;
    if (!placing) {
      this.projections.publish();
      fn();
      return;
    }
    // Waits for the placement in flight only (not for every one after it: during a burst that
    // would hold the answer until the burst ends).
    void placing.then(() => {
      if (this.stopped) return;
      this.effects.flush();
      this.projections.publish();
      fn();
    });
  }

  // ---------------------------------------------------------------- timers, snapshots

  private startTimers(): void {
    const { membership } = this;
    // Machines restored from the store got a full TTL plus the grace when they were installed.
    membership.maybeSettle();
    const settleTimer = setTimeout(() => membership.settle('agent TTL passed'), membership.ttl);
    settleTimer.unref();
    this.timers.push(settleTimer);
    if (membership.inheritedState) {
      const graceTimer = setTimeout(() => membership.maybeSettle(), membership.settleGraceMs() + 1);
      graceTimer.unref();
      this.timers.push(graceTimer);
    }
    const tick = setInterval(
      () => {
        membership.tick(this.clock());
        this.snapshots.maybe(this.stopped || this.commits.needsRecovery);
      },
      Math.max(50, Math.min(1000, membership.ttl / 6)),
    );
    tick.unref();
    this.timers.push(tick);
  }

  /** The mass-loss guard's hold: the machines held, or undefined when not holding. */
  get reschedulingHold(): { machines: string[]; atRisk: number; population: number } | undefined {
    return this.membership.hold;
  }

  /**
   * The operator's word: the machines held by the mass-loss guard are declared lost now and
   * their units rescheduled. Returns false when nothing was held.
   */
  resumeRescheduling(): boolean {
    return this.membership.resume();
  }

  /** Writes a snapshot of the current state and compacts the log behind it (keeping `retention`). */
  snapshot(): Promise<{ index: number; bytes: number }> {
    return this.snapshots.write();
  }

  // ---------------------------------------------------------------- reads

  /** Events with index >= from still in memory (from 0: none), then every new one via `listener`. */
  watch(
    from: number,
    listener: (e: FlotillaEvent) => void,
  ): { backlog: FlotillaEvent[]; oldest: number; close: () => void } {
    return this.ring.watch(from, listener, this.state.index + 1);
  }

  /**
   * A unit's lifecycle (the engine-unit machine's snapshot: state and context), stepped by the
   * fold with every committed event (src/engine/lifecycle.ts), for status and the visualizer.
   */
  unitSnapshot(name: string): UnitLifecycle | undefined {
    const u = this.state.units.get(name);
    return u ? lifecycleOf(this.state, u) : undefined;
  }

  /** The state of a unit's lifecycle ('launched', 'waiting', …), for status and the visualizer. */
  unitPhase(name: string): string | undefined {
    const l = this.unitSnapshot(name);
    return l ? phaseName(l) : undefined;
  }

  machinePhase(id: string): string | undefined {
    this.effects.flush();
    return this.membership.phase(id);
  }

  /** A machine actor's state as it is, pending effects not applied (the visualizer's stream). */
  machinePhaseNow(id: string): string | undefined {
    return this.membership.phase(id);
  }

  /** Unit names in order, cached until a unit is added or removed (listing pages read it). */
  sortedUnitNames(): string[] {
    return this.projections.sortedUnitNames();
  }

  explain(unit: string): string {
    this.effects.flush();
    return this.projections.scheduler.explain(unit);
  }

  // ---------------------------------------------------------------- lifecycle

  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * This engine still leads: not stopped, its term not lost, its lease certainly valid now. A
   * leader stopped (SIGSTOP, a long pause) past its lease notices only at its next keepalive;
   * until then it must not name itself leader nor answer agents.
   */
  holdsLease(): boolean {
    const t = this.opts.term;
    return !this.stopped && !t.lost && (t.remainingMs?.() ?? 1) > 0;
  }

  /** When (this engine's clock, ms) the last snapshot was written, or the term began. */
  get lastSnapshotTime(): number {
    return this.snapshots.lastAt;
  }

  onStopped(listener: (reason: string) => void): () => void {
    this.stoppedListeners.add(listener);
    return () => this.stoppedListeners.delete(listener);
  }

  /** Stops engine work at once (timers, subscriptions, actors). Queued writes are refused. */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info('engine stopping', { reason });
    for (const t of this.timers) clearTimeout(t);
    this.effects.stop();
    this.commits.stop();
    this.membership.stop();
    const err = new FlotillaError(ErrorCode.NotLeader, `not the leader any more (${reason})`, {
      retryable: true,
    });
    this.commits.rejectAll(err);
    for (const l of this.stoppedListeners) l(reason);
  }
}
