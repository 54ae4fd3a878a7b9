import { CliError } from '../../../src/cli/errors';
import {
  LIST_MACHINES_FIELDS,
  LIST_UNIT_FILES_FIELDS,
  LIST_UNITS_FIELDS,
  selectFields,
} from '../../../src/cli/fields';

describe('--fields', () => {
  test('defaults per command, as fleetctl', () => {
    expect(selectFields(undefined, LIST_UNITS_FIELDS)).toEqual([
      'unit',
      'machine',
      'active',
      'sub',
    ]);
    expect(selectFields(undefined, LIST_UNIT_FILES_FIELDS)).toEqual([
      'unit',
      'hash',
      'dstate',
      'state',
      'target',
    ]);
    expect(selectFields(undefined, LIST_MACHINES_FIELDS)).toEqual(['machine', 'ip', 'metadata']);
  });

  test('every valid field is accepted, in the order given, repeats allowed', () => {
    expect(selectFields('hash,load,unit,unit', LIST_UNITS_FIELDS)).toEqual([
      'hash',
      'load',
      'unit',
      'unit',
    ]);
    expect(selectFields(LIST_UNIT_FILES_FIELDS.valid.join(','), LIST_UNIT_FILES_FIELDS)).toEqual([
      ...LIST_UNIT_FILES_FIELDS.valid,
    ]);
  });

  test("valid field sets are fleetctl v1.0 ones (and list-unit-files' why-not-running fields)", () => {
    expect([...LIST_UNITS_FIELDS.valid].sort()).toEqual(
      ['unit', 'machine', 'active', 'sub', 'load', 'hash'].sort(),
    );
    expect([...LIST_UNIT_FILES_FIELDS.valid].sort()).toEqual(
      [
        ...['unit', 'hash', 'dstate', 'state', 'target', 'desc', 'global', 'tmachine'],
        // Flotilla's: the scheduler's reason for not placing a unit, and its last failure.
        ...['reason', 'failure'],
      ].sort(),
    );
    expect([...LIST_MACHINES_FIELDS.valid].sort()).toEqual(['ip', 'machine', 'metadata']);
  });

  const error = (spec: string, set = LIST_UNITS_FIELDS): string => {
    try {
      selectFields(spec, set);
    } catch (e) {
      expect(e).toBeInstanceOf(CliError);
      return (e as CliError).message;
    }
    throw new Error('no error');
  };

  test.each([
    ['', 'Must define output format'],
    ['x', 'Invalid key in output format: "x"'],
    ['unit,', 'Invalid key in output format: ""'],
    ['unit,Machine', 'Invalid key in output format: "Machine"'],
    ['unit,dstate', 'Invalid key in output format: "dstate"'],
    ['a"b', 'Invalid key in output format: "a\\"b"'],
  ])('%j → %s', (spec, message) => {
    expect(error(spec)).toBe(message);
  });

  test('a field valid for another command is invalid here', () => {
    expect(error('metadata', LIST_UNIT_FILES_FIELDS)).toBe(
      'Invalid key in output format: "metadata"',
    );
    expect(error('target', LIST_MACHINES_FIELDS)).toBe('Invalid key in output format: "target"');
  });
});
