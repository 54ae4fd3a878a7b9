/**
 * The agent actor: wires the agent machine and one unit actor per local unit to a Bus, a Driver
 * and the protocol. Everything that decides lives in src/machines/agent.ts and agent-unit.ts;
 * this file only does what their named actions say and turns the outside world into events.
 *
 * Contract:
 * - subscribes only to `agent.<machine>.schedule`, `agent.<machine>.rpc` and `agents.resync`
 *   (with `leaderCheck`: `agent.<machine>.schedule.*` and `agents.resync.*`, whose last token
 *   names the sender), and publishes only on subjects that carry its machine ID (a secured bus
 *   allows no other);
 * - with `leaderCheck`, acts only on the leader of the current epoch (`setLeader`): anything
 *   else is refused, logged and counted (`stats.notFromLeader`);
 * - never stops or starts a unit because the control plane is unhealthy: NATS down or no leader
 *   means "degraded", and units stay as they are; drain() leaves them running too;
 * - malformed messages are logged, counted (`stats.malformed`) and dropped, never thrown.
 *
 * Unit actors are standalone actors in a Map, not children of the agent actor: stopping a parent
 * with N spawned children is O(N²) in XState 5 (10,000 children took 59 s).
 */
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { Bus, Subscription } from '../bus/types';
import type { Driver, DriverOp, DriverOpResult, DriverUnitState } from '../drivers/driver';
import { type Clock, type Logger, type TimerHandle, realClock, silentLogger } from '../runtime';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import {
  type AgentMachine,
  type AgentStateValue,
  type SyncRetryPolicy,
  agentMachine,
} from '../machines/agent';
import {
  type AgentUnitContext,
  type AgentUnitMachine,
  type AgentUnitStateValue,
  type RetryPolicy,
  type UnitDesire,
  agentUnitMachine,
} from '../machines/agent-unit';
import {
  type AgentRpcReply,
  type Heartbeat,
  JOURNAL_FOLLOW_IDLE_MS,
  type ReportedUnit,
  type ScheduleDelta,
  type ScheduleFull,
  type ScheduleRequest,
  type ScheduledUnit,
  type StateReport,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeAgentRpcRequest,
  decodeResyncRequest,
  decodeScheduleDelta,
  decodeScheduleFull,
  encode,
  subjects,
} from '../protocol';
import { OpBatcher } from './agent-batcher';
import { type JournalFollow, followJournal } from './agent-journal';
import { Reporter } from './agent-reporter';

export interface AgentOptions {
  cluster: string;
  machineId: string;
  /** The machine's public IP, sent in heartbeats. */
  ip: string;
  /** Read at every heartbeat (by reference); `setMetadata` replaces it and announces it at once. */
  metadata: Record<string, string>;
  bus: Bus;
  driver: Driver;
  /** The leader declares the machine lost after this long without a heartbeat (default 30 000). Heartbeats go every ttl/3, with jitter. */
  agentTtlMs?: number;
  /** State changes within this window after a report travel in the next one (default 5 ms; the first change after a quiet window goes at once). */
  reportBatchMs?: number;
  /** Timeout of a full-schedule request (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Backoff of failed driver ops (default 1 s doubling to 60 s). */
  unitRetry?: Partial<RetryPolicy>;
  /** Backoff of failed full-schedule requests (default 0.5 s doubling to 30 s, jittered). */
  syncRetry?: Partial<SyncRetryPolicy>;
  log?: Logger;
  clock?: Clock;
  /** Source of jitter in [0,1) (default Math.random). */
  random?: () => number;
  /** XState inspection feed of the agent actor and every unit actor (for the visualizer). */
  inspect?: (event: InspectionEvent) => void;
  /**
   * Speak on protocol v1's shared subjects (`engine.report`, `engine.heartbeat`,
   * `engine.schedule.get`) so a leader not yet upgraded hears this agent (rolling upgrade;
   * docs/protocol.md). Default: the per-machine subjects a secured bus requires.
   */
  legacySubjects?: boolean;
  /**
   * Act only on the leader of the current epoch (docs/protocol.md, "Only the leader commands"):
   * listen for schedules and resyncs on the subjects that name their sender, ask the full
   * schedule of that leader only, and refuse (count, log) anything from another sender or
   * epoch. The leader comes from the election, through `setLeader`; until one is known the
   * agent accepts no schedule. The bus's permissions (`flotilla bus-auth`) make the subject
   * prove the sender. Default: protocol v1's unnamed subjects, no check.
   */
  leaderCheck?: boolean;
}

