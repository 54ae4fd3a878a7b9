import { takeBatch, type Queued } from '../../../src/engine/batching';

interface W extends Queued {
  id: string;
}
const w = (id: string, events: number, bulk = false): W => ({ id, events, bulk, skipped: 0 });
const ids = (ws: W[]): string[] => ws.map((x) => x.id);

describe('takeBatch', () => {
  it('takes writes in arrival order up to the event limit', () => {
    const q = [w('a', 3), w('b', 4), w('c', 4)];
    expect(ids(takeBatch(q, 8))).toEqual(['a', 'b']);
    expect(ids(q)).toEqual(['c']);
  });

  it('always takes at least one write, however large', () => {
    const q = [w('big', 5000, true), w('x', 1, true)];
    expect(ids(takeBatch(q, 1000))).toEqual(['big']);
  });

  it('lets normal writes overtake bulk ones, and keeps both lanes in order', () => {
    const q = [w('bulk1', 1000, true), w('n1', 1), w('bulk2', 1000, true), w('n2', 2)];
    expect(ids(takeBatch(q, 1000))).toEqual(['n1', 'n2']);
    expect(ids(takeBatch(q, 1000))).toEqual(['bulk1']);
    expect(ids(takeBatch(q, 1000))).toEqual(['bulk2']);
  });

  it('fills the rest of a batch with bulk writes once no normal write waits', () => {
    const q = [w('bulk1', 300, true), w('n1', 1), w('bulk2', 300, true), w('bulk3', 500, true)];
    expect(ids(takeBatch(q, 1000))).toEqual(['n1', 'bulk1', 'bulk2']);
  });

  it('never lets a normal write overtake another one, nor a bulk write overtake a normal one', () => {
    const q = [w('n1', 900), w('n2', 200), w('bulk', 10, true), w('n3', 1)];
    expect(ids(takeBatch(q, 1000))).toEqual(['n1']);
    expect(ids(takeBatch(q, 1000))).toEqual(['n2', 'n3', 'bulk']);
  });

  it('goes back to arrival order for a bulk write passed over too often', () => {
    const q = [w('bulk', 1000, true)];
    for (let i = 0; i < 2; i++) {
      q.push(w(`n${i}`, 1000));
      expect(ids(takeBatch(q, 1000, { maxSkips: 2 }))).toEqual([`n${i}`]);
    }
    q.push(w('late', 1));
    expect(q[0].skipped).toBe(2);
    expect(ids(takeBatch(q, 1000, { maxSkips: 2 }))).toEqual(['bulk']);
    expect(ids(takeBatch(q, 1000, { maxSkips: 2 }))).toEqual(['late']);
  });

  it('holds bulk writes back while the engine is busy, without counting them as passed over', () => {
    const q = [w('bulk', 10, true), w('n1', 1), w('n2', 2)];
    expect(ids(takeBatch(q, 1000, { admitBulk: false }))).toEqual(['n1', 'n2']);
    expect(ids(takeBatch(q, 1000, { admitBulk: false }))).toEqual([]);
    expect(q[0].skipped).toBe(0);
    expect(ids(takeBatch(q, 1000))).toEqual(['bulk']);
  });
});
