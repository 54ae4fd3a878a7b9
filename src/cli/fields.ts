import { CliError } from './errors';
import { goQuote } from './format';

/** A list command's columns: the default set and every valid field, as fleetctl had them. */
export interface FieldSet {
  defaults: string;
  valid: readonly string[];
}

export const LIST_UNITS_FIELDS: FieldSet = {
  defaults: 'unit,machine,active,sub',
  valid: ['unit', 'machine', 'active', 'sub', 'load', 'hash'],
};

export const LIST_UNIT_FILES_FIELDS: FieldSet = {
  defaults: 'unit,hash,dstate,state,target',
  valid: [
    'unit',
    'hash',
    'dstate',
    'state',
    'target',
    'desc',
    'global',
    'tmachine',
    'reason',
    'failure',
  ],
};

export const LIST_MACHINES_FIELDS: FieldSet = {
  defaults: 'machine,ip,metadata',
  valid: ['machine', 'ip', 'metadata'],
};

/**
 * The columns to print. `spec` is the --fields value, or undefined when the flag was not
 * used. An empty value is `Must define output format`; an unknown key is
 * `Invalid key in output format: "x"` (fleetctl's messages, exit 1).
 */
export function selectFields(spec: string | undefined, set: FieldSet): string[] {
  const value = spec ?? set.defaults;
  if (value === '') throw new CliError('Must define output format');
  const cols = value.split(',');
  for (const c of cols) {
    if (!set.valid.includes(c)) throw new CliError(`Invalid key in output format: ${goQuote(c)}`);
  }
  return cols;
}

/** The header line cells: upper-cased field names. */
export function headerOf(cols: readonly string[]): string[] {
  return cols.map((c) => c.toUpperCase());
}