/** The leader of the current epoch, as the election names it. */
export interface KnownLeader {
  machine: string;
  epoch: number;
}

/** Counters for tests, benchmarks and /metrics. Monotonic over the agent's life. */
export interface AgentStats {
  /** Valid deltas received on `agent.<machine>.schedule`. */
  scheduleMessages: number;
  /** Unit entries (put + remove) in those deltas. */
  scheduleChanges: number;
  /** Deltas dropped as stale (older epoch) or duplicate. */
  droppedDeltas: number;
  /** Full schedules received (replies to `engine.schedule.get`). */
  fullSchedules: number;
  scheduleRequests: number;
  scheduleRequestFailures: number;
  /** Full schedules refused: from a leader older than one already heard from. */
  staleSchedules: number;
  /**
   * Schedules, full schedules and resyncs refused with `leaderCheck`: not from the leader of the
   * current epoch (another engine, a deposed leader, or no leader known yet).
   */
  notFromLeader: number;
  /** Messages that failed validation (any subject), dropped. */
  malformed: number;
  /** `agents.resync` messages received. */
  resyncs: number;
  reports: number;
  fullReports: number;
  /** Messages not sent: larger than the bus's max_payload (logged as errors). */
  oversizeMessages: number;
  heartbeats: number;
  opBatches: number;
  ops: number;
  opFailures: number;
  rpcRequests: number;
}

export interface AgentUnitView {
  unit: string;
  state: AgentUnitStateValue;
  desired: UnitDesire['target'];
  loadedHash: string;
  observed: DriverUnitState | null;
  retryAt: number | null;
  lastError: string | null;
}

export interface AgentHandle {
  readonly machineId: string;
  readonly stats: Readonly<AgentStats>;
  /** The agent actor (for inspection and tests); do not send it events. */
  readonly actor: Actor<AgentMachine>;
  state(): AgentStateValue;
  /** The schedule position: epoch and seq of the last applied change. */
  position(): { epoch: number; seq: number };
  unitState(unit: string): AgentUnitStateValue | undefined;
  /** Every unit the agent manages, sorted by name. */
  units(): AgentUnitView[];
  /** Resolves when no driver op is queued or in flight. */
  whenIdle(): Promise<void>;
  /**
   * The leader of the current epoch changed (the election's view; undefined: none). With
   * `leaderCheck`, a new leader makes the agent fetch its full schedule from it and send a full
   * report, as a resync would.
   */
  setLeader(leader: KnownLeader | undefined): void;
  /** Replaces the machine's metadata and sends a heartbeat with it now. */
  setMetadata(metadata: Record<string, string>): void;
  /** Graceful shutdown: stop heartbeats and subscriptions, flush reports, close the driver. Units keep running. */
  drain(): Promise<void>;
  /** Same as drain(): leaving units as they are is the agent's only way to stop. */
  stop(): Promise<void>;
}

type UnitActor = Actor<AgentUnitMachine>;

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

class Agent implements AgentHandle {
  readonly machineId: string;
  readonly stats: AgentStats = {
    scheduleMessages: 0,
    scheduleChanges: 0,
    droppedDeltas: 0,
    fullSchedules: 0,
    scheduleRequests: 0,
    scheduleRequestFailures: 0,
    staleSchedules: 0,
    notFromLeader: 0,
    malformed: 0,
    resyncs: 0,
    reports: 0,
    fullReports: 0,
    oversizeMessages: 0,
    heartbeats: 0,
    opBatches: 0,
    ops: 0,
    opFailures: 0,
    rpcRequests: 0,
  };
  readonly actor: Actor<AgentMachine>;

