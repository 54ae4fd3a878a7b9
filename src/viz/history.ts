import { foldAll } from '../engine/fold';
import { decodeState, encodeState } from '../engine/snapshot';
import type { ClusterState } from '../engine/state';
import { emptyState } from '../engine/state';
import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import type { Restored } from '../store/types';

/** Checkpoints take at most this much memory in all (encoded states), whatever the history's length. */
const MAX_CHECKPOINT_BYTES = 192 * 2 ** 20;
const MIN_SPACING = 10_000;

/**
 * A retained history (snapshot + events) folded on demand at any index, for the scrubber:
 * checkpoints (encoded states) are taken while the events are first folded, so the state at an
 * index is the nearest checkpoint before it plus at most one spacing of events — never the whole
 * log. Folding is the leader's own fold (engine/fold.ts).
 */
export class History {
  readonly events: FlotillaEvent[] = [];
  /** The index the history starts from (the snapshot's, or 0 when it holds the whole log). */
  readonly base: number;
  private readonly baseData?: Uint8Array;
  private checkpoints: { index: number; pos: number; data: Uint8Array }[] = [];
  private checkpointBytes = 0;
  private spacing = MIN_SPACING;
  private head: ClusterState;
  private sinceCheckpoint = 0;

  constructor(restored: Restored) {
    const snap = restored.snapshot;
    const fromStart = restored.tail.length > 0 && restored.tail[0].index === 1;
    this.base = snap && !fromStart ? snap.index : 0;
    if (snap && !fromStart) this.baseData = snap.data;
    this.head = this.baseData ? decodeState(this.baseData) : emptyState();
    for (const e of restored.tail) if (e.index > this.base) this.append(e);
  }

  /** Adds the next event (in index order; older ones are ignored). */
  append(e: FlotillaEvent): void {
    if (e.index <= this.head.index) return;
    this.events.push(e);
    foldAll([e], this.head);
    if (++this.sinceCheckpoint >= this.spacing) {
      const data = encodeState(this.head);
      this.checkpoints.push({ index: e.index, pos: this.events.length, data });
      this.checkpointBytes += data.length;
      this.sinceCheckpoint = 0;
      if (this.checkpointBytes > MAX_CHECKPOINT_BYTES) {
        // Keep every other one: spacing doubles, memory stays bounded.
        this.checkpoints = this.checkpoints.filter((_, i) => i % 2 === 1);
        this.checkpointBytes = this.checkpoints.reduce((n, c) => n + c.data.length, 0);
        this.spacing *= 2;
      }
    }
  }

  get first(): number {
    return this.base;
  }

  get last(): number {
    return this.head.index;
  }

  /** The newest folded state (shared: do not modify). */
  get current(): ClusterState {
    return this.head;
  }

  /** The time of the event at or before `index` (0 when none). */
  timeAt(index: number): number {
    const pos = this.positionAfter(index);
    return pos > 0 ? this.events[pos - 1].time : 0;
  }

  /** The index of the last event at or before `time` (ms); the base when none. */
  indexAtTime(time: number): number {
    const pos = countUpTo(this.events, (e) => e.time <= time);
    return pos > 0 ? this.events[pos - 1].index : this.base;
  }

  /** A fresh state as of `index` (inclusive). */
  stateAt(index: number): ClusterState {
    if (index < this.base) {
      throw new FlotillaError(
        ErrorCode.InvalidArgument,
        `index ${index} is before the oldest retained point (${this.base}); older events were compacted`,
        { details: { field: 'at' } },
      );
    }
    if (index >= this.head.index) index = this.head.index;
    let from: { pos: number; data?: Uint8Array } = { pos: 0, data: this.baseData };
    for (const c of this.checkpoints) if (c.index <= index) from = c;
    const state = from.data ? decodeState(from.data) : emptyState();
    const end = this.positionAfter(index);
    for (let i = from.pos; i < end; i++) foldAll([this.events[i]], state);
    return state;
  }

  /** Number of events with index <= `index`. */
  private positionAfter(index: number): number {
    return countUpTo(this.events, (e) => e.index <= index);
  }
}

/** How many leading items satisfy `below` (binary search; `below` holds for a prefix). */
function countUpTo<T>(xs: readonly T[], below: (x: T) => boolean): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (below(xs[mid])) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
