import { assign, setup } from 'xstate';
import type { TargetState } from '../unit/types';

/**
 * The lifecycle of one unit as the leader sees it: the one definition of "what state is this
 * unit in, and what happens next". The fold steps it with every committed event about the unit
 * (src/engine/lifecycle.ts turns log events into the events below), so the API's STATE column,
 * list-unit-files, fleet's currentState, `flotilla replay` and the visualizer all read this
 * machine's state. Pure: only `assign`.
 *
 *   inactive ─TARGET_SET─► waiting ─SCHEDULED─► scheduled ─OBSERVED─► loaded ─OBSERVED─► launched
 *                            ▲  │UNPLACEABLE                 │                 │          │
 *                            │  ▼                            └──OBSERVED(failed)──► failed ◄┘
 *                       rescheduling ◄─UNSCHEDULED(machine lost)─ any placed state
 *   global: placed by the agents of every matching machine (substates follow what they report)
 *   destroyed: final
 *
 * A unit is in the state of what its machine observes (loaded, launched, failed) for as long as
 * that is observed, even after it was unscheduled: a unit still running on the machine it left
 * is launched until its agent reports it stopped.
 */

/**
 * What the agents that count (the placed machine's, or every machine still reporting the unit
 * when it is unplaced) observe of it, as one word: `none` (nobody reports it), `unloaded`
 * (reported but not loaded), `loaded`, `running` (active, reloading or deactivating) or `failed`.
 */
export type Observed = 'none' | 'unloaded' | 'loaded' | 'running' | 'failed';

export interface EngineUnitContext {
  name: string;
  target: TargetState;
  global: boolean;
  /** Placed on a machine by the scheduler. */
  placed: boolean;
  /** It left its machine because the machine was lost. */
  lost: boolean;
  /** What the agents that count observe of it. */
  observed: Observed;
}

export type EngineUnitEvent =
  | { type: 'TARGET_SET'; target: TargetState }
  | { type: 'SCHEDULED'; observed: Observed }
  | { type: 'UNSCHEDULED'; lost: boolean; observed: Observed }
  | { type: 'OBSERVED'; observed: Observed }
  | { type: 'UNPLACEABLE' }
  | { type: 'DESTROYED' };

/** A unit's record when its actor is made (a restored unit starts in the state it describes). */
export type EngineUnitInput = EngineUnitContext;

type Args = { context: EngineUnitContext; event: EngineUnitEvent };

/**
 * The transitions of an event that carries what the agents observe: to launched, failed or
 * loaded when they observe that, else by the `otherwise` guards (with the same action).
 */
type OtherwiseGuard = 'isPlaced' | 'wantsInactive' | 'wasLost' | 'machineLost';
function byObservation<
  A extends 'observe' | 'place' | 'unplace',
  T extends readonly { guard?: OtherwiseGuard; target: string }[],
>(actions: A, otherwise: T) {
  return [
    { guard: 'observesRunning', target: 'launched', actions },
    { guard: 'observesFailed', target: 'failed', actions },
    { guard: 'observesLoaded', target: 'loaded', actions },
    ...otherwise.map((t) => ({ ...t, actions })),
  ] as const;
}

/** Where a unit goes once what its agents observe changed. */
const settle = byObservation('observe', [
  { guard: 'isPlaced', target: 'scheduled' },
  { guard: 'wantsInactive', target: 'inactive' },
  { guard: 'wasLost', target: 'rescheduling' },
  { target: 'waiting' },
] as const);

/** Where a unit goes when it is placed: what its new machine already observes, if anything. */
const scheduled = byObservation('place', [{ target: 'scheduled' }] as const);

/** Where a unit goes when it leaves its machine: what still observes it, else what it wants. */
const unscheduled = byObservation('unplace', [
  { guard: 'wantsInactive', target: 'inactive' },
  { guard: 'machineLost', target: 'rescheduling' },
  { target: 'waiting' },
] as const);

/** Where a global unit goes once what its machines observe changed. */
const globalSettle = byObservation('observe', [{ target: 'inactive' }] as const);

const placedStateOn = {
  TARGET_SET: { actions: 'setTarget' },
  SCHEDULED: scheduled,
  UNSCHEDULED: unscheduled,
  OBSERVED: settle,
} as const;

const unplacedStateOn = (self: 'waiting' | 'rescheduling') =>
  ({
    TARGET_SET: [
      { guard: 'wantsToRun', actions: 'setTarget' },
      { target: 'inactive', actions: 'setTarget' },
    ],
    SCHEDULED: scheduled,
    UNPLACEABLE: self,
    OBSERVED: settle,
  }) as const;

