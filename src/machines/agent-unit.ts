/**
 * The agent's unit machine: one actor per unit on one machine. Pure — it never touches the
 * driver, the bus or the clock. It holds two inputs, the *desired* state (from the schedule) and
 * the *observed* state (from the driver), and decides which driver op to request next through the
 * named action `requestOp`; the agent actor batches those ops, applies them, and sends the results
 * back as `OP_SUCCEEDED` / `OP_FAILED`. Time only enters through events (`now`), so retries are
 * deterministic and the retry deadline lives in context (`after` timers are not re-armed when an
 * actor is restored from a snapshot, statelyai/xstate#5331; the agent arms a timer from
 * `retryAt` instead, through the `armRetryTimer` action).
 *
 * Lifecycle (what the visualizer draws):
 *
 *   adopting ─► absent ─► loading ─► loaded ─► starting ─► active ─► stopping ─► loaded
 *                  ▲                   │ ▲                   │ ╲
 *                  └──── unloading ◄───┘ └── failed/exited ◄─┘  (the unit died on its own)
 *   any op ──(driver error)──► retrying ──(TICK past retryAt)──► absent | loaded | active
 *
 * Rules (fleet's agent reconciler, made explicit):
 * - Nothing happens until the desired state is known (`unknown` while the agent has not yet
 *   received its full schedule): adopted units are left exactly as they are.
 * - Not scheduled → unload (which also stops it).
 * - File missing or its hash differs from the desired hash → load (a running unit is stopped
 *   first, then reloaded, then started again if launched).
 * - launched and loaded → start; loaded wanted but running → stop.
 * - A unit that failed or exited on its own is *not* restarted by the agent (that is systemd's
 *   `Restart=`); it is restarted when its desired state or hash changes.
 * - A failed op is retried with backoff — except a start whose unit is seen failed (the start
 *   job failed because the service did): that is `failed`, not a reason to start it again.
 */
import { assign, setup } from 'xstate';
import type { DriverOp } from '../drivers/driver';
import { backoffDelay, stableFraction } from './backoff';
import type { UnitRuntimeState } from '../events/types';

/** What the schedule wants for the unit on this machine. */
export type UnitDesire =
  /** The schedule has not been received yet: touch nothing. */
  | { target: 'unknown' }
  /** Not (or no longer) scheduled on this machine: unload. */
  | { target: 'not-scheduled' }
  | { target: 'loaded' | 'launched'; hash: string; contents: string };

export type UnitDesiredTarget = UnitDesire['target'];

/** Where a failed op resumes once its backoff has passed. */
export type RetryReturn = 'absent' | 'loaded' | 'active';

export interface RetryPolicy {
  /** First retry delay (default 1000 ms); doubles per attempt. */
  baseMs: number;
  /** Longest delay (default 60 000 ms). */
  maxMs: number;
}

export const DEFAULT_UNIT_RETRY: RetryPolicy = { baseMs: 1000, maxMs: 60_000 };

export interface AgentUnitContext {
  unit: string;
  desired: UnitDesire;
  /** Hash of the unit file the driver holds ('' when none). */
  loadedHash: string;
  /** The last state the driver reported (null: never seen). */
  observed: UnitRuntimeState | null;
  /** systemd's result for the last failure of the unit itself (e.g. "exit-code"). */
  result: string | null;
  /** A failure/exit observed while a start was in flight (decided when the start completes). */
  exitedDuringStart: UnitRuntimeState | null;
  /** Consecutive failed driver ops (0 after any success). */
  attempt: number;
  /** When the failed op may be retried (ms since epoch); null when not retrying. */
  retryAt: number | null;
  retryReturn: RetryReturn;
  /** The kind of the op being retried (null when not retrying). */
  retryOp: DriverOp['kind'] | null;
  /** The last driver error, for status and logs. */
  lastError: string | null;
  retry: RetryPolicy;
}

export interface AgentUnitInput {
  unit: string;
  /** Default `unknown` (adoption before the schedule is known). */
  desired?: UnitDesire;
  /** What the driver found at agent start; the actor starts in the matching state, with no op. */
  observed?: UnitRuntimeState | null;
  retry?: Partial<RetryPolicy>;
}

