/**
 * The incremental scheduler: fleet's placement rules, decided deterministically, at a cost
 * proportional to what changed. Pure: no I/O, no clock, no randomness.
 *
 * The engine feeds it facts (machines joining, leaving or changing metadata; units submitted,
 * changed or destroyed; placements it has committed) and calls {@link Scheduler.plan}, which
 * decides for every unit those facts touched and returns the decisions. The decisions touch the
 * scheduler's indexes only once committed: the engine commits them as events, and the committed
 * events are fed back (place, unplace; or {@link Scheduler.commit}); decisions that could not be
 * committed are handed to {@link Scheduler.abandon} and decided again. See docs/scheduler.md.
 *
 * Rules (fleet's, made deterministic):
 * - A unit goes to the least-loaded machine that satisfies every constraint; load counts every
 *   unit on a machine, global units included; ties go to the smallest machine ID.
 * - A placed unit that may stay, stays: no rebalancing, no churn.
 * - `MachineID`: that machine (full ID, or its first 8 characters). `MachineMetadata`: every
 *   key listed must have one of the listed values. `MachineOf`: the machine of the named units.
 * - `Conflicts`: never on a machine holding a unit matching one of its patterns, nor a unit
 *   whose patterns match it. A unit never conflicts with itself.
 * - `Replaces`: the replacing unit never shares a machine with a unit it replaces; when they
 *   meet, the replacing unit stays and the replaced unit is moved ("replaced by ..."). Two units
 *   replacing each other are ignored, as in fleet.
 * - Global units are not placed: they run on every machine whose metadata matches, count in the
 *   load and take part in Conflicts, but never move.
 * - A unit whose machine is lost is rescheduled, unless `MachineID` pins it there: it waits.
 */
import { ErrorCode, FlotillaError } from '../errors';
import { SchedulerWaits } from './waits';
import { PlanQueue } from './queue';
import type { MachineRec, UnitRec } from './records';
import {
  compile,
  formatMetadata,
  isGlobalActive,
  metadataKeys,
  sameRequirements,
  wantsPlacement,
} from './records';
import type { Decision, SchedMachine, SchedUnit } from './types';

export { formatMetadata, machineIdMatches } from './records';

/** How many times one unit may be decided in one plan() before it is left as it is. */
const VISIT_LIMIT = 8;
/**
 * A unit left waiting only because of its plan's own cycle guards (evicted by a unit it would
 * now evict; decided too often) is decided again in the next plan, when those guards start
 * afresh, this many plans in a row at most: enough to settle a chain of Replaces=, few enough
 * that a true cycle does not move units for ever.
 */
const PLAN_RETRIES = 3;

export class Scheduler extends SchedulerWaits {
  /** Units marked dirty since the last plan (during a plan, dirty units are in `queue`). */
  private dirtyList: UnitRec[] = [];
  private planId = 0;
  private queue: PlanQueue | undefined;
  private decisions: Decision[] = [];
  /** How to take back each decision of the current plan (see plan()). */
  private undo: (() => void)[] = [];
  /** Unit → the decisions a plan returned for it, in order, until committed or abandoned. */
  private readonly proposed = new Map<string, Decision[]>();
  /**
   * Facts fed since the last plan, other than that plan's own decisions committed. While none
   * are, committing the decisions leaves exactly the state the plan decided on: nothing needs to
   * be decided again.
   */
  private factsSincePlan = 0;

  // ------------------------------------------------------------------ machines

