import { LoadIndex } from './load-index';
import { PatternIndex } from './pattern-index';
import type { MachineRec, SigIndex, UnitRec } from './records';
import { addHolder, removeHolder } from './records';
import { insertSorted, removeSorted } from './sorted';

/**
 * At most this many MachineMetadata requirements get their own load-ordered index of matching
 * machines; units with further distinct requirements walk the cluster-wide order instead.
 */
const MAX_SIG_INDEXES = 1024;

/**
 * The scheduler's indexes: units and machines, every machine in (load, ID) order, one such
 * order per MachineMetadata requirement (built on first use), fleet's short machine IDs, the
 * Conflicts= and Replaces= patterns in use and who holds them on each machine, MachineOf
 * followers. Kept up to date as residents come and go; what changed is told to the planner
 * through markDirty (a unit to decide again) and touch (a machine that may now take a waiting
 * unit).
 */
export abstract class SchedulerIndexes {
  protected readonly units = new Map<string, UnitRec>();
  protected readonly machines = new Map<string, MachineRec>();
  /** Every machine in (load, ID) order. */
  protected readonly loads = new LoadIndex<MachineRec>();
  /** First 8 characters of a machine ID → machine IDs (fleet's short ID). */
  protected readonly shortIds = new Map<string, Set<string>>();
  /** MachineMetadata signature → its index. */
  protected readonly sigs = new Map<string, SigIndex>();
  protected builtSigs = 0;
  protected readonly conflictPatterns = new PatternIndex();
  protected readonly replacePatterns = new PatternIndex();
  /** Machine ID → units recorded on it while it is unknown (owed "machine lost"). */
  protected readonly limbo = new Map<string, Set<string>>();
  /** Unit name → units that name it in MachineOf. */
  protected readonly followers = new Map<string, Set<string>>();
  /** Every unit with Global=true, whatever its target. */
  protected readonly globals = new Set<string>();
  /** Machines changed since the last sweep of waiting units, with their `touched` clock. */
  protected touchedSinceSweep = new Map<string, number>();
  protected clock = 0;
  /** Set while a plan's decisions are taken back: nothing is marked or touched then. */
  protected quiet = false;

  /** A unit must be decided again in the next (or the current) plan. */
  protected abstract markDirty(name: string): void;

  protected addResident(m: MachineRec, u: UnitRec): void {
    insertSorted(m.residents, u.name);
    this.setLoad(m);
    for (const g of u.conflicts) addHolder(m.conflictHolders, g.source, u.name);
    for (const g of u.replaces) addHolder(m.replaceHolders, g.source, u.name);
    this.markFollowers(u.name);
  }

  protected removeResident(m: MachineRec, u: UnitRec): void {
    removeSorted(m.residents, u.name);
    this.setLoad(m);
    for (const g of u.conflicts) removeHolder(m.conflictHolders, g.source, u.name);
    for (const g of u.replaces) removeHolder(m.replaceHolders, g.source, u.name);
    u.globalOn?.delete(m.id);
    this.touch(m);
    this.markFollowers(u.name);
  }

  /** Records that `m` changed in a way that may let a waiting unit fit. */
  protected touch(m: MachineRec): void {
    if (this.quiet) return;
    m.touched = ++this.clock;
    this.touchedSinceSweep.set(m.id, m.touched);
  }

  protected setLoad(m: MachineRec): void {
    const n = m.residents.length;
    if (n === m.load) return;
    this.loads.move(m, m.load, n);
    for (const sg of m.sigs) (sg.loads as LoadIndex<MachineRec>).move(m, m.load, n);
    m.load = n;
  }

  protected markFollowers(name: string): void {
    if (this.quiet) return;
    const fs = this.followers.get(name);
    if (fs) for (const f of fs) this.markDirty(f);
  }

  protected machine(id: string): MachineRec {
    return this.machines.get(id) as MachineRec;
  }

  // ------------------------------------------------------------------ candidates

