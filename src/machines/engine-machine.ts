import { assign, setup } from 'xstate';

/**
 * The leader's view of one machine's presence: alive → suspect → lost after the agent TTL.
 * Time arrives in events (HEARTBEAT and TICK carry `now`); the machine never reads a clock.
 * When the TTL has passed it asks the engine to declare the machine lost (`declareLost`) and
 * waits in `expiring` until the engine commits MachineLost (LOST); a heartbeat in between
 * cancels it. Presence changes are themselves events (MachineJoined / MachineLost).
 */
export interface EngineMachineContext {
  id: string;
  ttlMs: number;
  lastSeen: number;
}

export type EngineMachineEvent =
  | { type: 'HEARTBEAT'; now: number }
  | { type: 'TICK'; now: number }
  | { type: 'JOINED'; now: number }
  | { type: 'LOST' };

export const engineMachineMachine = setup({
  types: {
    context: {} as EngineMachineContext,
    events: {} as EngineMachineEvent,
    input: {} as { id: string; ttlMs: number; now: number; lost?: boolean },
  },
  actions: {
    /** Provided by the engine: append MachineLost for this machine. */
    declareLost: () => undefined,
    /** Provided by the engine: append MachineJoined (a lost machine came back). */
    declareJoined: () => undefined,
  },
  guards: {
    late: ({ context, event }) =>
      event.type === 'TICK' && event.now - context.lastSeen > context.ttlMs / 2,
    expired: ({ context, event }) =>
      event.type === 'TICK' && event.now - context.lastSeen > context.ttlMs,
    startsLost: ({ context }) => context.lastSeen < 0,
  },
}).createMachine({
  id: 'engineMachine',
  context: ({ input }) => ({
    id: input.id,
    ttlMs: input.ttlMs,
    lastSeen: input.lost ? -1 : input.now,
  }),
  initial: 'init',
  on: {
    HEARTBEAT: { actions: assign({ lastSeen: ({ event }) => (event as { now: number }).now }) },
  },
  states: {
    init: { always: [{ guard: 'startsLost', target: 'lost' }, { target: 'alive' }] },
    alive: {
      on: {
        TICK: [
          { guard: 'expired', target: 'expiring' },
          { guard: 'late', target: 'suspect' },
        ],
        LOST: 'lost',
      },
    },
    suspect: {
      on: {
        HEARTBEAT: { target: 'alive', actions: assign({ lastSeen: ({ event }) => event.now }) },
        TICK: { guard: 'expired', target: 'expiring' },
        LOST: 'lost',
      },
    },
    expiring: {
      entry: 'declareLost',
      on: {
        HEARTBEAT: { target: 'alive', actions: assign({ lastSeen: ({ event }) => event.now }) },
        LOST: 'lost',
      },
    },
    lost: {
      on: {
        HEARTBEAT: {
          target: 'rejoining',
          actions: assign({ lastSeen: ({ event }) => event.now }),
        },
        JOINED: { target: 'alive', actions: assign({ lastSeen: ({ event }) => event.now }) },
      },
    },
    rejoining: {
      entry: 'declareJoined',
      on: {
        JOINED: { target: 'alive', actions: assign({ lastSeen: ({ event }) => event.now }) },
        LOST: 'lost',
      },
    },
  },
});
