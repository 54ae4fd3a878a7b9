/**
 * Glob patterns with the semantics of Go's `path.Match`, which fleet used for `Conflicts=` and
 * `Replaces=`: `*` any run of characters except `/`, `?` one character except `/`, `[a-z]` and
 * `[^a-z]` classes, `\` escapes the next character. A malformed pattern matches nothing (fleet
 * logged the error and treated it as "no match"); {@link compileGlob} reports it as `bad`.
 */

/** A compiled pattern. `prefix` is its literal head, used by indexes to narrow candidates. */
export interface Glob {
  readonly source: string;
  /** The characters every match starts with (everything before the first wildcard). */
  readonly prefix: string;
  /** True when the pattern has no wildcard: it matches exactly `prefix`. */
  readonly exact: boolean;
  /** True when the pattern is malformed; it then matches nothing. */
  readonly bad: boolean;
  match(name: string): boolean;
}

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

function escapeRegexChar(ch: string): string {
  return REGEX_SPECIAL.test(ch) ? `\\${ch}` : ch;
}

function codePointEscape(ch: string): string {
  return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
}

/** Parses a pattern into a RegExp source; returns undefined for a malformed pattern. */
function translate(pattern: string): { regex: string; prefix: string; exact: boolean } | undefined {
  const chars = Array.from(pattern); // code points, as Go decodes runes
  let regex = '';
  let prefix = '';
  let literalHead = true;
  let i = 0;
  while (i < chars.length) {
    const c = chars[i];
    if (c === '*') {
      literalHead = false;
      regex += '[^/]*';
      i++;
    } else if (c === '?') {
      literalHead = false;
      regex += '[^/]';
      i++;
    } else if (c === '[') {
      literalHead = false;
      i++;
      let negated = false;
      if (chars[i] === '^') {
        negated = true;
        i++;
      }
      const ranges: string[] = [];
      let parsed = 0;
      let closed = false;
      while (i < chars.length) {
        if (chars[i] === ']' && parsed > 0) {
          closed = true;
          i++;
          break;
        }
        const lo = classChar(chars, i);
        if (!lo) return undefined;
        i = lo.next;
        let hi = lo;
        if (chars[i] === '-') {
          const h = classChar(chars, i + 1);
          if (!h) return undefined;
          hi = h;
          i = h.next;
        }
        parsed++;
        // An inverted range (z-a) is legal in Go and matches nothing.
        if ((lo.ch.codePointAt(0) ?? 0) <= (hi.ch.codePointAt(0) ?? 0)) {
          ranges.push(`${codePointEscape(lo.ch)}-${codePointEscape(hi.ch)}`);
        }
      }
      if (!closed) return undefined;
      if (ranges.length === 0) regex += negated ? '[^]' : '[]';
      else regex += `[${negated ? '^' : ''}${ranges.join('')}]`;
    } else if (c === '\\') {
      if (i + 1 >= chars.length) return undefined;
      const lit = chars[i + 1];
      regex += escapeRegexChar(lit);
      if (literalHead) prefix += lit;
      i += 2;
    } else {
      regex += escapeRegexChar(c);
      if (literalHead) prefix += c;
      i++;
    }
  }
  return { regex, prefix, exact: literalHead };
}

/** One character of a `[...]` class, as Go's getEsc: `-` and `]` must be escaped. */
function classChar(chars: string[], i: number): { ch: string; next: number } | undefined {
  if (i >= chars.length || chars[i] === '-' || chars[i] === ']') return undefined;
  if (chars[i] === '\\') {
    i++;
    if (i >= chars.length) return undefined;
  }
  // Go also refuses a class that runs to the end of the pattern.
  if (i + 1 >= chars.length) return undefined;
  return { ch: chars[i], next: i + 1 };
}

const NEVER = (): boolean => false;

/** Compiles a glob pattern. Never throws: a malformed pattern yields a `bad` glob. */
export function compileGlob(pattern: string): Glob {
  const t = translate(pattern);
  if (!t) return { source: pattern, prefix: pattern, exact: false, bad: true, match: NEVER };
  if (t.exact) {
    return {
      source: pattern,
      prefix: t.prefix,
      exact: true,
      bad: false,
      match: (n) => n === t.prefix,
    };
  }
  const re = new RegExp(`^${t.regex}$`, 'u');
  return { source: pattern, prefix: t.prefix, exact: false, bad: false, match: (n) => re.test(n) };
}

const cache = new Map<string, Glob>();
const CACHE_LIMIT = 10_000;

/** {@link compileGlob} with a bounded cache: patterns repeat across many units. */
export function globOf(pattern: string): Glob {
  let g = cache.get(pattern);
  if (!g) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    g = compileGlob(pattern);
    cache.set(pattern, g);
  }
  return g;
}

/** True when `name` matches the glob `pattern` (Go `path.Match`; malformed patterns never match). */
export function matchesGlob(pattern: string, name: string): boolean {
  return globOf(pattern).match(name);
}
