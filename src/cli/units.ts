import path from 'node:path';
import type { Unit, UnitOption, UnitSpec } from '../gen/flotilla/v1/flotilla';
import { splitUnitName, templateOf, unitHash } from '../unit';
import { CliError } from './errors';

/**
 * Unit arguments as fleetctl understood them (fleetctl.go: unitNameMangle, lazyCreateUnits,
 * getUnitFile, getUnitFileFromTemplate, isLocalUnitDifferent, checkReplaceUnitState).
 */

/** The types fleetctl recognised in an argument; anything else gets `.service` appended. */
export const ARG_UNIT_TYPES: readonly string[] = [
  'service',
  'socket',
  'timer',
  'path',
  'device',
  'mount',
  'automount',
];

export function hasRecognizedType(name: string): boolean {
  return ARG_UNIT_TYPES.some((t) => name.endsWith(`.${t}`));
}

/** `foo` → `foo.service`; `units/foo.socket` unchanged (fleet's maybeAppendDefaultUnitType). */
export function withDefaultType(arg: string): string {
  return hasRecognizedType(arg) ? arg : `${arg}.service`;
}

/** The unit name an argument stands for: its base name, `.service` appended if needed. */
export function unitNameOf(arg: string): string {
  return withDefaultType(path.posix.basename(arg));
}

/** `web@.service` (a template: never started). */
export function isTemplateName(name: string): boolean {
  return splitUnitName(name)?.isTemplate ?? false;
}

/** The template of an instance (`web@1.service` → `web@.service`), or undefined. */
export function templateNameOf(name: string): string | undefined {
  return templateOf(name);
}

/** Unique names in first-seen order. */
export function uniqueNames(args: readonly string[]): string[] {
  return [...new Set(args.map(unitNameOf))];
}

/** Reads and parses a local unit file: undefined when it does not exist; throws on a parse error. */
export type LocalUnitReader = (file: string) => UnitOption[] | undefined;

/**
 * True when a local file has the content of a unit in the cluster: same hash of the canonical
 * serialization (comments, blank lines and whitespace do not count), as fleet's
 * MatchUnitFiles.
 */
export function sameContent(local: readonly UnitOption[], unit: Unit): boolean {
  return unitHash(local) === (unit.hash || unitHash(unit.options));
}

/** Which command resolves the arguments: decides the states --replace may replace from. */
export type CreatingCommand = 'submit' | 'load' | 'start';

/** fleetctl's checkReplaceUnitState: the desired states a unit may be replaced from. */
const REPLACE_ALLOWED: Record<CreatingCommand, readonly string[]> = {
  submit: ['inactive'],
  load: ['inactive', 'loaded'],
  start: ['inactive', 'loaded', 'launched'],
};

export interface ResolveInput {
  args: readonly string[];
  command: CreatingCommand;
  replace: boolean;
  /** Units (and templates) already in the cluster, by name. */
  cluster: ReadonlyMap<string, Unit>;
  read: LocalUnitReader;
}

export interface ResolvePlan {
  /** Every unit named by the arguments, in order, without duplicates. */
  names: string[];
  /** Units to create. */
  create: UnitSpec[];
  /** Existing units to replace (--replace and a different local file). */
  replace: UnitSpec[];
  /** Lines for stderr (WARNING …) and stdout (Found same …), in order. */
  stderr: string[];
  stdout: string[];
}

/**
 * The templates that must be looked up in the cluster before {@link resolveUnits} can run:
 * for every argument naming an instance with no unit of its own in the cluster and no local
 * file, its template.
 */
export function templatesNeeded(
  args: readonly string[],
  cluster: ReadonlyMap<string, Unit>,
  exists: (file: string) => boolean,
): string[] {
  const out = new Set<string>();
  for (const raw of args) {
    const arg = withDefaultType(raw);
    const name = unitNameOf(arg);
    if (cluster.has(name) || exists(arg)) continue;
    const tmpl = templateNameOf(name);
    if (tmpl !== undefined && !cluster.has(tmpl)) out.add(tmpl);
  }
  return [...out];
}

