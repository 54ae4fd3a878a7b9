/**
 * The unit-file parser: reads systemd unit files exactly as go-systemd's `unit.Deserialize`
 * (the parser fleet used), so a file gives the same options, hence the same hash, as in fleet.
 *
 * What that means, rule by rule (each is a go-systemd behaviour, kept on purpose):
 * - Before the first `[Section]` header everything is ignored, except that a `#` or `;` starts a
 *   comment and the first `[` starts a header, wherever they are on a line.
 * - Inside a section, leading whitespace and blank lines are skipped; a line starting with `#` or
 *   `;` is a comment. A comment line ending in `\` (after at most one trailing space) swallows the
 *   next line too.
 * - `Name=Value`: the name is everything before the first `=`, trimmed; the value is the rest,
 *   trimmed, `=` inside it kept. Duplicate names are kept in order; empty values are allowed.
 * - A value line ending in `\` continues on the next line; the backslash, the newline and the
 *   next line are all kept verbatim. A blank line ends the value. If the value then ends in a
 *   newline (the file ended right after a continuation) that newline is kept.
 * - Lines end at `\n`. A `\r` before it stays in the line (and is trimmed away as whitespace
 *   where trimming happens); only a `\r` ending the file's last line is dropped.
 * - "Whitespace" is Go's `unicode.IsSpace`.
 *
 * Errors, each a {@link UnitFileError} with the 1-based line:
 * - a header without `]` on its line (go-systemd searched on across lines for the `]`; that only
 *   ever produced section names containing newlines, so Flotilla refuses instead);
 * - text other than whitespace after `]`;
 * - an option line without `=`;
 * - a line of 2048 bytes or more (systemd's LINE_MAX; go-systemd refuses these too).
 */
import { ErrorCode, FlotillaError } from '../errors';
import type { UnitOption } from './types';

/** systemd truncates longer lines; go-systemd refuses lines of this many bytes or more. */
export const UNIT_LINE_MAX = 2048;

/** Why a unit file was refused; stable, for callers that branch on it. */
export type UnitFileProblem =
  | 'section-unterminated'
  | 'section-trailing-text'
  | 'option-missing-equals'
  | 'line-too-long'
  | 'no-section'
  | 'no-options';

/** A unit file that cannot be read. `code` is always UNIT_FILE_INVALID. */
export class UnitFileError extends FlotillaError {
  override name = 'UnitFileError';

  constructor(
    /** 1-based line of the problem. */
    readonly line: number,
    readonly problem: UnitFileProblem,
    /** The problem without its location, e.g. `line has no "=": "Description"`. */
    readonly detail: string,
    /** File name for the message prefix (`hello.service:3: ...`); absent: `line 3: ...`. */
    readonly file?: string,
  ) {
    super(ErrorCode.UnitFileInvalid, `${file ? `${file}:${line}` : `line ${line}`}: ${detail}`, {
      details: file ? { line, problem, file } : { line, problem },
    });
  }
}