  private readonly subj;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly ttl: number;
  private readonly requestTimeout: number;
  private readonly unitLogic: AgentUnitMachine;
  private readonly units_ = new Map<string, UnitActor>();
  /** The driver's latest state of each managed unit (what a full report sends). */
  private readonly known = new Map<string, DriverUnitState>();
  /** Start ops applied per unit since this agent started (reported as `starts`). */
  private readonly starts = new Map<string, number>();
  private readonly unitTimers = new Map<string, TimerHandle>();
  private readonly batcher: OpBatcher;
  private readonly reporter: Reporter;
  private subs: Subscription[] = [];
  private offState: (() => void) | undefined;
  private offStatus: (() => void) | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  /** Driver states seen before adoption finished, replayed after it. */
  private early: DriverUnitState[] | null = [];
  private draining: Promise<void> | undefined;
  private metadata: Record<string, string>;
  /** `journal --follow` streams in progress (stopped on drain). */
  private readonly follows = new Set<JournalFollow>();

  constructor(private readonly opts: AgentOptions) {
    this.machineId = opts.machineId;
    this.metadata = opts.metadata;
    this.subj = subjects(opts.cluster);
    this.clock = opts.clock ?? realClock;
    this.log = opts.log ?? silentLogger;
    this.random = opts.random ?? Math.random;
    this.ttl = opts.agentTtlMs ?? 30_000;
    this.requestTimeout = opts.requestTimeoutMs ?? 5000;

    this.batcher = new OpBatcher({
      apply: (ops) => this.applyBatch(ops),
      deliver: (results) => this.deliverResults(results),
    });
    this.reporter = new Reporter({
      machineId: opts.machineId,
      batchMs: opts.reportBatchMs ?? 5,
      clock: this.clock,
      publish: (r) => this.publishReport(r),
    });

    // One provided machine for every unit: effects find their unit in context.
    this.unitLogic = agentUnitMachine.provide({
      actions: {
        requestOp: (_, op: DriverOp) => this.batcher.push(op),
        armRetryTimer: ({ context }: { context: AgentUnitContext }, p: { at: number }) =>
          this.armUnitRetry(context.unit, p.at),
      },
    }) as AgentUnitMachine;

    const logic = agentMachine.provide({
      actions: {
        requestFullSchedule: (_, p: { fetchId: number }) => this.requestFullSchedule(p.fetchId),
        applyFullSchedule: (_, p: { schedule: ScheduleFull }) => this.applyFull(p.schedule),
        applyDeltas: (_, p: { deltas: ScheduleDelta[] }) => {
          for (const d of p.deltas) this.applyDelta(d);
        },
        dropDelta: (_, p: { delta: ScheduleDelta; reason: string }) => {
          this.stats.droppedDeltas++;
          this.log.debug('schedule delta dropped', {
            reason: p.reason,
            epoch: p.delta.epoch,
            seq: p.delta.seq,
          });
        },
        sendFullReport: () => this.sendFullReport(),
        sendHeartbeat: () => this.sendHeartbeat(),
        armRetryTimer: (_, p: { at: number }) => this.armAgentRetry(p.at),
      },
    }) as AgentMachine;
    this.actor = createActor(logic, {
      input: { machineId: opts.machineId, retry: opts.syncRetry },
      inspect: opts.inspect,
    });
    let last = '';
    this.actor.subscribe((s) => {
      const v = String(s.value);
      if (v === last) return;
      this.log.info('agent state', { machine: this.machineId, from: last, to: v });
      last = v;
    });
  }