export const engineUnitMachine = setup({
  types: {
    context: {} as EngineUnitContext,
    events: {} as EngineUnitEvent,
    input: {} as EngineUnitInput,
  },
  guards: {
    isGlobal: ({ context }: Args) => context.global,
    isPlaced: ({ context }: Args) => context.placed,
    wantsInactive: ({ context }: Args) => context.target === 'inactive',
    wasLost: ({ context }: Args) => context.lost,
    machineLost: ({ event }: Args) => event.type === 'UNSCHEDULED' && event.lost,
    observesRunning: ({ event }: Args) => observedBy(event) === 'running',
    observesFailed: ({ event }: Args) => observedBy(event) === 'failed',
    observesLoaded: ({ event }: Args) => observedBy(event) === 'loaded',
    /** The new target is loaded or launched. */
    wantsToRun: ({ event }: Args) => event.type === 'TARGET_SET' && event.target !== 'inactive',
    wantsToRunAgainAfterLoss: ({ context, event }: Args) =>
      context.lost && event.type === 'TARGET_SET' && event.target !== 'inactive',
    /** At creation: what its record says its agents observe. */
    wasRunning: ({ context }: Args) => context.observed === 'running',
    wasFailed: ({ context }: Args) => context.observed === 'failed',
    wasLoaded: ({ context }: Args) => context.observed === 'loaded',
    globalRunning: ({ context }: Args) => context.global && context.observed === 'running',
    globalFailed: ({ context }: Args) => context.global && context.observed === 'failed',
    globalLoaded: ({ context }: Args) => context.global && context.observed === 'loaded',
  },
  actions: {
    setTarget: assign({
      target: ({ event, context }) => (event.type === 'TARGET_SET' ? event.target : context.target),
    }),
    place: assign(({ event, context }) => ({
      placed: true,
      lost: false,
      observed: observedBy(event) ?? context.observed,
    })),
    unplace: assign(({ event }) => ({
      placed: false,
      lost: event.type === 'UNSCHEDULED' && event.lost,
      observed: observedBy(event) ?? 'none',
    })),
    observe: assign({ observed: ({ event, context }) => observedBy(event) ?? context.observed }),
  },
}).createMachine({
  id: 'engineUnit',
  context: ({ input }) => ({ ...input }),
  initial: 'restoring',
  on: {
    DESTROYED: '.destroyed',
  },
  states: {
    /** Only at creation (a unit restored from a snapshot): the state its record describes. */
    restoring: {
      always: [
        { guard: 'globalRunning', target: 'global.launched' },
        { guard: 'globalFailed', target: 'global.failed' },
        { guard: 'globalLoaded', target: 'global.loaded' },
        { guard: 'isGlobal', target: 'global' },
        { guard: 'wasRunning', target: 'launched' },
        { guard: 'wasFailed', target: 'failed' },
        { guard: 'wasLoaded', target: 'loaded' },
        { guard: 'isPlaced', target: 'scheduled' },
        { guard: 'wantsInactive', target: 'inactive' },
        { guard: 'wasLost', target: 'rescheduling' },
        { target: 'waiting' },
      ],
    },
    /** Known, target inactive, nothing runs. */
    inactive: {
      on: {
        TARGET_SET: [
          { guard: 'wantsToRunAgainAfterLoss', target: 'rescheduling', actions: 'setTarget' },
          { guard: 'wantsToRun', target: 'waiting', actions: 'setTarget' },
          { actions: 'setTarget' },
        ],
        SCHEDULED: scheduled,
        OBSERVED: settle,
      },
    },
    /** Wants a machine; the scheduler has not placed it (why: the unit's record). */
    waiting: { on: unplacedStateOn('waiting') },
    /** Its machine was lost; waits for the scheduler to place it again. */
    rescheduling: { on: unplacedStateOn('rescheduling') },
    /** Placed; its agent has not reported it loaded yet. */
    scheduled: { on: placedStateOn },
    /** Its agent reports it loaded, not running. */
    loaded: { on: placedStateOn },
    /** Its agent reports it running. */
    launched: { on: placedStateOn },
    /** Its agent reports it failed (result, exit status: the unit's record). */
    failed: { on: placedStateOn },
    /** Runs on every machine whose metadata matches; never placed by the scheduler. */
    global: {
      initial: 'inactive',
      on: { TARGET_SET: { actions: 'setTarget' } },
      states: {
        inactive: { on: { OBSERVED: globalSettle } },
        loaded: { on: { OBSERVED: globalSettle } },
        launched: { on: { OBSERVED: globalSettle } },
        failed: { on: { OBSERVED: globalSettle } },
      },
    },
    destroyed: { type: 'final' },
  },
});

function observedBy(e: EngineUnitEvent): Observed | undefined {
  return e.type === 'OBSERVED' || e.type === 'UNSCHEDULED' || e.type === 'SCHEDULED'
    ? e.observed
    : undefined;
}
