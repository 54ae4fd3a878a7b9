import fc from 'fast-check';
import type { UnitOption } from '../../src/unit';

/**
 * Characters that mean something to a unit-file parser (line ends, continuations, comments,
 * headers, assignments, whitespace of several kinds), plus ordinary and non-ASCII letters.
 */
const UNITS = [
  'a',
  'b',
  'Z',
  '0',
  ' ',
  '\t',
  '\n',
  '\r',
  '\\',
  '#',
  ';',
  '[',
  ']',
  '=',
  '"',
  "'",
  '%',
  '\u0000',
  '\u00a0',
  '\u2028',
  'é',
  '😀',
];

/** Text made mostly of characters a unit-file parser cares about. */
export function hostileText(maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...UNITS), maxLength });
}

const WHITESPACE = ' \t\n\r';
const strip = (s: string): string => {
  let a = 0;
  let b = s.length;
  while (a < b && WHITESPACE.includes(s[a])) a++;
  while (b > a && WHITESPACE.includes(s[b - 1])) b--;
  return s.slice(a, b);
};

/**
 * A model of how systemd 252's `config_parse` (src/shared/conf-parser.c) reads a unit file,
 * for fast property tests: lines end at `\n`, `\r` or NUL; a line ending in an odd run of
 * backslashes continues (the backslash becomes a space); a continued line that is blank or a
 * comment is skipped; `[Section]` headers; `Name=Value` with both sides stripped of " \t\n\r".
 * test/integration/unit-roundtrip.test.ts checks the real systemd.
 */
export function readLikeSystemd(text: string): UnitOption[] {
  const out: UnitOption[] = [];
  let section: string | undefined;
  const parseLine = (raw: string): void => {
    const l = strip(raw);
    if (l === '' || l[0] === '#' || l[0] === ';') return;
    if (l[0] === '[') {
      if (l[l.length - 1] !== ']') throw new Error(`invalid section header ${JSON.stringify(l)}`);
      section = l.slice(1, -1);
      return;
    }
    const eq = l.indexOf('=');
    if (section === undefined || eq < 0) return;
    out.push({ section, name: strip(l.slice(0, eq)), value: strip(l.slice(eq + 1)) });
  };
  let continuation: string | undefined;
  // eslint-disable-next-line no-control-regex
  for (const line of text.split(/\r\n|[\n\r\u0000]/)) {
    let p = line;
    if (continuation !== undefined) {
      const first = line.replace(/^[ \t\n\r]+/, '')[0];
      if (first === undefined || first === '#' || first === ';') continue;
      p = continuation + line;
    }
    let escaped = false;
    for (const c of p) escaped = escaped ? false : c === '\\';
    if (escaped) {
      continuation = `${p.slice(0, -1)} `;
      continue;
    }
    continuation = undefined;
    parseLine(p);
  }
  if (continuation !== undefined) parseLine(continuation);
  return out;
}