  /** A machine joined, or its metadata changed: units that no longer fit there are re-decided. */
  upsertMachine(sm: SchedMachine): void {
    this.factsSincePlan++;
    const metadata = new Map(Object.entries(sm.metadata));
    const m = this.machines.get(sm.id);
    if (!m) {
      const rec: MachineRec = {
        id: sm.id,
        metadata,
        residents: [],
        conflictHolders: new Map(),
        replaceHolders: new Map(),
        touched: 0,
        sigs: [],
        load: 0,
      };
      this.machines.set(sm.id, rec);
      this.loads.add(rec, 0);
      this.indexMachine(rec, true);
      for (const g of this.globals) {
        const gu = this.units.get(g) as UnitRec;
        if (isGlobalActive(gu) && this.metadataOk(gu, rec)) this.addGlobalResident(rec, gu);
      }
      // Units recorded on this machine while it was unknown (or lost, not yet re-decided) are
      // back where the engine believes they are: nothing has been decided about them yet.
      for (const name of this.limbo.get(sm.id) ?? []) {
        const u = this.units.get(name) as UnitRec;
        this.clearPending(u);
        this.settleOn(u, sm.id);
        this.markDirty(name);
      }
      this.limbo.delete(sm.id);
      this.touch(rec);
      return;
    }
    if (
      m.metadata.size === metadata.size &&
      [...metadata].every(([k, v]) => m.metadata.get(k) === v)
    ) {
      return;
    }
    this.indexMachine(m, false);
    m.metadata = metadata;
    this.indexMachine(m, true);
    for (const name of m.residents) {
      if (!(this.units.get(name) as UnitRec).req.global) this.markDirty(name);
    }
    for (const g of this.globals) {
      const gu = this.units.get(g) as UnitRec;
      const should = isGlobalActive(gu) && this.metadataOk(gu, m);
      const is = gu.globalOn?.has(m.id) ?? false;
      if (should && !is) this.addGlobalResident(m, gu);
      else if (!should && is) this.removeResident(m, gu);
    }
    this.touch(m);
  }

  /**
   * A machine is lost: its units are re-decided (MachineID-pinned ones are unscheduled and wait).
   * If it comes back before the next plan(), its units are simply still there.
   */
  removeMachine(id: string): void {
    this.factsSincePlan++;
    const m = this.machines.get(id);
    if (!m) return;
    this.indexMachine(m, false);
    this.machines.delete(id);
    this.loads.remove(m, m.load);
    this.touchedSinceSweep.delete(id);
    for (const name of m.residents) {
      const u = this.units.get(name) as UnitRec;
      this.markFollowers(name);
      if (u.req.global) {
        u.globalOn?.delete(id);
        continue;
      }
      u.machine = undefined;
      this.setPending(u, id, 'machine lost');
      this.markDirty(name);
    }
  }

  // ------------------------------------------------------------------ units

  /** A unit was submitted, replaced, or its target state changed. */
  upsertUnit(su: SchedUnit): void {
    this.factsSincePlan++;
    let u = this.units.get(su.name);
    if (u && sameRequirements(u.req, su.requirements)) {
      const wasActive = u.target !== 'inactive';
      u.target = su.target;
      if (wasActive === (su.target !== 'inactive')) return; // loaded <-> launched: same place
    }
    let keepOn: string | undefined;
    if (!u) {
      u = {
        name: su.name,
        target: su.target,
        req: su.requirements,
        conflicts: [],
        replaces: [],
        metaKeys: [],
        dirty: false,
        note: 'not yet planned',
        evalClock: 0,
        visits: 0,
        visitPlan: 0,
      };
      this.units.set(su.name, u);
    } else {
      // Take the unit off its machines with its old requirements, then put it back.
      keepOn = u.machine ?? u.pending?.machine;
      this.clearPending(u);
      if (u.machine !== undefined) this.removeResident(this.machine(u.machine), u);
      for (const id of [...(u.globalOn ?? [])]) this.removeResident(this.machine(id), u);
      this.indexUnit(u, false);
      u.machine = undefined;
    }
    u.target = su.target;
    u.req = su.requirements;
    u.conflicts = compile(su.requirements.conflicts);
    u.replaces = compile(su.requirements.replaces);
    u.metaKeys = metadataKeys(su.requirements.metadata);
    this.indexUnit(u, true);
    if (keepOn !== undefined) this.settleOn(u, keepOn);
    if (isGlobalActive(u)) {
      for (const m of this.machines.values()) {
        if (this.metadataOk(u, m)) this.addGlobalResident(m, u);
      }
    }
    this.unwait(u);
    this.markDirty(u.name);
  }

