// Unit files: parsing, canonical form and hash, names, and the [X-Fleet] section. Pure code.
export { parseUnitFile, parseUnitFileNamed, UnitFileError, UNIT_LINE_MAX } from './parse';
export type { UnitFileProblem } from './parse';
export { serializeUnitFile, unitHash, unitDescription } from './serialize';
export {
  KNOWN_UNIT_TYPES,
  TEMPLATE_UNIT_TYPES,
  UNIT_NAME_MAX,
  validateUnitName,
  parseUnitName,
  splitUnitName,
  templateOf,
  expandSpecifiers,
} from './name';
export type { UnitNameInfo } from './name';
export { unitRequirements, parseMultivalue, isTruthy, X_FLEET_KEYS } from './requirements';
export { matchesGlob, compileGlob } from './glob';
export type { Glob } from './glob';
export { TARGET_STATES } from './types';
export type { UnitOption, UnitRequirements, TargetState } from './types';
