import { ErrorCode, FlotillaError } from '../errors';
import { Retention } from '../history/retention';
import { nextTurn } from '../turn';
import { encodeStateInSlices } from './snapshot';
import type { EngineContext } from './types';

/**
 * While durable events keep being committed (a burst), a snapshot waits for BUSY_FACTOR times
 * as many events as usual, and is taken once commits have paused for BUSY_MS (the engine's
 * timer asks every second). A 20,000-unit burst took 3 to 4 snapshots of 8 MB, several times
 * its state's size in encoding; a snapshot of a state about to change is wasted work.
 */
const BUSY_FACTOR = 4;
const BUSY_MS = 1000;

/**
 * When and how the leader writes snapshots of its state and compacts the log behind them,
 * keeping `retention` events (and none older than `retentionAgeMs`) for replay.
 */
export class Snapshots {
  /** Durable events whose effects were applied since the last snapshot. */
  eventsSince = 0;
  /** When (the engine's clock, ms) the last snapshot was written, or the term began. */
  lastAt = 0;
  private writing = false;
  readonly retention: Retention;

  constructor(private readonly ctx: EngineContext) {
    this.retention = new Retention(ctx.opts.retention ?? 100_000, ctx.opts.retentionAgeMs ?? 0);
  }

  /** When (the engine's clock) durable events were last committed. */
  lastCommitAt = -Infinity;

  /**
   * Takes a snapshot when due: enough durable events since the last one, or the interval
   * passed; while commits keep coming, BUSY_FACTOR times as many events.
   */
  maybe(blocked: boolean): void {
    if (this.writing || blocked) return;
    const { state, opts } = this.ctx;
    // A snapshot costs O(state); taking one every fixed number of events makes a burst of N
    // units cost O(N²) (measured: 30 snapshots of up to 1.6 s each for 100,000 units). Waiting
    // for at least as many events as the state has units and machines keeps it O(1) per event.
    const size = state.units.size + state.machines.size;
    const busy = this.ctx.clock() - this.lastCommitAt < BUSY_MS;
    const every = Math.max(opts.snapshotEvery ?? 10_000, size) * (busy ? BUSY_FACTOR : 1);
    const interval = opts.snapshotIntervalMs ?? 60_000;
    const due =
      this.eventsSince >= every ||
      (this.eventsSince > 0 && this.ctx.clock() - this.lastAt >= interval);
    if (due)
      void this.write().catch((err: unknown) =>
        this.ctx.log.warn('snapshot failed', { error: (err as Error).message }),
      );
  }

  /** Writes a snapshot of the current state and compacts the log behind it (keeping `retention`). */
  async write(): Promise<{ index: number; bytes: number }> {
    if (this.writing)
      throw new FlotillaError(ErrorCode.InvalidState, 'a snapshot is already being written');
    this.writing = true;
    const { ctx } = this;
    try {
      const index = ctx.state.index;
      // The state is captured synchronously as of `index`; its text is written over turns.
      const encoding = encodeStateInSlices(ctx.state, nextTurn);
      this.eventsSince = 0;
      this.lastAt = ctx.clock();
      const data = await encoding;
      const stats = await ctx.opts.term.writeSnapshot({ index, epoch: ctx.epoch, data });
      ctx.stats.snapshots++;
      ctx.stats.lastSnapshotIndex = index;
      ctx.stats.lastSnapshotBytes = stats.bytes;
      const cut = this.retention.cut(index, ctx.clock());
      if (cut > 0) await ctx.opts.term.compact(cut);
      return { index, bytes: stats.bytes };
    } finally {
      this.writing = false;
    }
  }
}
