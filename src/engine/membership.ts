import { createActor, type Actor } from 'xstate';
import type { Subscription } from '../bus/types';
import { ErrorCode, errorText, isFlotillaError } from '../errors';
import type { EventBody } from '../events/types';
import { machineJoined, machineLost, withObservations } from '../history/observations';
import { engineMachineMachine } from '../machines/engine-machine';
import {
  checkReplySubject,
  checkSender,
  decodeHeartbeat,
  decodeScheduleRequest,
  decodeStateReport,
  encode,
  type Heartbeat,
  type ScheduleRequest,
  type StateReport,
} from '../protocol';
import { publishResync, publishSchedule } from './agent-subjects';
import type { DesiredSchedule } from './desired';
import { DEFAULT_MASS_LOSS_THRESHOLD, LivenessJudge } from './liveness';
import type { MembershipEffects } from './projections';
import type { EngineContext } from './types';

type MachineActor = Actor<typeof engineMachineMachine>;

/** What membership asks of the rest of the engine. */
export interface MembershipHooks {
  /** Every machine's desired schedule (for nudges and full schedules). */
  readonly desired: DesiredSchedule;
  /** Sends to a machine's agent; an oversize message is logged and counted (Projections.send). */
  send(machine: string, fn: () => void): void;
  /** Runs `fn` once the placement being committed (if any) is in (Engine.afterPlacement). */
  afterPlacement(fn: () => void): void;
  /** Placement may start (every machine resynced, or the TTL passed). */
  settled(): void;
  /** This engine still leads with a valid lease. */
  holdsLease(): boolean;
  /** A write failed and the durable state is not re-read yet: judge no machine. */
  recovering(): boolean;
}

/**
 * Who is in the cluster, as the leader hears it: one actor per machine counting its agent's
 * TTL (src/machines/engine-machine.ts), the agents' messages on the bus (heartbeats, state
 * reports, full schedule requests), the liveness judgement with its mass-loss guard
 * (liveness.ts), and settling: placement starts only once the machines holding units have
 * re-announced themselves after a failover.
 */
export class Membership implements MembershipEffects {
  private readonly actors = new Map<string, MachineActor>();
  /** Machines heard from (heartbeat, report or schedule request) since this term began. */
  private readonly heardFrom = new Set<string>();
  /** Machines whose MachineJoined is appended but not folded yet. */
  private readonly joining = new Set<string>();
  /** Machines whose MachineLost is being committed. */
  private readonly declaring = new Set<string>();
  /** machine -> the last sequence number published to it when its previous heartbeat came. */
  private readonly seqAtHeartbeat = new Map<string, number>();
  private readonly pendingScheduleGets = new Map<
    string,
    { req: ScheduleRequest; respond: (data: Uint8Array) => void }[]
  >();
  private readonly liveness: LivenessJudge;
  readonly ttl: number;
  private readonly grace: number;
  private readonly termStart: number;
  /** The term took over a cluster with history (a failover or restart, not a new cluster). */
  inheritedState = false;
  /** Planning waits until agents had a chance to resync after a failover (see maybeSettle). */
  settled = false;
  /** The leader's own bus connection is up: only then is an agent's silence evidence. */
  hearing = true;
  private readonly subs: Subscription[] = [];
  private unsubStatus: (() => void) | undefined;

  constructor(
    private readonly ctx: EngineContext,
    private readonly hooks: MembershipHooks,
  ) {
    this.ttl = ctx.opts.agentTtlMs ?? 30_000;
    this.grace = ctx.opts.livenessGraceMs ?? this.ttl;
    this.liveness = new LivenessJudge({
      ttlMs: this.ttl,
      threshold: ctx.opts.massLossThreshold ?? DEFAULT_MASS_LOSS_THRESHOLD,
    });
    this.termStart = ctx.clock();
  }

  /**
   * A new term or a recovered store: every machine the scheduler knows gets a fresh actor with a
   * full TTL plus the grace from now. After a failover its agent re-announces itself; only a
   * machine that stays silent is lost.
   */
  install(machines: string[], now: number): void {
    for (const a of this.actors.values()) a.stop();
    this.actors.clear();
    for (const id of machines) {
      this.spawn(id, now, false);
      this.actors.get(id)!.send({ type: 'GRACE', until: now + this.grace });
    }
  }

  // ---------------------------------------------------------------- effects of committed events

