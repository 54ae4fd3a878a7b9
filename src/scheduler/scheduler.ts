/**
 * The incremental scheduler: fleet's placement rules, decided deterministically, at a cost
 * proportional to what changed. Pure: no I/O, no clock, no randomness.
 *
 * The engine feeds it facts (machines joining, leaving or changing metadata; units submitted,
 * changed or destroyed; placements it has committed) and calls {@link Scheduler.plan}, which
 * decides for every unit those facts touched and returns the decisions, already applied to the
 * scheduler's own indexes. See docs/scheduler.md for the design.
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
import { SchedulerConstraints } from './constraints';
import { PlanQueue } from './queue';
import type { MachineRec, UnitRec } from './records';
import {
  compile,
  formatMetadata,
  isGlobalActive,
  machineIdMatches,
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

export class Scheduler extends SchedulerConstraints {
  /** Units marked dirty since the last plan (during a plan, dirty units are in `queue`). */
  private dirtyList: UnitRec[] = [];
  /**
   * Units that found no machine, grouped by the machines that could ever take them (any, one
   * MachineID, one metadata signature, or their MachineOf peer's machine). A changed machine only
   * wakes groups it could serve.
   */
  private readonly waitGroups = new Map<
    string,
    { fits: (m: MachineRec) => boolean; members: Set<UnitRec> }
  >();
  private planId = 0;
  private queue: PlanQueue | undefined;
  private decisions: Decision[] = [];
  /** Units left waiting with a new reason since the last takeWaits(). */
  private waited: { unit: string; reason: string }[] = [];

  /** The units plans left waiting with a new reason since the last call (and the reason). */
  takeWaits(): { unit: string; reason: string }[] {
    const w = this.waited;
    this.waited = [];
    return w;
  }

  // ------------------------------------------------------------------ machines

  /** A machine joined, or its metadata changed: units that no longer fit there are re-decided. */
  upsertMachine(sm: SchedMachine): void {
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
    const u = this.units.get(name);
    if (!u) return;
    this.clearPending(u);
    if (u.machine !== undefined) this.removeResident(this.machine(u.machine), u);
    for (const id of [...(u.globalOn ?? [])]) this.removeResident(this.machine(id), u);
    this.indexUnit(u, false);
    this.units.delete(name);
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
    if (u.machine === machine) return;
    this.clearPending(u);
    if (u.machine !== undefined) this.removeResident(this.machine(u.machine), u);
    u.machine = undefined;
    this.settleOn(u, machine);
    if (u.machine !== undefined) u.note = reason ?? 'placement recorded';
    this.unwait(u);
    this.markDirty(name);
  }

  /**
   * Forgets a unit's placement (the engine committed an unschedule). Idempotent. With `machine`,
   * only a placement on that machine is forgotten.
   */
  unplace(name: string, machine?: string): void {
    const u = this.units.get(name);
    if (!u) return;
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
    return `${name}: waiting: ${u.note}${later}`;
  }

  // ------------------------------------------------------------------ planning

  /**
   * Decides for every unit touched since the last plan (and waiting units a changed machine may
   * now take), applies the decisions to this scheduler and returns them in the order made.
   * Units are decided in name order; a decision may queue others (an evicted unit, followers of
   * a unit that moved), which are decided in turn until nothing is left.
   */
  plan(): Decision[] {
    this.planId++;
    this.decisions = [];
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
    return this.decisions;
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
      this.decide('unschedule', u.name, u.pending.machine, u.pending.reason);
      u.note = u.pending.reason;
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
    if (!wantsPlacement(u)) this.unwait(u);
    else if (!settled) this.tryPlace(u);
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
  }

  /**
   * Waiting units can only fit on machines changed since they last tried (every other machine
   * still refuses them for the same reason), so only those machines are checked.
   */
  private sweep(): void {
    const touched = this.touchedSinceSweep;
    this.touchedSinceSweep = new Map();
    if (touched.size === 0 || this.waitGroups.size === 0) return;
    const changed: Array<{ m: MachineRec; at: number }> = [];
    for (const [id, at] of touched) {
      const m = this.machines.get(id);
      if (m) changed.push({ m, at });
    }
    for (const group of this.waitGroups.values()) {
      const useful = changed.filter((c) => group.fits(c.m));
      if (useful.length === 0) continue;
      for (const u of group.members) {
        if (u.dirty) continue;
        let conflictedBy: readonly string[] | undefined;
        let replacedBy: readonly string[] | undefined;
        for (const { m, at } of useful) {
          if (at <= u.evalClock || !this.staticOk(u, m)) continue;
          conflictedBy ??= this.conflictPatterns.matching(u.name);
          replacedBy ??= this.replacePatterns.matching(u.name);
          if (this.evaluate(u, m, conflictedBy, replacedBy, true).ok) {
            this.markDirty(u.name);
            break;
          }
        }
      }
    }
  }

  /** The wait group of a unit by what the machine must be: its MachineID, its metadata, or any. */
  private staticWaitKey(u: UnitRec): string {
    if (u.req.machineId !== undefined) return `id:${u.req.machineId}`;
    if (u.sig) return `sig:${u.sig.key}`;
    return '';
  }

  private wait(u: UnitRec, reason: string, key: string | null): void {
    this.unwait(u);
    if (u.note !== reason) this.waited.push({ unit: u.name, reason });
    u.note = reason;
    u.evalClock = this.clock;
    u.waitKey = key;
    if (key === null) return;
    let group = this.waitGroups.get(key);
    if (!group) {
      group = { fits: this.groupFits(u, key), members: new Set() };
      this.waitGroups.set(key, group);
    }
    group.members.add(u);
  }

  private unwait(u: UnitRec): void {
    const key = u.waitKey;
    u.waitKey = undefined;
    if (key === undefined || key === null) return;
    const group = this.waitGroups.get(key);
    if (!group) return;
    group.members.delete(u);
    if (group.members.size === 0) this.waitGroups.delete(key);
  }

  private groupFits(u: UnitRec, key: string): (m: MachineRec) => boolean {
    if (key.startsWith('at:')) {
      const at = key.slice(3);
      return (m) => m.id === at;
    }
    if (key.startsWith('id:')) {
      const id = key.slice(3);
      return (m) => machineIdMatches(m.id, id);
    }
    const sg = u.sig;
    if (key.startsWith('sig:') && sg) return (m) => this.sigMatches(sg, m);
    return () => true;
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
    this.removeResident(this.machine(machine), u);
    u.machine = undefined;
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
    const u = this.units.get(name);
    if (!u || u.dirty) return;
    u.dirty = true;
    if (this.queue) this.queue.push(name);
    else this.dirtyList.push(u);
  }
}
