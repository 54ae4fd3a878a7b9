import { applyEvent } from '../engine/fold';
import { decodeState } from '../engine/snapshot';
import type { ClusterState, UnitRecord } from '../engine/state';
import { emptyState } from '../engine/state';
import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import type { Restored } from '../store/types';
import { CountLog } from './count-log';
import { settleLifecycles } from './phases';
import type { Counts } from './views';

/** Checkpoints take about this much memory at most in all, whatever the history's length. */
const MAX_CHECKPOINT_BYTES = 256 * 2 ** 20;
const MIN_SPACING = 10_000;
/** Rough heap cost of a copied record (measured with node --expose-gc: ~250 B a unit). */
const UNIT_BYTES = 300;
const REPORT_BYTES = 150;

interface Checkpoint {
  index: number;
  /** Events before it in `events`. */
  pos: number;
  /** A copy of the state at `index`, lifecycles settled; copied again before folding on. */
  state: ClusterState;
  bytes: number;
}

/**
 * A retained history (snapshot + events) folded on demand at any index, for the scrubber:
 * checkpoints (copies of the folded state, in memory) are taken while the events are first
 * folded, so the state at an index is a copy of the nearest checkpoint before it plus at most
 * one spacing of events — never the whole log. Folding is the leader's own fold (engine/fold.ts).
 * Copies, not encoded snapshots: decoding a 20,000-unit snapshot took longer than the whole
 * target for a scrubber move, and a copy keeps each unit's lifecycle exactly as the fold left it.
 */
export class History {
  readonly events: FlotillaEvent[] = [];
  /** The index the history starts from (the snapshot's, or 0 when it holds the whole log). */
  readonly base: number;
  private readonly baseData?: Uint8Array;
  private checkpoints: Checkpoint[] = [];
  private checkpointBytes = 0;
  private spacing = MIN_SPACING;
  private head: ClusterState;
  private sinceCheckpoint = 0;
  private readonly counts: CountLog;

  constructor(restored: Restored) {
    const snap = restored.snapshot;
    const fromStart = restored.tail.length > 0 && restored.tail[0].index === 1;
    this.base = snap && !fromStart ? snap.index : 0;
    if (snap && !fromStart) this.baseData = snap.data;
    this.head = this.baseData ? decodeState(this.baseData) : emptyState();
    this.counts = new CountLog(this.head);
    for (const e of restored.tail) if (e.index > this.base) this.append(e);
  }

  /** Adds the next event (in index order; older ones are ignored). */
  append(e: FlotillaEvent): void {
    if (e.index <= this.head.index) return;
    this.events.push(e);
    applyEvent(this.head, e);
    this.counts.record(this.head, e);
    if (++this.sinceCheckpoint >= this.spacing) {
      settleLifecycles(this.head);
      const state = copyState(this.head);
      const bytes = state.units.size * UNIT_BYTES + reportCount(state) * REPORT_BYTES;
      this.checkpoints.push({ index: e.index, pos: this.events.length, state, bytes });
      this.checkpointBytes += bytes;
      this.sinceCheckpoint = 0;
      if (this.checkpointBytes > MAX_CHECKPOINT_BYTES) {
        // Keep every other one: spacing doubles, memory stays bounded.
        this.checkpoints = this.checkpoints.filter((_, i) => i % 2 === 1);
        this.checkpointBytes = this.checkpoints.reduce((n, c) => n + c.bytes, 0);
        this.spacing *= 2;
      }
    }
  }

  /** The history as a store holds it: its snapshot (when it starts from one) and its events. */
  restored(): Restored {
    const snapshot = this.baseData
      ? { index: this.base, epoch: 0, data: this.baseData }
      : undefined;
    return { snapshot, tail: this.events };
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

  /**
   * Units and machines per state as of `index` (inclusive), unfiltered: from the counts written
   * down while folding (count-log.ts), not from a state folded again.
   */
  countsAt(index: number): Counts {
    this.checkRetained(index);
    return this.counts.countsAt(this.positionAfter(index));
  }

  private checkRetained(index: number): void {
    if (index < this.base) {
      throw new FlotillaError(
        ErrorCode.InvalidArgument,
        `index ${index} is before the oldest retained point (${this.base}); older events were compacted`,
        { details: { field: 'at' } },
      );
    }
  }

  /** A fresh state as of `index` (inclusive). */
  stateAt(index: number): ClusterState {
    this.checkRetained(index);
    if (index >= this.head.index) index = this.head.index;
    let from: Checkpoint | undefined;
    for (const c of this.checkpoints) if (c.index <= index) from = c;
    const state = from
      ? copyState(from.state)
      : this.baseData
        ? decodeState(this.baseData)
        : emptyState();
    const end = this.positionAfter(index);
    for (let i = from?.pos ?? 0; i < end; i++) applyEvent(state, this.events[i]);
    return state;
  }

  /** Number of events with index <= `index`. */
  private positionAfter(index: number): number {
    return countUpTo(this.events, (e) => e.index <= index);
  }
}

/**
 * A copy of a folded state that folding one cannot change in the other. The fold replaces
 * the records' inner objects (options, requirements, metadata, reports, lifecycle snapshots)
 * rather than changing them, so copying each record and map is enough; queued lifecycle events
 * are copied too.
 */
export function copyState(s: ClusterState): ClusterState {
  const units = new Map<string, UnitRecord>();
  for (const [name, u] of s.units) {
    const q = u.lifecycleQueue;
    units.set(
      name,
      q ? { ...u, lifecycleQueue: { init: q.init, events: [...q.events] } } : { ...u },
    );
  }
  const machines = new Map([...s.machines].map(([id, m]) => [id, { ...m }]));
  const reported = new Map([...s.reported].map(([unit, byMachine]) => [unit, new Map(byMachine)]));
  return { ...s, units, machines, reported };
}

function reportCount(s: ClusterState): number {
  let n = 0;
  for (const m of s.reported.values()) n += m.size;
  return n;
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
