/**
 * What a unit's options must be for its file to mean the same thing to everyone who reads it.
 *
 * A client sends options (section, name, value); the agent writes them out with
 * {@link serializeUnitFile}; systemd reads that file, and Flotilla's own parser (go-systemd's
 * rules, as fleet) reads it back for hashes, `cat` and the process driver. Text that reads
 * differently to systemd than to the option list would let a client hide a directive in a value
 * (`ExecStart=/bin/true\nExecStartPre=/bin/evil`), so such options are refused, never escaped:
 * every accepted option list is written so that both parsers read exactly these options (see
 * docs/unit-files.md, "What the API accepts", and test/integration/unit-roundtrip.test.ts).
 *
 * The rules, each closing a gap between go-systemd's parser and systemd 252's `config_parse`:
 * - No control character anywhere except a tab, and a newline only as the second half of a
 *   line continuation (`\` then newline) inside a value. systemd ends a line at `\r` and NUL
 *   too; go-systemd does not.
 * - A section is not empty and holds no `]` (go-systemd stops at the first, systemd at the last).
 * - A name is not empty, holds no `=`, does not start with `[`, `#` or `;`.
 * - Names and values start and end with no whitespace (both parsers trim it, but with different
 *   ideas of what whitespace is).
 * - In a value, each line but the last ends in an odd run of backslashes (both parsers then
 *   continue the line; systemd reads an even run as escaped backslashes and ends the line),
 *   and the last ends in none (go-systemd would continue onto the next option). A continued
 *   line does not start with `#` or `;` (systemd skips it as a comment, go-systemd keeps it);
 *   it is never blank, since it ends in a backslash or ends the (trimmed) value. The value
 *   does not start with a continuation (systemd would strip the space it becomes).
 * - Every line written is shorter than 2048 bytes (go-systemd refuses longer lines).
 * - No lone UTF-16 surrogate (it would be written as U+FFFD).
 * - The whole file is at most `maxUnitBytes` bytes, and has at least one option.
 */
import { clip, ErrorCode, FlotillaError } from '../errors';
import { UNIT_LINE_MAX, trimSpace } from './parse';
import { serializeUnitFile } from './serialize';
import { unitType } from './name';
import { systemdValue } from './values';
import type { UnitOption } from './types';

/** The default of `max_unit_bytes`: the largest unit file (serialized, in bytes) accepted. */
export const DEFAULT_MAX_UNIT_BYTES = 64 * 1024;
/**
 * The largest `max_unit_bytes` allowed: a unit is one event, and one event must fit in one
 * 1 MiB etcd value even in the worst case of its JSON (many one-character options, ~9 times the
 * file's size).
 */
export const MAX_UNIT_BYTES_LIMIT = 100 * 1024;

// eslint-disable-next-line no-control-regex
const CONTROL_BUT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_TAB_LF = /[\u0000-\u0008\u000b-\u001f\u007f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function refuse(unit: string, where: string, why: string, field: string): FlotillaError {
  return new FlotillaError(ErrorCode.UnitFileInvalid, `${clip(unit)}: ${where}: ${why}`, {
    details: { unit, field },
  });
}

/** Where an option is, for messages: `option 3 ([Service] ExecStart)`. */
function where(i: number, o: UnitOption): string {
  return `option ${i + 1} ([${clip(o.section, 40)}] ${clip(o.name, 40)})`;
}

function bytes(s: string): number {
  // Every UTF-16 unit is at most 3 UTF-8 bytes: short strings need no counting.
  return s.length * 3 < UNIT_LINE_MAX ? s.length : Buffer.byteLength(s, 'utf8');
}

/** The length of the run of backslashes `s` ends with. */
function trailingBackslashes(s: string): number {
  let n = 0;
  while (n < s.length && s[s.length - 1 - n] === '\\') n++;
  return n;
}

/** Why `value` would not be read back as itself, or undefined. */
function valueProblem(name: string, value: string): string | undefined {
  if (value !== trimSpace(value)) return 'the value starts or ends with whitespace';
  if (CONTROL_BUT_TAB_LF.test(value)) {
    return 'the value holds a control character (only tab, and a newline after "\\", are allowed)';
  }
  const lines = value.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    const head = k === 0 ? `${name}=${line}` : line;
    if (bytes(head) >= UNIT_LINE_MAX) {
      return `line ${k + 1} of the value is ${Buffer.byteLength(head)} bytes long written out; the limit is ${UNIT_LINE_MAX - 1}`;
    }
    const last = k === lines.length - 1;
    const run = trailingBackslashes(line);
    if (!last && run % 2 === 0) {
      return `a newline in the value must follow a line continuation "\\" (line ${k + 1})`;
    }
    if (last && run > 0) return 'the value ends in "\\", which would continue onto the next line';
    if (k > 0) {
      const first = line.replace(/^[ \t]+/, '')[0];
      if (first === '#' || first === ';') {
        return `continued line ${k + 1} of the value starts with "${first}" (systemd reads it as a comment)`;
      }
    }
  }
  // systemd strips the value after joining its lines: a first line that is only "\" would
  // start it with the space the continuation becomes.
  const joined = systemdValue(value);
  if (joined !== trimSpace(joined)) {
    return 'the value starts with a line continuation';
  }
  return undefined;
}