function parseLocal(read: LocalUnitReader, file: string, what: string): UnitOption[] | undefined {
  try {
    return read(file);
  } catch (err) {
    throw new CliError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Decides what `submit`/`load`/`start` must create or replace, with fleetctl's order of
 * sources for each argument: the unit in the cluster; a local file; the template in the
 * cluster; the template file next to the argument. Errors are CliError with fleetctl's text
 * (the caller prefixes `Error creating units: `).
 */
export function resolveUnits(input: ResolveInput): ResolvePlan {
  const plan: ResolvePlan = { names: [], create: [], replace: [], stderr: [], stdout: [] };
  const seen = new Set<string>();
  for (const raw of input.args) {
    const arg = withDefaultType(raw);
    const name = unitNameOf(arg);
    if (seen.has(name)) continue;
    seen.add(name);
    plan.names.push(name);

    const existing = input.cluster.get(name);
    if (existing) {
      checkExisting(input, plan, arg, existing);
      continue;
    }

    const local = parseLocal(input.read, arg, `failed getting Unit(${arg}) from file`);
    if (local) {
      plan.create.push({ name, options: local, targetState: '' });
      continue;
    }

    const tmpl = templateNameOf(name);
    if (tmpl === undefined) {
      throw new CliError(`unable to find Unit(${name}) in Registry or on filesystem`);
    }
    const clusterTmpl = input.cluster.get(tmpl);
    let options: UnitOption[];
    if (clusterTmpl) {
      const tmplFile = path.join(path.dirname(arg), tmpl);
      const localTmpl = safeRead(input.read, tmplFile);
      if (localTmpl && !sameContent(localTmpl, clusterTmpl) && !input.replace) {
        plan.stderr.push(
          `WARNING: Unit ${tmpl} in registry differs from local template unit file ${tmplFile}. Add --replace to override.`,
        );
      }
      options = clusterTmpl.options;
    } else {
      const tmplFile = path.join(path.dirname(arg), tmpl);
      const fromFile = parseLocal(
        input.read,
        tmplFile,
        `failed getting Unit(${arg}) from template: unable to load template Unit(${tmpl}) from file`,
      );
      if (!fromFile) {
        throw new CliError(
          `failed getting Unit(${arg}) from template: unable to find template Unit(${tmpl}) in Registry or on filesystem`,
        );
      }
      options = fromFile;
    }
    plan.create.push({ name, options, targetState: '' });
  }
  return plan;
}

function safeRead(read: LocalUnitReader, file: string): UnitOption[] | undefined {
  try {
    return read(file);
  } catch {
    return undefined;
  }
}

/** fleetctl's checkUnitCreation/isLocalUnitDifferent for a unit already in the cluster. */
function checkExisting(input: ResolveInput, plan: ResolvePlan, arg: string, existing: Unit): void {
  let local = safeRead(input.read, arg);
  let file = arg;
  let fileKind = 'local unit file';
  if (!local) {
    const tmpl = templateNameOf(existing.name);
    if (tmpl === undefined) return; // nothing local to compare with
    file = path.join(path.dirname(arg), tmpl);
    local = safeRead(input.read, file);
    fileKind = 'local template unit file';
    if (!local) return;
  }
  if (sameContent(local, existing)) {
    if (input.replace)
      plan.stdout.push(`Found same Unit(${existing.name}) in Registry, nothing to do`);
    return;
  }
  if (!input.replace) {
    plan.stderr.push(
      `WARNING: Unit ${existing.name} in registry differs from ${fileKind} ${file}. Add --replace to override.`,
    );
    return;
  }
  const desired = existing.targetState || 'inactive';
  if (!REPLACE_ALLOWED[input.command].includes(desired)) {
    plan.stderr.push(
      `Warning: can not replace Unit(${existing.name}) in state '${desired}', use the appropriate command`,
    );
    return;
  }
  plan.replace.push({ name: existing.name, options: local, targetState: '' });
}
