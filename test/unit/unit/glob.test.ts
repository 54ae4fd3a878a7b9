import { compileGlob, matchesGlob } from '../../../src/unit';

// Cases follow Go's path.Match tests (path/match_test.go), which fleet's globMatches called.
const cases: Array<[string, string, boolean]> = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['*x', 'xxx', true],
  ['[z-a]', 'm', false],
  // unit-name patterns as fleet users wrote them
  ['web@*.service', 'web@1.service', true],
  ['web@*.service', 'web@.service', true],
  ['web@*.service', 'webx@1.service', false],
  ['monitor*', 'monitor.service', true],
  ['*.socket', 'web.service', false],
];

describe('matchesGlob (Go path.Match)', () => {
  test.each(cases)('%s ~ %s → %s', (pattern, name, expected) => {
    expect(matchesGlob(pattern, name)).toBe(expected);
  });

  // Malformed patterns: Go returns ErrBadPattern; fleet treated that as "no match".
  test.each(['[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[', '*x\\'])(
    'malformed %s matches nothing',
    (pattern) => {
      const g = compileGlob(pattern);
      expect(g.bad).toBe(true);
      expect(g.match(pattern)).toBe(false);
      expect(matchesGlob(pattern, 'a')).toBe(false);
    },
  );
});

describe('compileGlob', () => {
  test.each([
    ['web@*.service', 'web@', false],
    ['db.service', 'db.service', true],
    ['a\\*b', 'a*b', true],
    ['*x', '', false],
    ['ab[c]d', 'ab', false],
    ['x?', 'x', false],
  ])('%s has literal prefix %j (exact: %s)', (pattern, prefix, exact) => {
    const g = compileGlob(pattern);
    expect(g.prefix).toBe(prefix);
    expect(g.exact).toBe(exact);
    expect(g.bad).toBe(false);
  });
});
