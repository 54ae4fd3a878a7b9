import type { SnapshotFrom } from 'xstate';
import type { FlotillaEvent, UnitRuntimeState } from '../events/types';
import {
  engineUnitMachine,
  type EngineUnitEvent,
  type EngineUnitInput,
  type Observed,
} from '../machines/engine-unit';
import { pureStepper } from '../machines/pure';
import type { TargetState } from '../unit/types';
import type { ClusterState, UnitRecord } from './state';

/**
 * Each unit's lifecycle: the engine-unit machine (src/machines/engine-unit.ts), stepped by the
 * fold with every committed event about the unit. This module only translates log events into
 * the machine's events; the machine alone says which state a unit is in and what comes next.
 */
export type UnitLifecycle = SnapshotFrom<typeof engineUnitMachine>;

/** Steps lifecycles with one inert scope made once (see machines/pure.ts). */
const stepper = pureStepper(engineUnitMachine, {
  name: '',
  target: 'inactive',
  global: false,
  placed: false,
  lost: false,
  observed: 'none',
});

const RUNNING = new Set(['active', 'reloading', 'deactivating']);

/** The reason the scheduler gives when a unit leaves a machine that was lost. */
export const MACHINE_LOST_REASON = 'machine lost';

/**
 * What the reports that count observe, as one word (see `Observed`): every report running →
 * running; any failed → failed; every one loaded → loaded (a unit still starting counts as
 * loaded, one still stopping as running, so waiting for "loaded" after a stop means stopped).
 */
export function observe(reports: Iterable<UnitRuntimeState>): Observed {
  let any = false;
  let allRunning = true;
  let allLoaded = true;
  let failed = false;
  for (const s of reports) {
    any = true;
    allRunning &&= RUNNING.has(s.active);
    allLoaded &&= s.load === 'loaded';
    failed ||= s.active === 'failed';
  }
  if (!any) return 'none';
  if (allRunning) return 'running';
  if (failed) return 'failed';
  return allLoaded ? 'loaded' : 'unloaded';
}

/**
 * What the machines that are not lost report of a unit, by machine. A lost machine's reports
 * stay in the state (the machine may come back still running them) but count nowhere: in fleet
 * a machine's unit states expired with its TTL, and a unit that moved away from a dead machine
 * must not be listed on it as well.
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

/**
 * What the reports that count observe: the placed machine's, or every machine's when unplaced
 * or global — machines that are not lost only.
 */
export function observedOf(state: ClusterState, u: UnitRecord): Observed {
  const byMachine = state.reported.get(u.name);
  if (!byMachine) return 'none';
  if (u.machine === undefined || u.requirements.global) {
    const live: UnitRuntimeState[] = [];
    for (const [, s] of liveReports(state, u.name)) live.push(s);
    return observe(live);
  }
  const s = byMachine.get(u.machine);
  return s && state.machines.get(u.machine)?.presence !== 'lost' ? observe([s]) : 'none';
}

/**
 * A machine's presence changes (lost, or back): the units its agent reported are observed
 * differently. `before` runs before the fold applies the event (units whose lifecycle was never
 * made get their input as of before it), `after` queues what is observed now.
 */
export function unitsReportedOn(state: ClusterState, machine: string): UnitRecord[] {
  const out: UnitRecord[] = [];
  for (const [unit, byMachine] of state.reported) {
    if (!byMachine.has(machine)) continue;
    const u = state.units.get(unit);
    if (u) out.push(u);
  }
  return out;
}

export function afterPresenceChange(state: ClusterState, units: readonly UnitRecord[]): void {
  for (const u of units) {
    if (state.units.get(u.name) !== u) continue;
    queue(u, { type: 'OBSERVED', observed: observedOf(state, u) });
  }
}

/** A lifecycle made from what is known of a unit (the state the machine starts in for it). */
export function lifecycleFrom(input: EngineUnitInput): UnitLifecycle {
  return stepper.initial(input);
}

/** The API's status fields of a lifecycle: its state and the STATE column derived from it. */
export function statusOf(l: UnitLifecycle): { phase: string; currentState: string } {
  return { phase: phaseName(l), currentState: stateColumn(l, l.context.target) };
}

