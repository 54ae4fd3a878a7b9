/**
 * The agent machine: one per daemon. Pure — it decides, the agent actor (src/actors/agent.ts)
 * does. It owns the schedule's position (epoch, seq) and the rules that keep a machine's schedule
 * exact over a lossy bus (core NATS drops what is published while a connection is down):
 *
 * - a delta is applied only if `epoch == current && seq == last + 1`;
 * - a gap or a new epoch makes the agent fetch its full schedule (`engine.schedule.get`);
 * - deltas that arrive while the fetch is in flight are held and applied after it, when they
 *   continue the full schedule's `seq`;
 * - deltas from an older epoch (a deposed leader) and duplicates are dropped.
 *
 *   connecting ──UNITS_ADOPTED──► syncing ──FULL_SCHEDULE_RECEIVED──► ready
 *                                   │ ▲                                  │
 *     FULL_SCHEDULE_FAILED,         │ └── gap / new epoch / RESYNC ──────┘
 *     BUS_DISCONNECTED              ▼                                     │ BUS_DISCONNECTED
 *                                degraded ◄───────────────────────────────┘
 *                (units keep running; BUS_CONNECTED, TICK past retryAt, RESYNC or a delta → syncing)
 *   any ──DRAIN──► draining ──DRAINED──► stopped
 *
 * Degraded never stops anything: an unhealthy control plane is not a reason to touch units.
 * A full StateReport is owed after start, a lost connection, resync and failed requests; it is
 * sent when the full-schedule reply arrives (the leader is then known to be up and subscribed).
 * It is owed from the moment the connection drops, whatever the state: reports published while
 * it was down are lost, and the reconnect may be noticed only after the first message of the
 * new connection (a delta, a reply) has already moved the machine on.
 * Time and randomness come in events (`now`, `jitter`), so transitions are deterministic.
 */
import { assign, enqueueActions, setup } from 'xstate';
import { backoffDelay } from './backoff';
import type { ScheduleDelta, ScheduleFull } from '../protocol/messages';

export interface SyncRetryPolicy {
  /** First retry delay after a failed full-schedule request (default 500 ms). */
  baseMs: number;
  /** Longest delay (default 30 000 ms). */
  maxMs: number;
}

export const DEFAULT_SYNC_RETRY: SyncRetryPolicy = { baseMs: 500, maxMs: 30_000 };

/** Deltas held while a full schedule is being fetched; more than this and the oldest go (the
 * full schedule then shows a gap and is fetched again). */
export const MAX_PENDING_DELTAS = 1000;

export interface AgentContext {
  machineId: string;
  /** Epoch of the schedule applied (0: none yet). */
  epoch: number;
  /** Sequence number of the last delta applied (or the full schedule's `seq`). */
  seq: number;
  /** Id of the current full-schedule request; replies to older requests are ignored. */
  fetchId: number;
  /** Consecutive failed full-schedule requests. */
  fetchFailures: number;
  /** When to retry the full-schedule request (ms since epoch), null when not waiting. */
  retryAt: number | null;
  busUp: boolean;
  /**
   * A full StateReport is owed (after start, reconnect, resync or a failed request). It is sent
   * when the full-schedule reply arrives: that reply proves the leader is up and subscribed, so
   * the report is not published into a void while the leader is still (re)connecting.
   */
  reportOwed: boolean;
  /** Deltas received while syncing, applied after the full schedule if they continue it. */
  pending: ScheduleDelta[];
  lastError: string | null;
  retry: SyncRetryPolicy;
}

export interface AgentInput {
  machineId: string;
  retry?: Partial<SyncRetryPolicy>;
}

