import { Snapshots } from '../../../src/engine/snapshots';
import { emptyState } from '../../../src/engine/state';
import type { EngineContext } from '../../../src/engine/types';

/** A Snapshots over a state of `units` units, a manual clock and a store that records writes. */
function setup(units: number) {
  const state = emptyState();
  for (let i = 0; i < units; i++) state.units.set(`u${i}`, { name: `u${i}` } as never);
  let now = 100_000;
  const written: number[] = [];
  const ctx = {
    state,
    epoch: 1,
    clock: () => now,
    log: { warn: () => undefined },
    stats: { snapshots: 0, lastSnapshotIndex: 0, lastSnapshotBytes: 0 },
    opts: {
      snapshotEvery: 1000,
      snapshotIntervalMs: 60_000,
      term: {
        writeSnapshot: (s: { index: number }) => {
          written.push(s.index);
          return Promise.resolve({ bytes: 1, chunks: 1 });
        },
        compact: () => Promise.resolve(),
      },
    },
  } as unknown as EngineContext;
  const snaps = new Snapshots(ctx);
  snaps.lastAt = now;
  const flush = () => new Promise((r) => setTimeout(r, 20));
  return { snaps, written, advance: (ms: number) => (now += ms), flush, state };
}

describe('Snapshots: when a snapshot is due', () => {
  it('after as many durable events as the state has units (at least snapshot_every)', async () => {
    const s = setup(5000);
    s.snaps.eventsSince = 4999;
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toEqual([]);
    s.snaps.eventsSince = 5000;
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toHaveLength(1);
    expect(s.snaps.eventsSince).toBe(0);
  });

  it('while durable events keep being committed, waits for four times as many, then for a pause', async () => {
    const s = setup(5000);
    s.snaps.lastCommitAt = s.advance(0);
    s.snaps.eventsSince = 12_000;
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toEqual([]);
    // Commits paused for a second: the snapshot is taken.
    s.advance(1000);
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toHaveLength(1);
    // A burst that never pauses still gets one every four times the usual count.
    s.snaps.lastCommitAt = s.advance(10);
    s.snaps.eventsSince = 20_000;
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toHaveLength(2);
  });

  it('after the interval when anything durable changed, and never while blocked', async () => {
    const s = setup(10);
    s.snaps.eventsSince = 1;
    s.snaps.maybe(true);
    s.advance(60_000);
    s.snaps.maybe(true);
    await s.flush();
    expect(s.written).toEqual([]);
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toHaveLength(1);
    s.advance(120_000);
    s.snaps.maybe(false);
    await s.flush();
    expect(s.written).toHaveLength(1);
  });
});
