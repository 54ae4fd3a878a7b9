import { jsonNestsDeeper, MAX_JSON_DEPTH } from '../../src/json-depth';

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
});