  joined(machine: string, time: number): void {
    this.joining.delete(machine);
    const a = this.actors.get(machine);
    if (a) a.send({ type: 'JOINED', now: time });
    else this.spawn(machine, time, false);
    this.answerScheduleGets(machine);
  }

  lost(machine: string): void {
    this.actors.get(machine)?.send({ type: 'LOST' });
  }

  private spawn(id: string, now: number, lost: boolean): void {
    // Expiry (declareLost) is judged after every tick: see judge().
    const machine = engineMachineMachine.provide({
      actions: {
        declareJoined: () => {
          const m = this.ctx.state.machines.get(id);
          if (m)
            this.ctx
              .append(machineJoined(id, m.ip, m.reported))
              .catch((err: unknown) => this.ownWriteFailed('machine joined', err));
        },
      },
    });
    const actor = createActor(machine, { input: { id, ttlMs: this.ttl, now, lost } });
    actor.start();
    this.actors.set(id, actor);
  }

  /** A machine's presence as its actor sees it ('alive', 'suspect', 'lost', …). */
  phase(id: string): string | undefined {
    const a = this.actors.get(id);
    return a ? String(a.getSnapshot().value) : undefined;
  }

  // ---------------------------------------------------------------- the bus

  /** Listens to the agents (heartbeats, reports, schedule requests) and to the bus's status. */
  subscribe(): void {
    const { bus } = this.ctx.opts;
    // When the leader's own connection comes back, agents may have missed deltas and reports:
    // one resync brings everyone up to date (no periodic fleet-wide wake-ups otherwise).
    // While it is down the leader hears no one: no machine is judged (see judge), and
    // once it is back every machine gets a full TTL plus the grace from then.
    let wasDown = false;
    this.unsubStatus = bus.onStatus((status) => {
      const { ctx } = this;
      if (ctx.stopped) return;
      if (status === 'disconnected') {
        if (this.hearing)
          ctx.log.warn('bus connection lost; no machine is judged until it is back');
        wasDown = true;
        this.hearing = false;
        ctx.stats.busDown = 1;
      } else {
        this.hearing = true;
        ctx.stats.busDown = 0;
        if (!wasDown) return;
        wasDown = false;
        ctx.stats.busReconnects++;
        const until = ctx.clock() + this.grace;
        for (const a of this.actors.values()) a.send({ type: 'GRACE', until });
        ctx.log.info('bus connection back; every machine gets a full TTL plus grace', {
          graceMs: this.grace,
        });
        publishResync(ctx.opts, ctx.subj, ctx.epoch);
      }
    });
    // Per-machine subjects (the bus's permissions say who may speak for a machine; the machine
    // a message names must be its subject's), and protocol v1's shared ones for one release.
    const s = this.ctx.subj;
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
    // Requests addressed to this leader by name (agents that check the leader ask only it).
    for (const subject of [
      s.scheduleGetOfAll(this.ctx.opts.machineId),
      s.scheduleGetAll,
      s.legacy.scheduleGet,
    ])
      this.subs.push(
        bus.subscribe(subject, (m) =>
          this.guard('schedule request', () => {
            const req = checkSender(m.subject, decodeScheduleRequest(m.data));
            // The answer goes out with this leader's rights: only to the requester's inbox.
            checkReplySubject(m.reply, s.inbox, req.machine);
            if (m.respond) this.onScheduleGet(req, m.respond);
          }),
        ),
      );
  }

