import { lifecycleNode, pendingNode } from '../engine/lifecycle';
import type { LifecycleNode, UnitLifecycle } from '../engine/lifecycle';
import type { ClusterState, UnitRecord } from '../engine/state';
import { stateIds } from './graph';

/**
 * Units' states in the engine-unit machine for the visualizer, read from the one lifecycle
 * definition and its one memo (src/engine/lifecycle.ts: `pendingNode`): the lifecycle a unit's
 * record holds, then the machine's events the fold queued for it. Counting 100,000 units is map
 * lookups, not 100,000 machine transitions (measured: ~100 µs a unit with XState, under 1 µs
 * here). The state id of each (state, context) pair is worked out once.
 */

const phases = new WeakMap<LifecycleNode, string>();

function phaseOf(n: LifecycleNode): string {
  let p = phases.get(n);
  if (p === undefined) phases.set(n, (p = phaseOfValue(n.snap.value)));
  return p;
}

/**
 * A unit's state in the engine-unit machine in a folded state at any index: its lifecycle as
 * the fold left it (last stepped, plus the events queued since), the same the live leader shows.
 * Reads the record; changes nothing in it.
 */
export function foldedUnitPhase(state: ClusterState, u: UnitRecord): string {
  return phaseOf(pendingNode(state, u));
}

/** The state id of a lifecycle (a unit's, stepped by anyone), memoised per (state, context). */
export function lifecyclePhase(l: UnitLifecycle): string {
  return phaseOf(lifecycleNode(l));
}

/** The (first) leaf state id of a snapshot value. */
export function phaseOfValue(value: unknown): string {
  return stateIds(value)[0] ?? String(value);
}

/**
 * Steps every queued lifecycle of a state the visualizer owns (a history's), so that copies of
 * it carry no queues: each unit's lifecycle becomes the memoised snapshot of its (state,
 * context) pair, shared between units (the name in its context is another unit's; nothing the
 * visualizer reads uses it). Never call this on the engine's state.
 */
export function settleLifecycles(state: ClusterState): void {
  for (const u of state.units.values()) if (u.lifecycleQueue) settledUnitPhase(state, u);
}

/** A unit's state, its lifecycle settled as `settleLifecycles` does (a history's own state only). */
export function settledUnitPhase(state: ClusterState, u: UnitRecord): string {
  const n = pendingNode(state, u);
  u.lifecycle = n.snap;
  u.lifecycleQueue = undefined;
  return phaseOf(n);
}
