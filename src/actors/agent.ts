/**
 * The agent actor: wires the agent machine and one unit actor per local unit to a Bus, a Driver
 * and the protocol. Everything that decides lives in src/machines/agent.ts and agent-unit.ts;
 * this file only does what their named actions say and turns the outside world into events.
 *
 * Contract:
 * - subscribes only to `agent.<machine>.schedule`, `agent.<machine>.rpc` and `agents.resync`
 *   (with `leaderCheck`: `agent.<machine>.schedule.*`, `agent.<machine>.rpc.*` and
 *   `agents.resync.*`, whose last token names the sender), and publishes only on subjects that carry its machine ID (a secured bus
 *   allows no other);
 * - with `leaderCheck`, acts only on the leader of the current epoch (`setLeader`): anything
 *   else is refused, logged and counted (`stats.notFromLeader`);
 * - never stops or starts a unit because the control plane is unhealthy: NATS down or no leader
 *   means "degraded", and units stay as they are; drain() leaves them running too;
 * - malformed messages are logged, counted (`stats.malformed`) and dropped, never thrown.
 *
 * The jobs live in small modules: schedule intake and the leader check (agent-schedule.ts),
 * hosting the unit actors (agent-units.ts), heartbeats and reports (agent-outbox.ts, with
 * agent-reporter.ts batching), status/journal requests (agent-rpc.ts, agent-journal.ts), driver
 * op batching (agent-batcher.ts); the public types are in agent-types.ts. This file wires them
 * to one agent machine and runs start and drain.
 */
import { createActor, type Actor } from 'xstate';
import type { Subscription } from '../bus/types';
import type { DriverOp, DriverOpResult } from '../drivers/driver';
import { type Clock, type Logger, type TimerHandle, realClock, silentLogger } from '../runtime';
import { type AgentMachine, type AgentStateValue, agentMachine } from '../machines/agent';
import type { AgentUnitStateValue } from '../machines/agent-unit';
import {
  type ScheduleDelta,
  type ScheduleFull,
  type Subjects,
  ProtocolError,
  subjects,
} from '../protocol';
import { OpBatcher } from './agent-batcher';
import { Outbox } from './agent-outbox';
import { Reporter } from './agent-reporter';
import { AgentRpc } from './agent-rpc';
import { ScheduleIntake } from './agent-schedule';
import {
  type AgentHandle,
  type AgentOptions,
  type AgentStats,
  type AgentUnitView,
  type KnownLeader,
  errMsg,
  newAgentStats,
} from './agent-types';
import { UnitHost } from './agent-units';

export type {
  AgentHandle,
  AgentOptions,
  AgentStats,
  AgentUnitView,
  KnownLeader,
} from './agent-types';

class Agent implements AgentHandle {
  readonly machineId: string;
  readonly stats: AgentStats = newAgentStats();
  readonly actor: Actor<AgentMachine>;

  private readonly subj: Subjects;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly batcher: OpBatcher;
  private readonly reporter: Reporter;
  private readonly outbox: Outbox;
  private readonly intake: ScheduleIntake;
  private readonly rpc: AgentRpc;
  private readonly host: UnitHost;
  private subs: Subscription[] = [];
  private offState: (() => void) | undefined;
  private offStatus: (() => void) | undefined;
  private retryTimer: TimerHandle | undefined;
  private draining: Promise<void> | undefined;
  private metadata: Record<string, string>;