  /** A unit was destroyed: it leaves its machines; no decision is made for it. */
  removeUnit(name: string): void {
    this.factsSincePlan++;
    const u = this.units.get(name);
    if (!u) return;
    this.clearPending(u);
    if (u.machine !== undefined) this.removeResident(this.machine(u.machine), u);
    for (const id of [...(u.globalOn ?? [])]) this.removeResident(this.machine(id), u);
    this.indexUnit(u, false);
    this.units.delete(name);
    this.proposed.delete(name);
    u.dirty = false;
    this.unwait(u);
    this.markFollowers(name);
  }

  /**
   * Records a placement the engine knows of (a restore, or a committed event). Idempotent.
   * Placing a unit on an unknown machine records it as lost; placing an inactive or global unit
   * records that it must be unscheduled; plan() then says so. `reason` is kept for explain().
   */
  place(name: string, machine: string, reason?: string): void {
    const u = this.units.get(name);
    if (!u) {
      throw new FlotillaError(ErrorCode.UnitNotFound, `cannot place unknown unit ${name}`, {
        details: { unit: name, machine },
      });
    }
    const quiet = this.ownDecision(name, 'schedule', machine);
    this.quiet = quiet;
    try {
      if (u.machine === machine) return;
      this.clearPending(u);
      if (u.machine !== undefined) this.removeResident(this.machine(u.machine), u);
      u.machine = undefined;
      this.settleOn(u, machine);
      // The plan left the unit's note and wait state as it decided (after all its decisions).
      if (quiet) return;
      if (u.machine !== undefined) u.note = reason ?? 'placement recorded';
      this.unwait(u);
      this.markDirty(name);
    } finally {
      this.quiet = false;
    }
  }

  /**
   * Forgets a unit's placement (the engine committed an unschedule). Idempotent. With `machine`,
   * only a placement on that machine is forgotten.
   */
  unplace(name: string, machine?: string): void {
    const u = this.units.get(name);
    if (!u) return;
    this.quiet = this.ownDecision(name, 'unschedule', machine);
    try {
      if (machine !== undefined && u.machine !== machine && u.pending?.machine !== machine) return;
      let changed = false;
      if (u.pending) {
        this.clearPending(u);
        changed = true;
      }
      if (u.machine !== undefined) {
        this.removeResident(this.machine(u.machine), u);
        u.machine = undefined;
        changed = true;
      }
      if (changed) this.markDirty(name);
    } finally {
      this.quiet = false;
    }
  }

  /**
   * Whether a committed placement (or unschedule) is the next decision the last plan returned
   * for the unit, with no other fact fed since that plan: then it changes nothing the plan did
   * not already decide on, and is applied quietly (no unit marked to be decided again). Any
   * other is a fact.
   */
  private ownDecision(name: string, kind: Decision['kind'], machine?: string): boolean {
    const list = this.proposed.get(name);
    const head = list?.[0];
    const own = head?.kind === kind && (machine === undefined || head.machine === machine);
    if (own) {
      list!.shift();
      if (list!.length === 0) this.proposed.delete(name);
    } else {
      this.proposed.delete(name);
      this.factsSincePlan++;
    }
    return own && this.factsSincePlan === 0;
  }

  // ------------------------------------------------------------------ queries

  placementOf(name: string): string | undefined {
    return this.units.get(name)?.machine;
  }

  /** Number of units on a machine (global units included); undefined for unknown machines. */
  loadOf(machine: string): number | undefined {
    return this.machines.get(machine)?.residents.length;
  }

  /** Sorted IDs of the machines an active global unit runs on (metadata match); [] otherwise. */
  globalMachines(name: string): string[] {
    const u = this.units.get(name);
    if (!u || !isGlobalActive(u)) return [];
    return [...(u.globalOn ?? [])].sort();
  }

  /** Units that want a machine and have none, sorted. */
  waitingUnits(): string[] {
    return [...this.units.values()]
      .filter((u) => wantsPlacement(u) && u.machine === undefined)
      .map((u) => u.name)
      .sort();
  }

