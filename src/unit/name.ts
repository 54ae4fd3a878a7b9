/**
 * Unit names, with systemd's rules (`unit_name_is_valid`): `prefix.type`,
 * `prefix@.type` (a template) or `prefix@instance.type` (an instance of that template).
 */
import { clip, ErrorCode, FlotillaError } from '../errors';

/**
 * The unit types systemd accepts (`systemctl -t help` on systemd 252), in systemd's order. fleet
 * also listed `busname` (kdbus, removed in systemd 230) and `snapshot` (removed in 228): a
 * modern systemd refuses those names, so Flotilla does too rather than accept units no agent
 * can ever load. The API, the engine and every driver use this one list.
 */
export const KNOWN_UNIT_TYPES: readonly string[] = [
  'service',
  'mount',
  'swap',
  'socket',
  'target',
  'device',
  'automount',
  'timer',
  'path',
  'slice',
  'scope',
];

/** Types that may be templates or instances (systemd's `unit_type_may_template`). */
export const TEMPLATE_UNIT_TYPES: readonly string[] = [
  'service',
  'socket',
  'target',
  'timer',
  'path',
];

/**
 * systemd's UNIT_NAME_MAX: a name is shorter than this many bytes (the limit counts C's
 * terminating NUL, so the longest name is 255 bytes; names are ASCII, so bytes are characters).
 */
export const UNIT_NAME_MAX = 256;

/** systemd's VALID_CHARS plus "@": the only characters of a unit name. */
const VALID_CHAR = /^[A-Za-z0-9:_.\\@-]$/;
const VALID_NAME = /^[A-Za-z0-9:_.\\@-]+$/;

export interface UnitNameInfo {
  /** The full name (`web@1.service`); `%n`. */
  fullName: string;
  /** The name without its type (`web@1`); `%N`. */
  name: string;
  /** The part before `@`, or the whole name without type (`web`); `%p`. */
  prefix: string;
  /** The part between `@` and the type (`1`); absent for plain units and templates; `%i`. */
  instance?: string;
  /** The type without its dot (`service`). */
  type: string;
  /** `web@.service`. */
  isTemplate: boolean;
  /** `web@1.service`. */
  isInstance: boolean;
}

function invalid(name: string, message: string): FlotillaError {
  return new FlotillaError(ErrorCode.UnitNameInvalid, message, { details: { unit: name } });
}

/**
 * Throws FlotillaError(UNIT_NAME_INVALID) saying what is wrong with `name`, if anything. The
 * rules are systemd's `unit_name_is_valid`: `prefix.type`, `prefix@.type` (a template) or
 * `prefix@instance.type`; ASCII letters, digits and `:_.\@-` only; fewer than 256 bytes; a type
 * of {@link KNOWN_UNIT_TYPES}; and, as systemd loads them, templates and instances only of
 * {@link TEMPLATE_UNIT_TYPES}. Quick whatever the input's size: a long name is refused on its
 * length before anything else is read, and messages quote at most a short prefix of it.
 */
export function validateUnitName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw invalid('', 'unit name is empty');
  if (name.length >= UNIT_NAME_MAX) {
    throw invalid(
      name,
      `unit name "${clip(name, 40)}" is ${name.length} characters long; the limit is ${UNIT_NAME_MAX - 1}`,
    );
  }
  const dot = name.lastIndexOf('.');
  if (!VALID_NAME.test(name)) {
    for (const ch of name) {
      if (!VALID_CHAR.test(ch)) {
        throw invalid(
          name,
          `unit name "${clip(name)}" contains ${JSON.stringify(ch)}; allowed are ASCII letters, digits and ":_.\\@-"`,
        );
      }
    }
  }
  if (dot === -1) {
    throw invalid(name, `unit name "${name}" has no type suffix (such as ".service")`);
  }
  if (dot === name.length - 1) throw invalid(name, `unit name "${name}" ends in "."`);
  const type = name.slice(dot + 1);
  if (!KNOWN_UNIT_TYPES.includes(type)) {
    throw invalid(
      name,
      `unit name "${name}" has unknown type "${type}"; known types: ${KNOWN_UNIT_TYPES.join(', ')}`,
    );
  }
  if (dot === 0) throw invalid(name, `unit name "${name}" has nothing before ".${type}"`);
  if (name.startsWith('@')) throw invalid(name, `unit name "${name}" starts with "@"`);
  if (name.slice(0, dot).includes('@') && !TEMPLATE_UNIT_TYPES.includes(type)) {
    throw invalid(
      name,
      `unit name "${name}" is a template or instance, but only ${TEMPLATE_UNIT_TYPES.join(', ')} units can be`,
    );
  }
}

/** True when {@link validateUnitName} accepts `name`. */
export function isValidUnitName(name: string): boolean {
  try {
    validateUnitName(name);
    return true;
  } catch {
    return false;
  }
}

/** The type of a unit name without its dot: `web@1.service` → `service`. */
export function unitType(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/**
 * Splits a name as fleet's `NewUnitNameInfo` did, without validating it: everything past the
 * first `@` and before the last `.` is the instance. Undefined when there is no `.`.
 */
export function splitUnitName(fullName: string): UnitNameInfo | undefined {
  const dot = fullName.lastIndexOf('.');
  if (dot === -1) return undefined;
  const name = fullName.slice(0, dot);
  const type = fullName.slice(dot + 1);
  const at = name.indexOf('@');
  if (at === -1) {
    return { fullName, name, prefix: name, type, isTemplate: false, isInstance: false };
  }
  const instance = name.slice(at + 1);
  const info: UnitNameInfo = {
    fullName,
    name,
    prefix: name.slice(0, at),
    type,
    isTemplate: instance === '',
    isInstance: instance !== '',
  };
  if (instance !== '') info.instance = instance;
  return info;
}

/** Validates `name` (throws UNIT_NAME_INVALID) and splits it into its parts. */
export function parseUnitName(name: string): UnitNameInfo {
  validateUnitName(name);
  // validateUnitName guarantees a "." so the split is defined.
  return splitUnitName(name) as UnitNameInfo;
}

/** The template an instance is made from (`web@1.service` → `web@.service`); undefined otherwise. */
export function templateOf(name: string): string | undefined {
  const info = splitUnitName(name);
  if (!info || !info.isInstance) return undefined;
  return `${info.prefix}@.${info.type}`;
}

/**
 * Expands fleet's specifiers in an `[X-Fleet]` value: `%n` full name, `%N` name without type,
 * `%p` prefix, `%i` instance. Replaced one after the other in that order, exactly as fleet's
 * `unitPrintf`; a name without `.` leaves the value untouched, as fleet did.
 */
export function expandSpecifiers(value: string, unitName: string): string {
  const info = splitUnitName(unitName);
  if (!info || !value.includes('%')) return value;
  return value
    .replaceAll('%n', info.fullName)
    .replaceAll('%N', info.name)
    .replaceAll('%p', info.prefix)
    .replaceAll('%i', info.instance ?? '');
}
