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
// The scheduler (src/scheduler): fleet's placement rules, deterministic and incremental.
export { Scheduler, schedule, formatDecision } from './scheduler';
export type { Decision, SchedMachine, SchedUnit } from './scheduler';
