import { createActor, type Actor } from 'xstate';
import type { Bus, Subscription } from '../bus/types';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import type { EventBody, FlotillaEvent } from '../events/types';
import { isDurable, SCHEMA_VERSION } from '../events/types';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { engineMachineMachine } from '../machines/engine-machine';
import {
  decodeHeartbeat,
  decodeScheduleRequest,
  decodeStateReport,
  encode,
  PROTOCOL_VERSION,
  subjects,
  checkSender,
  type Heartbeat,
  type ScheduleRequest,
  type StateReport,
  type Subjects,
} from '../protocol';
import { Scheduler } from '../scheduler';
import type { Term } from '../store/types';
import { takeBatch, type Queued } from './batching';
import { DesiredSchedule } from './desired';
import { DEFAULT_MASS_LOSS_THRESHOLD, LivenessJudge } from './liveness';
import { SortedNames } from './sorted-names';
import { applyEvent, foldAll } from './fold';
import { lifecycleOf, phaseName, type UnitLifecycle } from './lifecycle';
import { decodeState, encodeStateInSlices } from './snapshot';
import type { ClusterState } from './state';
import { emptyState, machineMetadata } from './state';
import { nextTurn } from '../turn';
import { Retention } from '../history/retention';
import {
  machineJoined,
  machineLost,
  unplaceableEvents,
  withObservations,
} from '../history/observations';

export interface EngineOptions {
  term: Term;
  bus: Bus;
  cluster: string;
  /** This leader's machine ID and gRPC address (recorded in LeaderElected). */
  machineId: string;
  address: string;
  /** An agent silent for this long is lost and its units are rescheduled. */
  agentTtlMs?: number;
  /**
   * After the leader hears again (its bus reconnected, a new term, its store recovered) every
   * machine gets this long plus a full TTL before it may be declared lost (default: one TTL).
   */
  livenessGraceMs?: number;
  /** Share of machines that may be lost within one TTL before rescheduling is held (default 1/3). */
  massLossThreshold?: number;
  /** Snapshot after this many events… */
  snapshotEvery?: number;
  /** …or this long after the last snapshot if anything changed. */
  snapshotIntervalMs?: number;
  /** Events kept in the store behind the latest snapshot, for replay. */
  retention?: number;
  /** …and none older than this (ms; 0: no age limit). */
  retentionAgeMs?: number;
  /** Events kept in memory for watchers resuming from an index (default 20,000; older ones: `flotilla replay`). */
  watchBuffer?: number;
  /** Most events committed in one store transaction (group commit; default 1,000: one
   * transaction and its fold stay short, so a small write never waits long behind a burst). */
  maxBatchEvents?: number;
  clock?: () => number;
  log?: Logger;
}

export interface AppendOptions {
  /**
   * A client's large write: later small writes may be committed before it (see batching.ts).
   * Never for the engine's own events.
   */
  bulk?: boolean;
}

interface Pending extends Queued {
  bodies: EventBody[];
  resolve: (lastIndex: number) => void;
  reject: (err: Error) => void;
}

export interface EngineStats {
  commits: number;
  eventsCommitted: number;
  appendFailures: number;
  snapshots: number;
  lastSnapshotIndex: number;
  lastSnapshotBytes: number;
  malformed: number;
  scheduleMessages: number;
  restoredEvents: number;
  /** Empty deltas sent to agents found behind by their heartbeat. */
  nudges: number;
  /** Times the leader's own bus connection came back (each followed by one resync). */
  busReconnects: number;
  /** Messages to agents not sent: larger than the bus's max_payload (logged as errors). */
  oversizeMessages: number;
  /** Machines declared lost by this leader. */
  machinesLost: number;
  /** Times the mass-loss guard held rescheduling (see liveness.ts). */
  reschedulingHolds: number;
  /** 1 while rescheduling is held. */
  reschedulingHeld: number;
  /** 1 while the leader's own bus connection is down (it judges no machine then). */
  busDown: number;
}

/**
 * Effects of committed events are applied for about this long per event-loop turn; then the
 * loop is handed back. Bounds what a burst costs other callers (and the lease keepalive).
 */
const EFFECTS_TURN_MS = 5;
/** How many events are applied between two looks at the clock. */
const EFFECTS_CHECK_EVERY = 32;

type MachineActor = Actor<typeof engineMachineMachine>;

/**
 * The leader's engine for one term. Holds the cluster's event log in memory and its fold; every
 * change is an event, committed to the store before it is folded and before its caller is
 * answered (durable events), or folded at once (transient ones). Events that arrive together go
 * to the store in one transaction (group commit).
 *
 * After each commit it feeds the scheduler, appends the scheduler's decisions as events, and
 * publishes each affected machine's schedule changes on that machine's subject only.
 */
export class Engine {
  readonly epoch: number;
  readonly stats: EngineStats = {
    commits: 0,
    eventsCommitted: 0,
    appendFailures: 0,
    snapshots: 0,
    lastSnapshotIndex: 0,
    lastSnapshotBytes: 0,
    malformed: 0,
    scheduleMessages: 0,
    restoredEvents: 0,
    nudges: 0,
    busReconnects: 0,
    oversizeMessages: 0,
    machinesLost: 0,
    reschedulingHolds: 0,
    reschedulingHeld: 0,
    busDown: 0,
  };
  state: ClusterState = emptyState();