  async start(): Promise<void> {
    const { driver, bus } = this.opts;
    this.actor.start();
    this.offState = driver.onState((s) => this.onDriverState(s));
    await driver.open();
    const found = await driver.list();
    // Adoption: each unit actor starts in the state the driver reports, and issues no op
    // (its desired state is unknown until the full schedule arrives).
    for (const s of [...found].sort((a, b) => cmp(a.unit, b.unit))) {
      this.known.set(s.unit, s);
      this.spawnUnit(s.unit, { target: 'unknown' }, s);
    }
    const early = this.early ?? [];
    this.early = null;
    for (const s of early) this.onDriverState(s);

    const checked = this.opts.leaderCheck === true;
    this.subs.push(
      bus.subscribe(
        checked ? this.subj.scheduleFromAny(this.machineId) : this.subj.schedule(this.machineId),
        (m) => this.guard('schedule', () => this.onSchedule(m.data, m.subject)),
      ),
      bus.subscribe(this.subj.agentRpc(this.machineId), (m) =>
        this.guard('rpc', () => this.onRpc(m.data, m.respond)),
      ),
      bus.subscribe(checked ? this.subj.resyncFromAny : this.subj.resync, (m) =>
        this.guard('resync', () => this.onResync(m.data, m.subject)),
      ),
    );
    this.offStatus = bus.onStatus((s) =>
      this.actor.send({ type: s === 'connected' ? 'BUS_CONNECTED' : 'BUS_DISCONNECTED' }),
    );
    this.log.info('agent adopted units', { machine: this.machineId, units: found.length });
    this.actor.send({ type: 'UNITS_ADOPTED', count: found.length });
    this.armHeartbeat();
  }

  // ---- handle ----

  state(): AgentStateValue {
    return this.actor.getSnapshot().value as AgentStateValue;
  }

  position(): { epoch: number; seq: number } {
    const c = this.actor.getSnapshot().context;
    return { epoch: c.epoch, seq: c.seq };
  }

  unitState(unit: string): AgentUnitStateValue | undefined {
    return this.units_.get(unit)?.getSnapshot().value as AgentUnitStateValue | undefined;
  }

