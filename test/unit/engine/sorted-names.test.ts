import fc from 'fast-check';
import { SortedNames } from '../../../src/engine/sorted-names';

describe('SortedNames', () => {
  it('always lists exactly the present names, sorted (any mix of adds, removes and reads)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      }),
      fc.record({
        kind: fc.constant('remove' as const),
        name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      }),
      fc.record({ kind: fc.constant('read' as const), name: fc.constant('') }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.uniqueArray(fc.constantFrom('a', 'c', 'e')),
        (ops, initial) => {
          const present = new Set<string>(initial);
          const names = new SortedNames();
          names.reset(initial);
          const check = (): void =>
            expect(names.all((n) => present.has(n))).toEqual([...present].sort());
          for (const o of ops) {
            if (o.kind === 'add') {
              present.add(o.name);
              names.add(o.name);
            } else if (o.kind === 'remove') {
              present.delete(o.name);
              names.remove();
            } else check();
          }
          check();
        },
      ),
    );
  });

  it('returns the same array while nothing changes', () => {
    const names = new SortedNames();
    names.reset(['b', 'a']);
    const first = names.all(() => true);
    expect(first).toEqual(['a', 'b']);
    expect(names.all(() => true)).toBe(first);
    names.add('c');
    expect(names.all(() => true)).not.toBe(first);
  });
});