  private scheduler = new Scheduler();
  private readonly desired: DesiredSchedule;
  /** Names of global units (they follow machine changes). */
  private readonly globals = new Set<string>();
  /** Machines heard from (heartbeat, report or schedule request) since this term began. */
  private readonly heardFrom = new Set<string>();
  /** Machines whose MachineJoined is appended but not folded yet. */
  private readonly joining = new Set<string>();
  private readonly termStart: number;
  /** The term took over a cluster with history (a failover or restart, not a new cluster). */
  private inheritedState = false;
  private readonly machineActors = new Map<string, MachineActor>();
  private readonly ring: FlotillaEvent[] = [];
  private readonly watchers = new Set<(e: FlotillaEvent) => void>();
  private readonly queue: Pending[] = [];
  private committing = false;
  private stopped = false;
  private nextIndex = 1;
  /** Planning waits until agents had a chance to resync after a failover (see settle()). */
  private settled = false;
  private needsRecovery = false;
  private readonly subs: Subscription[] = [];
  private unsubStatus: (() => void) | undefined;
  /** machine -> the last sequence number published to it when its previous heartbeat came. */
  private readonly seqAtHeartbeat = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly pendingScheduleGets = new Map<
    string,
    { req: ScheduleRequest; respond: (data: Uint8Array) => void }[]
  >();
  private readonly subj: Subjects;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly ttl: number;
  private readonly grace: number;
  private readonly liveness: LivenessJudge;
  /** The leader's own bus connection is up: only then is an agent's silence evidence. */
  private hearing = true;
  /** Machines whose MachineLost is being committed. */
  private readonly declaring = new Set<string>();
  /** The placement decisions being committed (full schedules wait for them: afterPlacement). */
  private placing: Promise<void> | undefined;
  private eventsSinceSnapshot = 0;
  private lastSnapshotAt = 0;
  private snapshotting = false;
  private readonly stoppedListeners = new Set<(reason: string) => void>();
  private readonly retention: Retention;

  private constructor(private readonly opts: EngineOptions) {
    this.epoch = opts.term.epoch;
    this.subj = subjects(opts.cluster);
    this.log = (opts.log ?? silentLogger).child({ component: 'engine', epoch: opts.term.epoch });
    this.clock = opts.clock ?? Date.now;
    this.ttl = opts.agentTtlMs ?? 30_000;
    this.grace = opts.livenessGraceMs ?? this.ttl;
    this.liveness = new LivenessJudge({
      ttlMs: this.ttl,
      threshold: opts.massLossThreshold ?? DEFAULT_MASS_LOSS_THRESHOLD,
    });
    this.termStart = this.clock();
    this.desired = new DesiredSchedule(this.epoch, (n) => this.state.units.get(n));
    this.retention = new Retention(opts.retention ?? 100_000, opts.retentionAgeMs ?? 0);
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
    engine.subscribe();
    engine.opts.term.onLost((reason) => void engine.stop(`leadership lost: ${reason}`));
    await engine.append([
      { type: 'LeaderElected', machine: opts.machineId, address: opts.address },
    ]);
    engine.opts.bus.publish(
      engine.subj.resync,
      encode({ v: PROTOCOL_VERSION, epoch: engine.epoch }),
    );
    engine.startTimers();
    engine.log.info('engine started', {
      index: engine.state.index,
      units: engine.state.units.size,
    });
    return engine;
  }

  // ---------------------------------------------------------------- restore

  private async restore(): Promise<void> {
    const r = await this.opts.term.restore();
    const state = r.snapshot ? decodeState(r.snapshot.data) : emptyState();
    foldAll(r.tail, state);
    for (const e of r.tail) this.retention.mark(e.index, e.time);
    this.stats.restoredEvents = r.tail.length;
    // The snapshot on the store is the last one until this term writes another.
    if (r.snapshot) this.stats.lastSnapshotIndex = r.snapshot.index;
    this.inheritedState = state.index > 0;
    this.install(state, false);
    this.lastSnapshotAt = this.clock();
    this.eventsSinceSnapshot = r.tail.length;
  }