  /** Why a unit is where it is, or why it waits. */
  explain(name: string): string {
    const u = this.units.get(name);
    if (!u) return `${name}: unknown unit`;
    const later = u.dirty ? ' (changed since the last plan; not yet re-decided)' : '';
    if (u.req.global) {
      if (u.target === 'inactive') return `${name}: global unit, target state inactive${later}`;
      const on = this.globalMachines(name);
      if (on.length === 0) {
        const meta = formatMetadata(u.req.metadata);
        return `${name}: global unit, runs nowhere: ${
          this.machines.size === 0 ? 'no machines' : `no machine satisfies MachineMetadata ${meta}`
        }${later}`;
      }
      return `${name}: global unit, runs on ${on.length} machine(s): ${on.join(', ')}${later}`;
    }
    if (u.target === 'inactive') return `${name}: not scheduled: target state inactive${later}`;
    if (u.machine !== undefined) return `${name}: scheduled on ${u.machine}: ${u.note}${later}`;
    const d = this.proposed.get(name)?.at(-1);
    if (d?.kind === 'schedule')
      return `${name}: being scheduled on ${d.machine} (not committed yet): ${d.reason}${later}`;
    return `${name}: waiting: ${u.note}${later}`;
  }

  // ------------------------------------------------------------------ planning

