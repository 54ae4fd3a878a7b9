/**
 * The `[X-Fleet]` section, with fleet's meaning (fleet's `job.Job` and `api.ValidateOptions`).
 *
 * - Each value is first split as fleet's `parseMultivalueLine`: a value that starts and ends with
 *   `"` is a list of quoted values separated by single spaces (`"a=b" "c=d"`); anything else is
 *   one value. Then specifiers are expanded (`%n %N %p %i`).
 * - `MachineID`: the first value wins; legacy `X-ConditionMachineID`, then
 *   `X-ConditionMachineBootID`, are used only when `MachineID` is absent.
 * - `MachineOf`, `Conflicts`, `Replaces`: whitespace-separated lists, repeatable; legacy
 *   `X-ConditionMachineOf` / `X-Conflicts` values come first, as in fleet.
 * - `MachineMetadata` (and legacy `X-ConditionMachineMetadata`): `key=value`, repeatable; values
 *   of one key are alternatives, keys must all match. A value that is not exactly `key=value` with
 *   both parts non-empty is ignored, as fleet did, with a warning.
 * - `Global`: the last value wins; true when it is `true`, `yes`, `1`, `on` or `t` (any case).
 * - Unknown keys are a warning, not an error.
 *
 * Where Flotilla differs from fleet, it only adds warnings or refuses what fleet would have
 * accepted and then never been able to schedule; see docs/unit-files.md.
 */
import { ErrorCode, FlotillaError } from '../errors';
import { globOf } from './glob';
import { expandSpecifiers, validateUnitName } from './name';
import type { UnitOption, UnitRequirements } from './types';

export const X_FLEET = 'X-Fleet';

/** Every `[X-Fleet]` key Flotilla understands, legacy spellings included. */
export const X_FLEET_KEYS: readonly string[] = [
  'MachineID',
  'MachineOf',
  'MachineMetadata',
  'Conflicts',
  'Global',
  'Replaces',
  'X-ConditionMachineID',
  'X-ConditionMachineBootID',
  'X-ConditionMachineOf',
  'X-ConditionMachineMetadata',
  'X-Conflicts',
];

const TRUTHY = new Set(['true', 'yes', '1', 'on', 't']);
const FALSY = new Set(['false', 'no', '0', 'off', 'f', '']);

/** fleet's parseMultivalueLine: `"a=b" "c=d"` → [a=b, c=d]; anything unquoted → [itself]. */
export function parseMultivalue(line: string): string[] {
  if (!line.startsWith('"') || !line.endsWith('"')) return [line];
  const values: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (ch === ' ' && !quoted) {
      values.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  values.push(current);
  return values;
}

/** The truthiness fleet gave `Global=`. */
export function isTruthy(value: string): boolean {
  return TRUTHY.has(value.toLowerCase());
}

function words(values: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const v of values) {
    for (const w of v.split(/\s+/)) {
      if (w !== '' && !seen.has(w)) {
        seen.add(w);
        out.push(w);
      }
    }
  }
  return out;
}

function refuse(unit: string, message: string): FlotillaError {
  return new FlotillaError(ErrorCode.UnitOptionsInvalid, message, { details: { unit } });
}

/**
 * Resolves the `[X-Fleet]` section of unit `name`. Throws FlotillaError(UNIT_OPTIONS_INVALID)
 * for combinations fleet refused (and one it could never schedule); returns warnings for what is
 * ignored.
 */
