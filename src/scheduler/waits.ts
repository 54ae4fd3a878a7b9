import { SchedulerConstraints } from './constraints';
import type { MachineRec, UnitRec } from './records';
import { machineIdMatches } from './records';

/**
 * Units that found no machine, and when to look at them again: a unit waits in a group named by
 * the machines that could ever take it, and only machines changed since it last tried are
 * checked (the sweep), so a waiting unit costs nothing while nothing it could use changes.
 */
export abstract class SchedulerWaits extends SchedulerConstraints {
  /**
   * Units that found no machine, grouped by the machines that could ever take them (any, one
   * MachineID, one metadata signature, or their MachineOf peer's machine). A changed machine only
   * wakes groups it could serve.
   */
  protected readonly waitGroups = new Map<
    string,
    { fits: (m: MachineRec) => boolean; members: Set<UnitRec> }
  >();
  /** Units left waiting with a new reason since the last takeWaits(). */
  protected waited: { unit: string; reason: string }[] = [];

  /** The units plans left waiting with a new reason since the last call (and the reason). */
  takeWaits(): { unit: string; reason: string }[] {
    const w = this.waited;
    this.waited = [];
    return w;
  }

  /**
   * Waiting units can only fit on machines changed since they last tried (every other machine
   * still refuses them for the same reason), so only those machines are checked.
   */
  protected sweep(): void {
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
  protected staticWaitKey(u: UnitRec): string {
    if (u.req.machineId !== undefined) return `id:${u.req.machineId}`;
    if (u.sig) return `sig:${u.sig.key}`;
    return '';
  }

  protected wait(u: UnitRec, reason: string, key: string | null): void {
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

  protected unwait(u: UnitRec): void {
    const key = u.waitKey;
    u.waitKey = undefined;
    if (key === undefined || key === null) return;
    const group = this.waitGroups.get(key);
    if (!group) return;
    group.members.delete(u);
    if (group.members.size === 0) this.waitGroups.delete(key);
  }

  protected groupFits(u: UnitRec, key: string): (m: MachineRec) => boolean {
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
}
