// Unit files: the one module for parsing, the canonical form and hash, names and types, what
// the API accepts, and the [X-Fleet] section. Used by the CLI, the API, the engine and every
// driver. Pure code.
export { parseUnitFile, parseUnitFileNamed, UnitFileError, UNIT_LINE_MAX } from './parse';
export type { UnitFileProblem } from './parse';
export { serializeUnitFile, unitHash, unitDescription } from './serialize';
export { checkUnitOptions, DEFAULT_MAX_UNIT_BYTES, MAX_UNIT_BYTES_LIMIT } from './check';
export { systemdValue, optionValues } from './values';
export {
  KNOWN_UNIT_TYPES,
  TEMPLATE_UNIT_TYPES,
  UNIT_NAME_MAX,
  validateUnitName,
  isValidUnitName,
  unitType,
  parseUnitName,
  splitUnitName,
  templateOf,
  expandSpecifiers,
} from './name';
export type { UnitNameInfo } from './name';
export {
  unitRequirements,
  checkNewRequirements,
  parseMultivalue,
  isTruthy,
  X_FLEET_KEYS,
} from './requirements';
export { matchesGlob, compileGlob } from './glob';
export type { Glob } from './glob';
export { TARGET_STATES } from './types';
export type { UnitOption, UnitRequirements, TargetState } from './types';