export type AgentUnitEvent =
  /** The schedule changed (delta or full schedule). */
  | { type: 'DESIRED_CHANGED'; desired: UnitDesire }
  /** The driver saw the unit change (systemd signal, child exit…). */
  | { type: 'STATE_OBSERVED'; state: UnitRuntimeState }
  | { type: 'OP_SUCCEEDED'; op: DriverOp }
  | { type: 'OP_FAILED'; op: DriverOp; error: string; now: number }
  /** Time passed; retries whose deadline is reached go ahead. */
  | { type: 'TICK'; now: number };

const RUNNING = new Set(['active', 'activating', 'reloading', 'deactivating']);

/** Whether an observed state means the unit's processes are (still) up. */
export const isRunning = (s: UnitRuntimeState | null): boolean =>
  s !== null && RUNNING.has(s.active);
/** Whether an observed state means the unit failed (systemd ActiveState=failed). */
export const isFailed = (s: UnitRuntimeState | null): boolean =>
  s !== null && s.active === 'failed';
/** Whether an observed state means the unit stopped cleanly (inactive). */
export const isDead = (s: UnitRuntimeState | null): boolean =>
  s !== null && s.active === 'inactive';

const wantsFile = (d: UnitDesire): d is Extract<UnitDesire, { hash: string }> =>
  d.target === 'loaded' || d.target === 'launched';

/** A unit that is not running (loaded, or exited by itself) seen running or failed from outside. */
function observedWhileStopped() {
  return [
    {
      guard: 'observedRunning' as const,
      target: 'active' as const,
      actions: 'recordObserved' as const,
    },
    {
      guard: 'observedFailed' as const,
      target: 'failed' as const,
      actions: ['recordObserved' as const, 'recordFailure' as const],
    },
    { actions: 'recordObserved' as const },
  ];
}

