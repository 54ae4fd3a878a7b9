/**
 * Reading options as systemd applies them, for the drivers: continuations joined, empty
 * assignments resetting a list. The options come from Flotilla's one parser (parse.ts).
 */
import type { UnitOption } from './types';

/**
 * A value as systemd reads it: each line continuation (`\` then a newline, which the parser
 * keeps, as go-systemd did) becomes one space, as in systemd's `config_parse`.
 */
export function systemdValue(value: string): string {
  return value.includes('\n') ? value.replace(/\\\n/g, ' ') : value;
}

/**
 * The values of `name` in `[section]`, in order, as systemd applies them: an empty assignment
 * resets the list (`ExecStart=` then `ExecStart=/bin/x` leaves one command).
 */
export function optionValues(
  options: readonly UnitOption[],
  section: string,
  name: string,
): string[] {
  let vals: string[] = [];
  for (const o of options) {
    if (o.section !== section || o.name !== name) continue;
    if (o.value === '') vals = [];
    else vals.push(systemdValue(o.value));
  }
  return vals;
}
