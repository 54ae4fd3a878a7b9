import type { EventBody, UnitRuntimeState } from '../events/types';
import type { TargetState } from '../unit/types';
import type { ClusterState } from '../engine/state';

/**
 * Which facts from the machines become durable history. Agents report every change they see
 * (`UnitStateReported`, transient: it drives the leader and is rebuilt from the agents after a
 * failover); the durable log records only the milestones of a unit's life on a machine, so a
 * 20,000-unit burst adds one durable event per unit (active), not one per report:
 *
 * - what it observes changed class: loaded (not running), active, failed, inactive/unloaded, gone
 *   (activating, deactivating and reloading are steps on the way and are not recorded; nor is
 *   the first load, on its machine, of a unit meant to run: the step before activating. Where it
 *   was placed is the log's UnitScheduled, and a load that fails is recorded, as unloaded);
 * - still active, with another main PID (it was restarted);
 * - still failed, with another result or exit status (it failed again differently).
 *
 * A machine's arrival and loss are recorded as `MachineUp` and `MachineDown` next to their
 * transient counterparts, and the scheduler's reason for a unit it cannot place as
 * `UnitUnplaceable` when it changes.
 */
export type ObservedClass = 'gone' | 'unloaded' | 'loaded' | 'active' | 'failed' | 'transitional';

export function observedClass(s: UnitRuntimeState | null | undefined): ObservedClass {
  if (!s) return 'gone';
  switch (s.active) {
    case 'active':
      return 'active';
    case 'failed':
      return 'failed';
    case 'activating':
    case 'deactivating':
    case 'reloading':
      return 'transitional';
    default:
      return s.load === 'loaded' ? 'loaded' : 'unloaded';
  }
}

/** A reported state as the log keeps it: without the agent's start count (transient). */
function durable(s: UnitRuntimeState | null): UnitRuntimeState | null {
  if (s?.starts === undefined) return s;
  const { starts: _starts, ...rest } = s;
  return rest;
}

/**
 * True when an agent's report (after `prev`) is a milestone worth a durable UnitObserved;
 * `target` is the unit's target state (a unit meant to run passes through loaded on its way).
 */
export function isMilestone(
  prev: UnitRuntimeState | undefined,
  next: UnitRuntimeState | null,
  target?: TargetState,
): boolean {
  const to = observedClass(next);
  if (to === 'transitional') return false;
  if (to === 'gone') return prev !== undefined;
  if (to === 'loaded' && prev === undefined && target === 'launched') return false;
  const from = observedClass(prev);
  if (from !== to) return true;
  if (to === 'active') return prev?.mainPid !== next?.mainPid;
  if (to === 'failed')
    return prev?.result !== next?.result || prev?.exitStatus !== next?.exitStatus;
  return false;
}

/**
 * The durable records to commit with an agent's report events: after each `UnitStateReported`
 * that is a milestone, a `UnitObserved` with the same state. `prevOf` is what the leader held
 * before the report, `targetOf` the unit's target state.
 */
export function withObservations(
  bodies: EventBody[],
  prevOf: (unit: string, machine: string) => UnitRuntimeState | undefined,
  targetOf: (unit: string) => TargetState | undefined = () => undefined,
): EventBody[] {
  const out: EventBody[] = [];
  for (const b of bodies) {
    out.push(b);
    if (
      b.type === 'UnitStateReported' &&
      isMilestone(prevOf(b.unit, b.machine), b.state, targetOf(b.unit))
    )
      out.push({ type: 'UnitObserved', unit: b.unit, machine: b.machine, state: durable(b.state) });
  }
  return out;
}

/** A machine joined: the transient event the engine acts on, and its durable record. */
export function machineJoined(
  machine: string,
  ip: string,
  metadata: Record<string, string>,
): EventBody[] {
  return [
    { type: 'MachineJoined', machine, ip, metadata },
    { type: 'MachineUp', machine, ip, metadata },
  ];
}

/** A machine was lost: the transient event the engine acts on, and its durable record. */
export function machineLost(machine: string, reason: string): EventBody[] {
  return [
    { type: 'MachineLost', machine, reason },
    { type: 'MachineDown', machine, reason },
  ];
}

/**
 * `UnitUnplaceable` for each unit the scheduler left waiting with a reason its record does not
 * hold yet (a reason is recorded once, not at every plan; a new leader's first plan repeats
 * none it restored).
 */
export function unplaceableEvents(
  state: ClusterState,
  waits: Iterable<{ unit: string; reason: string }>,
  leaving: ReadonlySet<string> = new Set(),
): EventBody[] {
  const out: EventBody[] = [];
  const seen = new Map<string, string>();
  for (const w of waits) seen.set(w.unit, w.reason);
  for (const [unit, reason] of seen) {
    const u = state.units.get(unit);
    const unplaced = u?.machine === undefined || leaving.has(unit);
    if (u && unplaced && u.target !== 'inactive' && u.why !== reason)
      out.push({ type: 'UnitUnplaceable', unit, reason });
  }
  return out;
}
