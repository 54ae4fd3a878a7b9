import fc from 'fast-check';
import { LoadIndex } from '../../../src/scheduler/load-index';
import { PatternIndex } from '../../../src/scheduler/pattern-index';
import { PlanQueue } from '../../../src/scheduler/queue';
import { matchesGlob } from '../../../src/unit';

interface M {
  id: string;
  load: number;
}

/** All items of the index in visiting order. */
function order(ix: LoadIndex<M>): string[] {
  const out: string[] = [];
  ix.find((m) => {
    out.push(m.id);
    return false;
  });
  return out;
}

describe('LoadIndex', () => {
  test('visits by load, then by ID', () => {
    const ix = new LoadIndex<M>();
    const ms: M[] = [
      { id: 'b', load: 1 },
      { id: 'a', load: 2 },
      { id: 'c', load: 1 },
      { id: 'd', load: 0 },
    ];
    for (const m of ms) ix.add(m, m.load);
    expect(order(ix)).toEqual(['d', 'b', 'c', 'a']);
    ix.move(ms[3], 0, 3);
    expect(order(ix)).toEqual(['b', 'c', 'a', 'd']);
    ix.remove(ms[0], 1);
    expect(order(ix)).toEqual(['c', 'a', 'd']);
    expect(ix.size).toBe(3);
    expect(ix.find((m) => m.id === 'a')?.id).toBe('a');
    expect(ix.find(() => false)).toBeUndefined();
  });

  test('matches a sort by (load, id) after any sequence of changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('m1', 'm2', 'm3', 'm4', 'm5'), fc.nat(6)), {
          maxLength: 40,
        }),
        (ops) => {
          const ix = new LoadIndex<M>();
          const items = new Map<string, M>();
          for (const [id, load] of ops) {
            const m = items.get(id);
            if (!m) {
              const n = { id, load };
              items.set(id, n);
              ix.add(n, load);
            } else if (load === 0) {
              ix.remove(m, m.load);
              items.delete(id);
            } else {
              ix.move(m, m.load, load);
              m.load = load;
            }
          }
          const expected = [...items.values()]
            .sort((a, b) => a.load - b.load || (a.id < b.id ? -1 : 1))
            .map((m) => m.id);
          expect(order(ix)).toEqual(expected);
          expect(ix.size).toBe(items.size);
        },
      ),
    );
  });
});

describe('PatternIndex', () => {
  const patterns = [
    'web@*.service',
    'web@1.service',
    'db*',
    '*.socket',
    'x?.service',
    '[ab]*',
    'bad[',
  ];
  const names = [
    'web@1.service',
    'web@2.service',
    'db.service',
    'a.socket',
    'xy.service',
    'b.timer',
    'z',
  ];

  test('finds exactly the patterns that match a name', () => {
    const ix = new PatternIndex();
    for (const p of patterns) ix.add(p);
    for (const n of names) {
      expect([...ix.matching(n)].sort()).toEqual(patterns.filter((p) => matchesGlob(p, n)).sort());
    }
  });

  test('counts references', () => {
    const ix = new PatternIndex();
    ix.add('db*');
    ix.add('db*');
    ix.remove('db*');
    expect(ix.matching('db.service')).toEqual(['db*']);
    ix.remove('db*');
    expect(ix.matching('db.service')).toEqual([]);
    ix.remove('never-added*');
    expect(ix.matching('never-added.service')).toEqual([]);
  });
});

describe('PlanQueue', () => {
  test('pops the sorted batch and later arrivals in name order', () => {
    const q = new PlanQueue(['b', 'd', 'f']);
    expect(q.pop()).toBe('b');
    q.push('a');
    q.push('e');
    expect(q.size).toBe(4);
    expect([q.pop(), q.pop(), q.pop(), q.pop(), q.pop()]).toEqual(['a', 'd', 'e', 'f', undefined]);
  });
});