  constructor(private readonly opts: AgentOptions) {
    this.machineId = opts.machineId;
    this.metadata = opts.metadata;
    const subj = (this.subj = subjects(opts.cluster));
    this.clock = opts.clock ?? realClock;
    this.log = opts.log ?? silentLogger;
    const random = opts.random ?? Math.random;
    const { stats, clock, log } = this;

    this.batcher = new OpBatcher({
      apply: (ops) => this.applyBatch(ops),
      deliver: (results) => this.host.deliverResults(results),
    });
    this.outbox = new Outbox({
      machineId: opts.machineId,
      ip: opts.ip,
      bus: opts.bus,
      subj,
      legacySubjects: opts.legacySubjects === true,
      ttlMs: opts.agentTtlMs ?? 30_000,
      random,
      clock,
      log,
      stats,
      metadata: () => this.metadata,
      position: () => this.position(),
    });
    this.reporter = new Reporter({
      machineId: opts.machineId,
      batchMs: opts.reportBatchMs ?? 5,
      clock,
      publish: (r) => this.outbox.report(r),
    });
    this.host = new UnitHost({
      clock,
      log,
      stats,
      reporter: this.reporter,
      requestOp: (op) => this.batcher.push(op),
      unitRetry: opts.unitRetry,
      inspect: opts.inspect,
    });
    this.intake = new ScheduleIntake({
      machineId: opts.machineId,
      bus: opts.bus,
      subj,
      leaderCheck: opts.leaderCheck === true,
      legacySubjects: opts.legacySubjects === true,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
      stats,
      log,
      clock,
      random,
      send: (ev) => this.actor.send(ev),
      appliedEpoch: () => this.actor.getSnapshot().context.epoch,
    });
    this.rpc = new AgentRpc({
      machineId: opts.machineId,
      bus: opts.bus,
      driver: opts.driver,
      clock,
      log,
      stats,
      fromLeader: (subject, epoch, what) => this.intake.fromLeader(subject, epoch, what),
      draining: () => this.draining !== undefined,
    });

    const logic = agentMachine.provide({
      actions: {
        requestFullSchedule: (_, p: { fetchId: number }) => this.intake.requestFull(p.fetchId),
        applyFullSchedule: (_, p: { schedule: ScheduleFull }) => this.host.applyFull(p.schedule),
        applyDeltas: (_, p: { deltas: ScheduleDelta[] }) => {
          for (const d of p.deltas) this.host.applyDelta(d);
        },
        dropDelta: (_, p: { delta: ScheduleDelta; reason: string }) => {
          this.stats.droppedDeltas++;
          this.log.debug('schedule delta dropped', {
            reason: p.reason,
            epoch: p.delta.epoch,
            seq: p.delta.seq,
          });
        },
        sendFullReport: () => this.reporter.full(this.host.reported()),
        sendHeartbeat: () => this.outbox.heartbeat(),
        armRetryTimer: (_, p: { at: number }) => this.armRetry(p.at),
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
    this.offState = driver.onState((s) => this.host.onDriverState(s));
    await driver.open();
    const found = await driver.list();
    this.host.adopt(found);

    const checked = this.opts.leaderCheck === true;
    const { subj } = this;
    this.subs.push(
      bus.subscribe(
        checked ? subj.scheduleFromAny(this.machineId) : subj.schedule(this.machineId),
        (m) => this.guard('schedule', () => this.intake.onSchedule(m.data, m.subject)),
      ),
      bus.subscribe(
        checked ? subj.agentRpcFromAny(this.machineId) : subj.agentRpc(this.machineId),
        (m) => this.guard('rpc', () => this.rpc.handle(m.data, m.respond, m.subject)),
      ),
      bus.subscribe(checked ? subj.resyncFromAny : subj.resync, (m) =>
        this.guard('resync', () => this.intake.onResync(m.data, m.subject)),
      ),
    );
    this.offStatus = bus.onStatus((s) =>
      this.actor.send({ type: s === 'connected' ? 'BUS_CONNECTED' : 'BUS_DISCONNECTED' }),
    );
    this.log.info('agent adopted units', { machine: this.machineId, units: found.length });
    this.actor.send({ type: 'UNITS_ADOPTED', count: found.length });
    this.outbox.startHeartbeats();
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
    return this.host.unitState(unit);
  }

  units(): AgentUnitView[] {
    return this.host.views();
  }

  whenIdle(): Promise<void> {
    return this.batcher.whenIdle();
  }

  setLeader(leader: KnownLeader | undefined): void {
    if (!this.intake.setLeader(leader)) return;
    if (!this.opts.leaderCheck || leader === undefined || this.draining !== undefined) return;
    this.log.info('leader of the current epoch', {
      leader: leader.machine.slice(0, 8),
      epoch: leader.epoch,
    });
    this.intake.noteEpoch(leader.epoch);
    // Whatever the new leader sent before the election's news reached us was refused: ask it
    // for the whole schedule now (its own resync may have come too early, too).
    this.actor.send({ type: 'RESYNC_REQUESTED', epoch: leader.epoch });
  }

  setMetadata(metadata: Record<string, string>): void {
    this.metadata = { ...metadata };
    if (this.draining === undefined) this.outbox.heartbeat();
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
    this.outbox.stopHeartbeats();
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.host.clearTimers();
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.offStatus?.();
    await this.rpc.stop();
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
    this.host.stopAll();
    this.actor.send({ type: 'DRAINED' });
    this.actor.stop();
    this.log.info('agent drained; units left running', { machine: this.machineId });
  }

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

  private async applyBatch(ops: DriverOp[]): Promise<DriverOpResult[]> {
    this.stats.opBatches++;
    this.stats.ops += ops.length;
    return this.opts.driver.apply(ops);
  }

  /** The agent machine's retry timer (full-schedule requests). */
  private armRetry(at: number): void {
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(
      () => {
        this.retryTimer = undefined;
        // As with a unit's retry (agent-units.ts): never deliver a due TICK with a time before
        // it was due.
        this.actor.send({ type: 'TICK', now: Math.max(this.clock.now(), at) });
      },
      Math.max(0, at - this.clock.now()),
    );
  }
}

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