/** Go's unicode.IsSpace. */
function isSpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Go's strings.TrimSpace. */
export function trimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s.charCodeAt(a))) a++;
  while (b > a && isSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function isComment(ch: string): boolean {
  return ch === '#' || ch === ';';
}

/** Length in UTF-8 bytes of the longest run of `line` without a `\r`. */
function longestRunBytes(line: string): number {
  // Every UTF-16 unit is at most 3 UTF-8 bytes, so short lines need no counting.
  if (line.length * 3 < UNIT_LINE_MAX) return 0;
  let max = 0;
  for (const run of line.split('\r')) max = Math.max(max, Buffer.byteLength(run, 'utf8'));
  return max;
}

/** Physical lines as go-systemd's toEOL returns them. */
interface Lines {
  text: string[];
  /** True for the last line, which had no `\n` (Go's io.EOF). */
  eof(i: number): boolean;
}

function splitLines(text: string): Lines {
  const parts = text.split('\n');
  const last = parts.length - 1;
  if (parts[last].endsWith('\r')) parts[last] = parts[last].slice(0, -1);
  return { text: parts, eof: (i) => i === last };
}

/** Parses a unit file into its options, in file order. Throws {@link UnitFileError}. */
export function parseUnitFile(text: string): UnitOption[] {
  return parse(text, undefined).options;
}

/**
 * {@link parseUnitFile} for a named file: error messages read `hello.service:3: ...` (the CLI
 * shows them as they are).
 */
export function parseUnitFileNamed(fileName: string, text: string): UnitOption[] {
  const { options, hasSection } = parse(text, fileName);
  if (options.length === 0) {
    // Everything before the first [Section] is ignored: a file without one is (almost surely)
    // not a unit file, and a unit without options would be stored empty.
    throw new UnitFileError(
      1,
      hasSection ? 'no-options' : 'no-section',
      hasSection
        ? 'the file has no options: a unit needs at least one Name=Value line in a [Section]'
        : 'the file has no [Section] header: a unit file starts with one, such as [Unit] or [Service]',
      fileName,
    );
  }
  return options;
}

function parse(
  text: string,
  file: string | undefined,
): { options: UnitOption[]; hasSection: boolean } {
  const lines = splitLines(text);
  const options: UnitOption[] = [];
  const fail = (i: number, problem: UnitFileProblem, detail: string): never => {
    throw new UnitFileError(i + 1, problem, detail, file);
  };
  const checked = (i: number): string => {
    const line = lines.text[i];
    const bytes = longestRunBytes(line);
    if (bytes >= UNIT_LINE_MAX) {
      fail(i, 'line-too-long', `line is ${bytes} bytes long; the limit is ${UNIT_LINE_MAX - 1}`);
    }
    return line;
  };
  /** Skips a comment starting on line i (its rest is `rest`); returns the next line index. */
  const skipComment = (i: number, rest: string): number => {
    let line = rest;
    for (;;) {
      if (line.endsWith(' ')) line = line.slice(0, -1); // go-systemd trims one space only
      if (!line.endsWith('\\') || i + 1 >= lines.text.length) return i + 1;
      i++;
      line = checked(i);
    }
  };

  let section: string | undefined;
  let i = 0;
  while (i < lines.text.length) {
    const line = checked(i);
    let start = 0;
    if (section === undefined) {
      // Before the first header: only "[" and comment characters mean anything.
      while (start < line.length && line[start] !== '[' && !isComment(line[start])) start++;
      if (start === line.length) {
        i++;
        continue;
      }
    } else {
      while (start < line.length && isSpace(line.charCodeAt(start))) start++;
      if (start === line.length) {
        i++;
        continue;
      }
    }
    const first = line[start];
    if (isComment(first)) {
      i = skipComment(i, line.slice(start + 1));
      continue;
    }
    if (first === '[') {
      const close = line.indexOf(']', start + 1);
      if (close === -1) {
        fail(
          i,
          'section-unterminated',
          `section header has no closing "]": ${JSON.stringify(line.slice(start))}`,
        );
      }
      section = line.slice(start + 1, close);
      const rest = trimSpace(line.slice(close + 1));
      if (rest !== '') {
        fail(
          i,
          'section-trailing-text',
          `unexpected text after section header [${section}]: ${JSON.stringify(rest)}`,
        );
      }
      i++;
      continue;
    }
    // An option. go-systemd reads the name up to "=", failing at a line end ("\r" or "\n").
    const eq = line.indexOf('=', start);
    const cr = line.indexOf('\r', start);
    if (eq === -1 || (cr !== -1 && cr < eq)) {
      fail(
        i,
        'option-missing-equals',
        `expected "Name=Value", found ${JSON.stringify(trimSpace(line.slice(start)))}`,
      );
    }
    const name = trimSpace(line.slice(start, eq));
    let value = '';
    let part = line.slice(eq + 1);
    for (;;) {
      if (trimSpace(part) === '') break; // a blank line ends the value
      value += part;
      if (!part.endsWith('\\')) break;
      if (!lines.eof(i)) value += '\n';
      if (i + 1 >= lines.text.length) break;
      i++;
      part = checked(i);
    }
    value = value.endsWith('\n') ? `${trimSpace(value)}\n` : trimSpace(value);
    options.push({ section: section as string, name, value });
    i++;
  }
  return { options, hasSection: section !== undefined };
}