export const agentUnitMachine = setup({
  types: {
    context: {} as AgentUnitContext,
    events: {} as AgentUnitEvent,
    input: {} as AgentUnitInput,
  },
  actions: {
    /** Effect: queue one driver op for the next batch. Provided by the agent actor. */
    requestOp: (_: unknown, _op: DriverOp) => undefined,
    /** Effect: send a TICK to this unit at `at` (ms since epoch). Provided by the agent actor. */
    armRetryTimer: (_: unknown, _p: { at: number }) => undefined,
    recordDesired: assign(({ event }) =>
      event.type === 'DESIRED_CHANGED' ? { desired: event.desired } : {},
    ),
    recordObserved: assign({
      observed: ({ event, context }) =>
        event.type === 'STATE_OBSERVED' ? event.state : context.observed,
    }),
    recordFailure: assign({
      result: ({ event, context }) =>
        event.type === 'STATE_OBSERVED' ? (event.state.result ?? 'unknown') : context.result,
    }),
    clearFailure: assign({ result: null, exitedDuringStart: null }),
    noteExitDuringStart: assign({
      exitedDuringStart: ({ event, context }) =>
        event.type === 'STATE_OBSERVED' ? event.state : context.exitedDuringStart,
    }),
    recordLoaded: assign({
      loadedHash: ({ event, context }) =>
        event.type === 'OP_SUCCEEDED' && event.op.kind === 'load'
          ? event.op.hash
          : context.loadedHash,
    }),
    recordUnloaded: assign({ loadedHash: '' }),
    opSucceeded: assign({ attempt: 0, retryAt: null, lastError: null }),
    scheduleRetry: assign(({ context, event }) => {
      if (event.type !== 'OP_FAILED') return {};
      const attempt = context.attempt + 1;
      const delay = backoffDelay(
        attempt,
        context.retry.baseMs,
        context.retry.maxMs,
        stableFraction(`${context.unit}#${attempt}`),
      );
      const retryReturn: RetryReturn =
        event.op.kind === 'stop'
          ? 'active'
          : event.op.kind === 'unload'
            ? isRunning(context.observed)
              ? 'active'
              : 'loaded'
            : event.op.kind === 'load' && context.loadedHash === ''
              ? 'absent'
              : 'loaded';
      return {
        attempt,
        retryAt: event.now + delay,
        retryReturn,
        retryOp: event.op.kind,
        lastError: event.error,
      };
    }),
    clearRetry: assign({ retryAt: null, retryOp: null }),
    startFailedWithUnit: assign(({ context, event }) => ({
      attempt: 0,
      retryAt: null,
      retryOp: null,
      lastError: event.type === 'OP_FAILED' ? event.error : context.lastError,
      result: context.exitedDuringStart?.result ?? 'unknown',
    })),
  },
  guards: {
    notScheduled: ({ context }) => context.desired.target === 'not-scheduled',
    wantsFile: ({ context }) => wantsFile(context.desired),
    fileStale: ({ context }) =>
      wantsFile(context.desired) && context.desired.hash !== context.loadedHash,
    wantsLaunched: ({ context }) => context.desired.target === 'launched',
    wantsLoadedOnly: ({ context }) => context.desired.target === 'loaded',
    /** Adoption: the driver has nothing of this unit. */
    foundNothing: ({ context }) => context.observed === null,
    /**
     * Adoption: the driver has the file but systemd does not know the unit (e.g. its runtime link
     * is gone after a reboot). Treated as loaded with an unknown hash: a load re-links it if it is
     * scheduled, an unload removes the file if it is not.
     */
    foundFileOnly: ({ context }) => context.observed?.load === 'not-found',
    foundRunning: ({ context }) => isRunning(context.observed),
    foundFailed: ({ context }) => isFailed(context.observed),
    observedFailed: ({ event }) => event.type === 'STATE_OBSERVED' && isFailed(event.state),
    observedDead: ({ event }) => event.type === 'STATE_OBSERVED' && isDead(event.state),
    observedRunning: ({ event }) => event.type === 'STATE_OBSERVED' && isRunning(event.state),
    startedButFailed: ({ context, event }) =>
      event.type === 'OP_SUCCEEDED' &&
      event.op.kind === 'start' &&
      isFailed(context.exitedDuringStart),
    /** The start job failed because the unit itself failed (systemd saw it fail): not retried. */
    startJobFailedWithUnit: ({ context, event }) =>
      event.type === 'OP_FAILED' &&
      event.op.kind === 'start' &&
      isFailed(context.exitedDuringStart),
    /** A start being retried, and the unit is now seen failed: that is the answer, stop retrying. */
    retriedStartSeenFailed: ({ context, event }) =>
      context.retryOp === 'start' && event.type === 'STATE_OBSERVED' && isFailed(event.state),
    startedButExited: ({ context, event }) =>
      event.type === 'OP_SUCCEEDED' &&
      event.op.kind === 'start' &&
      isDead(context.exitedDuringStart),
    unscheduled: ({ event }) =>
      event.type === 'DESIRED_CHANGED' && event.desired.target === 'not-scheduled',
    unscheduledReturningNoFile: ({ context, event }) =>
      event.type === 'DESIRED_CHANGED' &&
      event.desired.target === 'not-scheduled' &&
      context.retryReturn === 'absent',
    unscheduledReturningRunning: ({ context, event }) =>
      event.type === 'DESIRED_CHANGED' &&
      event.desired.target === 'not-scheduled' &&
      context.retryReturn === 'active',
    isLoadResult: ({ event }) =>
      (event.type === 'OP_SUCCEEDED' || event.type === 'OP_FAILED') && event.op.kind === 'load',
    isStartResult: ({ event }) =>
      (event.type === 'OP_SUCCEEDED' || event.type === 'OP_FAILED') && event.op.kind === 'start',
    isStopResult: ({ event }) =>
      (event.type === 'OP_SUCCEEDED' || event.type === 'OP_FAILED') && event.op.kind === 'stop',
    isUnloadResult: ({ event }) =>
      (event.type === 'OP_SUCCEEDED' || event.type === 'OP_FAILED') && event.op.kind === 'unload',
    retryDue: ({ context, event }) =>
      event.type === 'TICK' && context.retryAt !== null && event.now >= context.retryAt,
    retryDueNoFile: ({ context, event }) =>
      event.type === 'TICK' &&
      context.retryAt !== null &&
      event.now >= context.retryAt &&
      context.retryReturn === 'absent',
    retryDueRunning: ({ context, event }) =>
      event.type === 'TICK' &&
      context.retryAt !== null &&
      event.now >= context.retryAt &&
      context.retryReturn === 'active',
  },
}).createMachine({
  id: 'agentUnit',
  context: ({ input }) => ({
    unit: input.unit,
    desired: input.desired ?? { target: 'unknown' },
    loadedHash: input.observed?.hash ?? '',
    observed: input.observed ?? null,
    result: isFailed(input.observed ?? null) ? (input.observed?.result ?? 'unknown') : null,
    exitedDuringStart: null,
    attempt: 0,
    retryAt: null,
    retryReturn: 'loaded',
    retryOp: null,
    lastError: null,
    retry: { ...DEFAULT_UNIT_RETRY, ...input.retry },
  }),
  initial: 'adopting',
  // Desired and observed states are inputs in every state; each state's `always` list then
  // decides (eventless transitions are re-checked after every event).
  on: {
    DESIRED_CHANGED: { actions: 'recordDesired' },
    STATE_OBSERVED: { actions: 'recordObserved' },
  },
  states: {
    adopting: {
      description:
        'Takes over what the driver found at agent start (file, running process) without any op.',
      always: [
        { guard: 'foundNothing', target: 'absent', actions: 'recordUnloaded' },
        { guard: 'foundFileOnly', target: 'loaded', actions: 'recordUnloaded' },
        { guard: 'foundRunning', target: 'active' },
        { guard: 'foundFailed', target: 'failed' },
        { target: 'loaded' },
      ],
    },
    absent: {
      description: 'No unit file on this machine.',
      always: [{ guard: 'wantsFile', target: 'loading' }],
    },
    loading: {
      description: 'Writing the unit file and linking it (driver op "load").',
      entry: {
        type: 'requestOp',
        params: ({ context }) => {
          const d = context.desired as Extract<UnitDesire, { hash: string }>;
          return { kind: 'load', unit: context.unit, contents: d.contents, hash: d.hash } as const;
        },
      },
      on: {
        OP_SUCCEEDED: {
          guard: 'isLoadResult',
          target: 'loaded',
          actions: ['recordLoaded', 'opSucceeded'],
        },
        OP_FAILED: { guard: 'isLoadResult', target: 'retrying', actions: 'scheduleRetry' },
      },
    },
    loaded: {
      description: 'The current unit file is loaded; the unit is not running.',
      always: [
        { guard: 'notScheduled', target: 'unloading' },
        { guard: 'fileStale', target: 'loading' },
        { guard: 'wantsLaunched', target: 'starting' },
      ],
      on: {
        // Started from outside (systemctl start): take it as running; `active` then stops it
        // if the schedule says "loaded".
        STATE_OBSERVED: observedWhileStopped(),
      },
    },
    starting: {
      description: 'Starting the unit (driver op "start").',
      entry: [
        'clearFailure',
        {
          type: 'requestOp',
          params: ({ context }) => ({ kind: 'start', unit: context.unit }) as const,
        },
      ],
      on: {
        STATE_OBSERVED: [
          // The process may die before the start op's result arrives: remember it.
          {
            guard: 'observedFailed',
            actions: ['recordObserved', 'noteExitDuringStart'],
          },
          { guard: 'observedDead', actions: ['recordObserved', 'noteExitDuringStart'] },
          { guard: 'observedRunning', actions: ['recordObserved', 'clearFailure'] },
          { actions: 'recordObserved' },
        ],
        OP_SUCCEEDED: [
          {
            guard: 'startedButFailed',
            target: 'failed',
            actions: [
              'opSucceeded',
              assign({ result: ({ context }) => context.exitedDuringStart?.result ?? 'unknown' }),
            ],
          },
          { guard: 'startedButExited', target: 'exited', actions: 'opSucceeded' },
          { guard: 'isStartResult', target: 'active', actions: 'opSucceeded' },
        ],
        OP_FAILED: [
          // e.g. systemd's start job ended "failed" because ExecStartPre= or the process failed:
          // restarting it would be a Restart= policy nobody asked for.
          { guard: 'startJobFailedWithUnit', target: 'failed', actions: 'startFailedWithUnit' },
          { guard: 'isStartResult', target: 'retrying', actions: 'scheduleRetry' },
        ],
      },
    },
    active: {
      description: 'Started; systemd runs it (activating, active, or restarting by itself).',
      entry: 'clearFailure',
      always: [
        { guard: 'notScheduled', target: 'unloading' },
        { guard: 'fileStale', target: 'stopping' },
        { guard: 'wantsLoadedOnly', target: 'stopping' },
      ],
      on: {
        STATE_OBSERVED: [
          {
            guard: 'observedFailed',
            target: 'failed',
            actions: ['recordObserved', 'recordFailure'],
          },
          { guard: 'observedDead', target: 'exited', actions: 'recordObserved' },
          { actions: 'recordObserved' },
        ],
      },
    },
    failed: {
      description:
        "The unit failed on its own (systemd's Result in context.result). Not restarted by the agent.",
      always: [
        { guard: 'notScheduled', target: 'unloading' },
        { guard: 'fileStale', target: 'loading' },
        { guard: 'wantsLoadedOnly', target: 'loaded' },
      ],
      on: {
        STATE_OBSERVED: [
          { guard: 'observedRunning', target: 'active', actions: 'recordObserved' },
          { guard: 'observedDead', target: 'exited', actions: 'recordObserved' },
          { actions: 'recordObserved' },
        ],
      },
    },
    exited: {
      description: 'The unit stopped on its own with success. Not restarted by the agent.',
      always: [
        { guard: 'notScheduled', target: 'unloading' },
        { guard: 'fileStale', target: 'loading' },
        { guard: 'wantsLoadedOnly', target: 'loaded' },
      ],
      on: {
        STATE_OBSERVED: observedWhileStopped(),
      },
    },
    stopping: {
      description: 'Stopping the unit (driver op "stop").',
      entry: {
        type: 'requestOp',
        params: ({ context }) => ({ kind: 'stop', unit: context.unit }) as const,
      },
      on: {
        OP_SUCCEEDED: { guard: 'isStopResult', target: 'loaded', actions: 'opSucceeded' },
        OP_FAILED: { guard: 'isStopResult', target: 'retrying', actions: 'scheduleRetry' },
      },
    },
    unloading: {
      description: 'Stopping the unit and removing its file (driver op "unload").',
      entry: {
        type: 'requestOp',
        params: ({ context }) => ({ kind: 'unload', unit: context.unit }) as const,
      },
      on: {
        OP_SUCCEEDED: {
          guard: 'isUnloadResult',
          target: 'absent',
          actions: ['recordUnloaded', 'clearFailure', 'opSucceeded'],
        },
        OP_FAILED: { guard: 'isUnloadResult', target: 'retrying', actions: 'scheduleRetry' },
      },
    },
    retrying: {
      description:
        'A driver op failed; waits until context.retryAt (exponential backoff), then decides again.',
      entry: {
        type: 'armRetryTimer',
        params: ({ context }) => ({ at: context.retryAt ?? 0 }),
      },
      on: {
        STATE_OBSERVED: [
          {
            guard: 'retriedStartSeenFailed',
            target: 'failed',
            actions: ['recordObserved', 'recordFailure', 'clearRetry'],
          },
          { actions: 'recordObserved' },
        ],
        TICK: [
          { guard: 'retryDueNoFile', target: 'absent', actions: 'clearRetry' },
          { guard: 'retryDueRunning', target: 'active', actions: 'clearRetry' },
          { guard: 'retryDue', target: 'loaded', actions: 'clearRetry' },
        ],
        // Unscheduled or destroyed while waiting to retry: no reason to wait out the backoff
        // (up to a minute) to remove it; decide again now, from where the failed op left it.
        DESIRED_CHANGED: [
          {
            guard: 'unscheduledReturningNoFile',
            target: 'absent',
            actions: ['recordDesired', 'clearRetry'],
          },
          {
            guard: 'unscheduledReturningRunning',
            target: 'active',
            actions: ['recordDesired', 'clearRetry'],
          },
          { guard: 'unscheduled', target: 'loaded', actions: ['recordDesired', 'clearRetry'] },
          { actions: 'recordDesired' },
        ],
      },
    },
  },
});

export type AgentUnitMachine = typeof agentUnitMachine;
export type AgentUnitStateValue =
  | 'adopting'
  | 'absent'
  | 'loading'
  | 'loaded'
  | 'starting'
  | 'active'
  | 'failed'
  | 'exited'
  | 'stopping'
  | 'unloading'
  | 'retrying';

/** States in which a driver op of this unit is in flight. */
export const OP_STATES: ReadonlySet<AgentUnitStateValue> = new Set([
  'loading',
  'starting',
  'stopping',
  'unloading',
]);
