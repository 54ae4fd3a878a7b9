import { engineUnitMachine } from '../machines/engine-unit';
import { pureStepper } from '../machines/pure';
import type { ClusterState, MachineRecord, UnitRecord } from '../engine/state';
import { stateIds } from './graph';

/**
 * A unit's state in the engine-unit machine, for a folded state at any index: the snapshot a
 * leader restored at that index would build for it (its actor is made from the folded unit, as
 * Engine.spawnUnitActor does). The live leader answers from its own actors instead.
 */
const stepper = pureStepper(engineUnitMachine, { name: '', target: 'inactive', global: false });

export function foldedUnitPhase(state: ClusterState, u: UnitRecord): string {
  const snapshot = stepper.initial({
    name: u.name,
    target: u.target,
    global: u.requirements.global,
    machine: u.machine,
    reported: u.machine ? state.reported.get(u.name)?.get(u.machine) : undefined,
  });
  return phaseOfValue(snapshot.value);
}

/** The (first) leaf state id of a snapshot value. */
export function phaseOfValue(value: unknown): string {
  return stateIds(value)[0] ?? String(value);
}

/** A machine's state in the engine-machine machine as the fold knows it (presence). */
export function foldedMachinePhase(m: MachineRecord): string {
  return m.presence;
}