export type AgentEvent =
  /** The driver is open and the units it already had are adopted. */
  | { type: 'UNITS_ADOPTED'; count: number }
  /** A valid delta arrived on `agent.<machine>.schedule`. */
  | { type: 'SCHEDULE_RECEIVED'; delta: ScheduleDelta }
  /** The reply to full-schedule request `fetchId`. */
  | { type: 'FULL_SCHEDULE_RECEIVED'; fetchId: number; schedule: ScheduleFull }
  /** Full-schedule request `fetchId` failed (no responders, timeout, malformed reply). */
  | { type: 'FULL_SCHEDULE_FAILED'; fetchId: number; error: string; now: number; jitter: number }
  /** A new leader asks every agent for its full state (`agents.resync`). */
  | { type: 'RESYNC_REQUESTED'; epoch: number }
  | { type: 'BUS_CONNECTED' }
  | { type: 'BUS_DISCONNECTED' }
  | { type: 'TICK'; now: number }
  | { type: 'DRAIN' }
  | { type: 'DRAINED' };

export type DropReason = 'stale-epoch' | 'duplicate';

/** What to do with held deltas once full schedule `full` is applied (pure). */
export function planAfterFull(
  full: { epoch: number; seq: number },
  pending: readonly ScheduleDelta[],
): { apply: ScheduleDelta[]; seq: number; gap: boolean } {
  const sorted = [...pending].sort((a, b) => a.epoch - b.epoch || a.seq - b.seq);
  const apply: ScheduleDelta[] = [];
  let seq = full.seq;
  let gap = false;
  for (const d of sorted) {
    if (d.epoch < full.epoch || (d.epoch === full.epoch && d.seq <= seq)) continue;
    if (d.epoch === full.epoch && d.seq === seq + 1) {
      apply.push(d);
      seq = d.seq;
      continue;
    }
    gap = true;
    break;
  }
  return { apply, seq, gap };
}

