import { assign, setup } from 'xstate';

/**
 * The leader's view of one machine's presence: alive → suspect → lost after the agent TTL.
 * Time arrives in events (HEARTBEAT and TICK carry `now`); the machine never reads a clock.
 * When the TTL has passed it tells the engine (`declareLost`) and waits in `expiring` until the
 * engine commits MachineLost (LOST); a heartbeat in between cancels it. Whether and when an
 * expiring machine is declared lost is the engine's judgement (src/engine/liveness.ts: never
 * while the leader cannot hear, held when too many go at once). GRACE gives the machine a full
 * TTL from a later moment (the leader hears again after an outage, a new term, a recovered
 * store) and cancels an expiry: silence the leader could not have heard is no evidence.
 * Presence changes are themselves events (MachineJoined / MachineLost).
 */
export interface EngineMachineContext {
  id: string;
  ttlMs: number;
  lastSeen: number;
}

export type EngineMachineEvent =
  | { type: 'HEARTBEAT'; now: number }
  | { type: 'TICK'; now: number }
  /** The TTL counts from `until` at the earliest (an expiry not yet committed is cancelled). */
  | { type: 'GRACE'; until: number }
  | { type: 'JOINED'; now: number }
  | { type: 'LOST' };

export const engineMachineMachine = setup({
  types: {
    context: {} as EngineMachineContext,
    events: {} as EngineMachineEvent,
    input: {} as { id: string; ttlMs: number; now: number; lost?: boolean },
  },
  actions: {
    /** Provided by the engine: the TTL passed; the engine judges whether to append MachineLost. */
    declareLost: () => undefined,
    /** Provided by the engine: append MachineJoined (a lost machine came back). */
    declareJoined: () => undefined,
    extend: assign({
      lastSeen: ({ context, event }) =>
        event.type === 'GRACE' ? Math.max(context.lastSeen, event.until) : context.lastSeen,
    }),
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
        GRACE: { actions: 'extend' },
        TICK: [
          { guard: 'expired', target: 'expiring' },
          { guard: 'late', target: 'suspect' },
        ],
        LOST: 'lost',
      },
    },
    suspect: {
      on: {
        GRACE: { target: 'alive', actions: 'extend' },
        HEARTBEAT: { target: 'alive', actions: assign({ lastSeen: ({ event }) => event.now }) },
        TICK: { guard: 'expired', target: 'expiring' },
        LOST: 'lost',
      },
    },
    expiring: {
      entry: 'declareLost',
      on: {
        GRACE: { target: 'alive', actions: 'extend' },
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
