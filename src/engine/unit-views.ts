import type { UnitRuntimeState } from '../events/types';
import type { Unit } from '../gen/flotilla/v1/flotilla';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { UnitOption as UnitOptionCodec, Unit as UnitCodec } from '../gen/flotilla/v1/flotilla';
import type { TargetState, UnitOption } from '../unit/types';
import type { ClusterState, UnitRecord } from './state';

/** What the API shows of a unit, wherever the unit is kept. */
export interface UnitFields {
  name: string;
  options: UnitOption[];
  hash: string;
  target: TargetState;
  machine?: string;
  global: boolean;
  description: string;
}

/** The API's `Unit` message of a unit and its STATE column. */
export function unitMessage(u: UnitFields, currentState: string): Unit {
  return {
    name: u.name,
    options: u.options,
    hash: u.hash,
    targetState: u.target,
    targetMachine: u.machine ?? '',
    global: u.global,
    description: u.description,
    currentState,
  };
}

/** A unit of the state as the API shows it (GetUnit, ListUnits). */
export function unitView(state: ClusterState, u: UnitRecord): Unit {
  const reports = [...liveReports(state, u.name)]
    .filter(([machine]) => u.machine === undefined || machine === u.machine)
    .map(([, s]) => s);
  return unitMessage({ ...u, global: u.requirements.global }, stateColumn(reports));
}

/**
 * What the machines that are not lost report of a unit, by machine. A lost machine's reports
 * stay in the state (the machine may come back still running them) but no view shows them: in
 * fleet a machine's unit states expired with its TTL, and a unit that moved away from a dead
 * machine must not be listed on it as well.
 */
export function* liveReports(
  state: ClusterState,
  unit: string,
): Iterable<[machine: string, state: UnitRuntimeState]> {
  const byMachine = state.reported.get(unit);
  if (!byMachine) return;
  for (const entry of byMachine) {
    if (state.machines.get(entry[0])?.presence !== 'lost') yield entry;
  }
}

const RUNNING = new Set(['active', 'reloading', 'deactivating']);

/**
 * fleet's STATE column from the reports that count (the placed machine's, or every machine's
 * for a global unit), as a target-state word. A unit that is still stopping counts as launched,
 * one still starting as loaded: waiting for "loaded" after a stop must mean stopped, waiting for
 * "launched" must mean running.
 */
export function stateColumn(reports: Iterable<UnitRuntimeState>): string {
  let any = false;
  let allRunning = true;
  let allLoaded = true;
  for (const s of reports) {
    any = true;
    allRunning &&= RUNNING.has(s.active);
    allLoaded &&= s.load === 'loaded';
  }
  if (!any) return 'inactive';
  return allRunning ? 'launched' : allLoaded ? 'loaded' : 'inactive';
}

/**
 * A unit's `Unit` message in encoded parts; their concatenation (fields in any order, as
 * protobuf allows) is the whole message.
 */
export interface EncodedUnit {
  /** What changes only with the unit's file: name, hash, global, description. */
  file: Uint8Array;
  /** The `options` entries (field 2): left out of the BASIC view. */
  options: Uint8Array;
  /** What changes as the unit runs: target state, target machine, current state. */
  status: Uint8Array;
}

const NO_FIELDS: Unit = {
  name: '',
  options: [],
  hash: '',
  targetState: '',
  targetMachine: '',
  global: false,
  description: '',
  currentState: '',
};

/**
 * Each unit's `Unit` message, encoded once and kept until an event about the unit is folded.
 * The parts that come from its file are kept until the file changes (`forgetFile`), the part
 * that changes as it runs until any event about it (`forget`): listing 20,000 units is then
 * mostly copying bytes, and during a burst, when most units change every few hundred
 * milliseconds, only the small status part is encoded again. Cleared when the state is
 * replaced (a new term, a recovery).
 */
export class EncodedUnitViews {
  private readonly files = new Map<string, { file: Uint8Array; options: Uint8Array }>();
  private readonly statuses = new Map<string, Uint8Array>();
  private of: ClusterState | undefined;

  /** The unit's encoded view, or undefined when the unit does not exist. */
  get(state: ClusterState, name: string): EncodedUnit | undefined {
    if (state !== this.of) {
      this.files.clear();
      this.statuses.clear();
      this.of = state;
    }
    const u = state.units.get(name);
    if (!u) return undefined;
    let view: Unit | undefined;
    let f = this.files.get(name);
    if (!f) {
      view = unitView(state, u);
      const w = new BinaryWriter();
      for (const o of view.options) UnitOptionCodec.encode(o, w.uint32(18).fork()).join();
      const { name: n, hash, global, description } = view;
      f = {
        file: UnitCodec.encode({ ...NO_FIELDS, name: n, hash, global, description }).finish(),
        options: w.finish(),
      };
      this.files.set(name, f);
    }
    let status = this.statuses.get(name);
    if (!status) {
      view ??= unitView(state, u);
      const { targetState, targetMachine, currentState } = view;
      status = UnitCodec.encode({
        ...NO_FIELDS,
        targetState,
        targetMachine,
        currentState,
      }).finish();
      this.statuses.set(name, status);
    }
    return { ...f, status };
  }

  /** Something about the unit's status changed (placement, target, reports). */
  forget(name: string): void {
    this.statuses.delete(name);
  }

  /** A machine was lost or came back: every unit's status part may change. */
  forgetStatuses(): void {
    this.statuses.clear();
  }

  /** The unit's file changed, or the unit is gone. */
  forgetFile(name: string): void {
    this.files.delete(name);
    this.statuses.delete(name);
  }

  get size(): number {
    return this.files.size;
  }
}