const isNext = (c: AgentContext, d: ScheduleDelta) => d.epoch === c.epoch && d.seq === c.seq + 1;
const isStale = (c: AgentContext, d: ScheduleDelta) =>
  d.epoch < c.epoch || (d.epoch === c.epoch && d.seq <= c.seq);

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentEvent,
    input: {} as AgentInput,
  },
  actions: {
    /** Effect: request the full schedule on `engine.schedule.get`; reply tagged `fetchId`. */
    requestFullSchedule: (_: unknown, _p: { fetchId: number }) => undefined,
    /** Effect: reconcile every unit against a full schedule (units not in it are unloaded). */
    applyFullSchedule: (_: unknown, _p: { schedule: ScheduleFull }) => undefined,
    /** Effect: apply deltas, in order, to the unit actors. */
    applyDeltas: (_: unknown, _p: { deltas: ScheduleDelta[] }) => undefined,
    /** Effect: a delta was dropped (counted and logged). */
    dropDelta: (_: unknown, _p: { delta: ScheduleDelta; reason: DropReason }) => undefined,
    /** Effect: publish a full StateReport. */
    sendFullReport: () => undefined,
    oweFullReport: assign({ reportOwed: true }),
    /** Sends the owed full report (before the schedule is applied: it shows the state found). */
    payFullReport: enqueueActions(({ context, enqueue }) => {
      if (!context.reportOwed) return;
      enqueue('sendFullReport');
      enqueue.assign({ reportOwed: false });
    }),
    /** Effect: publish a heartbeat now. */
    sendHeartbeat: () => undefined,
    /** Effect: send TICK at `at` (ms since epoch). */
    armRetryTimer: (_: unknown, _p: { at: number }) => undefined,
    nextFetch: assign({ fetchId: ({ context }) => context.fetchId + 1 }),
    holdDelta: assign({
      pending: ({ context, event }) =>
        event.type === 'SCHEDULE_RECEIVED'
          ? [...context.pending, event.delta].slice(-MAX_PENDING_DELTAS)
          : context.pending,
    }),
    advanceSeq: assign({
      seq: ({ context, event }) =>
        event.type === 'SCHEDULE_RECEIVED' ? event.delta.seq : context.seq,
    }),
    acceptFull: assign(({ context, event }) => {
      if (event.type !== 'FULL_SCHEDULE_RECEIVED') return {};
      const plan = planAfterFull(event.schedule, context.pending);
      return {
        epoch: event.schedule.epoch,
        seq: plan.seq,
        pending: plan.gap ? context.pending.filter((d) => !plan.apply.includes(d)) : [],
        fetchFailures: 0,
        retryAt: null,
        lastError: null,
      };
    }),
    scheduleFetchRetry: assign(({ context, event }) => {
      if (event.type !== 'FULL_SCHEDULE_FAILED') return {};
      const fetchFailures = context.fetchFailures + 1;
      const delay = backoffDelay(
        fetchFailures,
        context.retry.baseMs,
        context.retry.maxMs,
        event.jitter,
      );
      return { fetchFailures, retryAt: event.now + delay, lastError: event.error };
    }),
    markBusUp: assign({ busUp: true }),
    markBusDown: assign({ busUp: false }),
  },
  guards: {
    deltaIsNext: ({ context, event }) =>
      event.type === 'SCHEDULE_RECEIVED' && isNext(context, event.delta),
    deltaIsStale: ({ context, event }) =>
      event.type === 'SCHEDULE_RECEIVED' && isStale(context, event.delta),
    /** Replies to an older request (superseded by a resync or a reconnect) are ignored. */
    currentFetch: ({ context, event }) =>
      (event.type === 'FULL_SCHEDULE_RECEIVED' || event.type === 'FULL_SCHEDULE_FAILED') &&
      event.fetchId === context.fetchId,
    fullLeavesGap: ({ context, event }) =>
      event.type === 'FULL_SCHEDULE_RECEIVED' &&
      event.fetchId === context.fetchId &&
      planAfterFull(event.schedule, context.pending).gap,
    /** A resync from a leader older than the schedule we hold is a late message: ignore it. */
    resyncIsCurrent: ({ context, event }) =>
      event.type === 'RESYNC_REQUESTED' && event.epoch >= context.epoch,
    busWasDown: ({ context }) => !context.busUp,
    retryDue: ({ context, event }) =>
      event.type === 'TICK' &&
      context.busUp &&
      context.retryAt !== null &&
      event.now >= context.retryAt,
  },
}).createMachine({
  id: 'agent',
  context: ({ input }) => ({
    machineId: input.machineId,
    epoch: 0,
    seq: 0,
    fetchId: 0,
    fetchFailures: 0,
    retryAt: null,
    busUp: true,
    reportOwed: false,
    pending: [],
    lastError: null,
    retry: { ...DEFAULT_SYNC_RETRY, ...input.retry },
  }),
  initial: 'connecting',
  on: {
    DRAIN: { target: '.draining' },
  },
  states: {
    connecting: {
      description: 'Opening the driver and adopting the units it already runs (no ops).',
      on: {
        UNITS_ADOPTED: { target: 'syncing', actions: ['sendHeartbeat', 'oweFullReport'] },
        SCHEDULE_RECEIVED: { actions: 'holdDelta' },
        BUS_CONNECTED: { actions: 'markBusUp' },
        BUS_DISCONNECTED: { actions: ['markBusDown', 'oweFullReport'] },
      },
    },
    syncing: {
      description: 'Fetching the full schedule from the leader; deltas meanwhile are held.',
      entry: [
        'nextFetch',
        { type: 'requestFullSchedule', params: ({ context }) => ({ fetchId: context.fetchId }) },
      ],
      on: {
        FULL_SCHEDULE_RECEIVED: [
          {
            guard: 'fullLeavesGap',
            target: 'syncing',
            reenter: true,
            actions: [
              'payFullReport',
              {
                type: 'applyFullSchedule',
                params: ({ event }) => ({ schedule: event.schedule }),
              },
              {
                type: 'applyDeltas',
                params: ({ context, event }) => ({
                  deltas: planAfterFull(event.schedule, context.pending).apply,
                }),
              },
              'acceptFull',
            ],
          },
          {
            guard: 'currentFetch',
            target: 'ready',
            actions: [
              'payFullReport',
              {
                type: 'applyFullSchedule',
                params: ({ event }) => ({ schedule: event.schedule }),
              },
              {
                type: 'applyDeltas',
                params: ({ context, event }) => ({
                  deltas: planAfterFull(event.schedule, context.pending).apply,
                }),
              },
              'acceptFull',
            ],
          },
        ],
        FULL_SCHEDULE_FAILED: {
          guard: 'currentFetch',
          target: 'degraded',
          actions: [
            'scheduleFetchRetry',
            'oweFullReport',
            { type: 'armRetryTimer', params: ({ context }) => ({ at: context.retryAt ?? 0 }) },
          ],
        },
        SCHEDULE_RECEIVED: { actions: 'holdDelta' },
        RESYNC_REQUESTED: {
          guard: 'resyncIsCurrent',
          target: 'syncing',
          reenter: true,
          // A new leader learns of machines from heartbeats: announce at once.
          actions: ['sendHeartbeat', 'oweFullReport'],
        },
        // Back after an outage noticed late (a reply or a delta came first): announce at once.
        BUS_CONNECTED: [
          { guard: 'busWasDown', actions: ['markBusUp', 'sendHeartbeat'] },
          { actions: 'markBusUp' },
        ],
        BUS_DISCONNECTED: { target: 'degraded', actions: ['markBusDown', 'oweFullReport'] },
      },
    },
    ready: {
      description: 'In step with the leader: deltas are applied as they come, in order.',
      on: {
        SCHEDULE_RECEIVED: [
          {
            guard: 'deltaIsNext',
            actions: [
              { type: 'applyDeltas', params: ({ event }) => ({ deltas: [event.delta] }) },
              'advanceSeq',
            ],
          },
          {
            guard: 'deltaIsStale',
            actions: {
              type: 'dropDelta',
              params: ({ context, event }) => ({
                delta: event.delta,
                reason: event.delta.epoch < context.epoch ? 'stale-epoch' : 'duplicate',
              }),
            },
          },
          // A gap (lost message) or a new epoch (new leader): fetch the whole schedule.
          { target: 'syncing', actions: 'holdDelta' },
        ],
        RESYNC_REQUESTED: {
          guard: 'resyncIsCurrent',
          target: 'syncing',
          actions: ['sendHeartbeat', 'oweFullReport'],
        },
        BUS_DISCONNECTED: { target: 'degraded', actions: ['markBusDown', 'oweFullReport'] },
        // Synced again before the reconnect was noticed: the report owed since the drop was
        // paid with that schedule; announce at once.
        BUS_CONNECTED: [
          { guard: 'busWasDown', actions: ['markBusUp', 'sendHeartbeat'] },
          { actions: 'markBusUp' },
        ],
      },
    },
    degraded: {
      description:
        'NATS or the leader is away. Units keep running as they are; retries the full schedule.',
      on: {
        BUS_CONNECTED: {
          target: 'syncing',
          actions: ['markBusUp', 'sendHeartbeat', 'oweFullReport'],
        },
        BUS_DISCONNECTED: { actions: ['markBusDown', 'oweFullReport'] },
        TICK: { guard: 'retryDue', target: 'syncing' },
        // The leader is reachable again.
        RESYNC_REQUESTED: {
          guard: 'resyncIsCurrent',
          target: 'syncing',
          actions: ['markBusUp', 'sendHeartbeat', 'oweFullReport'],
        },
        SCHEDULE_RECEIVED: { target: 'syncing', actions: ['markBusUp', 'holdDelta'] },
      },
    },
    draining: {
      description:
        'Shutting down: heartbeats and subscriptions stop, reports are flushed. Units keep running.',
      on: {
        DRAIN: {},
        DRAINED: { target: 'stopped' },
      },
    },
    stopped: { type: 'final' },
  },
});

export type AgentMachine = typeof agentMachine;
export type AgentStateValue =
  'connecting' | 'syncing' | 'ready' | 'degraded' | 'draining' | 'stopped';