  units(): AgentUnitView[] {
    return [...this.units_.entries()]
      .sort(([a], [b]) => cmp(a, b))
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

  whenIdle(): Promise<void> {
    return this.batcher.whenIdle();
  }

  setLeader(leader: KnownLeader | undefined): void {
    const prev = this.leader;
    if (prev?.machine === leader?.machine && prev?.epoch === leader?.epoch) return;
    this.leader = leader === undefined ? undefined : { ...leader };
    if (!this.opts.leaderCheck || leader === undefined || this.draining !== undefined) return;
    this.log.info('leader of the current epoch', {
      leader: leader.machine.slice(0, 8),
      epoch: leader.epoch,
    });
    this.noteEpoch(leader.epoch);
    // Whatever the new leader sent before the election's news reached us was refused: ask it
    // for the whole schedule now (its own resync may have come too early, too).
    this.actor.send({ type: 'RESYNC_REQUESTED', epoch: leader.epoch });
  }

  setMetadata(metadata: Record<string, string>): void {
    this.metadata = { ...metadata };
    if (this.draining === undefined) this.sendHeartbeat();
  }

  drain(): Promise<void> {
    this.draining ??= this.doDrain();
    return this.draining;
  }

  stop(): Promise<void> {
    return this.drain();
  }

  private async doDrain(): Promise<void> {
    this.actor.send({ type: 'DRAIN' });
    if (this.heartbeatTimer !== undefined) this.clock.clearTimeout(this.heartbeatTimer);
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    for (const t of this.unitTimers.values()) this.clock.clearTimeout(t);
    this.unitTimers.clear();
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.offStatus?.();
    for (const f of this.follows) f.stop();
    await Promise.all([...this.follows].map((f) => f.done));
    await this.batcher.close();
    this.reporter.flush();
    try {
      await this.opts.bus.flush();
    } catch (err) {
      this.log.warn('bus flush failed while draining', { error: errMsg(err) });
    }
    this.offState?.();
    try {
      await this.opts.driver.close();
    } catch (err) {
      this.log.warn('driver close failed', { error: errMsg(err) });
    }
    for (const a of this.units_.values()) a.stop();
    this.actor.send({ type: 'DRAINED' });
    this.actor.stop();
    this.log.info('agent drained; units left running', { machine: this.machineId });
  }

  // ---- inbound messages ----

  /** Runs a message handler; a malformed message is counted and dropped, nothing escapes. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.stats.malformed++;
        this.log.warn('malformed message dropped', { subject: what, error: err.message });
      } else {
        this.log.error('message handler failed', { subject: what, error: errMsg(err) });
      }
    }
  }

  /** The leader of the current epoch, from the election (with `leaderCheck`). */
  private leader: KnownLeader | undefined;
  /** Refusals already logged at warn level (sender@epoch), bounded. */
  private readonly refusalsLogged = new Set<string>();

  /**
   * With `leaderCheck`: whether a message on `subject` (whose last token names its sender, as
   * the bus's permissions guarantee) of `epoch` comes from the leader of the current epoch.
   * A refusal is counted and logged (warn once per sender and epoch, then debug).
   */
  private fromLeader(subject: string, epoch: number, what: string): boolean {
    if (!this.opts.leaderCheck) return true;
    const sender = subject.slice(subject.lastIndexOf('.') + 1);
    const l = this.leader;
    if (l !== undefined && sender === l.machine && epoch === l.epoch) return true;
    this.stats.notFromLeader++;
    const key = `${sender}@${epoch}`;
    const fields = {
      what,
      sender: sender.slice(0, 64),
      epoch,
      leader: l ? `${l.machine}@${l.epoch}` : 'none known',
    };
    // A new leader's first messages may beat the election's news: not worth a warning.
    const ahead = l === undefined || epoch > l.epoch;
    if (ahead || this.refusalsLogged.has(key) || this.refusalsLogged.size >= 100)
      this.log.debug('refused: not from the leader of the current epoch', fields);
    else {
      this.refusalsLogged.add(key);
      this.log.warn('refused: not from the leader of the current epoch', fields);
    }
    return false;
  }

  private onSchedule(data: Uint8Array, subject: string): void {
    const delta = decodeScheduleDelta(data);
    if (!this.fromLeader(subject, delta.epoch, 'schedule delta')) return;
    this.noteEpoch(delta.epoch);
    this.stats.scheduleMessages++;
    this.stats.scheduleChanges += delta.put.length + delta.remove.length;
    this.actor.send({ type: 'SCHEDULE_RECEIVED', delta });
  }

  private onResync(data: Uint8Array, subject: string): void {
    const r = decodeResyncRequest(data);
    if (!this.fromLeader(subject, r.epoch, 'resync')) return;
    this.noteEpoch(r.epoch);
    this.stats.resyncs++;
    this.actor.send({ type: 'RESYNC_REQUESTED', epoch: r.epoch });
  }

  private onRpc(data: Uint8Array, respond: ((d: Uint8Array) => void) | undefined): void {
    const reply = (r: Omit<AgentRpcReply, 'v'>) =>
      respond?.(encode({ v: PROTOCOL_VERSION, ...r } satisfies AgentRpcReply));
    let req;
    try {
      req = decodeAgentRpcRequest(data);
    } catch (err) {
      reply({ ok: false, text: '', error: errMsg(err) });
      throw err;
    }
    this.stats.rpcRequests++;
    const { driver } = this.opts;
    if (req.kind === 'journal' && req.follow === true && req.inbox !== undefined) {
      if (this.draining !== undefined) {
        reply({ ok: false, text: '', error: `agent ${this.machineId} is shutting down` });
        return;
      }
      // Answer at once; the lines follow on the requester's inbox.
      reply({ ok: true, text: '' });
      const f = followJournal({
        bus: this.opts.bus,
        driver,
        clock: this.clock,
        log: this.log,
        unit: req.unit,
        lines: clampLines(req.lines),
        inbox: req.inbox,
        idleMs: JOURNAL_FOLLOW_IDLE_MS,
      });
      this.follows.add(f);
      void f.done.then(() => this.follows.delete(f));
      return;
    }
    const run = async (): Promise<string> => {
      if (req.kind === 'status') return driver.status(req.unit);
      const lines: string[] = [];
      for await (const l of driver.journal(req.unit, clampLines(req.lines), false)) lines.push(l);
      return lines.join('\n');
    };
    run().then(
      (text) => reply({ ok: true, text }),
      (err: unknown) => reply({ ok: false, text: '', error: errMsg(err) }),
    );
  }

  // ---- schedule → unit actors ----

  private applyDelta(d: ScheduleDelta): void {
    for (const unit of [...d.remove].sort(cmp)) this.desire(unit, { target: 'not-scheduled' });
    for (const u of [...d.put].sort((a, b) => cmp(a.unit, b.unit)))
      this.desire(u.unit, desireOf(u));
  }

  /** A full schedule: everything in it is desired, everything else is not scheduled here. */
  private applyFull(full: ScheduleFull): void {
    this.stats.fullSchedules++;
    const wanted = new Set(full.units.map((u) => u.unit));
    for (const unit of [...this.units_.keys()].sort(cmp))
      if (!wanted.has(unit)) this.desire(unit, { target: 'not-scheduled' });
    for (const u of [...full.units].sort((a, b) => cmp(a.unit, b.unit)))
      this.desire(u.unit, desireOf(u));
  }

  private desire(unit: string, desired: UnitDesire): void {
    const a = this.units_.get(unit);
    if (a) this.sendUnit(unit, { type: 'DESIRED_CHANGED', desired });
    else if (desired.target === 'loaded' || desired.target === 'launched')
      this.spawnUnit(unit, desired, null);
  }

  private spawnUnit(unit: string, desired: UnitDesire, observed: DriverUnitState | null): void {
    const a = createActor(this.unitLogic, {
      input: {
        unit,
        desired,
        observed,
        retry: this.opts.unitRetry,
      },
      inspect: this.opts.inspect,
    });
    this.units_.set(unit, a);
    a.start();
    this.afterUnitEvent(unit, a);
  }

  private sendUnit(unit: string, ev: Parameters<UnitActor['send']>[0]): void {
    const a = this.units_.get(unit);
    if (!a) return;
    a.send(ev);
    this.afterUnitEvent(unit, a);
  }

  /** An unloaded unit that is not scheduled here is forgotten and reported gone. */
  private afterUnitEvent(unit: string, a: UnitActor): void {
    const s = a.getSnapshot();
    if (s.value !== 'absent' || s.context.desired.target !== 'not-scheduled') return;
    a.stop();
    this.units_.delete(unit);
    this.known.delete(unit);
    this.starts.delete(unit);
    const t = this.unitTimers.get(unit);
    if (t !== undefined) this.clock.clearTimeout(t);
    this.unitTimers.delete(unit);
    this.reporter.gone(unit);
  }

  // ---- driver ----

  private async applyBatch(ops: DriverOp[]): Promise<DriverOpResult[]> {
    this.stats.opBatches++;
    this.stats.ops += ops.length;
    return this.opts.driver.apply(ops);
  }

  private deliverResults(results: DriverOpResult[]): void {
    const now = this.clock.now();
    for (const r of results) {
      if (r.op.kind === 'start') this.countStart(r.op.unit);
      if (r.ok) {
        this.sendUnit(r.op.unit, { type: 'OP_SUCCEEDED', op: r.op });
      } else {
        this.stats.opFailures++;
        const error = r.error ?? `${r.op.kind} ${r.op.unit} failed`;
        this.log.warn('driver op failed; will retry', { unit: r.op.unit, op: r.op.kind, error });
        this.sendUnit(r.op.unit, { type: 'OP_FAILED', op: r.op, error, now });
      }
    }
  }

  /**
   * A start op was applied (whatever its outcome): the unit's report carries the new count even
   * when systemd's state ends where it was (a unit that exits 0 at once, or fails as before).
   */
  private countStart(unit: string): void {
    if (!this.units_.has(unit)) return;
    this.starts.set(unit, (this.starts.get(unit) ?? 0) + 1);
    const s = this.known.get(unit);
    if (s) this.reporter.changed(this.reportOf(s));
  }

  /** The driver's state as reported: with the unit's start count once it was started. */
  private reportOf(s: DriverUnitState): ReportedUnit {
    const starts = this.starts.get(s.unit);
    return starts === undefined ? s : { ...s, starts };
  }

  private onDriverState(s: DriverUnitState): void {
    if (this.early) {
      this.early.push(s);
      return;
    }
    // States of units the agent does not manage (e.g. just unloaded) are not reported.
    if (!this.units_.has(s.unit)) return;
    this.known.set(s.unit, s);
    this.reporter.changed(this.reportOf(s));
    this.sendUnit(s.unit, { type: 'STATE_OBSERVED', state: s });
  }

  private armUnitRetry(unit: string, at: number): void {
    const old = this.unitTimers.get(unit);
    if (old !== undefined) this.clock.clearTimeout(old);
    const h = this.clock.setTimeout(
      () => {
        this.unitTimers.delete(unit);
        // A timer may fire a millisecond before `at` by the wall clock (timers run on the
        // monotonic clock): a TICK the guard found early would never be re-armed.
        this.sendUnit(unit, { type: 'TICK', now: Math.max(this.clock.now(), at) });
      },
      Math.max(0, at - this.clock.now()),
    );
    this.unitTimers.set(unit, h);
  }

  // ---- leader ----

  private requestFullSchedule(fetchId: number): void {
    this.stats.scheduleRequests++;
    const failed = (error: string, quiet = false) => {
      this.stats.scheduleRequestFailures++;
      this.log[quiet ? 'info' : 'warn']('full schedule request failed', {
        machine: this.machineId,
        error,
      });
      this.actor.send({
        type: 'FULL_SCHEDULE_FAILED',
        fetchId,
        error,
        now: this.clock.now(),
        jitter: this.random(),
      });
    };
    // With leaderCheck the request goes to the leader's own subject, which only that engine may
    // read (so only it can answer), and its reply must be of the leader's epoch.
    const leader = this.leader;
    if (this.opts.leaderCheck && leader === undefined) {
      this.stats.notFromLeader++;
      failed('no leader is known yet', true); // at start, and while an election runs
      return;
    }
    this.fetchFullSchedule(leader?.machine).then(
      (schedule) => {
        // No stop without a decision of the current epoch (docs/protocol.md): the schedule of a
        // leader older than one already heard from (a deposed leader that has not noticed yet)
        // may lack units placed since; it is refused like a failed request, and asked again.
        const heard = Math.max(this.highestEpoch, this.actor.getSnapshot().context.epoch);
        if (this.opts.leaderCheck && schedule.epoch !== leader?.epoch) {
          this.stats.notFromLeader++;
          failed(
            `full schedule of epoch ${schedule.epoch} from ${leader?.machine ?? '?'}, whose epoch is ${leader?.epoch ?? '?'}`,
          );
          return;
        }
        if (schedule.epoch < heard) {
          this.stats.staleSchedules++;
          failed(`full schedule of epoch ${schedule.epoch} is older than epoch ${heard}`);
          return;
        }
        this.noteEpoch(schedule.epoch);
        this.actor.send({ type: 'FULL_SCHEDULE_RECEIVED', fetchId, schedule });
      },
      (err: unknown) => {
        if (err instanceof ProtocolError) this.stats.malformed++;
        failed(isFlotillaError(err) ? `${err.code}: ${err.message}` : errMsg(err));
      },
    );
  }

  /**
   * The machine's whole schedule, in pages below the bus's largest message (a leader that
   * does not page answers with everything in the first reply). The pages together are the
   * schedule as of the first page's sequence number or later, unit by unit; the deltas the
   * agent applies after that number bring every unit up to date.
   */
  private async fetchFullSchedule(leader: string | undefined): Promise<ScheduleFull> {
    let first: ScheduleFull | undefined;
    const units: ScheduledUnit[] = [];
    let after: string | undefined;
    for (let page = 0; ; page++) {
      const req: ScheduleRequest = { v: PROTOCOL_VERSION, machine: this.machineId, paged: true };
      if (after !== undefined) req.after = after;
      const data = await this.opts.bus.request(
        leader !== undefined && this.opts.leaderCheck
          ? this.subj.scheduleGetOf(leader, this.machineId)
          : this.opts.legacySubjects
            ? this.subj.legacy.scheduleGet
            : this.subj.scheduleGet(this.machineId),
        encode(req),
        this.requestTimeout,
      );
      const part = decodeScheduleFull(data);
      first ??= part;
      if (part.epoch !== first.epoch)
        throw new FlotillaError(
          ErrorCode.InvalidState,
          `the leader changed while the full schedule was read (epoch ${first.epoch} → ${part.epoch})`,
          { retryable: true },
        );
      units.push(...part.units);
      if (part.next === undefined) break;
      if (part.units.length === 0 || (after !== undefined && part.next <= after))
        throw new FlotillaError(
          ErrorCode.InvalidState,
          `full schedule page ${page + 1} made no progress`,
          {
            retryable: true,
          },
        );
      after = part.next;
    }
    const { next: _last, ...schedule } = first;
    return { ...schedule, units };
  }

  /** The highest leadership epoch heard of (deltas, resync requests, full schedules). */
  private highestEpoch = 0;

  private noteEpoch(epoch: number): void {
    if (epoch > this.highestEpoch) this.highestEpoch = epoch;
  }

  private armAgentRetry(at: number): void {
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(
      () => {
        this.retryTimer = undefined;
        // See armUnitRetry: never deliver a due TICK with a time before it was due.
        this.actor.send({ type: 'TICK', now: Math.max(this.clock.now(), at) });
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private sendFullReport(): void {
    const units: ReportedUnit[] = [];
    for (const unit of this.units_.keys()) {
      const s = this.known.get(unit);
      if (s) units.push(this.reportOf(s));
    }
    this.reporter.full(units);
  }

  private sendHeartbeat(): void {
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION,
      machine: this.machineId,
      ip: this.opts.ip,
      metadata: this.metadata,
      epoch: this.actor.getSnapshot().context.epoch,
      seq: this.actor.getSnapshot().context.seq,
    };
    this.stats.heartbeats++;
    this.opts.bus.publish(
      this.opts.legacySubjects ? this.subj.legacy.heartbeat : this.subj.heartbeat(this.machineId),
      encode(hb),
    );
  }

  /**
   * Sends a report, cut in two (recursively) while it is larger than the bus's largest message;
   * an incremental report can be split freely. A full report is one message by protocol: one
   * above NATS's max_payload is logged with what to do, and counted.
   */
  private publishReport(r: StateReport): void {
    const data = encode(r);
    const n = r.units.length + r.gone.length;
    if (data.length > this.opts.bus.maxPayload && !r.full && n > 1) {
      const half = Math.ceil(r.units.length / 2);
      const halfGone = Math.ceil(r.gone.length / 2);
      this.publishReport({ ...r, units: r.units.slice(0, half), gone: r.gone.slice(0, halfGone) });
      this.publishReport({ ...r, units: r.units.slice(half), gone: r.gone.slice(halfGone) });
      return;
    }
    if (r.full) this.stats.fullReports++;
    else this.stats.reports++;
    try {
      this.opts.bus.publish(
        this.opts.legacySubjects ? this.subj.legacy.report : this.subj.report(this.machineId),
        data,
      );
    } catch (err) {
      if (!isFlotillaError(err, ErrorCode.PayloadTooLarge)) throw err;
      this.stats.oversizeMessages++;
      this.log.error('report too large for the bus', { error: err.message });
    }
  }

  /** Heartbeats every ttl/3, shortened by up to 20 % of jitter so agents do not beat in step. */
  private armHeartbeat(): void {
    const period = (this.ttl / 3) * (0.8 + 0.2 * this.random());
    this.heartbeatTimer = this.clock.setTimeout(() => {
      this.sendHeartbeat();
      this.armHeartbeat();
    }, period);
  }
}

/** At most 10,000 lines per request, whatever is asked. */
const clampLines = (n: number) => Math.max(0, Math.min(10_000, Math.floor(n)));

function desireOf(u: ScheduledUnit): UnitDesire {
  return { target: u.target, hash: u.hash, contents: u.contents };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Starts an agent: opens the driver, adopts the units it already has (no ops), subscribes to the
 * machine's subjects, sends a heartbeat, a full state report, and requests the full schedule.
 * Rejects if the driver cannot be opened or listed.
 */
export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  const agent = new Agent(opts);
  try {
    await agent.start();
  } catch (err) {
    // The start's error is the one to report; a failed clean-up after it is logged.
    await agent.drain().catch((e: unknown) =>
      (opts.log ?? silentLogger).warn('agent clean-up after a failed start failed', {
        error: errMsg(e),
      }),
    );
    throw err;
  }
  return agent;
}