/** The machine's input for a unit as its record describes it now. */
export function inputFromRecord(state: ClusterState, u: UnitRecord): EngineUnitInput {
  return {
    name: u.name,
    target: u.target,
    global: u.requirements.global,
    placed: u.machine !== undefined && !u.requirements.global,
    lost: !u.requirements.global && u.machine === undefined && u.left === MACHINE_LOST_REASON,
    observed: observedOf(state, u),
  };
}

/** A unit's lifecycle made from its record (a new unit, or one restored from a snapshot). */
export function lifecycleFromRecord(state: ClusterState, u: UnitRecord): UnitLifecycle {
  return stepper.initial(inputFromRecord(state, u));
}

/**
 * The unit's lifecycle, stepped through every event committed about it so far. The fold only
 * queues the machine's events (cheap, on the commit path); they are stepped here, by the
 * engine's effects a few milliseconds at a time, or by whoever reads the lifecycle first.
 */
export function lifecycleOf(state: ClusterState, u: UnitRecord): UnitLifecycle {
  if (!u.lifecycleQueue) return (u.lifecycle ??= lifecycleFromRecord(state, u));
  u.lifecycle = asUnit(pendingNode(state, u).snap, u.name);
  u.lifecycleQueue = undefined;
  return u.lifecycle;
}

/**
 * Where a unit's lifecycle is once the events queued for it are stepped — its lifecycle as last
 * stepped (or made from its input), then the queue — without changing the record: what a reader
 * that must not step the engine's lifecycles (the visualizer, on the live leader) uses.
 */
export function pendingNode(state: ClusterState, u: UnitRecord): LifecycleNode {
  const q = u.lifecycleQueue;
  let n = q?.init
    ? initialNode(q.init)
    : u.lifecycle
      ? lifecycleNode(u.lifecycle)
      : initialNode(inputFromRecord(state, u));
  if (q) for (const e of q.events) n = stepNode(n, e);
  return n;
}

/**
 * One (state, context without the unit's name) pair of the engine-unit machine, and the steps
 * taken from it. A step depends on nothing else (the machine is pure and never reads the name),
 * and units go through the same few dozen pairs over and over: replaying a long log, a burst,
 * or counting 100,000 units for the visualizer steps XState once per distinct step, then looks
 * it up (1,000,000 events, 10,000 units: ~6 s of transitions became a map lookup each). The
 * graph is bounded by the machine: its states × the context's few values × the events' few
 * values.
 */
export interface LifecycleNode {
  /** A snapshot in this pair (of whichever unit reached it first: its name is another's). */
  readonly snap: UnitLifecycle;
  /** Event (as JSON) → the pair it leads to. */
  readonly next: Map<string, LifecycleNode>;
}

const nodes = new Map<string, LifecycleNode>();
const initials = new Map<string, LifecycleNode>();
/** Snapshots already placed (stepped here, or by anyone) → their node, without re-keying. */
const bySnapshot = new WeakMap<UnitLifecycle, LifecycleNode>();

/** The node of a snapshot: its state and its context without the name. */
export function lifecycleNode(l: UnitLifecycle): LifecycleNode {
  const known = bySnapshot.get(l);
  if (known) return known;
  const key = JSON.stringify([l.status, l.value, { ...l.context, name: '' }]);
  let n = nodes.get(key);
  if (!n) nodes.set(key, (n = { snap: l, next: new Map() }));
  bySnapshot.set(l, n);
  return n;
}

/** The node a new lifecycle with `input` starts in. */
export function initialNode(input: EngineUnitInput): LifecycleNode {
  const key = JSON.stringify({ ...input, name: '' });
  let n = initials.get(key);
  if (!n) initials.set(key, (n = lifecycleNode(stepper.initial(input))));
  return n;
}

/** The node `e` leads to from `n` (stepped by XState the first time only). */
export function stepNode(n: LifecycleNode, e: EngineUnitEvent): LifecycleNode {
  const k = JSON.stringify(e);
  let m = n.next.get(k);
  if (!m) n.next.set(k, (m = lifecycleNode(stepper.step(n.snap, e))));
  return m;
}

/** `template`'s state and context as unit `name`'s lifecycle. */
function asUnit(template: UnitLifecycle, name: string): UnitLifecycle {
  if (template.context.name === name) return template;
  const l = engineUnitMachine.resolveState({
    value: template.value,
    context: { ...template.context, name },
  }) as UnitLifecycle;
  bySnapshot.set(l, lifecycleNode(template));
  return l;
}

