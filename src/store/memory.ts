/**
 * MemoryLogStore: an in-process LogStore for tests and simulations.
 *
 * Several stores ("candidates") can share one MemoryBackend, which plays the part of etcd: one
 * election, one log, one snapshot. Everything is deterministic and synchronous underneath, so a
 * test can script failover exactly:
 *
 *   const backend = new MemoryBackend();
 *   const a = await backend.store().campaign(candA, signal);   // wins at once
 *   const pending = backend.store().campaign(candB, signal);   // waits
 *   backend.depose();                 // a.lost === true, a's writes fail FENCED; B wins
 *   backend.setUnavailable(true);     // every call fails STORE_UNAVAILABLE (retryable)
 *
 * It follows the same contract as the etcd store (test/store-contract.ts), including snapshot
 * chunking (chunks are kept as separate copies) and manifest-last.
 */
import {
  abortReason,
  assertAppendable,
  corruptError,
  fencedError,
  LostSignal,
  sha256Hex,
  unavailableError,
} from './common';
import type { FlotillaEvent } from '../events/types';
import type {
  Candidate,
  LeaderInfo,
  LogStore,
  Restored,
  Snapshot,
  SnapshotStats,
  Term,
} from './types';

export const DEFAULT_MEMORY_CHUNK_BYTES = 1024 * 1024;

export interface MemoryBackendOptions {
  /** Snapshots are cut into chunks of at most this many bytes (default 1 MiB), as etcd's are. */
  snapshotChunkBytes?: number;
}

/** A snapshot as the memory backend keeps it: separate chunk copies and a checksum. */
export interface MemoryChunkSet {
  index: number;
  epoch: number;
  chunks: Uint8Array[];
  bytes: number;
  sha256: string;
}

/** The shared "etcd" of a group of MemoryLogStores. */
export class MemoryBackend {
  readonly snapshotChunkBytes: number;
  private epochCounter = 0;
  private holder: MemoryTerm | undefined;
  private info: LeaderInfo | undefined;
  private batches: FlotillaEvent[][] = [];
  private manifest: MemoryChunkSet | undefined;
  /** Chunk sets written without a manifest (a leader that crashed in between). */
  private orphans: MemoryChunkSet[] = [];
  private wakers = new Set<() => void>();
  private leaderListeners = new Set<(l: LeaderInfo | undefined) => void>();
  private down = false;

  constructor(options: MemoryBackendOptions = {}) {
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? DEFAULT_MEMORY_CHUNK_BYTES;
    if (!(this.snapshotChunkBytes > 0)) throw new RangeError('snapshotChunkBytes must be > 0');
  }

  /** A new client of this backend (one per simulated daemon). */
  store(): MemoryLogStore {
    return new MemoryLogStore(this);
  }

  /**
   * Takes leadership away from the current holder, as a lost lease would: the term is lost at
   * once (its `onLost` listeners run), its later writes fail FENCED, and a waiting candidate
   * wins. Returns false when nobody held it.
   */
  depose(reason = 'deposed'): boolean {
    const term = this.holder;
    if (!term) return false;
    this.release();
    term.signal.fire(reason);
    return true;
  }

  /** While true every call fails with STORE_UNAVAILABLE (retryable) and nobody can win. */
  setUnavailable(unavailable: boolean): void {
    this.down = unavailable;
    if (!unavailable) this.wake();
  }

  get unavailable(): boolean {
    return this.down;
  }

  /** Current leader without the availability check (for assertions). */
  get currentLeader(): LeaderInfo | undefined {
    return this.info ? { ...this.info } : undefined;
  }

  /** Number of log batches stored (for compaction assertions). */
  get batchCount(): number {
    return this.batches.length;
  }

  // ----- used by MemoryLogStore / MemoryTerm ------------------------------------------------

  /** @internal */
  checkUp(what: string): void {
    if (this.down) throw unavailableError(what, new Error('memory backend set unavailable'));
  }

