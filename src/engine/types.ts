import type { Bus } from '../bus/types';
import type { EventBody } from '../events/types';
import type { Logger } from '../log';
import type { Subjects } from '../protocol';
import type { Term } from '../store/types';
import type { ClusterState } from './state';

export interface EngineOptions {
  term: Term;
  bus: Bus;
  cluster: string;
  /** This leader's machine ID and gRPC address (recorded in LeaderElected). */
  machineId: string;
  address: string;
  /** An agent silent for this long is lost and its units are rescheduled. */
  agentTtlMs?: number;
  /**
   * After the leader hears again (its bus reconnected, a new term, its store recovered) every
   * machine gets this long plus a full TTL before it may be declared lost (default: one TTL).
   */
  livenessGraceMs?: number;
  /** Share of machines that may be lost within one TTL before rescheduling is held (default 1/3). */
  massLossThreshold?: number;
  /** Snapshot after this many events… */
  snapshotEvery?: number;
  /** …or this long after the last snapshot if anything changed. */
  snapshotIntervalMs?: number;
  /** Events kept in the store behind the latest snapshot, for replay. */
  retention?: number;
  /** …and none older than this (ms; 0: no age limit). */
  retentionAgeMs?: number;
  /** Events kept in memory for watchers resuming from an index (default 20,000; older ones: `flotilla replay`). */
  watchBuffer?: number;
  /** Most events committed in one store transaction (group commit; default 1,000: one
   * transaction and its fold stay short, so a small write never waits long behind a burst). */
  maxBatchEvents?: number;
  /**
   * Where schedules and resyncs go: `named`, on subjects that name this leader
   * (`agent.<m>.schedule.<me>`, `agents.resync.<me>`), where agents that check their sender
   * listen (docs/protocol.md); `unnamed`, protocol v1's (the default: tests); `both` during a
   * rolling upgrade (`nats_legacy_subjects`), so old and new agents hear it.
   */
  subjectNames?: 'named' | 'unnamed' | 'both';
  clock?: () => number;
  log?: Logger;
}

export interface AppendOptions {
  /**
   * A client's large write: later small writes may be committed before it (see batching.ts).
   * Never for the engine's own events.
   */
  bulk?: boolean;
}

export interface EngineStats {
  commits: number;
  eventsCommitted: number;
  appendFailures: number;
  snapshots: number;
  lastSnapshotIndex: number;
  lastSnapshotBytes: number;
  /** Bus messages that broke the protocol (PROTOCOL_VIOLATION): logged and dropped. */
  malformed: number;
  /** Bus message handlers that threw anything else: an engine bug, logged at error. */
  handlerErrors: number;
  /**
   * The engine's own writes (a machine joining or lost, a state report, a hold of rescheduling)
   * not committed: logged; each is written again by its cause (the next heartbeat, report, tick).
   */
  ownWriteFailures: number;
  scheduleMessages: number;
  restoredEvents: number;
  /** Empty deltas sent to agents found behind by their heartbeat. */
  nudges: number;
  /** Times the leader's own bus connection came back (each followed by one resync). */
  busReconnects: number;
  /** Messages to agents not sent: larger than the bus's max_payload (logged as errors). */
  oversizeMessages: number;
  /** Machines declared lost by this leader. */
  machinesLost: number;
  /** Times the mass-loss guard held rescheduling (see liveness.ts). */
  reschedulingHolds: number;
  /** 1 while rescheduling is held. */
  reschedulingHeld: number;
  /** 1 while the leader's own bus connection is down (it judges no machine then). */
  busDown: number;
}

export function emptyStats(): EngineStats {
  return {
    commits: 0,
    eventsCommitted: 0,
    appendFailures: 0,
    snapshots: 0,
    lastSnapshotIndex: 0,
    lastSnapshotBytes: 0,
    malformed: 0,
    handlerErrors: 0,
    ownWriteFailures: 0,
    scheduleMessages: 0,
    restoredEvents: 0,
    nudges: 0,
    busReconnects: 0,
    oversizeMessages: 0,
    machinesLost: 0,
    reschedulingHolds: 0,
    reschedulingHeld: 0,
    busDown: 0,
  };
}

/** What the engine's parts share: its term's settings, its state and its one way to write. */
export interface EngineContext {
  readonly epoch: number;
  readonly opts: EngineOptions;
  readonly stats: EngineStats;
  readonly log: Logger;
  readonly clock: () => number;
  readonly subj: Subjects;
  /** The current state (replaced when a term starts or the store is recovered). */
  readonly state: ClusterState;
  /** The engine stopped: no more writes, no more effects. */
  readonly stopped: boolean;
  append(bodies: EventBody[], opts?: AppendOptions): Promise<number>;
}
