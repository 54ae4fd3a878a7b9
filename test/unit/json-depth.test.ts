import fc from 'fast-check';
import { jsonNestsDeeper, MAX_JSON_DEPTH } from '../../src/json-depth';

/** The nesting depth of a parsed JSON value. */
function depthOf(x: unknown): number {
  if (typeof x !== 'object' || x === null) return 0;
  const kids = Array.isArray(x) ? x : Object.values(x);
  return 1 + Math.max(0, ...kids.map(depthOf));
}

describe('jsonNestsDeeper', () => {
  it('counts arrays and objects, not brackets inside strings', () => {
    expect(jsonNestsDeeper('{"a":[{"b":1}]}', 3)).toBe(false);
    expect(jsonNestsDeeper('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(jsonNestsDeeper(`{"a":"${'['.repeat(100)}"}`, 2)).toBe(false);
    expect(jsonNestsDeeper(`{"a":"\\"${'{'.repeat(100)}"}`, 2)).toBe(false);
  });

  it('refuses a megabyte of "[" at once, and takes what Flotilla sends', () => {
    expect(jsonNestsDeeper('['.repeat(1_000_000))).toBe(true);
    const report = { v: 1, machine: 'm', full: true, units: [{ unit: 'a.service' }], gone: [] };
    expect(jsonNestsDeeper(JSON.stringify(report))).toBe(false);
    expect(MAX_JSON_DEPTH).toBeGreaterThanOrEqual(8);
  });

  it('agrees with the depth of the parsed value, whatever the strings hold (quotes, backslashes, brackets)', () => {
    const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', 'a', 'é') });
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 8 }),
        tricky,
        fc.integer({ min: 0, max: 8 }),
        (v, s, max) => {
          const text = JSON.stringify([s, v, { [s]: s }]);
          expect(jsonNestsDeeper(text, max)).toBe(depthOf(JSON.parse(text)) > max);
        },
      ),
      { numRuns: 500 },
    );
  });
});