  /** @internal Tries to win; undefined if someone holds the election or the backend is down. */
  tryWin(candidate: Candidate, owner: MemoryLogStore): MemoryTerm | undefined {
    if (this.holder || this.down) return undefined;
    const epoch = ++this.epochCounter;
    const term = new MemoryTerm(this, owner, epoch);
    this.holder = term;
    this.info = { machine: candidate.machine, address: candidate.address, epoch };
    this.notifyLeader();
    return term;
  }

  /** @internal */
  holds(term: MemoryTerm): boolean {
    return this.holder === term;
  }

  /** @internal */
  release(): void {
    this.holder = undefined;
    this.info = undefined;
    this.notifyLeader();
    this.wake();
  }

  /** @internal */
  waitForChange(): { promise: Promise<void>; cancel: () => void } {
    let waker!: () => void;
    const promise = new Promise<void>((resolve) => {
      waker = resolve;
    });
    this.wakers.add(waker);
    return { promise, cancel: () => this.wakers.delete(waker) };
  }

  /** @internal */
  subscribeLeader(listener: (l: LeaderInfo | undefined) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  /** @internal */
  appendBatch(events: FlotillaEvent[]): void {
    this.batches.push(events.map((e) => structuredClone(e)));
  }

  /** @internal */
  putChunks(set: MemoryChunkSet): void {
    this.orphans.push(set);
  }

  /** @internal Manifest-last: only this makes a chunk set the current snapshot. */
  commitManifest(set: MemoryChunkSet): void {
    this.orphans = this.orphans.filter((s) => s !== set);
    if (this.manifest) this.orphans.push(this.manifest);
    this.manifest = set;
  }

  /** @internal */
  read(all: boolean): Restored {
    const snapshot = this.manifest ? readSet(this.manifest) : undefined;
    const after = all ? -Infinity : (snapshot?.index ?? 0);
    const tail: FlotillaEvent[] = [];
    for (const b of this.batches) {
      for (const e of b) if (e.index > after) tail.push(structuredClone(e));
    }
    return snapshot ? { snapshot, tail } : { tail };
  }

  /** @internal */
  compact(throughIndex: number): void {
    const limit = Math.min(throughIndex, this.manifest?.index ?? 0);
    this.orphans = [];
    if (limit <= 0) return;
    this.batches = this.batches.filter((b) => b[b.length - 1].index > limit);
  }

  private wake(): void {
    const ws = [...this.wakers];
    this.wakers.clear();
    for (const w of ws) w();
  }

  private notifyLeader(): void {
    const info = this.currentLeader;
    for (const l of [...this.leaderListeners]) queueMicrotask(() => l(info && { ...info }));
  }
}

function readSet(set: MemoryChunkSet): Snapshot {
  const data = new Uint8Array(set.bytes);
  let at = 0;
  for (const c of set.chunks) {
    data.set(c, at);
    at += c.length;
  }
  if (sha256Hex(data) !== set.sha256) {
    throw corruptError(`memory snapshot ${set.index}`, 'sha256 mismatch');
  }
  return { index: set.index, epoch: set.epoch, data };
}

/** One client of a MemoryBackend. */
export class MemoryLogStore implements LogStore {
  private terms = new Set<MemoryTerm>();
  private unsubscribers = new Set<() => void>();
  private closed = false;

  constructor(readonly backend: MemoryBackend = new MemoryBackend()) {}

  async campaign(candidate: Candidate, signal: AbortSignal): Promise<Term> {
    while (true) {
      if (signal.aborted) throw abortReason(signal);
      if (this.closed) throw unavailableError('campaign', new Error('store closed'));
      const term = this.backend.tryWin(candidate, this);
      if (term) {
        this.terms.add(term);
        return term;
      }
      const wait = this.backend.waitForChange();
      const onAbort = (): void => {
        wait.cancel();
        aborted();
      };
      let aborted!: () => void;
      const abortP = new Promise<void>((resolve) => (aborted = resolve));
      signal.addEventListener('abort', onAbort, { once: true });
      await Promise.race([wait.promise, abortP]);
      signal.removeEventListener('abort', onAbort);
    }
  }