export function unitRequirements(
  name: string,
  options: readonly UnitOption[],
): { requirements: UnitRequirements; warnings: string[] } {
  // Most units have no [X-Fleet] section: answer without the parsing machinery (this runs for
  // every unit when a new leader folds its snapshot).
  if (!options.some((o) => o.section === X_FLEET)) {
    return {
      requirements: { machineOf: [], metadata: {}, conflicts: [], global: false, replaces: [] },
      warnings: [],
    };
  }
  const warnings: string[] = [];
  const values = new Map<string, string[]>();
  for (const o of options) {
    if (o.section !== X_FLEET) continue;
    if (!X_FLEET_KEYS.includes(o.name)) {
      if (!values.has(o.name)) warnings.push(`unknown [X-Fleet] option "${o.name}" ignored`);
      values.set(o.name, []);
      continue;
    }
    const list = values.get(o.name) ?? [];
    for (const v of parseMultivalue(o.value)) list.push(expandSpecifiers(v, name));
    values.set(o.name, list);
  }
  const get = (key: string): string[] => values.get(key) ?? [];

  // MachineID: fleet took the first value of the first spelling present.
  let machineId: string | undefined;
  for (const key of ['MachineID', 'X-ConditionMachineID', 'X-ConditionMachineBootID']) {
    const ids = get(key)
      .map((v) => v.trim())
      .filter((v) => {
        if (v === '') warnings.push(`empty ${key}= ignored`);
        return v !== '';
      });
    if (ids.length === 0) continue;
    if (machineId === undefined) {
      machineId = ids[0];
      if (new Set(ids).size > 1) warnings.push(`${key} given more than once; using "${ids[0]}"`);
    } else {
      warnings.push(`${key} ignored: MachineID is already "${machineId}"`);
    }
  }

  const machineOf = words([...get('X-ConditionMachineOf'), ...get('MachineOf')]).filter((peer) => {
    if (peer === name) {
      warnings.push(`MachineOf names the unit itself ("${peer}"); ignored`);
      return false;
    }
    try {
      validateUnitName(peer);
    } catch (err) {
      warnings.push(
        `MachineOf "${peer}" is not a valid unit name (${(err as Error).message}); the unit can never be placed`,
      );
    }
    return true;
  });

  const metadata: Record<string, string[]> = {};
  for (const key of ['X-ConditionMachineMetadata', 'MachineMetadata']) {
    for (const pair of get(key)) {
      const parts = pair.split('=');
      if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
        warnings.push(`${key} "${pair}" ignored: expected key=value`);
        continue;
      }
      const [k, v] = parts;
      const allowed = Object.prototype.hasOwnProperty.call(metadata, k) ? metadata[k] : [];
      if (!allowed.includes(v)) allowed.push(v);
      metadata[k] = allowed;
    }
  }

  const conflicts = words([...get('X-Conflicts'), ...get('Conflicts')]);
  const replaces = words(get('Replaces'));
  for (const [key, patterns] of [
    ['Conflicts', conflicts],
    ['Replaces', replaces],
  ] as const) {
    for (const p of patterns) {
      if (globOf(p).bad) warnings.push(`${key} pattern "${p}" is malformed and matches nothing`);
    }
  }

  const globals = get('Global');
  let global = false;
  if (globals.length > 0) {
    const last = globals[globals.length - 1];
    global = isTruthy(last);
    if (!global && !FALSY.has(last.toLowerCase())) {
      warnings.push(`Global "${last}" is not a boolean; taken as false`);
    }
  }

  const requirements: UnitRequirements = { machineOf, metadata, conflicts, global, replaces };
  if (machineId !== undefined) requirements.machineId = machineId;
  checkCombinations(name, requirements);
  return { requirements, warnings };
}

/**
 * What fleet also refused and Flotilla once accepted: checked when a unit is submitted, never
 * when the log is folded, so units stored before stay readable. `Global` with `Conflicts` would
 * place a unit on every machine and push every matching unit off the cluster.
 */
export function checkNewRequirements(name: string, r: UnitRequirements): void {
  if (r.global && r.conflicts.length > 0) {
    throw refuse(name, 'Global cannot be used with Conflicts');
  }
}

/** fleet's refused combinations, each with its own message; the first that applies is thrown. */
function checkCombinations(name: string, r: UnitRequirements): void {
  for (const peer of r.machineOf) {
    for (const pattern of r.conflicts) {
      if (globOf(pattern).match(peer)) {
        throw refuse(
          name,
          `MachineOf peer "${peer}" matches Conflicts pattern "${pattern}": the unit could never be placed`,
        );
      }
    }
    for (const pattern of r.replaces) {
      if (globOf(pattern).match(peer)) {
        throw refuse(
          name,
          `MachineOf peer "${peer}" matches Replaces pattern "${pattern}": the unit would push away the unit it must run beside`,
        );
      }
    }
  }
  const hasId = r.machineId !== undefined;
  const hasPeers = r.machineOf.length > 0;
  const hasConflicts = r.conflicts.length > 0;
  const hasReplaces = r.replaces.length > 0;
  if (hasId && hasPeers) throw refuse(name, 'MachineID cannot be used with MachineOf');
  if (hasId && hasConflicts) throw refuse(name, 'MachineID cannot be used with Conflicts');
  if (hasId && r.global) throw refuse(name, 'MachineID cannot be used with Global');
  if (hasId && hasReplaces) throw refuse(name, 'MachineID cannot be used with Replaces');
  if (r.global && hasPeers) throw refuse(name, 'Global cannot be used with MachineOf');
  if (r.global && hasReplaces) throw refuse(name, 'Global cannot be used with Replaces');
  if (hasConflicts && hasReplaces) throw refuse(name, 'Conflicts cannot be used with Replaces');
}
