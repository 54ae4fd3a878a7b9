import type { DriverUnitState } from '../driver';
import { MANAGER_IFACE, MANAGER_PATH, PROPERTIES_IFACE, UNIT_IFACE, type Signal } from './bus';
import { JobWaiter } from './jobs';
import { unitType } from '../../unit';
import { checkableExecutables, sha1, unitObjectPath } from './unitfile';

/** What the driver knows about one managed unit (a file in the units directory). */
export interface UnitRecord {
  readonly unit: string;
  /** systemd's object path for the unit, computed once. */
  readonly path: string;
  /** SHA-1 of the file in the units directory. */
  hash: string;
  load?: string;
  active?: string;
  sub?: string;
  /** From the type-specific interface (Service.MainPID); 0 when there is no main process. */
  mainPid?: number;
  /** From the type-specific interface (Service.Result, Socket.Result, …). */
  result?: string;
  /** Service.ExecMainStatus: the main process's exit status. */
  exitStatus?: number;
  /** ExecStart= executables to check after a start (checkableExecutables of the file). */
  execPaths: string[];
  /** Whether systemd has the unit in memory (UnitNew … UnitRemoved); undefined: not known yet. */
  inMemory: boolean | undefined;
  /** The last state given to listeners, serialized, to drop duplicates. */
  emitted?: string;
  /** How many PropertiesChanged signals have updated this record (see UnitTracker.mark). */
  signals: number;
}

/** Active states in which a unit may have processes (and so a main PID worth reporting). */
export const RUNNING_STATES: ReadonlySet<string> = new Set([
  'active',
  'reloading',
  'activating',
  'deactivating',
]);

/** Facts about a unit read from a method reply. */
export type UnitFacts = Partial<
  Pick<UnitRecord, 'load' | 'active' | 'sub' | 'mainPid' | 'result' | 'exitStatus'>
>;

export interface TrackerStats {
  /** Signals that concerned a managed unit or an awaited job, and so did work. */
  signalsHandled: number;
  /** States given to onState listeners. */
  statesEmitted: number;
}

/**
 * Follows managed units from systemd's signals, without polling.
 *
 * Signals used:
 * - PropertiesChanged on a unit object. systemd sends the type-specific interface first
 *   (Service: MainPID, Result) and then org.freedesktop.systemd1.Unit (ActiveState, SubState),
 *   and documents that order so clients can treat the pair as one change: the tracker records
 *   the first and emits on the second.
 * - JobRemoved: completes StartUnit/StopUnit calls (see JobWaiter).
 * - UnitNew / UnitRemoved: whether the unit is in systemd's memory (loaded, or garbage-collected
 *   after it went inactive); a unit that is not in memory is not running.
 * - Reloading(false): load states may have changed; the driver refreshes them in one call.
 *
 * Cheapness: a signal for anything else costs one Map lookup by object path (or unit name) and
 * is dropped.
 */
export class UnitTracker {
  readonly jobs = new JobWaiter();
  readonly stats: TrackerStats = { signalsHandled: 0, statesEmitted: 0 };
  private readonly byName = new Map<string, UnitRecord>();
  private readonly byPath = new Map<string, UnitRecord>();
  private readonly listeners = new Set<(s: DriverUnitState) => void>();
  /** Called when systemd finished a daemon reload (anyone's). */
  onReloaded: () => void = () => {};

  /** Starts (or goes on) managing `unit`, whose file now has `contents`. */
  manage(unit: string, contents: string): UnitRecord {
    let rec = this.byName.get(unit);
    if (!rec) {
      rec = {
        unit,
        path: unitObjectPath(unit),
        hash: '',
        execPaths: [],
        inMemory: undefined,
        signals: 0,
      };
      this.byName.set(unit, rec);
      this.byPath.set(rec.path, rec);
    }
    const hash = sha1(contents);
    if (rec.hash !== hash) {
      rec.hash = hash;
      rec.execPaths = unitType(unit) === 'service' ? checkableExecutables(contents) : [];
    }
    return rec;
  }

  forget(unit: string): void {
    const rec = this.byName.get(unit);
    if (!rec) return;
    this.byName.delete(unit);
    this.byPath.delete(rec.path);
  }

