import { lifecycleOf } from '../engine/lifecycle';
import type { ClusterState, MachineRecord, UnitRecord } from '../engine/state';
import { stateIds } from './graph';

/**
 * A unit's state in the engine-unit machine for a folded state at any index: its lifecycle,
 * stepped by the fold through every event about it (src/engine/lifecycle.ts) — the same the
 * live leader shows.
 */
export function foldedUnitPhase(state: ClusterState, u: UnitRecord): string {
  return phaseOfValue(lifecycleOf(state, u).value);
}

/** The (first) leaf state id of a snapshot value. */
export function phaseOfValue(value: unknown): string {
  return stateIds(value)[0] ?? String(value);
}

/** A machine's state in the engine-machine machine as the fold knows it (presence). */
export function foldedMachinePhase(m: MachineRecord): string {
  return m.presence;
}
