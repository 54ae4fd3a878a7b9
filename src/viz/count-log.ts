import { unitsReportedOn } from '../engine/lifecycle';
import type { ClusterState } from '../engine/state';
import type { FlotillaEvent } from '../events/types';
import { settledUnitPhase } from './phases';
import type { Counts } from './views';

/** Totals are kept every this many events; a count folds at most this many changes. */
const MARK = 1024;
const UNIT = 'engine-unit';
const MACHINE = 'engine-machine';
const PRESENCE_EVENTS = new Set(['MachineJoined', 'MachineUp', 'MachineLost', 'MachineDown']);

/**
 * How many units (and machines) were in each state at every point of a history, without
 * folding the state again: while the history is first folded, each event's changes of state
 * (entity, from, to) are written down, and the totals every MARK events. The counts at any
 * point are the totals at the mark before it plus at most MARK events' changes — what one
 * scrubber move needs, in microseconds whatever the history's length.
 */
export class CountLog {
  private readonly ids = new Map<string, number>();
  private readonly keys: string[] = [];
  /** Each entity's state id now (units by name, machines by '\0' + id). */
  private readonly now = new Map<string, number>();
  private readonly totals: number[] = [];
  /** starts[i]: where event i's changes begin in `changes` (one more entry than events). */
  private readonly starts: number[] = [0];
  /** (from + 1) * STRIDE + (to + 1); -1 is "absent". */
  private readonly changes: number[] = [];
  private readonly marks: number[][] = [];
  private static readonly STRIDE = 1 << 15;

  /** Starts from a folded state (the history's base); its lifecycles get settled. */
  constructor(state: ClusterState) {
    for (const u of state.units.values()) this.set(u.name, UNIT, settledUnitPhase(state, u));
    for (const m of state.machines.values()) this.set('\0' + m.id, MACHINE, m.presence);
    this.changes.length = 0;
    this.marks.push(this.totals.slice());
  }

  /** After the fold applied `e` to `state` (the history's head). */
  record(state: ClusterState, e: FlotillaEvent): void {
    if ('unit' in e) {
      const u = state.units.get(e.unit);
      this.set(e.unit, UNIT, u && settledUnitPhase(state, u));
    } else if ('machine' in e) {
      this.set('\0' + e.machine, MACHINE, state.machines.get(e.machine)?.presence);
      // A machine lost or back: what its units' reports count for changed.
      if (PRESENCE_EVENTS.has(e.type))
        for (const u of unitsReportedOn(state, e.machine))
          this.set(u.name, UNIT, settledUnitPhase(state, u));
    }
    this.starts.push(this.changes.length);
    if ((this.starts.length - 1) % MARK === 0) this.marks.push(this.totals.slice());
  }

  /** The counts after the first `pos` recorded events. */
  countsAt(pos: number): Counts {
    const k = Math.min(Math.floor(pos / MARK), this.marks.length - 1);
    const totals = this.marks[k].slice();
    const S = CountLog.STRIDE;
    for (let i = this.starts[k * MARK]; i < this.starts[pos]; i++) {
      const c = this.changes[i];
      const from = Math.floor(c / S) - 1;
      const to = (c % S) - 1;
      if (from >= 0) totals[from]--;
      if (to >= 0) totals[to] = (totals[to] ?? 0) + 1;
    }
    const out: Counts = { [UNIT]: {}, [MACHINE]: {} };
    totals.forEach((n, id) => {
      if (!n) return;
      const key = this.keys[id];
      const i = key.indexOf('\0');
      out[key.slice(0, i)][key.slice(i + 1)] = n;
    });
    return out;
  }

  private set(entity: string, machine: string, phase: string | undefined): void {
    const to = phase === undefined ? -1 : this.idOf(machine + '\0' + phase);
    const from = this.now.get(entity) ?? -1;
    if (from === to) return;
    if (to < 0) this.now.delete(entity);
    else this.now.set(entity, to);
    if (from >= 0) this.totals[from]--;
    if (to >= 0) this.totals[to] = (this.totals[to] ?? 0) + 1;
    this.changes.push((from + 1) * CountLog.STRIDE + (to + 1));
  }

  private idOf(key: string): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.keys.length;
      this.ids.set(key, id);
      this.keys.push(key);
    }
    return id;
  }
}
