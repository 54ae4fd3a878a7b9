import type { UnitRuntimeState } from '../events/types';
import type { TargetState } from '../unit/types';

/** Protocol version carried by every message as `v`. A receiver drops versions it does not know. */
export const PROTOCOL_VERSION = 1;

/** What one machine should run: a unit, its file, and its target state (loaded or launched). */
export interface ScheduledUnit {
  unit: string;
  hash: string;
  /** The canonical unit file text (what the agent writes). */
  contents: string;
  target: Exclude<TargetState, 'inactive'>;
}

/** leader → one agent, on `agent.<machine>.schedule`: changes of that machine's schedule. */
export interface ScheduleDelta {
  v: number;
  kind: 'delta';
  epoch: number;
  /** Per-machine sequence number within the epoch: 1, 2, 3, … A gap means a lost message. */
  seq: number;
  /** Units to run (new, changed hash or changed target). */
  put: ScheduledUnit[];
  /** Units no longer scheduled on this machine. */
  remove: string[];
}

/** leader → agent reply on `engine.schedule.get`: the machine's whole schedule. */
export interface ScheduleFull {
  v: number;
  kind: 'full';
  epoch: number;
  /** The sequence number of the last delta this full schedule includes. */
  seq: number;
  units: ScheduledUnit[];
  /**
   * Paged replies only (added after v1, optional): more units follow; ask again with
   * `after: next`. Absent: this reply ends the schedule.
   */
  next?: string;
}

/** agent → leader request on `engine.schedule.get`. */
export interface ScheduleRequest {
  v: number;
  machine: string;
  /**
   * Added after v1, optional: the agent takes the schedule in pages, each reply below the bus's
   * largest message (a leader that does not know the field answers with everything at once).
   */
  paged?: boolean;
  /** The page after this unit (a previous reply's `next`). */
  after?: string;
}

export interface ReportedUnit extends UnitRuntimeState {
  unit: string;
}

/** agent → leader on `engine.report`: batched state changes; `full` replaces everything known of the machine. */
export interface StateReport {
  v: number;
  machine: string;
  full: boolean;
  units: ReportedUnit[];
  /** Units that are gone from the machine (unloaded). */
  gone: string[];
}

/** agent → leader on `engine.heartbeat`, every agent_ttl/3. */
export interface Heartbeat {
  v: number;
  machine: string;
  ip: string;
  metadata: Record<string, string>;
  /** Epoch of the last schedule the agent applied (0: none). */
  epoch: number;
  /**
   * Sequence number of the last schedule change the agent applied in `epoch` (added after v1,
   * optional). A leader whose latest delta for the machine is newer, heartbeat after heartbeat,
   * knows the agent missed the *last* delta (a gap is only noticed at the next one) and can
   * re-publish it.
   */
  seq?: number;
}

/** leader → all agents on `agents.resync`, once per term: send a full report and fetch the schedule. */
export interface ResyncRequest {
  v: number;
  epoch: number;
}

/**
 * The leader → agent on `agent.<machine>.rpc.<leader>` (protocol v1: any daemon on
 * `agent.<machine>.rpc`). `epoch` is the sender's term: an agent that checks its sender answers
 * only the leader of the current epoch.
 */
export type AgentRpcRequest =
  | { v: number; kind: 'status'; unit: string; epoch?: number }
  | {
      v: number;
      kind: 'journal';
      epoch?: number;
      unit: string;
      lines: number;
      /**
       * With `follow`, the agent answers at once (an empty reply), then publishes JournalLines on
       * `inbox` as they come, until a message on `<inbox>.stop`, or until no message on
       * `<inbox>.alive` for JOURNAL_FOLLOW_IDLE_MS (the requester went away).
       */
      follow?: boolean;
      inbox?: string;
    };

/** How long a following agent waits for a keep-alive before it stops; requesters ping every third of it. */
export const JOURNAL_FOLLOW_IDLE_MS = 15_000;

/** agent → requester on the follow inbox: one or more journal lines. */
export interface JournalLines {
  v: number;
  text: string;
  /**
   * The last message of a follow the agent ended by itself (it is draining, or the journal
   * failed; not after `<inbox>.stop`). Optional: an older agent ends silently, and its
   * requester then notices only the machine's loss.
   */
  end?: boolean;
}

export interface AgentRpcReply {
  v: number;
  ok: boolean;
  text: string;
  error?: string;
}
