import type { Glob } from '../unit/glob';
import { SchedulerIndexes } from './indexes';
import type { MachineRec, UnitRec, Verdict } from './records';
import { FITS, formatMetadata, isGlobalActive, machineIdMatches } from './records';
import { hasSorted, lowerBound } from './sorted';

/**
 * fleet's placement constraints, read from the indexes: may unit `u` be on machine `m`
 * (MachineID, MachineMetadata, MachineOf, Conflicts both ways, Replaces), and why not.
 */
export abstract class SchedulerConstraints extends SchedulerIndexes {
  /** Units evicted in this plan → the units that evicted them, transitively (cycle guard). */
  protected readonly evictedBy = new Map<string, Set<string>>();
  /** Set by evaluate() when a machine refused a unit only because of this plan's evictions. */
  protected blockedByPlan = false;

  // ------------------------------------------------------------------ constraints

  /** MachineID and MachineMetadata: what a machine is, not what it holds. */
  protected staticOk(u: UnitRec, m: MachineRec): boolean {
    if (u.req.machineId !== undefined && !machineIdMatches(m.id, u.req.machineId)) return false;
    return this.metadataOk(u, m);
  }

  protected metadataOk(u: UnitRec, m: MachineRec): boolean {
    for (const k of u.metaKeys) {
      const have = m.metadata.get(k);
      if (have === undefined || !u.req.metadata[k].includes(have)) return false;
    }
    return true;
  }

  protected staticReason(u: UnitRec, m: MachineRec): string {
    const id = u.req.machineId;
    if (id !== undefined && !machineIdMatches(m.id, id))
      return `MachineID=${id} names another machine`;
    for (const k of u.metaKeys) {
      const have = m.metadata.get(k);
      if (have === undefined || !u.req.metadata[k].includes(have)) {
        return `MachineMetadata ${formatMetadata(u.req.metadata)} not satisfied (${k}=${have ?? '(unset)'})`;
      }
    }
    return 'fits';
  }

  protected noStaticMatch(u: UnitRec): string {
    const parts: string[] = [];
    if (u.req.machineId !== undefined) parts.push(`MachineID=${u.req.machineId}`);
    if (u.metaKeys.length > 0) parts.push(`MachineMetadata ${formatMetadata(u.req.metadata)}`);
    return `no machine satisfies ${parts.join(' and ')}`;
  }

  /**
   * Can `u` be on `m`? For a placed unit this is "may it stay". Checks, in order: MachineID,
   * MachineMetadata, MachineOf, Conflicts both ways, being replaced by a unit there, and
   * replacing units there (which is allowed: they are returned to be evicted).
   */
  protected evaluate(
    u: UnitRec,
    m: MachineRec,
    conflictedBy: readonly string[] = this.conflictPatterns.matching(u.name),
    replacedBy: readonly string[] = this.replacePatterns.matching(u.name),
    staticChecked = false,
  ): Verdict {
    if (!staticChecked && !this.staticOk(u, m))
      return { ok: false, reason: this.staticReason(u, m) };
    for (const p of u.req.machineOf) {
      if (hasSorted(m.residents, p)) continue;
      const pu = this.units.get(p);
      if (pu?.machine !== undefined)
        return { ok: false, reason: `MachineOf peer ${p} is on ${pu.machine}` };
      if (pu && isGlobalActive(pu))
        return { ok: false, reason: `MachineOf peer ${p} does not run on ${m.id}` };
      return { ok: false, reason: `MachineOf peer ${p} is not scheduled` };
    }
    for (const g of u.conflicts) {
      const x = this.firstResident(m, g, u.name);
      if (x !== undefined) return { ok: false, reason: `conflicts with ${x}` };
    }
    let conflicting: string | undefined;
    for (const p of conflictedBy) {
      for (const x of m.conflictHolders.get(p) ?? []) {
        if (x !== u.name && (conflicting === undefined || x < conflicting)) conflicting = x;
      }
    }
    if (conflicting !== undefined) return { ok: false, reason: `conflicts with ${conflicting}` };
    let replacer: string | undefined;
    for (const p of replacedBy) {
      for (const x of m.replaceHolders.get(p) ?? []) {
        if (x === u.name || (replacer !== undefined && x >= replacer)) continue;
        if (!u.replaces.some((g) => g.match(x))) replacer = x; // mutual Replaces are ignored
      }
    }
    if (replacer !== undefined) return { ok: false, reason: `replaced by ${replacer}` };
    if (u.replaces.length === 0) return FITS;
    const evict: string[] = [];
    for (const g of u.replaces) {
      this.eachResident(m, g, u.name, (x) => {
        const xu = this.units.get(x) as UnitRec;
        if (xu.replaces.some((h) => h.match(u.name))) return; // mutual Replaces are ignored
        if (!evict.includes(x)) evict.push(x);
      });
    }
    if (evict.length === 0) return FITS;
    for (const x of evict.sort()) {
      // unitRequirements refuses this combination; kept here so other callers cannot loop.
      if (u.req.machineOf.includes(x)) {
        return { ok: false, reason: `would replace its MachineOf peer ${x}` };
      }
      if ((this.units.get(x) as UnitRec).req.global) {
        return { ok: false, reason: `would replace global unit ${x}, which never moves` };
      }
      if (this.evictedBy.get(u.name)?.has(x)) {
        this.blockedByPlan = true;
        return { ok: false, reason: `would replace ${x}, which replaced it in this plan` };
      }
    }
    return { ok: true, evict };
  }

  /** The smallest resident of `m` other than `self` matching `g`. */
  protected firstResident(m: MachineRec, g: Glob, self: string): string | undefined {
    let found: string | undefined;
    this.eachResident(m, g, self, (x) => {
      found ??= x;
    });
    return found;
  }

  /** Calls `fn` for each resident of `m` other than `self` matching `g`, in name order. */
  protected eachResident(m: MachineRec, g: Glob, self: string, fn: (x: string) => void): void {
    const rs = m.residents;
    if (g.exact) {
      if (g.prefix !== self && hasSorted(rs, g.prefix)) fn(g.prefix);
      return;
    }
    for (let i = lowerBound(rs, g.prefix); i < rs.length && rs[i].startsWith(g.prefix); i++) {
      if (rs[i] !== self && g.match(rs[i])) fn(rs[i]);
    }
  }
}
