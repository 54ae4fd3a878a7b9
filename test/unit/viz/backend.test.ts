import type { FlotillaEvent } from '../../../src/events/types';
import type { LogStore, Restored } from '../../../src/store/types';
import { FOLLOWER_REFRESH_MS, liveBackend } from '../../../src/viz/backend';
import { VizServer } from '../../../src/viz/server';

const M = 'd'.repeat(32);

function events(units: number): FlotillaEvent[] {
  const bodies: Record<string, unknown>[] = [
    { type: 'MachineUp', machine: M, ip: '10.0.0.4', metadata: {} },
  ];
  for (let i = 0; i < units; i++)
    bodies.push(
      { type: 'UnitSubmitted', unit: `u${i}.service`, options: [], hash: 'h', target: 'launched' },
      { type: 'UnitScheduled', unit: `u${i}.service`, machine: M, reason: 'least loaded' },
    );
  return bodies.map((b, i) => ({ ...b, index: i + 1, epoch: 1, time: i, v: 2 }) as FlotillaEvent);
}

describe('a follower (no engine) shows the store’s durable history', () => {
  test('read when asked, read again once stale; the stream’s version moves with it', async () => {
    let restored: Restored = { tail: events(2) };
    let reads = 0;
    const store = {
      readAll: async () => {
        reads++;
        return restored;
      },
    } as unknown as LogStore;
    const backend = liveBackend(() => undefined, store);
    const viz = new VizServer(backend);
    try {
      const now = await viz.viewAt(null);
      expect(backend.live).toBe(false);
      expect(now.index).toBe(5);
      expect(now.view.unitPhase('u1.service')).toBe('scheduled');
      const v = backend.version();
      expect(reads).toBe(1);

      restored = { tail: events(3) };
      // Not read again while fresh.
      await viz.viewAt(null);
      expect(reads).toBe(1);
      const later = Date.now() + FOLLOWER_REFRESH_MS + 1;
      jest.spyOn(Date, 'now').mockReturnValue(later);
      backend.head();
      await backend.ready!();
      await new Promise((r) => setImmediate(r));
      expect(reads).toBe(2);
      expect(backend.version()).not.toBe(v);
      expect((await viz.viewAt(null)).index).toBe(7);
      expect((await backend.history()).countsAt(7)['engine-unit']).toEqual({ scheduled: 3 });
    } finally {
      jest.restoreAllMocks();
      viz.close();
    }
  });
});