/**
 * Throws FlotillaError(UNIT_FILE_INVALID) naming the unit and the option when `options` could
 * be read back differently from what they are (see the module comment), are empty, or are
 * larger than `maxUnitBytes` once written out; and for a scope unit, which systemd never loads
 * from a file.
 */
export function checkUnitOptions(
  unit: string,
  options: readonly UnitOption[],
  maxUnitBytes: number = DEFAULT_MAX_UNIT_BYTES,
): void {
  if (unitType(unit) === 'scope') {
    // A valid name (systemd-run --scope makes them), but never a file systemd loads: on the
    // systemd driver the agent's load would fail with "not found" on every machine.
    throw new FlotillaError(
      ErrorCode.UnitFileInvalid,
      `${clip(unit)}: systemd makes scope units only at run time (systemd-run --scope), never from a unit file; run the command from a service instead`,
      { details: { unit, field: 'name' } },
    );
  }
  if (options.length === 0) {
    throw refuse(
      unit,
      'the unit file is empty',
      'it needs at least one [Section] with a Name=Value line',
      'options',
    );
  }
  // Cheap bound first: a 10 MB request is refused before anything is serialized.
  let size = 0;
  for (const o of options) size += o.section.length + o.name.length + o.value.length + 4;
  if (size > maxUnitBytes) {
    const total = Buffer.byteLength(serializeUnitFile(options), 'utf8');
    if (total > maxUnitBytes) {
      throw new FlotillaError(
        ErrorCode.UnitFileInvalid,
        `${clip(unit)}: the unit file is ${total} bytes; the limit is ${maxUnitBytes} (max_unit_bytes)`,
        { details: { unit, field: 'options', bytes: total, limit: maxUnitBytes } },
      );
    }
  }
  options.forEach((o, i) => {
    const at = (): string => where(i, o);
    for (const [field, text] of [
      ['section', o.section],
      ['name', o.name],
      ['value', o.value],
    ] as const) {
      if (typeof text !== 'string') throw refuse(unit, at(), `the ${field} is not text`, field);
      if (LONE_SURROGATE.test(text)) {
        throw refuse(unit, at(), `the ${field} is not valid Unicode (a lone surrogate)`, field);
      }
    }
    if (o.section === '') throw refuse(unit, at(), 'the section name is empty', 'section');
    if (CONTROL_BUT_TAB.test(o.section) || o.section.includes(']')) {
      throw refuse(unit, at(), 'the section name holds a control character or "]"', 'section');
    }
    if (bytes(`[${o.section}]`) >= UNIT_LINE_MAX) {
      throw refuse(unit, at(), `the section name is too long`, 'section');
    }
    if (o.name === '') throw refuse(unit, at(), 'the option name is empty', 'name');
    if (o.name !== trimSpace(o.name)) {
      throw refuse(unit, at(), 'the option name starts or ends with whitespace', 'name');
    }
    if (CONTROL_BUT_TAB.test(o.name) || o.name.includes('=')) {
      throw refuse(unit, at(), 'the option name holds a control character or "="', 'name');
    }
    if (/^[[#;]/.test(o.name)) {
      throw refuse(unit, at(), `the option name starts with "${o.name[0]}"`, 'name');
    }
    const problem = valueProblem(o.name, o.value);
    if (problem) throw refuse(unit, at(), problem, 'value');
  });
}
