/**
 * The agent's public face: its options, its handle, its counters, and the view of one unit.
 * src/actors/agent.ts builds an agent from these; the daemon, the benchmarks and the tests
 * import them from there.
 */
import type { Actor, InspectionEvent } from 'xstate';
import type { Bus } from '../bus/types';
import type { Driver, DriverUnitState } from '../drivers/driver';
import type { Clock, Logger } from '../runtime';
import type { AgentMachine, AgentStateValue, SyncRetryPolicy } from '../machines/agent';
import type { AgentUnitStateValue, RetryPolicy, UnitDesire } from '../machines/agent-unit';

export interface AgentOptions {
  cluster: string;
  machineId: string;
  /** The machine's public IP, sent in heartbeats. */
  ip: string;
  /** Read at every heartbeat (by reference); `setMetadata` replaces it and announces it at once. */
  metadata: Record<string, string>;
  bus: Bus;
  driver: Driver;
  /** The leader declares the machine lost after this long without a heartbeat (default 30 000). Heartbeats go every ttl/3, with jitter. */
  agentTtlMs?: number;
  /** State changes within this window after a report travel in the next one (default 5 ms; the first change after a quiet window goes at once). */
  reportBatchMs?: number;
  /** Timeout of a full-schedule request (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Backoff of failed driver ops (default 1 s doubling to 60 s). */
  unitRetry?: Partial<RetryPolicy>;
  /** Backoff of failed full-schedule requests (default 0.5 s doubling to 30 s, jittered). */
  syncRetry?: Partial<SyncRetryPolicy>;
  log?: Logger;
  clock?: Clock;
  /** Source of jitter in [0,1) (default Math.random). */
  random?: () => number;
  /** XState inspection feed of the agent actor and every unit actor (for the visualizer). */
  inspect?: (event: InspectionEvent) => void;
  /**
   * Speak on protocol v1's shared subjects (`engine.report`, `engine.heartbeat`,
   * `engine.schedule.get`) so a leader not yet upgraded hears this agent (rolling upgrade;
   * docs/protocol.md). Default: the per-machine subjects a secured bus requires.
   */
  legacySubjects?: boolean;
  /**
   * Act only on the leader of the current epoch (docs/protocol.md, "Only the leader commands"):
   * listen for schedules, resyncs and status/journal requests on the subjects that name their
   * sender, ask the full schedule of that leader only, and refuse (count, log; a request gets no
   * answer) anything from another sender or epoch. The leader comes from the election, through `setLeader`; until one is known the
   * agent accepts no schedule. The bus's permissions (`flotilla bus-auth`) make the subject
   * prove the sender. Default: protocol v1's unnamed subjects, no check.
   */
  leaderCheck?: boolean;
}

/** The leader of the current epoch, as the election names it. */
export interface KnownLeader {
  machine: string;
  epoch: number;
}

/** Counters for tests, benchmarks and /metrics. Monotonic over the agent's life. */
export interface AgentStats {
  /** Valid deltas received on `agent.<machine>.schedule`. */
  scheduleMessages: number;
  /** Unit entries (put + remove) in those deltas. */
  scheduleChanges: number;
  /** Deltas dropped as stale (older epoch) or duplicate. */
  droppedDeltas: number;
  /** Full schedules received (replies to `engine.schedule.get`). */
  fullSchedules: number;
  scheduleRequests: number;
  scheduleRequestFailures: number;
  /** Full schedules refused: from a leader older than one already heard from. */
  staleSchedules: number;
  /**
   * Schedules, full schedules, resyncs and status/journal requests refused with `leaderCheck`:
   * not from the leader of the current epoch (another engine, a deposed leader, or no leader known yet).
   */
  notFromLeader: number;
  /** Messages that failed validation (any subject), dropped. */
  malformed: number;
  /** `agents.resync` messages received. */
  resyncs: number;
  reports: number;
  fullReports: number;
  /** Messages not sent: larger than the bus's max_payload (logged as errors). */
  oversizeMessages: number;
  heartbeats: number;
  opBatches: number;
  ops: number;
  opFailures: number;
  rpcRequests: number;
}

export interface AgentUnitView {
  unit: string;
  state: AgentUnitStateValue;
  desired: UnitDesire['target'];
  loadedHash: string;
  observed: DriverUnitState | null;
  retryAt: number | null;
  lastError: string | null;
}

export interface AgentHandle {
  readonly machineId: string;
  readonly stats: Readonly<AgentStats>;
  /** The agent actor (for inspection and tests); do not send it events. */
  readonly actor: Actor<AgentMachine>;
  state(): AgentStateValue;
  /** The schedule position: epoch and seq of the last applied change. */
  position(): { epoch: number; seq: number };
  unitState(unit: string): AgentUnitStateValue | undefined;
  /** Every unit the agent manages, sorted by name. */
  units(): AgentUnitView[];
  /** Resolves when no driver op is queued or in flight. */
  whenIdle(): Promise<void>;
  /**
   * The leader of the current epoch changed (the election's view; undefined: none). With
   * `leaderCheck`, a new leader makes the agent fetch its full schedule from it and send a full
   * report, as a resync would.
   */
  setLeader(leader: KnownLeader | undefined): void;
  /** Replaces the machine's metadata and sends a heartbeat with it now. */
  setMetadata(metadata: Record<string, string>): void;
  /** Graceful shutdown: stop heartbeats and subscriptions, flush reports, close the driver. Units keep running. */
  drain(): Promise<void>;
  /** Same as drain(): leaving units as they are is the agent's only way to stop. */
  stop(): Promise<void>;
}

/** Every counter at zero. */
export function newAgentStats(): AgentStats {
  return {
    scheduleMessages: 0,
    scheduleChanges: 0,
    droppedDeltas: 0,
    fullSchedules: 0,
    scheduleRequests: 0,
    scheduleRequestFailures: 0,
    staleSchedules: 0,
    notFromLeader: 0,
    malformed: 0,
    resyncs: 0,
    reports: 0,
    fullReports: 0,
    oversizeMessages: 0,
    heartbeats: 0,
    opBatches: 0,
    ops: 0,
    opFailures: 0,
    rpcRequests: 0,
  };
}

export const errMsg = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Code-point order of unit names: the order in which the agent visits units. */
export const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
