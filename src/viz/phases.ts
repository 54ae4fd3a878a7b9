import { inputFromRecord, lifecycleStepper as stepper } from '../engine/lifecycle';
import type { UnitLifecycle } from '../engine/lifecycle';
import type { ClusterState, MachineRecord, UnitRecord } from '../engine/state';
import type { EngineUnitEvent, EngineUnitInput } from '../machines/engine-unit';
import { stateIds } from './graph';

/**
 * Units' states in the engine-unit machine for the visualizer, read from the one lifecycle
 * definition (src/engine/lifecycle.ts): the input a unit's record describes, then the machine's
 * events the fold queued for it, stepped through `engineUnitMachine`.
 *
 * Stepping is memoised. The machine is pure and its transitions read only the context's
 * target, global, placed, lost and observed — never the name — so a lifecycle is one of a few
 * dozen (state, context) pairs, whatever the unit. Each pair is stepped by XState once per
 * distinct event and remembered: counting 100,000 units is then map lookups, not 100,000
 * machine transitions (measured: ~100 µs a unit with XState, under 1 µs here).
 */

interface Node {
  /** A snapshot of this (state, context) pair. */
  readonly snap: UnitLifecycle;
  readonly phase: string;
  readonly next: Map<string, Node>;
}

const nodes = new Map<string, Node>();
const initials = new Map<string, Node>();
/** Snapshots stepped elsewhere (a live engine's) → their node, without re-keying. */
const bySnapshot = new WeakMap<UnitLifecycle, Node>();

function contextKey(c: Omit<EngineUnitInput, 'name'>): string {
  return `${c.target}|${c.global ? 1 : 0}|${c.placed ? 1 : 0}|${c.lost ? 1 : 0}|${c.observed}`;
}

function nodeOf(snap: UnitLifecycle): Node {
  const known = bySnapshot.get(snap);
  if (known) return known;
  const key = `${snap.status}|${JSON.stringify(snap.value)}|${contextKey(snap.context)}`;
  let n = nodes.get(key);
  // The first snapshot seen of a pair stands for all: its name is never read by a transition.
  if (!n) nodes.set(key, (n = { snap, phase: phaseOfValue(snap.value), next: new Map() }));
  bySnapshot.set(snap, n);
  return n;
}

function initialNode(input: EngineUnitInput): Node {
  const key = contextKey(input);
  let n = initials.get(key);
  if (!n) initials.set(key, (n = nodeOf(stepper.initial(input))));
  return n;
}

function eventKey(e: EngineUnitEvent): string {
  switch (e.type) {
    case 'TARGET_SET':
      return `T|${e.target}`;
    case 'SCHEDULED':
      return `S|${e.observed}`;
    case 'UNSCHEDULED':
      return `U|${e.lost ? 1 : 0}|${e.observed}`;
    case 'OBSERVED':
      return `O|${e.observed}`;
    default:
      return e.type;
  }
}

function stepNode(n: Node, e: EngineUnitEvent): Node {
  const k = eventKey(e);
  let m = n.next.get(k);
  if (!m) n.next.set(k, (m = nodeOf(stepper.step(n.snap, e))));
  return m;
}

/**
 * A unit's state in the engine-unit machine in a folded state at any index: its lifecycle as
 * the fold left it (last stepped, plus the events queued since), the same the live leader shows.
 * Reads the record; changes nothing in it.
 */
export function foldedUnitPhase(state: ClusterState, u: UnitRecord): string {
  return nodeOfUnit(state, u).phase;
}

function nodeOfUnit(state: ClusterState, u: UnitRecord): Node {
  const q = u.lifecycleQueue;
  let n = q?.init
    ? initialNode(q.init)
    : u.lifecycle
      ? nodeOf(u.lifecycle)
      : initialNode(inputFromRecord(state, u));
  if (q) for (const e of q.events) n = stepNode(n, e);
  return n;
}

/** The state id of a lifecycle stepped elsewhere (the live engine's), memoised per snapshot. */
export function lifecyclePhase(l: UnitLifecycle): string {
  return nodeOf(l).phase;
}

/** The (first) leaf state id of a snapshot value. */
export function phaseOfValue(value: unknown): string {
  return stateIds(value)[0] ?? String(value);
}

/** A machine's state in the engine-machine machine as the fold knows it (presence). */
export function foldedMachinePhase(m: MachineRecord): string {
  return m.presence;
}

/**
 * Steps every queued lifecycle of a state the visualizer owns (a history's), so that copies of
 * it carry no queues: each unit's lifecycle becomes the memoised snapshot of its (state,
 * context) pair, shared between units (the name in its context is another unit's; nothing the
 * visualizer reads uses it). Never call this on the engine's state.
 */
export function settleLifecycles(state: ClusterState): void {
  for (const u of state.units.values()) {
    if (!u.lifecycleQueue) continue;
    u.lifecycle = nodeOfUnit(state, u).snap;
    u.lifecycleQueue = undefined;
  }
}

/** A unit's state, its lifecycle settled as `settleLifecycles` does (a history's own state only). */
export function settledUnitPhase(state: ClusterState, u: UnitRecord): string {
  if (!u.lifecycleQueue && u.lifecycle) return nodeOf(u.lifecycle).phase;
  const n = nodeOfUnit(state, u);
  u.lifecycle = n.snap;
  u.lifecycleQueue = undefined;
  return n.phase;
}