  /**
   * Makes `state` current: rebuilds the scheduler's indexes, the actors and the desired
   * schedule from it. Used at the start of a term and after recovering from a failed write.
   */
  private install(state: ClusterState, publish: boolean): void {
    const now = this.clock();
    this.state = state;
    this.sortedNames.reset(state.units.keys());
    // Everything derived is rebuilt from `state` below: pending effects are part of it.
    this.effects = [];
    this.effectsPos = 0;
    this.effectsPending = 0;
    this.nextIndex = Math.max(this.nextIndex, state.index + 1);
    this.scheduler = new Scheduler();
    // Every machine that is alive or still holds placements gets one TTL of grace: after a
    // failover its agent re-announces itself; only a machine that stays silent is lost.
    const holding = new Set<string>();
    for (const u of state.units.values()) if (u.machine) holding.add(u.machine);
    // Machines holding placements are registered even when this state has never seen their
    // agent (it joined after the last snapshot): a placement on an unknown machine would read as
    // "machine lost". Their real metadata arrives with their first heartbeat of the term, and
    // placement waits for that (see maybeSettle).
    const known = new Set<string>(holding);
    for (const m of state.machines.values()) if (m.presence === 'alive') known.add(m.id);
    for (const id of [...known].sort()) {
      const m = state.machines.get(id);
      this.scheduler.upsertMachine({ id, metadata: m ? machineMetadata(m) : {} });
    }
    for (const name of [...state.units.keys()].sort()) {
      const u = state.units.get(name)!;
      this.scheduler.upsertUnit({ name, target: u.target, requirements: u.requirements });
      if (u.machine) this.scheduler.place(name, u.machine);
    }
    for (const a of this.machineActors.values()) a.stop();
    this.machineActors.clear();
    // A new term or a recovered store: every machine gets a full TTL plus the grace from now.
    for (const id of [...known].sort()) {
      this.spawnMachineActor(id, now, false);
      this.machineActors.get(id)!.send({ type: 'GRACE', until: now + this.grace });
    }
    this.globals.clear();
    for (const u of state.units.values()) if (u.requirements.global) this.globals.add(u.name);
    // The desired schedule is kept across recoveries, so only real differences are published.
    for (const name of this.desired.units())
      if (!state.units.has(name)) this.desired.set(name, [], null);
    for (const name of [...state.units.keys()].sort()) this.recomputeDesired(name);
    if (!publish) this.desired.discard();
    else this.publishSchedules();
  }

  // ---------------------------------------------------------------- writes

  /**
   * Commits events and resolves with the index of the last one once they are durable (durable
   * types) and folded. Rejects with STORE_UNAVAILABLE (retryable) or FENCED; a rejected write
   * was not acknowledged and is not in this leader's state.
   */
  append(bodies: EventBody[], opts: AppendOptions = {}): Promise<number> {
    if (this.stopped) {
      return Promise.reject(
        new FlotillaError(ErrorCode.NotLeader, 'this engine is no longer the leader', {
          retryable: true,
        }),
      );
    }
    if (bodies.length === 0) return Promise.resolve(this.state.index);
    return new Promise((resolve, reject) => {
      this.queue.push({
        bodies,
        resolve,
        reject,
        events: bodies.length,
        bulk: opts.bulk ?? false,
        skipped: 0,
      });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        if (this.needsRecovery) {
          await this.recover();
          if (this.needsRecovery) break;
        }
        const max = this.opts.maxBatchEvents ?? 1000;
        const batch = takeBatch(this.queue, max, { admitBulk: this.effectsPending < max });
        // Only held-back bulk writes left: runEffects pumps again once the backlog is down.
        if (batch.length === 0) break;
        await this.commit(batch);
      }
    } finally {
      this.committing = false;
    }
    if (this.queue.some((p) => !p.bulk) && !this.stopped && !this.needsRecovery) void this.pump();
  }

  private async commit(batch: Pending[]): Promise<void> {
    const time = this.clock();
    const events: FlotillaEvent[] = [];
    const lastOf: number[] = [];
    for (const p of batch) {
      for (const b of p.bodies) {
        events.push({
          ...b,
          index: this.nextIndex++,
          epoch: this.epoch,
          time,
          v: SCHEMA_VERSION,
        } as FlotillaEvent);
      }
      lastOf.push(this.nextIndex - 1);
    }
    const durable = events.filter((e) => isDurable(e));
    if (durable.length > 0) {
      try {
        await this.opts.term.append(durable);
      } catch (err) {
        this.stats.appendFailures++;
        const e = toStoreError(err);
        this.log.warn('append failed', { code: e.code, events: durable.length, error: e.message });
        // Transient events do not need the store: fold them anyway, keep their order.
        const transient = events.filter((ev) => !isDurable(ev));
        if (transient.length > 0) this.applyCommitted(transient);
        for (const p of batch) {
          if (p.bodies.some((b) => isDurable(b))) p.reject(e);
          else p.resolve(this.state.index);
        }
        if (e.code === ErrorCode.Fenced) {
          void this.stop('fenced: another leader holds the election key');
        } else {
          // The write may or may not have landed: reload the durable state before the next one.
          this.needsRecovery = true;
          this.scheduleRecovery();
        }
        return;
      }
    }
    this.stats.commits++;
    this.stats.eventsCommitted += events.length;
    this.retention.mark(events[events.length - 1].index, time);
    this.applyCommitted(events);
    batch.forEach((p, i) => p.resolve(lastOf[i]));
  }

