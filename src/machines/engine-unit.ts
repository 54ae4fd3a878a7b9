import { assign, setup } from 'xstate';
import type { UnitRuntimeState } from '../events/types';
import type { TargetState } from '../unit/types';

/**
 * The leader's view of one unit. Pure: it changes only through committed events, which the
 * engine forwards as the events below, so replaying the log replays every actor exactly.
 *
 *   inactive ── target loaded/launched ──► waiting ── scheduled ──► scheduled ──► loaded ──► launched
 *                                             ▲                          │
 *                                             └── rescheduling ◄─ machine lost / unscheduled
 */
export interface EngineUnitContext {
  name: string;
  target: TargetState;
  global: boolean;
  machine?: string;
  /** What the agent on `machine` last reported. */
  reported?: UnitRuntimeState;
  /** Why the unit last left its machine, for status output. */
  lastReason?: string;
}

export type EngineUnitEvent =
  | { type: 'TARGET_SET'; target: TargetState }
  | { type: 'SCHEDULED'; machine: string }
  | { type: 'UNSCHEDULED'; machine: string; reason: string }
  | { type: 'REPORTED'; machine: string; state: UnitRuntimeState | null }
  | { type: 'DESTROYED' };

export interface EngineUnitInput {
  name: string;
  target: TargetState;
  global: boolean;
  machine?: string;
  reported?: UnitRuntimeState;
}

/** The state a unit's context describes. */
export type EngineUnitPhase =
  'global' | 'inactive' | 'waiting' | 'scheduled' | 'loaded' | 'launched';
const PHASES: readonly EngineUnitPhase[] = [
  'global',
  'inactive',
  'waiting',
  'scheduled',
  'loaded',
  'launched',
];

export function phaseOf(c: EngineUnitContext): EngineUnitPhase {
  if (c.global) return 'global';
  if (c.target === 'inactive') return 'inactive';
  if (c.machine === undefined) return 'waiting';
  if (c.reported?.active === 'active') return 'launched';
  if (c.reported?.load === 'loaded') return 'loaded';
  return 'scheduled';
}

/** The context after an event (the one place that says how each event changes it). */
export function nextContext(c: EngineUnitContext, e: EngineUnitEvent): EngineUnitContext {
  switch (e.type) {
    case 'TARGET_SET':
      return { ...c, target: e.target };
    case 'SCHEDULED':
      return { ...c, machine: e.machine, reported: undefined, lastReason: undefined };
    case 'UNSCHEDULED':
      return c.machine === e.machine
        ? { ...c, machine: undefined, reported: undefined, lastReason: e.reason }
        : c;
    case 'REPORTED':
      return c.machine === e.machine ? { ...c, reported: e.state ?? undefined } : c;
    case 'DESTROYED':
      return c;
  }
}

function toPhase() {
  return PHASES.map((phase) => ({
    guard: { type: 'becomes' as const, params: { phase } },
    target: `.${phase}` as const,
    actions: 'apply' as const,
  }));
}

const placed = ({ context }: { context: EngineUnitContext }) => context.machine !== undefined;

export const engineUnitMachine = setup({
  types: {
    context: {} as EngineUnitContext,
    events: {} as EngineUnitEvent,
    input: {} as EngineUnitInput,
  },
  guards: {
    isGlobal: ({ context }) => context.global,
    wantsInactive: ({ context }) => context.target === 'inactive',
    unplaced: ({ context }) => context.machine === undefined,
    reportedActive: ({ context }) => placed({ context }) && context.reported?.active === 'active',
    reportedLoaded: ({ context }) =>
      placed({ context }) && context.reported !== undefined && context.reported.load === 'loaded',
    placed,
    /** True when the event leads to `phase` (evaluated on the context after the event). */
    becomes: ({ context, event }, params: { phase: EngineUnitPhase }) =>
      phaseOf(nextContext(context, event)) === params.phase,
  },
  actions: {
    apply: assign(({ context, event }) => nextContext(context, event)),
  },
}).createMachine({
  id: 'engineUnit',
  context: ({ input }) => ({ ...input }),
  initial: 'deciding',
  // One transition per event, straight to the state the new context describes. An eventless
  // "deciding" hub would cost a second microstep for every event, and this machine steps every
  // unit of the cluster.
  on: {
    TARGET_SET: toPhase(),
    SCHEDULED: toPhase(),
    UNSCHEDULED: toPhase(),
    REPORTED: toPhase(),
    DESTROYED: '.destroyed',
  },
  states: {
    // Only at creation: picks the state the input describes.
    deciding: {
      always: [
        { guard: 'isGlobal', target: 'global' },
        { guard: 'wantsInactive', target: 'inactive' },
        { guard: 'unplaced', target: 'waiting' },
        { guard: 'reportedActive', target: 'launched' },
        { guard: 'reportedLoaded', target: 'loaded' },
        { target: 'scheduled' },
      ],
    },
    /** Known, not placed (target inactive). */
    inactive: {},
    /** Wants a machine; none placed yet (or its machine was lost: see context.lastReason). */
    waiting: {},
    /** Placed; its agent has not reported it loaded yet. */
    scheduled: {},
    loaded: {},
    launched: {},
    /** Runs on every machine whose metadata matches; never placed by the scheduler. */
    global: {},
    destroyed: { type: 'final' },
  },
});
