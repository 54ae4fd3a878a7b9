import type { Unit } from '../gen/flotilla/v1/flotilla';
import { Unit as UnitCodec } from '../gen/flotilla/v1/flotilla';
import type { ClusterState, UnitRecord } from './state';

/** A unit as the API shows it (GetUnit, ListUnits). */
export function unitView(state: ClusterState, u: UnitRecord): Unit {
  return {
    name: u.name,
    options: u.options,
    hash: u.hash,
    targetState: u.target,
    targetMachine: u.machine ?? '',
    global: u.requirements.global,
    description: u.description,
    currentState: currentState(state, u),
  };
}

const RUNNING = new Set(['active', 'reloading', 'deactivating']);

/**
 * fleet's STATE column: what the unit's agents report, as a target-state word. A unit that is
 * still stopping counts as launched, one still starting as loaded: waiting for "loaded" after a
 * stop must mean stopped, waiting for "launched" must mean running.
 */
export function currentState(state: ClusterState, u: UnitRecord): string {
  const byMachine = state.reported.get(u.name);
  if (!byMachine || byMachine.size === 0) return 'inactive';
  if (u.machine !== undefined) {
    const s = byMachine.get(u.machine);
    if (!s) return 'inactive';
    return RUNNING.has(s.active) ? 'launched' : s.load === 'loaded' ? 'loaded' : 'inactive';
  }
  let allRunning = true;
  let allLoaded = true;
  for (const s of byMachine.values()) {
    allRunning &&= RUNNING.has(s.active);
    allLoaded &&= s.load === 'loaded';
  }
  return allRunning ? 'launched' : allLoaded ? 'loaded' : 'inactive';
}

/**
 * Each unit's `Unit` message, encoded once and kept until an event about the unit is folded
 * (`forget`). Listing 20,000 units is then mostly copying bytes: between two listings, even
 * during a burst, most units have not changed. Cleared when the state is replaced (a new term,
 * a recovery).
 */
export class EncodedUnitViews {
  private readonly bytes = new Map<string, Uint8Array>();
  private of: ClusterState | undefined;

  /** The unit's encoded view, or undefined when the unit does not exist. */
  get(state: ClusterState, name: string): Uint8Array | undefined {
    if (state !== this.of) {
      this.bytes.clear();
      this.of = state;
    }
    let b = this.bytes.get(name);
    if (b) return b;
    const u = state.units.get(name);
    if (!u) return undefined;
    b = UnitCodec.encode(unitView(state, u)).finish();
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
