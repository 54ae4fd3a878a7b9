// Public entry of the flotilla package: explicit exports only.
export { FlotillaError, ErrorCode, isFlotillaError } from './errors';
export type { FlotillaErrorOptions } from './errors';
// Unit files (src/unit): fleet-compatible parsing, canonical form, hashes and [X-Fleet] options.
export {
  parseUnitFile,
  parseUnitFileNamed,
  serializeUnitFile,
  unitHash,
  unitDescription,
  UnitFileError,
  validateUnitName,
  parseUnitName,
  templateOf,
  unitRequirements,
  matchesGlob,
  KNOWN_UNIT_TYPES,
} from './unit';
export type {
  UnitOption,
  UnitRequirements,
  TargetState,
  UnitNameInfo,
  UnitFileProblem,
} from './unit';
