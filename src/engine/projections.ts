import { ErrorCode, isFlotillaError } from '../errors';
import type { EventBody, FlotillaEvent } from '../events/types';
import { unplaceableEvents } from '../history/observations';
import { encode } from '../protocol';
import { Scheduler, type Decision } from '../scheduler';
import { publishSchedule } from './agent-subjects';
import { DesiredSchedule } from './desired';
import { applyEvent } from './fold';
import { lifecycleOf } from './lifecycle';
import { SortedNames } from './sorted-names';
import type { ClusterState } from './state';
import { machineMetadata } from './state';
import type { EngineContext } from './types';

/** What a committed event means for the machines' membership (their actors, see membership.ts). */
export interface MembershipEffects {
  /** A machine's MachineJoined is folded (it is alive, with this address and metadata). */
  joined(machine: string, time: number): void;
  /** A machine's MachineLost is folded. */
  lost(machine: string): void;
}

/**
 * Everything the leader derives from the folded state: the scheduler's indexes, the global
 * units, the desired schedule of every machine (and the deltas published to agents), the unit
 * names in order. One committed event's way, from the fold to its effects, is `fold` then
 * `route`, below; `plan` turns the scheduler's decisions into the events to commit next.
 */
export class Projections {
  scheduler = new Scheduler();
  readonly desired: DesiredSchedule;
  /** Names of global units (they follow machine changes). */
  private readonly globals = new Set<string>();
  private readonly sortedNames = new SortedNames();
  /** The last plan's decisions until their events are routed (`until`: the last one's index). */
  private inFlight: { decisions: Decision[]; until?: number } | undefined;
  /** Index of the last event routed. */
  private routed = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly membership: MembershipEffects,
  ) {
    this.desired = new DesiredSchedule(ctx.epoch, (n) => this.ctx.state.units.get(n));
  }

  /**
   * Rebuilds every projection from `state` (the start of a term, a recovered store). Returns the
   * machines the scheduler knows: alive ones and those still holding placements.
   */
  install(state: ClusterState, publish: boolean): string[] {
    this.sortedNames.reset(state.units.keys());
    this.scheduler = new Scheduler();
    this.inFlight = undefined;
    this.routed = state.index;
    // Machines holding placements are registered even when this state has never seen their
    // agent (it joined after the last snapshot): a placement on an unknown machine would read as
    // "machine lost". Their real metadata arrives with their first heartbeat of the term, and
    // placement waits for that (see Membership.maybeSettle).
    const known = new Set<string>();
    for (const u of state.units.values()) if (u.machine) known.add(u.machine);
    for (const m of state.machines.values()) if (m.presence === 'alive') known.add(m.id);
    const ids = [...known].sort();
    for (const id of ids) {
      const m = state.machines.get(id);
      this.scheduler.upsertMachine({ id, metadata: m ? machineMetadata(m) : {} });
    }
    const names = [...state.units.keys()].sort();
    for (const name of names) {
      const u = state.units.get(name)!;
      this.scheduler.upsertUnit({ name, target: u.target, requirements: u.requirements });
      if (u.machine) this.scheduler.place(name, u.machine);
    }
    this.globals.clear();
    for (const u of state.units.values()) if (u.requirements.global) this.globals.add(u.name);
    // The desired schedule is kept across recoveries, so only real differences are published.
    for (const name of this.desired.units())
      if (!state.units.has(name)) this.desired.set(name, [], null);
    for (const name of names) this.recompute(name);
    if (!publish) this.desired.discard();
    else this.publish();
    return ids;
  }

  /** Folds a committed event into the state: what a write's caller is answered after. */
  fold(e: FlotillaEvent): void {
    applyEvent(this.ctx.state, e);
    if (e.type === 'UnitSubmitted') this.sortedNames.add(e.unit);
    else if (e.type === 'UnitDestroyed') this.sortedNames.remove();
  }

  /**
   * A folded event's effects: the unit's lifecycle, the scheduler's indexes, the machines'
   * actors. Units whose desired schedule may have changed are added to `touched`.
   */
  route(e: FlotillaEvent, touched: Set<string>): void {
    const { state } = this.ctx;
    this.routed = e.index;
    if (this.inFlight?.until !== undefined && e.index >= this.inFlight.until)
      this.inFlight = undefined;
    // Steps the unit's lifecycle through the events the fold queued for it (lifecycle.ts).
    const unit = 'unit' in e ? state.units.get(e.unit) : undefined;
    if (unit) lifecycleOf(state, unit);
    switch (e.type) {
      case 'UnitSubmitted':
      case 'UnitReplaced':
      case 'UnitTargetSet': {
        const u = state.units.get(e.unit);
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
        // The scheduler's decision, committed: only now does it reach its indexes.
        this.scheduler.place(e.unit, e.machine, e.reason);
        touched.add(e.unit);
        return;
      case 'UnitUnscheduled':
        // Like the fold: only a placement on that machine is forgotten.
        this.scheduler.unplace(e.unit, e.machine);
        touched.add(e.unit);
        return;
      case 'MachineJoined':
      case 'MachineMetadataSet': {
        const m = state.machines.get(e.machine);
        if (!m || m.presence !== 'alive') return;
        this.scheduler.upsertMachine({ id: m.id, metadata: machineMetadata(m) });
        if (e.type === 'MachineJoined') this.membership.joined(e.machine, e.time);
        this.touchGlobals(touched);
        return;
      }
      case 'MachineLost':
        this.scheduler.removeMachine(e.machine);
        this.membership.lost(e.machine);
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

  /** Sets where a unit should run now, from its record and the scheduler (globals). */
  recompute(name: string): void {
    const u = this.ctx.state.units.get(name);
    if (!u || u.target === 'inactive') {
      this.desired.set(name, [], null);
      return;
    }
    const entry = { hash: u.hash, target: u.target };
    if (u.requirements.global) this.desired.set(name, this.scheduler.globalMachines(name), entry);
    else this.desired.set(name, u.machine ? [u.machine] : [], entry);
  }

  /**
   * Runs the scheduler: the events its decisions become (UnitScheduled, UnitUnscheduled) and
   * the units left waiting with a new reason (UnitUnplaceable), to be committed. The decisions
   * reach the scheduler's indexes when their events are routed (route); until then no other plan
   * runs (mayPlan), since it would not see them. Not committed: `abandon`.
   */
  plan(): { bodies: EventBody[]; decisions: Decision[] } {
    const decisions = this.scheduler.plan();
    if (decisions.length > 0) this.inFlight = { decisions };
    // Units this plan takes off their machine (machine lost, replaced, conflict) are still
    // placed in the folded state until its events commit; their wait reason is news too.
    const leaving = new Set<string>();
    for (const d of decisions) {
      if (d.kind === 'unschedule') leaving.add(d.unit);
      else leaving.delete(d.unit);
    }
    const waits = unplaceableEvents(this.ctx.state, this.scheduler.takeWaits(), leaving);
    const bodies: EventBody[] = decisions.map((d) =>
      d.kind === 'schedule'
        ? { type: 'UnitScheduled', unit: d.unit, machine: d.machine, reason: d.reason }
        : { type: 'UnitUnscheduled', unit: d.unit, machine: d.machine, reason: d.reason },
    );
    bodies.push(...waits);
    return { bodies, decisions };
  }

  /** No plan's decisions are on their way to the store or to the scheduler's indexes. */
  mayPlan(): boolean {
    return this.inFlight === undefined;
  }

  /** The plan's events are committed up to index `last`: in flight until routed. */
  committedUpTo(decisions: Decision[], last: number): void {
    if (this.inFlight?.decisions !== decisions) return;
    if (this.routed >= last) this.inFlight = undefined;
    else this.inFlight.until = last;
  }

  /** The plan's events were not committed: its units are decided again by the next plan. */
  abandon(decisions: Decision[]): void {
    if (this.inFlight?.decisions !== decisions) return;
    this.inFlight = undefined;
    this.scheduler.abandon(decisions);
  }

  /** Publishes every machine's pending schedule changes, each on its machine's subject only. */
  publish(): void {
    const { opts, subj, stats } = this.ctx;
    // Deltas are cut below the bus's largest message (NATS max_payload, 1 MiB by default).
    for (const { machine, delta } of this.desired.flush(opts.bus.maxPayload)) {
      stats.scheduleMessages++;
      this.send(machine, () => publishSchedule(opts, subj, machine, encode(delta)));
    }
  }

  /**
   * Sends something to a machine's agent; a message above the bus's largest payload is logged
   * with what to do about it and counted, never thrown into the engine. (A full schedule is one
   * message: a machine whose schedule is larger than NATS's max_payload cannot sync until the
   * server's max_payload is raised; its agent keeps running what it has and retries.)
   */
  send(machine: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!isFlotillaError(err, ErrorCode.PayloadTooLarge)) throw err;
      this.ctx.stats.oversizeMessages++;
      this.ctx.log.error('message to agent too large for the bus', {
        machine,
        error: err.message,
      });
    }
  }

  /** Unit names in order, cached until a unit is added or removed (listing pages read it). */
  sortedUnitNames(): string[] {
    return this.sortedNames.all((n) => this.ctx.state.units.has(n));
  }
}
