// Public entry of the flotilla package: explicit exports only.
export { FlotillaError, ErrorCode, isFlotillaError } from './errors';
export type { FlotillaErrorOptions } from './errors';
