import type { FlotillaEvent } from '../events/types';

/** Who leads, as every daemon can see it. */
export interface LeaderInfo {
  machine: string;
  /** gRPC address of the leader ("10.0.0.1:7070"), where followers forward writes. */
  address: string;
  epoch: number;
}

export interface Candidate {
  machine: string;
  address: string;
}

/** A snapshot: the folded state up to and including `index`, serialized by the engine. */
export interface Snapshot {
  index: number;
  epoch: number;
  data: Uint8Array;
}

export interface SnapshotStats {
  bytes: number;
  chunks: number;
}

/** What a new leader restores from: the latest complete snapshot and every durable event after it. */
export interface Restored {
  snapshot?: Snapshot;
  tail: FlotillaEvent[];
}

/** One durable event as the store holds it: its index and its JSON, not parsed. */
export interface RawEvent {
  index: number;
  json: Uint8Array;
}

/** `Restored` with the events unparsed: what a copy of the history (an export) needs. */
export interface RawRestored {
  snapshot?: Snapshot;
  tail: RawEvent[];
}

/**
 * One leadership term. Every write is fenced on the term's election key: once another candidate
 * holds the key (or the lease is gone), every write fails with FlotillaError code FENCED and the
 * term reports itself lost. Writes that cannot reach the store fail with STORE_UNAVAILABLE
 * (retryable) and are never reported as done.
 */
export interface Term {
  /** Strictly greater than every earlier term's epoch. */
  readonly epoch: number;
  /** The durable state at the start of the term. */
  restore(): Promise<Restored>;
  /**
   * Appends durable events in order, atomically (all or none), fenced. Events must carry
   * increasing indexes. Large batches are split under the store's request limits but still land
   * all-or-none from the caller's point of view (or the call fails and the term is lost).
   */
  append(events: FlotillaEvent[]): Promise<void>;
  /** Writes a snapshot (chunked; manifest last, so a half-written snapshot is never read). */
  writeSnapshot(snapshot: Snapshot): Promise<SnapshotStats>;
  /**
   * Deletes log entries with index <= `throughIndex` that are covered by a snapshot, and
   * snapshots older than the latest. Callers keep `retention` events of history by passing a
   * lower index.
   */
  compact(throughIndex: number): Promise<void>;
  /** Called once when the term ends without `resign` (lease lost, key taken, fenced write). */
  onLost(listener: (reason: string) => void): () => void;
  readonly lost: boolean;
  /**
   * How long the term's lease is certainly still valid (ms; ≤ 0: it may have expired and a rival
   * may lead). Optional: stores without a lease (memory, file) hold their term until it ends.
   */
  remainingMs?(): number;
  /** Gives up leadership (deletes the election key); further writes fail. */
  resign(): Promise<void>;
}

export interface LogStore {
  /** Becomes leader: resolves with a term once elected; rejects if `signal` aborts first. */
  campaign(candidate: Candidate, signal: AbortSignal): Promise<Term>;
  /** The current leader, or undefined when there is none. */
  leader(): Promise<LeaderInfo | undefined>;
  /** Calls `listener` with every change of leader (and once with the current one). */
  watchLeader(listener: (leader: LeaderInfo | undefined) => void): () => void;
  /** Read-only: every durable event and the latest snapshot, for `flotilla replay`. */
  readAll(): Promise<Restored>;
  close(): Promise<void>;
}