  /**
   * Decides for every unit touched since the last plan (and waiting units a changed machine may
   * now take) and returns the decisions in the order made. Units are decided in name order; a
   * decision may queue others (an evicted unit, followers of a unit that moved), which are
   * decided in turn until nothing is left.
   *
   * The decisions are not applied: the indexes stay as committed. Each decision is applied while
   * the plan runs (the next one depends on it) and taken back before plan() returns; the
   * committed events apply them (place, unplace, or commit()), or abandon() hands them back to be
   * decided again. Plan again only once the previous plan's decisions are applied or abandoned:
   * a plan does not see decisions still in flight.
   */
  plan(): Decision[] {
    this.planId++;
    this.decisions = [];
    this.undo = [];
    this.evictedBy.clear();
    const names: string[] = [];
    for (const u of this.dirtyList) if (u.dirty && this.units.get(u.name) === u) names.push(u.name);
    this.dirtyList = [];
    const queue = new PlanQueue(names.sort());
    this.queue = queue;
    this.retryNext = [];
    try {
      for (;;) {
        for (let name = queue.pop(); name !== undefined; name = queue.pop()) this.process(name);
        this.sweep();
        if (queue.size === 0) break;
      }
    } finally {
      this.queue = undefined;
    }
    for (const u of this.retryNext) if (u.machine === undefined) this.markDirty(u.name);
    // Take the decisions back, newest first: residents, loads, holders and owed unschedules are
    // as committed again (nothing is marked dirty nor touched meanwhile).
    this.quiet = true;
    try {
      for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]();
    } finally {
      this.quiet = false;
      this.undo = [];
    }
    this.proposed.clear();
    for (const d of this.decisions) {
      const list = this.proposed.get(d.unit);
      if (list) list.push(d);
      else this.proposed.set(d.unit, [d]);
    }
    this.factsSincePlan = 0;
    return this.decisions;
  }

  /** Applies committed decisions, as the committed events do (place, unplace), in order. */
  commit(decisions: readonly Decision[]): void {
    for (const d of decisions) {
      if (d.kind === 'schedule') this.place(d.unit, d.machine, d.reason);
      else this.unplace(d.unit, d.machine);
    }
  }

  /** Decisions that could not be committed: their units are decided again in the next plan. */
  abandon(decisions: readonly Decision[]): void {
    for (const d of decisions) {
      if (!this.proposed.get(d.unit)?.includes(d)) continue;
      this.proposed.delete(d.unit);
      this.factsSincePlan++;
      this.markDirty(d.unit);
    }
  }

  /** Units to decide again in the next plan (see PLAN_RETRIES). */
  private retryNext: UnitRec[] = [];

  /**
   * A unit waits because of this plan's cycle guards only. Nothing else may change afterwards
   * (no machine touched, so no sweep looks at it again): without a retry it would wait for ever
   * while a machine could take it (a unit displaced by Replaces= left active nowhere).
   */
  private retryNextPlan(u: UnitRec): void {
    const n = u.planRetries ?? 0;
    if (n >= PLAN_RETRIES) return;
    u.planRetries = n + 1;
    this.retryNext.push(u);
  }

  private process(name: string): void {
    const u = this.units.get(name);
    if (!u || !u.dirty) return;
    u.dirty = false;
    if (u.visitPlan !== this.planId) {
      u.visitPlan = this.planId;
      u.visits = 0;
    }
    // A unit decided this often in one plan is caught in a cycle; it may still be unscheduled
    // but is not placed again until something else changes.
    const settled = ++u.visits > VISIT_LIMIT;
    if (u.pending) {
      const owed = u.pending;
      this.decide('unschedule', u.name, owed.machine, owed.reason);
      this.undo.push(() => this.setPending(u, owed.machine, owed.reason));
      u.note = owed.reason;
      this.clearPending(u);
    }
    if (u.machine !== undefined) {
      const m = this.machine(u.machine);
      const v = this.evaluate(u, m);
      if (v.ok) {
        for (const x of v.evict) this.evict(x, u.name);
        this.unwait(u);
        return;
      }
      this.unschedule(u, v.reason);
    }
    if (!wantsPlacement(u)) {
      this.unwait(u);
      // Its wait, if it had one, is over: should it wait again for the same reason (loaded
      // again), that reason is news again (takeWaits) rather than taken as already reported.
      if (u.target === 'inactive' && u.machine === undefined) u.note = 'target state inactive';
    } else if (!settled) this.tryPlace(u);
    else {
      this.wait(
        u,
        'its placement kept changing in one plan (a Replaces or MachineOf cycle?)',
        this.staticWaitKey(u),
      );
      this.retryNextPlan(u);
    }
  }

  private tryPlace(u: UnitRec): void {
    const r = u.req;
    const conflictedBy = this.conflictPatterns.matching(u.name);
    const replacedBy = this.replacePatterns.matching(u.name);
    let chosen: { m: MachineRec; evict: readonly string[] } | undefined;
    let fits = 0;
    this.blockedByPlan = false;
    let blocked: { machine: string; reason: string } | undefined;
    const attempt = (m: MachineRec): boolean => {
      if (!this.staticOk(u, m)) return false;
      fits++;
      const v = this.evaluate(u, m, conflictedBy, replacedBy, true);
      if (v.ok) {
        chosen = { m, evict: v.evict };
        return true;
      }
      blocked ??= { machine: m.id, reason: v.reason };
      return false;
    };

    let waitReason: string | undefined;
    let waitKey: string | null = null;
    let placeReason: string | undefined;
    let anchor: string | undefined;
    for (const p of r.machineOf) {
      const pu = this.units.get(p);
      if (!pu) {
        waitReason = `MachineOf peer ${p} does not exist`;
        break;
      }
      if (pu.target === 'inactive' || (!pu.req.global && pu.machine === undefined)) {
        waitReason = `MachineOf peer ${p} is not scheduled`;
        break;
      }
      if (!pu.req.global && anchor === undefined) anchor = p;
    }

    if (waitReason === undefined) {
      waitKey = this.staticWaitKey(u);
      if (this.machines.size === 0) {
        waitReason = 'no machines';
      } else if (anchor !== undefined) {
        const at = (this.units.get(anchor) as UnitRec).machine as string;
        const m = this.machine(at);
        waitKey = `at:${at}`;
        if (attempt(m)) placeReason = `with MachineOf peer ${anchor}`;
        else {
          const why = blocked?.reason ?? this.staticReason(u, m);
          waitReason = `cannot join MachineOf peer ${anchor} on ${at}: ${why}`;
        }
      } else if (r.machineId !== undefined) {
        for (const m of this.sortByLoad(this.machinesNamed(r.machineId))) if (attempt(m)) break;
        if (chosen) placeReason = `MachineID=${r.machineId}`;
        else if (fits === 0) waitReason = this.noStaticMatch(u);
        else {
          const b = blocked as { machine: string; reason: string };
          waitReason = `MachineID=${r.machineId} machine ${b.machine}: ${b.reason}`;
        }
      } else {
        // Units with metadata walk only the machines that satisfy it, in load order.
        (this.sigLoads(u) ?? this.loads).find(attempt);
        if (chosen) {
          const load = chosen.m.residents.length - chosen.evict.length;
          placeReason = `least loaded (${load} unit${load === 1 ? '' : 's'})`;
        } else if (fits === 0) waitReason = this.noStaticMatch(u);
        else {
          const b = blocked as { machine: string; reason: string };
          waitReason = `all ${fits} machine(s) that satisfy its requirements are blocked (first: ${b.machine}: ${b.reason})`;
        }
      }
    }

    if (!chosen || placeReason === undefined) {
      this.wait(u, waitReason ?? 'no machine fits', waitKey);
      if (this.blockedByPlan) this.retryNextPlan(u);
      return;
    }
    u.planRetries = 0;
    const { m, evict } = chosen;
    for (const x of evict) this.evict(x, u.name);
    this.addResident(m, u);
    u.machine = m.id;
    u.note = placeReason;
    this.unwait(u);
    this.decide('schedule', u.name, m.id, placeReason);
    this.undo.push(() => {
      this.removeResident(m, u);
      u.machine = undefined;
    });
  }

  // ------------------------------------------------------------------ effects

  private decide(kind: Decision['kind'], unit: string, machine: string, reason: string): void {
    this.decisions.push({ kind, unit, machine, reason });
  }

  /**
   * Records `u` where the engine believes it is: on the machine if it may be there at all, else
   * as an unschedule decision owed (machine unknown, unit inactive or global).
   */
  private settleOn(u: UnitRec, id: string): void {
    const m = this.machines.get(id);
    if (!m) this.setPending(u, id, 'machine lost');
    else if (!wantsPlacement(u)) {
      this.setPending(u, id, u.target === 'inactive' ? 'target state inactive' : 'unit is global');
    } else {
      this.addResident(m, u);
      u.machine = id;
    }
  }

  private setPending(u: UnitRec, machine: string, reason: string): void {
    this.clearPending(u);
    u.pending = { machine, reason };
    if (!this.machines.has(machine)) {
      const set = this.limbo.get(machine);
      if (set) set.add(u.name);
      else this.limbo.set(machine, new Set([u.name]));
    }
  }

  private clearPending(u: UnitRec): void {
    if (!u.pending) return;
    const set = this.limbo.get(u.pending.machine);
    if (set) {
      set.delete(u.name);
      if (set.size === 0) this.limbo.delete(u.pending.machine);
    }
    u.pending = undefined;
  }

  private unschedule(u: UnitRec, reason: string): void {
    const machine = u.machine as string;
    const m = this.machine(machine);
    this.removeResident(m, u);
    u.machine = undefined;
    this.undo.push(() => {
      this.addResident(m, u);
      u.machine = machine;
    });
    u.note = reason;
    this.decide('unschedule', u.name, machine, reason);
  }

  private evict(name: string, by: string): void {
    const x = this.units.get(name) as UnitRec;
    if (x.machine === undefined) return;
    this.unschedule(x, `replaced by ${by}`);
    this.evictedBy.set(name, new Set([by, ...(this.evictedBy.get(by) ?? [])]));
    this.markDirty(name);
  }

  private addGlobalResident(m: MachineRec, g: UnitRec): void {
    this.addResident(m, g);
    (g.globalOn ??= new Set()).add(m.id);
    // Units already here that now conflict with (or replace) a unit that never moves.
    const affected = (x: string): void => {
      if (x !== g.name && !(this.units.get(x) as UnitRec).req.global) this.markDirty(x);
    };
    for (const p of g.conflicts) this.eachResident(m, p, g.name, affected);
    for (const p of g.replaces) this.eachResident(m, p, g.name, affected);
    for (const p of this.conflictPatterns.matching(g.name))
      m.conflictHolders.get(p)?.forEach(affected);
    for (const p of this.replacePatterns.matching(g.name))
      m.replaceHolders.get(p)?.forEach(affected);
  }

  protected markDirty(name: string): void {
    if (this.quiet) return;
    const u = this.units.get(name);
    if (!u || u.dirty) return;
    u.dirty = true;
    if (this.queue) this.queue.push(name);
    else this.dirtyList.push(u);
  }
}