  /**
   * Runs a bus message's handler. A message that breaks the protocol (PROTOCOL_VIOLATION: not
   * JSON, mistyped, speaking for another machine) is logged, counted and dropped; anything else
   * thrown is an engine bug, logged at error with its stack and counted apart. Neither disturbs
   * the engine.
   */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (isFlotillaError(err, ErrorCode.ProtocolViolation)) {
        this.ctx.stats.malformed++;
        this.ctx.log.warn(`dropped malformed ${what}`, { error: err.message });
        return;
      }
      this.ctx.stats.handlerErrors++;
      this.ctx.log.error(`${what} handler failed (engine bug)`, {
        error: errorText(err),
        stack: err instanceof Error ? (err.stack ?? '') : '',
      });
    }
  }

  /**
   * One of the engine's own writes was not committed. The store's failure itself is counted and
   * logged by the commit (appendFailures); this says which write it cost. A stopped engine's
   * refusals are expected and only counted.
   */
  private ownWriteFailed(what: string, err: unknown): void {
    this.ctx.stats.ownWriteFailures++;
    if (this.ctx.stopped) return;
    this.ctx.log.warn(`${what} not committed`, {
      code: isFlotillaError(err) ? err.code : ErrorCode.Internal,
      error: errorText(err),
    });
  }

  private onHeartbeat(h: Heartbeat): void {
    const { ctx } = this;
    const now = ctx.clock();
    const m = ctx.state.machines.get(h.machine);
    const actor = this.actors.get(h.machine);
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
      void ctx
        .append(machineJoined(h.machine, h.ip, h.metadata))
        .catch((err: unknown) => this.ownWriteFailed('machine joined', err))
        .finally(() => this.joining.delete(h.machine));
    }
    actor?.send({ type: 'HEARTBEAT', now });
    // An agent of this epoch still behind a delta published before its previous heartbeat
    // missed it on the wire (core NATS drops what is published while a connection is down); it
    // would only notice with the next change. An empty delta with the next number makes it
    // fetch its full schedule. (Deltas sent since the previous heartbeat may simply be in flight.)
    const { desired } = this.hooks;
    const publishedBefore = this.seqAtHeartbeat.get(h.machine);
    this.seqAtHeartbeat.set(h.machine, desired.seqOf(h.machine));
    if (
      h.epoch === ctx.epoch &&
      h.seq !== undefined &&
      publishedBefore !== undefined &&
      h.seq < publishedBefore
    ) {
      ctx.stats.nudges++;
      publishSchedule(ctx.opts, ctx.subj, h.machine, encode(desired.nudge(h.machine)));
    }
    this.maybeSettle();
  }

  private onReport(r: StateReport): void {
    const { state } = this.ctx;
    const bodies: EventBody[] = [];
    const seen = new Set<string>();
    for (const s of r.units) {
      seen.add(s.unit);
      const prev = state.reported.get(s.unit)?.get(r.machine);
      const rec = {
        load: s.load,
        active: s.active,
        sub: s.sub,
        hash: s.hash,
        ...(s.mainPid ? { mainPid: s.mainPid } : {}),
        ...(s.result ? { result: s.result } : {}),
        ...(s.exitStatus !== undefined ? { exitStatus: s.exitStatus } : {}),
        ...(s.starts ? { starts: s.starts } : {}),
      };
      if (!prev || !sameRecord(prev as unknown as Record<string, unknown>, rec)) {
        bodies.push({ type: 'UnitStateReported', unit: s.unit, machine: r.machine, state: rec });
      }
    }
    const gone = new Set(r.gone);
    if (r.full) {
      for (const [unit, byMachine] of state.reported)
        if (byMachine.has(r.machine) && !seen.has(unit)) gone.add(unit);
    }
    for (const unit of [...gone].sort()) {
      if (state.reported.get(unit)?.has(r.machine))
        bodies.push({ type: 'UnitStateReported', unit, machine: r.machine, state: null });
    }
    if (bodies.length > 0)
      void this.ctx
        .append(
          withObservations(
            bodies,
            (u, m) => this.ctx.state.reported.get(u)?.get(m),
            (u) => this.ctx.state.units.get(u)?.target,
          ),
        )
        .catch((err: unknown) => this.ownWriteFailed('state report', err));
    this.heardFrom.add(r.machine);
    this.actors.get(r.machine)?.send({ type: 'HEARTBEAT', now: this.ctx.clock() });
  }

  private onScheduleGet(req: ScheduleRequest, respond: (d: Uint8Array) => void): void {
    // A leader past its lease stays silent: the agent asks again (and the new leader answers).
    if (!this.hooks.holdsLease()) return;
    const { machine } = req;
    this.heardFrom.add(machine);
    const m = this.ctx.state.machines.get(machine);
    if (m && m.presence === 'alive' && this.actors.has(machine)) {
      this.hooks.afterPlacement(() => this.answerScheduleGet(req, respond));
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
    const { desired } = this.hooks;
    const full = req.paged
      ? desired.fullPage(req.machine, req.after, this.ctx.opts.bus.maxPayload)
      : desired.full(req.machine);
    this.hooks.send(req.machine, () => respond(encode(full)));
  }

  private answerScheduleGets(machine: string): void {
    const waiting = this.pendingScheduleGets.get(machine);
    if (!waiting) return;
    this.pendingScheduleGets.delete(machine);
    // Answer after this commit's effects (desired schedule) are computed, and after the
    // placement they lead to is committed (see Engine.afterPlacement).
    queueMicrotask(() =>
      this.hooks.afterPlacement(() => {
        for (const w of waiting) this.answerScheduleGet(w.req, w.respond);
      }),
    );
  }

  // ---------------------------------------------------------------- settling

  /**
   * Placement starts once every machine that holds units has re-announced itself since the term
   * began, or one agent TTL has passed (then the silent ones are lost, by their actors).
   */
  maybeSettle(): void {
    if (this.settled) return;
    // Machines that joined after the last snapshot are not in the restored state (presence is
    // transient): give every agent the time to answer the resync before placing anything, or
    // the first machine to answer would get every waiting unit.
    if (this.inheritedState && this.ctx.clock() - this.termStart < this.settleGraceMs()) return;
    for (const [id, a] of this.actors) {
      if (a.getSnapshot().value === 'lost') continue;
      // Heard from in this term, and its announcement (address, metadata) folded.
      if (!this.heardFrom.has(id) || this.joining.has(id)) return;
      if (this.ctx.state.machines.get(id)?.presence !== 'alive') return;
    }
    this.settle('every machine resynced');
  }

  /** How long a new term waits for agents to answer its resync (they heartbeat at once). */
  settleGraceMs(): number {
    return Math.min(this.ttl / 3, 2000);
  }

  settle(why: string): void {
    if (this.settled) return;
    this.settled = true;
    this.ctx.log.info('settled; placement starts', { why });
    this.hooks.settled();
  }

  // ---------------------------------------------------------------- liveness

  /** A tick of the engine's timer: time counts against machines only while the leader hears. */
  tick(now: number): void {
    if (!this.hearing || this.hooks.recovering()) return;
    for (const id of [...this.actors.keys()].sort())
      this.actors.get(id)!.send({ type: 'TICK', now });
    this.judge(now);
  }

  /**
   * Declares lost the machines whose TTL passed, unless the mass-loss guard holds (see
   * liveness.ts). Called after every tick while the leader hears, and on the operator's resume.
   */
  judge(now: number): void {
    const { ctx } = this;
    if (ctx.stopped || !this.hearing || this.hooks.recovering()) return;
    const phases = new Map<string, string>();
    for (const [id, a] of this.actors) phases.set(id, String(a.getSnapshot().value));
    const v = this.liveness.judge(now, phases, this.declaring);
    if (v.held) {
      ctx.stats.reschedulingHolds++;
      ctx.stats.reschedulingHeld = 1;
      const reason =
        `${v.held.atRisk} of ${v.held.population} machines silent or lost within one agent TTL ` +
        `(more than the mass-loss threshold): the leader suspects itself or the network; ` +
        `rescheduling is held until machines are heard again or an operator resumes it`;
      ctx.log.error('rescheduling held', { machines: v.held.machines.join(','), reason });
      ctx
        .append([{ type: 'ReschedulingHeld', machines: v.held.machines, reason }])
        .catch((err: unknown) => this.ownWriteFailed('rescheduling held', err));
    }
    if (v.resumed) {
      ctx.stats.reschedulingHeld = 0;
      const reason =
        v.resumed === 'operator' ? 'resumed by an operator' : 'enough machines heard again';
      ctx.log.warn('rescheduling resumed', { reason, declaring: v.declare.join(',') });
      ctx
        .append([{ type: 'ReschedulingResumed', reason }])
        .catch((err: unknown) => this.ownWriteFailed('rescheduling resumed', err));
    }
    if (v.declare.length === 0) return;
    for (const id of v.declare) this.declaring.add(id);
    ctx
      .append(
        v.declare.flatMap((machine) => machineLost(machine, `no heartbeat for ${this.ttl} ms`)),
      )
      .then(() => (ctx.stats.machinesLost += v.declare.length))
      .catch((err: unknown) => this.ownWriteFailed('machine lost', err))
      .finally(() => {
        for (const id of v.declare) this.declaring.delete(id);
      });
  }

  /** The mass-loss guard's hold: the machines held, or undefined when not holding. */
  get hold(): { machines: string[]; atRisk: number; population: number } | undefined {
    return this.liveness.held;
  }

  /** The operator's word: the held machines are declared lost now. False when nothing was held. */
  resume(): boolean {
    if (!this.liveness.resume()) return false;
    this.judge(this.ctx.clock());
    return true;
  }

  /** Stops listening and every actor. */
  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.unsubStatus?.();
    for (const a of this.actors.values()) a.stop();
  }
}

function sameRecord(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