  get(unit: string): UnitRecord | undefined {
    return this.byName.get(unit);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  listen(listener: (s: DriverUnitState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  handle(s: Signal): void {
    if (s.member === 'PropertiesChanged' && s.iface === PROPERTIES_IFACE) {
      const rec = this.byPath.get(s.path);
      if (!rec) return;
      this.stats.signalsHandled++;
      this.propertiesChanged(rec, s.body[0] as string, s.body[1] as Record<string, Variantish>);
      return;
    }
    if (s.path !== MANAGER_PATH || s.iface !== MANAGER_IFACE) return;
    switch (s.member) {
      case 'JobRemoved': {
        const [, job, unit, result] = s.body as [number, string, string, string];
        if (this.jobs.isWaiting(job) || (this.byName.has(unit) && this.jobs.capturingResults)) {
          this.stats.signalsHandled++;
          this.jobs.settle(job, result);
        }
        return;
      }
      case 'UnitNew':
      case 'UnitRemoved': {
        const rec = this.byName.get(s.body[0] as string);
        if (!rec) return;
        this.stats.signalsHandled++;
        rec.inMemory = s.member === 'UnitNew';
        return;
      }
      case 'Reloading':
        if (s.body[0] === false) this.onReloaded();
        return;
    }
  }

  /**
   * Where `rec` stands in the signal stream, taken before a method call whose reply will be
   * given to update(): see there.
   */
  mark(rec: UnitRecord): number {
    return rec.signals;
  }

  /**
   * Records facts about a unit read from a method reply and emits its state if it changed.
   * Load state is only known this way: systemd does not send it in PropertiesChanged.
   *
   * `since` (from mark(), taken before the call): if a signal about the unit was handled since,
   * the reply's run-time facts (active, sub, PID, result) are dropped. dbus-next handles the
   * signals that arrive with a reply before the reply's continuation runs, so the reply can be
   * older than the signals, and systemd signals every later change anyway. Without this, a
   * ListUnitsByNames reply read just before a start overwrote the "active" that the start's
   * signals had just brought, and the unit was reported inactive while it ran.
   */
  update(rec: UnitRecord, facts: UnitFacts, emit = true, since?: number): void {
    if (since !== undefined && since !== rec.signals) {
      if (facts.load !== undefined) rec.load = facts.load;
    } else {
      Object.assign(rec, facts);
    }
    if (emit) this.emit(rec);
  }

  /** The state listeners see (and list() returns) for a record. */
  stateOf(rec: UnitRecord): DriverUnitState {
    // A unit whose load state was never read but whose ActiveState moves is loaded: systemd
    // only runs jobs for units it could load.
    const state: DriverUnitState = {
      unit: rec.unit,
      load: rec.load ?? 'loaded',
      active: rec.active ?? 'inactive',
      sub: rec.sub ?? 'dead',
      hash: rec.hash,
    };
    // systemd 252 signals a start in two steps when its dbus queue is flushed mid-start (a job
    // signal flushes the unit's pending one): MainPID already set, ActiveState still
    // "inactive". A unit that is not (de)activating or active has no main process to report.
    if (rec.mainPid !== undefined && rec.mainPid > 0 && RUNNING_STATES.has(state.active))
      state.mainPid = rec.mainPid;
    if (state.active === 'failed' && rec.result) state.result = rec.result;
    if (state.active === 'failed' && rec.exitStatus !== undefined)
      state.exitStatus = rec.exitStatus;
    return state;
  }

  private propertiesChanged(
    rec: UnitRecord,
    iface: string,
    changed: Record<string, Variantish>,
  ): void {
    rec.signals++;
    if (iface !== UNIT_IFACE) {
      // Service/Socket/…: recorded now, emitted with the Unit signal that follows.
      if ('MainPID' in changed) rec.mainPid = Number(changed.MainPID.value);
      if ('Result' in changed) rec.result = String(changed.Result.value);
      if ('ExecMainStatus' in changed) rec.exitStatus = Number(changed.ExecMainStatus.value);
      return;
    }
    rec.inMemory = true;
    if ('ActiveState' in changed) rec.active = String(changed.ActiveState.value);
    if ('SubState' in changed) rec.sub = String(changed.SubState.value);
    if ('LoadState' in changed) rec.load = String(changed.LoadState.value);
    this.emit(rec);
  }

  private emit(rec: UnitRecord): void {
    const state = this.stateOf(rec);
    const key = JSON.stringify(state);
    if (key === rec.emitted) return;
    rec.emitted = key;
    this.stats.statesEmitted++;
    for (const l of [...this.listeners]) {
      try {
        l(state);
      } catch {
        // A listener's bug must not stop the driver from following systemd.
      }
    }
  }
}

interface Variantish {
  value: unknown;
}
