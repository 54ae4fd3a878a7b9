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
  const byMachine = state.reported.get(u.name);
  const reports =
    u.machine === undefined ? byMachine?.values() : [byMachine?.get(u.machine)].filter(isSome);
  return unitMessage({ ...u, global: u.requirements.global }, stateColumn(reports ?? []));
}

const isSome = <T>(x: T | undefined): x is T => x !== undefined;

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

/** A unit's `Unit` message in two encoded parts: their concatenation is the whole message. */
export interface EncodedUnit {
  /** Every field but `options` (the BASIC view). */
  basic: Uint8Array;
  /** The `options` entries (field 2). */
  options: Uint8Array;
}

/**
 * Each unit's `Unit` message, encoded once and kept until an event about the unit is folded
 * (`forget`). Listing 20,000 units is then mostly copying bytes: between two listings, even
 * during a burst, most units have not changed. Cleared when the state is replaced (a new term,
 * a recovery).
 */
export class EncodedUnitViews {
  private readonly bytes = new Map<string, EncodedUnit>();
  private of: ClusterState | undefined;

  /** The unit's encoded view, or undefined when the unit does not exist. */
  get(state: ClusterState, name: string): EncodedUnit | undefined {
    if (state !== this.of) {
      this.bytes.clear();
      this.of = state;
    }
    let b = this.bytes.get(name);
    if (b) return b;
    const u = state.units.get(name);
    if (!u) return undefined;
    const view = unitView(state, u);
    const w = new BinaryWriter();
    for (const o of view.options) UnitOptionCodec.encode(o, w.uint32(18).fork()).join();
    b = { basic: UnitCodec.encode({ ...view, options: [] }).finish(), options: w.finish() };
    this.bytes.set(name, b);
    return b;
  }

  forget(name: string): void {
    this.bytes.delete(name);
  }

  get size(): number {
    return this.bytes.size;
  }
}