/** `l` stepped through `events`, as `stepper.step` one by one would (a property test checks). */
export function stepAll(l: UnitLifecycle, events: readonly EngineUnitEvent[]): UnitLifecycle {
  if (events.length === 0) return l;
  let n = lifecycleNode(l);
  for (const e of events) n = stepNode(n, e);
  return asUnit(n.snap, l.context.name);
}

/** What the fold knew of a unit before it applied an event about it. */
export interface UnitBefore {
  machine: string | undefined;
  global: boolean;
  observed: Observed;
}

/**
 * Called by the fold before it applies an event about `u`. A unit whose lifecycle was never
 * made (restored from a snapshot and not read since) gets the input its record describes now,
 * before the event, for the event to be stepped from.
 */
export function beforeUnitEvent(state: ClusterState, u: UnitRecord): UnitBefore {
  const observed = observedOf(state, u);
  if (!u.lifecycle && !u.lifecycleQueue)
    u.lifecycleQueue = { init: inputFromRecord(state, u), events: [] };
  return { machine: u.machine, global: u.requirements.global, observed };
}

/** Before a machine's presence may change: see `unitsReportedOn`. */
export function beforePresenceChange(state: ClusterState, machine: string): UnitRecord[] {
  const units = unitsReportedOn(state, machine);
  for (const u of units) beforeUnitEvent(state, u);
  return units;
}

function queue(u: UnitRecord, e: EngineUnitEvent): void {
  if (u.lifecycleQueue) u.lifecycleQueue.events.push(e);
  else u.lifecycleQueue = { events: [e] };
}

/** Queues the lifecycle event of the unit `e` is about, after the fold applied `e`. */
export function stepLifecycle(state: ClusterState, e: FlotillaEvent, before: UnitBefore): void {
  if (!('unit' in e)) return;
  const u = state.units.get(e.unit);
  if (!u) return;
  switch (e.type) {
    case 'UnitSubmitted':
      u.lifecycle = undefined;
      u.lifecycleQueue = { init: inputFromRecord(state, u), events: [] };
      return;
    case 'UnitReplaced':
      // A unit that became (or stopped being) global is another lifecycle: made anew.
      if (before.global !== u.requirements.global) {
        u.lifecycle = undefined;
        u.lifecycleQueue = { init: inputFromRecord(state, u), events: [] };
      }
      return;
    case 'UnitTargetSet':
      return queue(u, { type: 'TARGET_SET', target: e.target });
    case 'UnitScheduled':
      if (!u.requirements.global) queue(u, { type: 'SCHEDULED', observed: observedOf(state, u) });
      return;
    case 'UnitUnscheduled':
      if (before.machine === e.machine && !u.requirements.global)
        queue(u, {
          type: 'UNSCHEDULED',
          lost: e.reason === MACHINE_LOST_REASON,
          observed: observedOf(state, u),
        });
      return;
    case 'UnitUnplaceable':
      return queue(u, { type: 'UNPLACEABLE' });
    case 'UnitStateReported':
    case 'UnitObserved': {
      const now = observedOf(state, u);
      if (now !== before.observed) queue(u, { type: 'OBSERVED', observed: now });
      return;
    }
    case 'UnitDestroyed':
      return;
  }
}

/** The lifecycle's state as one word: `launched`, `waiting`, … (`global` for a global unit). */
export function phaseName(l: UnitLifecycle): string {
  if (l.status === 'done') return 'destroyed';
  return typeof l.value === 'string' ? l.value : 'global';
}

/** A global unit's substate (what its machines observe), else undefined. */
function globalState(l: UnitLifecycle): string | undefined {
  return typeof l.value === 'object' ? String(Object.values(l.value)[0]) : undefined;
}

/**
 * fleet's STATE column (and `currentState`) of a lifecycle, as a target-state word: launched
 * once its agent started it (still when it failed after that: fleet's rule; `flotilla start`
 * then reports the failure), loaded, or inactive.
 */
export function stateColumn(l: UnitLifecycle, target: TargetState): string {
  const s = globalState(l) ?? phaseName(l);
  switch (s) {
    case 'launched':
      return 'launched';
    case 'failed':
      return target === 'launched' ? 'launched' : 'loaded';
    case 'loaded':
      return 'loaded';
    default:
      return 'inactive';
  }
}