  protected machinesNamed(id: string): MachineRec[] {
    const out = new Set<string>(this.shortIds.get(id) ?? []);
    if (this.machines.has(id)) out.add(id);
    return [...out].map((x) => this.machine(x));
  }

  protected sortByLoad(ms: MachineRec[]): MachineRec[] {
    return ms.sort((a, b) =>
      a.residents.length !== b.residents.length
        ? a.residents.length - b.residents.length
        : a.id < b.id
          ? -1
          : a.id > b.id
            ? 1
            : 0,
    );
  }

  // ------------------------------------------------------------------ indexes

  protected indexUnit(u: UnitRec, add: boolean): void {
    for (const p of u.req.conflicts) {
      if (add) this.conflictPatterns.add(p);
      else this.conflictPatterns.remove(p);
    }
    for (const p of u.req.replaces) {
      if (add) this.replacePatterns.add(p);
      else this.replacePatterns.remove(p);
    }
    for (const p of u.req.machineOf) {
      const fs = this.followers.get(p);
      if (add) {
        if (fs) fs.add(u.name);
        else this.followers.set(p, new Set([u.name]));
      } else if (fs) {
        fs.delete(u.name);
        if (fs.size === 0) this.followers.delete(p);
      }
    }
    if (add && u.req.global) this.globals.add(u.name);
    else this.globals.delete(u.name);
    if (add && !u.req.global && u.metaKeys.length > 0) {
      const key = u.metaKeys
        .map((k) => `${k}=${[...new Set(u.req.metadata[k])].sort().join('|')}`)
        .join(';');
      let sg = this.sigs.get(key);
      if (!sg) {
        sg = { key, metadata: u.req.metadata, keys: u.metaKeys, refs: 0 };
        this.sigs.set(key, sg);
      }
      sg.refs++;
      u.sig = sg;
    } else if (!add && u.sig) {
      const sg = u.sig;
      u.sig = undefined;
      if (--sg.refs > 0) return;
      this.sigs.delete(sg.key);
      if (sg.loads) {
        this.builtSigs--;
        sg.loads.find((m) => {
          m.sigs = m.sigs.filter((x) => x !== sg);
          return false;
        });
      }
    }
  }

  /** True when machine `m` satisfies the signature's metadata. */
  protected sigMatches(sg: SigIndex, m: MachineRec): boolean {
    for (const k of sg.keys) {
      const have = m.metadata.get(k);
      if (have === undefined || !sg.metadata[k].includes(have)) return false;
    }
    return true;
  }

  /** The load order of the machines satisfying `u`'s metadata, built on first use. */
  protected sigLoads(u: UnitRec): LoadIndex<MachineRec> | undefined {
    const sg = u.sig;
    if (!sg) return undefined;
    if (sg.loads) return sg.loads;
    if (this.builtSigs >= MAX_SIG_INDEXES) return undefined;
    this.builtSigs++;
    const loads = new LoadIndex<MachineRec>();
    for (const m of this.machines.values()) {
      if (!this.sigMatches(sg, m)) continue;
      loads.add(m, m.load);
      m.sigs.push(sg);
    }
    sg.loads = loads;
    return loads;
  }

  protected indexMachine(m: MachineRec, add: boolean): void {
    const short = m.id.slice(0, 8);
    const ids = this.shortIds.get(short);
    if (add) {
      if (ids) ids.add(m.id);
      else this.shortIds.set(short, new Set([m.id]));
      for (const sg of this.sigs.values()) {
        if (sg.loads && this.sigMatches(sg, m)) {
          sg.loads.add(m, m.load);
          m.sigs.push(sg);
        }
      }
    } else {
      if (ids) {
        ids.delete(m.id);
        if (ids.size === 0) this.shortIds.delete(short);
      }
      for (const sg of m.sigs) (sg.loads as LoadIndex<MachineRec>).remove(m, m.load);
      m.sigs = [];
    }
  }
}