  async leader(): Promise<LeaderInfo | undefined> {
    this.backend.checkUp('leader');
    return this.backend.currentLeader;
  }

  watchLeader(listener: (leader: LeaderInfo | undefined) => void): () => void {
    let last: string | undefined;
    const deliver = (l: LeaderInfo | undefined): void => {
      const key = JSON.stringify(l ?? null);
      if (key === last) return;
      last = key;
      listener(l);
    };
    const unsub = this.backend.subscribeLeader(deliver);
    const current = this.backend.currentLeader;
    queueMicrotask(() => deliver(current));
    const stop = (): void => {
      unsub();
      this.unsubscribers.delete(stop);
    };
    this.unsubscribers.add(stop);
    return stop;
  }

  async readAll(): Promise<Restored> {
    this.backend.checkUp('readAll');
    return this.backend.read(true);
  }

  /** Resigns every term this client holds (a clean exit) and stops its watchers. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of [...this.terms]) await t.resign().catch(() => undefined);
    for (const u of [...this.unsubscribers]) u();
  }

  /** @internal */
  forget(term: MemoryTerm): void {
    this.terms.delete(term);
  }
}

/** A term on a MemoryBackend. */
export class MemoryTerm implements Term {
  /** @internal */
  readonly signal = new LostSignal();
  private lastIndex = 0;

  constructor(
    private readonly backend: MemoryBackend,
    private readonly owner: MemoryLogStore,
    readonly epoch: number,
  ) {}

  get lost(): boolean {
    return this.signal.lost;
  }

  onLost(listener: (reason: string) => void): () => void {
    return this.signal.on(listener);
  }

  async restore(): Promise<Restored> {
    this.checkWritable('restore');
    const r = this.backend.read(false);
    const last = r.tail.length > 0 ? r.tail[r.tail.length - 1].index : (r.snapshot?.index ?? 0);
    this.lastIndex = Math.max(this.lastIndex, last);
    return r;
  }

  async append(events: FlotillaEvent[]): Promise<void> {
    assertAppendable(events, this.lastIndex);
    this.checkWritable('append');
    if (events.length === 0) return;
    this.backend.appendBatch(events);
    this.lastIndex = events[events.length - 1].index;
  }

  async writeSnapshot(snapshot: Snapshot): Promise<SnapshotStats> {
    const set = await this.writeSnapshotChunks(snapshot);
    this.checkWritable('writeSnapshot');
    this.backend.commitManifest(set);
    return { bytes: set.bytes, chunks: set.chunks.length };
  }

  /**
   * Writes the chunks of `snapshot` without its manifest: what a leader crashing between the
   * two leaves behind. For tests of manifest-last; `writeSnapshot` is this plus the manifest.
   */
  async writeSnapshotChunks(snapshot: Snapshot): Promise<MemoryChunkSet> {
    this.checkWritable('writeSnapshot');
    const size = this.backend.snapshotChunkBytes;
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < snapshot.data.length; at += size) {
      chunks.push(snapshot.data.slice(at, at + size));
    }
    const set: MemoryChunkSet = {
      index: snapshot.index,
      epoch: snapshot.epoch,
      chunks,
      bytes: snapshot.data.length,
      sha256: sha256Hex(snapshot.data),
    };
    this.backend.putChunks(set);
    return set;
  }

  async compact(throughIndex: number): Promise<void> {
    this.checkWritable('compact');
    this.backend.compact(throughIndex);
  }

  async resign(): Promise<void> {
    if (this.signal.ended) return;
    this.signal.end();
    this.owner.forget(this);
    if (this.backend.holds(this)) this.backend.release();
  }

  /** The fence: every operation first checks that this term still holds the election. */
  private checkWritable(what: string): void {
    if (this.signal.ended) {
      throw fencedError(this.epoch, this.signal.reason ?? 'the term was resigned');
    }
    if (!this.backend.holds(this)) {
      const reason = 'another candidate holds the election';
      this.signal.fire(reason);
      throw fencedError(this.epoch, reason);
    }
    this.backend.checkUp(what);
  }
}
