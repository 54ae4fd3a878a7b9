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
  },
}).createMachine({
  id: 'engineUnit',
  context: ({ input }) => ({ ...input }),
  initial: 'deciding',
  on: {
    TARGET_SET: { target: '.deciding', actions: assign({ target: ({ event }) => event.target }) },
    SCHEDULED: {
      target: '.deciding',
      actions: assign({
        machine: ({ event }) => event.machine,
        reported: undefined,
        lastReason: undefined,
      }),
    },
    UNSCHEDULED: {
      target: '.deciding',
      actions: assign(({ context, event }) =>
        context.machine === event.machine
          ? { machine: undefined, reported: undefined, lastReason: event.reason }
          : {},
      ),
    },
    REPORTED: {
      target: '.deciding',
      actions: assign(({ context, event }) =>
        context.machine === event.machine ? { reported: event.state ?? undefined } : {},
      ),
    },
    DESTROYED: '.destroyed',
  },
  states: {
    // Transient: picks the state that the context describes.
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