  private recoveryTimer: NodeJS.Timeout | undefined;
  private recoveryDelay = 100;

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.stopped) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      void (async () => {
        if (this.committing) return this.scheduleRecovery();
        this.committing = true;
        try {
          await this.recover();
        } finally {
          this.committing = false;
        }
        if (this.needsRecovery) this.scheduleRecovery();
        else void this.pump();
      })();
    }, this.recoveryDelay);
    this.recoveryDelay = Math.min(this.recoveryDelay * 2, 2000);
  }

  /**
   * After a failed write: re-read the durable state so memory equals the store again, keep the
   * transient knowledge (machines, reported states) and carry on. Queued writes are refused while
   * the store is unreachable; reads keep being served from memory.
   */
  private async recover(): Promise<void> {
    let restored;
    try {
      restored = await this.opts.term.restore();
    } catch (err) {
      const e = toStoreError(err);
      for (const p of this.queue.splice(0)) p.reject(e);
      if (e.code === ErrorCode.Fenced) void this.stop('fenced during recovery');
      return;
    }
    const fresh = restored.snapshot ? decodeState(restored.snapshot.data) : emptyState();
    foldAll(restored.tail, fresh);
    if (restored.snapshot) this.stats.lastSnapshotIndex = restored.snapshot.index;
    const old = this.state;
    for (const [id, m] of old.machines) {
      const f = fresh.machines.get(id);
      fresh.machines.set(id, { ...m, overrides: f ? f.overrides : m.overrides });
    }
    fresh.reported = old.reported;
    fresh.index = Math.max(fresh.index, old.index);
    this.needsRecovery = false;
    this.recoveryDelay = 100;
    this.install(fresh, true);
    this.log.info('recovered state from the store', { index: fresh.index });
    this.planAndPublish();
  }

  // ---------------------------------------------------------------- fold + effects

  /**
   * Folds committed events into the state and the watch buffer: what a write's caller is
   * answered after. Their effects (scheduler indexes, actors, desired schedules, placement,
   * publishing) follow in order, in turns of bounded length (see runEffects).
   */
  private applyCommitted(events: FlotillaEvent[]): void {
    for (const e of events) {
      applyEvent(this.state, e);
      if (e.type === 'UnitSubmitted') this.sortedNames.add(e.unit);
      else if (e.type === 'UnitDestroyed') this.sortedNames.remove();
      this.remember(e);
    }
    this.effects.push(events);
    this.effectsPending += events.length;
    this.scheduleEffects();
  }

  /** Committed events whose effects are not applied yet, in commit order. */
  private effects: FlotillaEvent[][] = [];
  /** Position in effects[0]. */
  private effectsPos = 0;
  /** Events in `effects` not applied yet (bulk writes wait while this is high). */
  private effectsPending = 0;
  private effectsTimer: NodeJS.Immediate | undefined;

  private scheduleEffects(): void {
    if (this.effectsTimer || this.stopped) return;
    this.effectsTimer = setImmediate(() => {
      this.effectsTimer = undefined;
      this.runEffects(EFFECTS_TURN_MS);
    });
  }

  /**
   * Applies pending effects for about `budgetMs`, then hands the event loop back (API calls,
   * store answers, lease keepalives and agents' messages go in between) and carries on in the
   * next turn. Each turn ends with the desired schedules recomputed, placement planned and the
   * changes published, so agents hear of the first units of a burst while the rest is applied.
   */
  private runEffects(budgetMs: number): void {
    if (this.stopped) return;
    const deadline = performance.now() + budgetMs;
    const touched = new Set<string>();
    let n = 0;
    while (this.effects.length > 0) {
      const batch = this.effects[0];
      const end = Math.min(batch.length, this.effectsPos + EFFECTS_CHECK_EVERY);
      for (; this.effectsPos < end; this.effectsPos++, n++)
        this.route(batch[this.effectsPos], touched);
      if (this.effectsPos >= batch.length) {
        this.effects.shift();
        this.effectsPos = 0;
      }
      if (performance.now() >= deadline) break;
    }
    this.eventsSinceSnapshot += n;
    this.effectsPending -= n;
    for (const u of touched) this.recomputeDesired(u);
    this.maybeSettle();
    this.planAndPublish();
    this.maybeSnapshot();
    if (this.effects.length > 0) this.scheduleEffects();
    // Bulk writes held back for the backlog may go now.
    if (this.queue.length > 0) void this.pump();
  }

  /** Applies every pending effect now (for reads of actors and placement reasons). */
  private flushEffects(): void {
    if (this.effects.length === 0) return;
    if (this.effectsTimer) clearImmediate(this.effectsTimer);
    this.effectsTimer = undefined;
    this.runEffects(Infinity);
  }

  /** Feeds one folded event to the scheduler's indexes and the actors. */
  private route(e: FlotillaEvent, touched: Set<string>): void {
    // Steps the unit's lifecycle through the events the fold queued for it (lifecycle.ts).
    const unit = 'unit' in e ? this.state.units.get(e.unit) : undefined;
    if (unit) lifecycleOf(this.state, unit);
    switch (e.type) {
      case 'UnitSubmitted':
      case 'UnitReplaced':
      case 'UnitTargetSet': {
        const u = this.state.units.get(e.unit);
        if (!u) return;
        this.scheduler.upsertUnit({ name: u.name, target: u.target, requirements: u.requirements });
        if (u.requirements.global) this.globals.add(u.name);
        else this.globals.delete(u.name);
        touched.add(e.unit);
        return;
      }
      case 'UnitDestroyed':
        this.scheduler.removeUnit(e.unit);
        this.globals.delete(e.unit);
        touched.add(e.unit);
        return;
      case 'UnitScheduled':
        this.scheduler.place(e.unit, e.machine);
        touched.add(e.unit);
        return;
      case 'UnitUnscheduled':
        // Like the fold: only a placement on that machine is forgotten.
        this.scheduler.unplace(e.unit, e.machine);
        touched.add(e.unit);
        return;
      case 'MachineJoined':
      case 'MachineMetadataSet': {
        const m = this.state.machines.get(e.machine);
        if (!m || m.presence !== 'alive') return;
        this.scheduler.upsertMachine({ id: m.id, metadata: machineMetadata(m) });
        if (e.type === 'MachineJoined') {
          this.joining.delete(e.machine);
          const a = this.machineActors.get(e.machine);
          if (a) a.send({ type: 'JOINED', now: e.time });
          else this.spawnMachineActor(e.machine, e.time, false);
          this.answerScheduleGets(e.machine);
        }
        this.touchGlobals(touched);
        return;
      }
      case 'MachineLost':
        this.scheduler.removeMachine(e.machine);
        this.machineActors.get(e.machine)?.send({ type: 'LOST' });
        this.touchGlobals(touched);
        return;
      // The durable records of what happened (UnitObserved…): their transient counterparts,
      // committed with them, carry the effects (src/history/observations.ts).
      case 'UnitStateReported':
      case 'LeaderElected':
      case 'ReschedulingHeld':
      case 'ReschedulingResumed':
      case 'UnitObserved':
      case 'UnitUnplaceable':
      case 'MachineUp':
      case 'MachineDown':
        return;
    }
  }

  private touchGlobals(touched: Set<string>): void {
    for (const name of this.globals) touched.add(name);
  }

  private recomputeDesired(name: string): void {
    const u = this.state.units.get(name);
    if (!u || u.target === 'inactive') {
      this.desired.set(name, [], null);
      return;
    }
    const entry = { hash: u.hash, target: u.target };
    if (u.requirements.global) this.desired.set(name, this.scheduler.globalMachines(name), entry);
    else this.desired.set(name, u.machine ? [u.machine] : [], entry);
  }

  /** Runs the scheduler (once settled) and publishes every machine's pending schedule changes. */
  private planAndPublish(): void {
    if (this.settled && !this.stopped && !this.needsRecovery) {
      const decisions = this.scheduler.plan();
      const waits = unplaceableEvents(this.state, this.scheduler.takeWaits());
      if (decisions.length > 0 || waits.length > 0) {
        const bodies: EventBody[] = decisions.map((d) =>
          d.kind === 'schedule'
            ? { type: 'UnitScheduled', unit: d.unit, machine: d.machine, reason: d.reason }
            : { type: 'UnitUnscheduled', unit: d.unit, machine: d.machine, reason: d.reason },
        );
        bodies.push(...waits);
        const placing = this.append(bodies).then(
          () => undefined,
          (err: unknown) => {
            // The scheduler applied its decisions optimistically; rebuild it from the state.
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
    this.publishSchedules();
  }

  private publishSchedules(): void {
    // Deltas are cut below the bus's largest message (NATS max_payload, 1 MiB by default).
    for (const { machine, delta } of this.desired.flush(this.opts.bus.maxPayload)) {
      this.stats.scheduleMessages++;
      this.send(machine, () => this.opts.bus.publish(this.subj.schedule(machine), encode(delta)));
    }
  }

  /**
   * Sends something to a machine's agent; a message above the bus's largest payload is logged
   * with what to do about it and counted, never thrown into the engine. (A full schedule is one
   * message: a machine whose schedule is larger than NATS's max_payload cannot sync until the
   * server's max_payload is raised; its agent keeps running what it has and retries.)
   */
  private send(machine: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!isFlotillaError(err, ErrorCode.PayloadTooLarge)) throw err;
      this.stats.oversizeMessages++;
      this.log.error('message to agent too large for the bus', {
        machine,
        error: err.message,
      });
    }
  }

  private remember(e: FlotillaEvent): void {
    this.ring.push(e);
    const max = this.opts.watchBuffer ?? 20_000;
    if (this.ring.length > max * 1.25) this.ring.splice(0, this.ring.length - max);
    for (const w of this.watchers) w(e);
  }

  // ---------------------------------------------------------------- actors

  /**
   * A unit's lifecycle (the engine-unit machine's snapshot: state and context), stepped by the
   * fold with every committed event (src/engine/lifecycle.ts), for status and the visualizer.
   */
  unitSnapshot(name: string): UnitLifecycle | undefined {
    const u = this.state.units.get(name);
    return u ? lifecycleOf(this.state, u) : undefined;
  }

  private spawnMachineActor(id: string, now: number, lost: boolean): void {
    // Expiry (declareLost) is judged by the engine after every tick: see judgeLiveness.
    const machine = engineMachineMachine.provide({
      actions: {
        declareJoined: () => {
          const m = this.state.machines.get(id);
          if (m) this.append(machineJoined(id, m.ip, m.reported)).catch(() => undefined);
        },
      },
    });
    const actor = createActor(machine, { input: { id, ttlMs: this.ttl, now, lost } });
    actor.start();
    this.machineActors.set(id, actor);
  }

  /** The state of a unit's lifecycle ('launched', 'waiting', …), for status and the visualizer. */
  unitPhase(name: string): string | undefined {
    const l = this.unitSnapshot(name);
    return l ? phaseName(l) : undefined;
  }

  machinePhase(id: string): string | undefined {
    this.flushEffects();
    const a = this.machineActors.get(id);
    return a ? String(a.getSnapshot().value) : undefined;
  }

  /** Each machine actor's state as it is, pending effects not applied (the visualizer's stream). */
  machinePhasesNow(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [id, a] of this.machineActors) out.set(id, String(a.getSnapshot().value));
    return out;
  }

  private readonly sortedNames = new SortedNames();

  /** Unit names in order, cached until a unit is added or removed (listing pages read it). */
  sortedUnitNames(): string[] {
    return this.sortedNames.all((n) => this.state.units.has(n));
  }

  explain(unit: string): string {
    this.flushEffects();
    return this.scheduler.explain(unit);
  }

  // ---------------------------------------------------------------- agents

  private subscribe(): void {
    const { bus } = this.opts;
    // When the leader's own connection comes back, agents may have missed deltas and reports:
    // one resync brings everyone up to date (no periodic fleet-wide wake-ups otherwise).
    // While it is down the leader hears no one: no machine is judged (see judgeLiveness), and
    // once it is back every machine gets a full TTL plus the grace from then.
    let wasDown = false;
    this.unsubStatus = bus.onStatus((status) => {
      if (this.stopped) return;
      if (status === 'disconnected') {
        if (this.hearing)
          this.log.warn('bus connection lost; no machine is judged until it is back');
        wasDown = true;
        this.hearing = false;
        this.stats.busDown = 1;
      } else {
        this.hearing = true;
        this.stats.busDown = 0;
        if (!wasDown) return;
        wasDown = false;
        this.stats.busReconnects++;
        const until = this.clock() + this.grace;
        for (const a of this.machineActors.values()) a.send({ type: 'GRACE', until });
        this.log.info('bus connection back; every machine gets a full TTL plus grace', {
          graceMs: this.grace,
        });
        bus.publish(this.subj.resync, encode({ v: PROTOCOL_VERSION, epoch: this.epoch }));
      }
    });
    // Per-machine subjects (the bus's permissions say who may speak for a machine; the machine
    // a message names must be its subject's), and protocol v1's shared ones for one release.
    const s = this.subj;
    for (const subject of [s.heartbeatAll, s.legacy.heartbeat])
      this.subs.push(
        bus.subscribe(subject, (m) =>
          this.guard('heartbeat', () =>
            this.onHeartbeat(checkSender(m.subject, decodeHeartbeat(m.data))),
          ),
        ),
      );
    for (const subject of [s.reportAll, s.legacy.report])
      this.subs.push(
        bus.subscribe(subject, (m) =>
          this.guard('report', () =>
            this.onReport(checkSender(m.subject, decodeStateReport(m.data))),
          ),
        ),
      );
    for (const subject of [s.scheduleGetAll, s.legacy.scheduleGet])
      this.subs.push(
        bus.subscribe(subject, (m) =>
          this.guard('schedule request', () => {
            const req = checkSender(m.subject, decodeScheduleRequest(m.data));
            if (m.respond) this.onScheduleGet(req, m.respond);
          }),
        ),
      );
  }

  /** Malformed messages are logged, counted and dropped; they never disturb the engine. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.stats.malformed++;
      this.log.warn(`dropped malformed ${what}`, { error: (err as Error).message });
    }
  }

  private onHeartbeat(h: Heartbeat): void {
    const now = this.clock();
    const m = this.state.machines.get(h.machine);
    const actor = this.machineActors.get(h.machine);
    this.heardFrom.add(h.machine);
    const changed =
      !m || m.presence !== 'alive' || m.ip !== h.ip || !sameRecord(m.reported, h.metadata);
    if (changed && !this.joining.has(h.machine)) {
      this.joining.add(h.machine);
      if (m) {
        // Keep the freshest address and metadata even before the event commits.
        m.ip = h.ip;
        m.reported = { ...h.metadata };
      }
      void this.append(machineJoined(h.machine, h.ip, h.metadata))
        .catch(() => undefined)
        .finally(() => this.joining.delete(h.machine));
    }
    actor?.send({ type: 'HEARTBEAT', now });
    // An agent of this epoch still behind a delta published before its previous heartbeat
    // missed it on the wire (core NATS drops what is published while a connection is down); it
    // would only notice with the next change. An empty delta with the next number makes it
    // fetch its full schedule. (Deltas sent since the previous heartbeat may simply be in flight.)
    const publishedBefore = this.seqAtHeartbeat.get(h.machine);
    this.seqAtHeartbeat.set(h.machine, this.desired.seqOf(h.machine));
    if (
      h.epoch === this.epoch &&
      h.seq !== undefined &&
      publishedBefore !== undefined &&
      h.seq < publishedBefore
    ) {
      this.stats.nudges++;
      this.opts.bus.publish(this.subj.schedule(h.machine), encode(this.desired.nudge(h.machine)));
    }
    this.maybeSettle();
  }

  private onReport(r: StateReport): void {
    const bodies: EventBody[] = [];
    const seen = new Set<string>();
    for (const s of r.units) {
      seen.add(s.unit);
      const prev = this.state.reported.get(s.unit)?.get(r.machine);
      const state = {
        load: s.load,
        active: s.active,
        sub: s.sub,
        hash: s.hash,
        ...(s.mainPid ? { mainPid: s.mainPid } : {}),
        ...(s.result ? { result: s.result } : {}),
        ...(s.exitStatus !== undefined ? { exitStatus: s.exitStatus } : {}),
      };
      if (!prev || !sameRecord(prev as unknown as Record<string, unknown>, state)) {
        bodies.push({ type: 'UnitStateReported', unit: s.unit, machine: r.machine, state });
      }
    }
    const gone = new Set(r.gone);
    if (r.full) {
      for (const [unit, byMachine] of this.state.reported)
        if (byMachine.has(r.machine) && !seen.has(unit)) gone.add(unit);
    }
    for (const unit of [...gone].sort()) {
      if (this.state.reported.get(unit)?.has(r.machine))
        bodies.push({ type: 'UnitStateReported', unit, machine: r.machine, state: null });
    }
    if (bodies.length > 0)
      void this.append(
        withObservations(bodies, (u, m) => this.state.reported.get(u)?.get(m)),
      ).catch(() => undefined);
    this.heardFrom.add(r.machine);
    this.machineActors.get(r.machine)?.send({ type: 'HEARTBEAT', now: this.clock() });
  }

  private onScheduleGet(req: ScheduleRequest, respond: (d: Uint8Array) => void): void {
    // A leader past its lease stays silent: the agent asks again (and the new leader answers).
    if (!this.holdsLease()) return;
    const { machine } = req;
    this.heardFrom.add(machine);
    const m = this.state.machines.get(machine);
    if (m && m.presence === 'alive' && this.machineActors.has(machine)) {
      this.afterPlacement(() => this.answerScheduleGet(req, respond));
      return;
    }
    // Unknown machine: answer once its heartbeat has been folded (its metadata decides which
    // global units it runs), so an agent never gets a schedule that is missing its globals.
    const waiting = this.pendingScheduleGets.get(machine) ?? [];
    waiting.push({ req, respond });
    this.pendingScheduleGets.set(machine, waiting);
  }

  /** The whole schedule, or one page of it below the bus's largest message when asked so. */
  private answerScheduleGet(req: ScheduleRequest, respond: (d: Uint8Array) => void): void {
    const full = req.paged
      ? this.desired.fullPage(req.machine, req.after, this.opts.bus.maxPayload)
      : this.desired.full(req.machine);
    this.send(req.machine, () => respond(encode(full)));
  }

  private answerScheduleGets(machine: string): void {
    const waiting = this.pendingScheduleGets.get(machine);
    if (!waiting) return;
    this.pendingScheduleGets.delete(machine);
    // Answer after this commit's effects (desired schedule) are computed, and after the
    // placement they lead to is committed (see afterPlacement).
    queueMicrotask(() =>
      this.afterPlacement(() => {
        for (const w of waiting) this.answerScheduleGet(w.req, w.respond);
      }),
    );
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
    this.flushEffects();
    const placing = this.placing;
    if (!placing) {
      this.publishSchedules();
      fn();
      return;
    }
    // Waits for the placement in flight only (not for every one after it: during a burst that
    // would hold the answer until the burst ends).
    void placing.then(() => {
      if (this.stopped) return;
      this.flushEffects();
      this.publishSchedules();
      fn();
    });
  }

  /**
   * Placement starts once every machine that holds units has re-announced itself since the term
   * began, or one agent TTL has passed (then the silent ones are lost, by their actors).
   */
  private maybeSettle(): void {
    if (this.settled) return;
    // Machines that joined after the last snapshot are not in the restored state (presence is
    // transient): give every agent the time to answer the resync before placing anything, or
    // the first machine to answer would get every waiting unit.
    if (this.inheritedState && this.clock() - this.termStart < this.settleGraceMs()) return;
    for (const [id, a] of this.machineActors) {
      if (a.getSnapshot().value === 'lost') continue;
      // Heard from in this term, and its announcement (address, metadata) folded.
      if (!this.heardFrom.has(id) || this.joining.has(id)) return;
      if (this.state.machines.get(id)?.presence !== 'alive') return;
    }
    this.settle('every machine resynced');
  }

  /** How long a new term waits for agents to answer its resync (they heartbeat at once). */
  private settleGraceMs(): number {
    return Math.min(this.ttl / 3, 2000);
  }

  private settle(why: string): void {
    if (this.settled) return;
    this.settled = true;
    this.log.info('settled; placement starts', { why });
    this.planAndPublish();
  }

  // ---------------------------------------------------------------- timers, snapshots

  private startTimers(): void {
    // Machines restored from the store got a full TTL plus the grace when they were installed.
    this.maybeSettle();
    const settleTimer = setTimeout(() => this.settle('agent TTL passed'), this.ttl);
    settleTimer.unref();
    this.timers.push(settleTimer);
    if (this.inheritedState) {
      const graceTimer = setTimeout(() => this.maybeSettle(), this.settleGraceMs() + 1);
      graceTimer.unref();
      this.timers.push(graceTimer);
    }
    const tick = setInterval(
      () => {
        const now = this.clock();
        // Time counts against machines only while the leader can hear them and can write.
        if (this.hearing && !this.needsRecovery) {
          for (const id of [...this.machineActors.keys()].sort())
            this.machineActors.get(id)!.send({ type: 'TICK', now });
          this.judgeLiveness(now);
        }
        this.maybeSnapshot();
      },
      Math.max(50, Math.min(1000, this.ttl / 6)),
    );
    tick.unref();
    this.timers.push(tick);
  }

  /**
   * Declares lost the machines whose TTL passed, unless the mass-loss guard holds (see
   * liveness.ts). Called after every tick while the leader hears, and on the operator's resume.
   */
  private judgeLiveness(now: number): void {
    if (this.stopped || !this.hearing || this.needsRecovery) return;
    const phases = new Map<string, string>();
    for (const [id, a] of this.machineActors) phases.set(id, String(a.getSnapshot().value));
    const v = this.liveness.judge(now, phases, this.declaring);
    if (v.held) {
      this.stats.reschedulingHolds++;
      this.stats.reschedulingHeld = 1;
      const reason =
        `${v.held.atRisk} of ${v.held.population} machines silent or lost within one agent TTL ` +
        `(more than the mass-loss threshold): the leader suspects itself or the network; ` +
        `rescheduling is held until machines are heard again or an operator resumes it`;
      this.log.error('rescheduling held', { machines: v.held.machines.join(','), reason });
      this.append([{ type: 'ReschedulingHeld', machines: v.held.machines, reason }]).catch(
        () => undefined,
      );
    }
    if (v.resumed) {
      this.stats.reschedulingHeld = 0;
      const reason =
        v.resumed === 'operator' ? 'resumed by an operator' : 'enough machines heard again';
      this.log.warn('rescheduling resumed', { reason, declaring: v.declare.join(',') });
      this.append([{ type: 'ReschedulingResumed', reason }]).catch(() => undefined);
    }
    if (v.declare.length === 0) return;
    for (const id of v.declare) this.declaring.add(id);
    this.append(
      v.declare.flatMap((machine) => machineLost(machine, `no heartbeat for ${this.ttl} ms`)),
    )
      .then(() => (this.stats.machinesLost += v.declare.length))
      .catch(() => undefined)
      .finally(() => {
        for (const id of v.declare) this.declaring.delete(id);
      });
  }

  /** The mass-loss guard's hold: the machines held, or undefined when not holding. */
  get reschedulingHold(): { machines: string[]; atRisk: number; population: number } | undefined {
    return this.liveness.held;
  }

  /**
   * The operator's word: the machines held by the mass-loss guard are declared lost now and
   * their units rescheduled. Returns false when nothing was held.
   */
  resumeRescheduling(): boolean {
    if (!this.liveness.resume()) return false;
    this.judgeLiveness(this.clock());
    return true;
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || this.stopped || this.needsRecovery) return;
    // A snapshot costs O(state); taking one every fixed number of events makes a burst of N
    // units cost O(N²) (measured: 30 snapshots of up to 1.6 s each for 100,000 units). Waiting
    // for at least as many events as the state has units and machines keeps it O(1) per event.
    const size = this.state.units.size + this.state.machines.size;
    const every = Math.max(this.opts.snapshotEvery ?? 10_000, size);
    const interval = this.opts.snapshotIntervalMs ?? 60_000;
    const due =
      this.eventsSinceSnapshot >= every ||
      (this.eventsSinceSnapshot > 0 && this.clock() - this.lastSnapshotAt >= interval);
    if (due)
      void this.snapshot().catch((err: unknown) =>
        this.log.warn('snapshot failed', { error: (err as Error).message }),
      );
  }

  /** Writes a snapshot of the current state and compacts the log behind it (keeping `retention`). */
  async snapshot(): Promise<{ index: number; bytes: number }> {
    if (this.snapshotting)
      throw new FlotillaError(ErrorCode.InvalidState, 'a snapshot is already being written');
    this.snapshotting = true;
    try {
      const index = this.state.index;
      // The state is captured synchronously as of `index`; its text is written over turns.
      const encoding = encodeStateInSlices(this.state, nextTurn);
      this.eventsSinceSnapshot = 0;
      this.lastSnapshotAt = this.clock();
      const data = await encoding;
      const stats = await this.opts.term.writeSnapshot({ index, epoch: this.epoch, data });
      this.stats.snapshots++;
      this.stats.lastSnapshotIndex = index;
      this.stats.lastSnapshotBytes = stats.bytes;
      const cut = this.retention.cut(index, this.clock());
      if (cut > 0) await this.opts.term.compact(cut);
      return { index, bytes: stats.bytes };
    } finally {
      this.snapshotting = false;
    }
  }

  // ---------------------------------------------------------------- watch

  /** Events with index >= from still in memory (from 0: none), then every new one via `listener`. */
  watch(
    from: number,
    listener: (e: FlotillaEvent) => void,
  ): { backlog: FlotillaEvent[]; oldest: number; close: () => void } {
    const backlog = from > 0 ? this.ring.filter((e) => e.index >= from) : [];
    this.watchers.add(listener);
    return {
      backlog,
      oldest: this.ring[0]?.index ?? this.state.index + 1,
      close: () => this.watchers.delete(listener),
    };
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
    return this.lastSnapshotAt;
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
    if (this.effectsTimer) clearImmediate(this.effectsTimer);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    for (const s of this.subs) s.unsubscribe();
    this.unsubStatus?.();
    const err = new FlotillaError(ErrorCode.NotLeader, `not the leader any more (${reason})`, {
      retryable: true,
    });
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const a of this.machineActors.values()) a.stop();
    for (const l of this.stoppedListeners) l(reason);
  }
}

function toStoreError(err: unknown): FlotillaError {
  if (isFlotillaError(err)) return err;
  return new FlotillaError(
    ErrorCode.StoreUnavailable,
    `store write failed: ${(err as Error).message}`,
    { cause: err, retryable: true },
  );
}

function sameRecord(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
