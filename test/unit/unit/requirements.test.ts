import { ErrorCode, FlotillaError } from '../../../src/errors';
import {
  isTruthy,
  parseMultivalue,
  parseUnitFile,
  unitRequirements,
  type UnitRequirements,
} from '../../../src/unit';

/** Requirements of unit `name` whose [X-Fleet] section is `body`. */
function req(name: string, body: string): { requirements: UnitRequirements; warnings: string[] } {
  return unitRequirements(name, parseUnitFile(`[Unit]\nDescription=x\n\n[X-Fleet]\n${body}`));
}

const none: UnitRequirements = {
  machineOf: [],
  metadata: {},
  conflicts: [],
  global: false,
  replaces: [],
};

const cases: Array<[string, string, string, Partial<UnitRequirements>]> = [
  ['no [X-Fleet] section', 'a.service', '', {}],
  ['MachineID, full', 'a.service', 'MachineID=0123456789abcdef', { machineId: '0123456789abcdef' }],
  ['MachineID, 8 characters', 'a.service', 'MachineID=01234567', { machineId: '01234567' }],
  ['MachineID, first value wins', 'a.service', 'MachineID=m1\nMachineID=m2', { machineId: 'm1' }],
  ['legacy X-ConditionMachineID', 'a.service', 'X-ConditionMachineID=m1', { machineId: 'm1' }],
  [
    'MachineID wins over the legacy spelling',
    'a.service',
    'X-ConditionMachineID=old\nMachineID=new',
    { machineId: 'new' },
  ],
  [
    'legacy X-ConditionMachineBootID',
    'a.service',
    'X-ConditionMachineBootID=b1',
    { machineId: 'b1' },
  ],
  ['MachineOf', 'a.service', 'MachineOf=db.service', { machineOf: ['db.service'] }],
  [
    'MachineOf, several, whitespace-separated and repeated, deduplicated',
    'a.service',
    'MachineOf=db.service  cache.service\nMachineOf=db.service log.service',
    { machineOf: ['db.service', 'cache.service', 'log.service'] },
  ],
  [
    'legacy X-ConditionMachineOf comes first',
    'a.service',
    'MachineOf=new.service\nX-ConditionMachineOf=old.service',
    { machineOf: ['old.service', 'new.service'] },
  ],
  ['MachineMetadata', 'a.service', 'MachineMetadata=region=us', { metadata: { region: ['us'] } }],
  [
    'MachineMetadata: OR among values of a key, AND across keys',
    'a.service',
    'MachineMetadata=region=us\nMachineMetadata=region=eu\nMachineMetadata=disk=ssd',
    { metadata: { region: ['us', 'eu'], disk: ['ssd'] } },
  ],
  [
    'MachineMetadata quoted multi-values are several values',
    'a.service',
    'MachineMetadata="region=us-east-1" "diskType=SSD"',
    { metadata: { region: ['us-east-1'], diskType: ['SSD'] } },
  ],
  [
    'legacy X-ConditionMachineMetadata merges with MachineMetadata',
    'a.service',
    'X-ConditionMachineMetadata=region=us\nMachineMetadata=region=eu',
    { metadata: { region: ['us', 'eu'] } },
  ],
  ['Conflicts', 'a.service', 'Conflicts=monitor*', { conflicts: ['monitor*'] }],
  [
    'Conflicts, whitespace-separated and repeatable',
    'a.service',
    'Conflicts=web@*.service db*\nConflicts=cache.service',
    { conflicts: ['web@*.service', 'db*', 'cache.service'] },
  ],
  [
    'legacy X-Conflicts comes first',
    'a.service',
    'Conflicts=b*\nX-Conflicts=a*',
    { conflicts: ['a*', 'b*'] },
  ],
  ['Global=true', 'a.service', 'Global=true', { global: true }],
  ['Global=yes', 'a.service', 'Global=yes', { global: true }],
  ['Global=1', 'a.service', 'Global=1', { global: true }],
  ['Global=on', 'a.service', 'Global=on', { global: true }],
  ['Global=t', 'a.service', 'Global=t', { global: true }],
  ['Global=TRUE (any case)', 'a.service', 'Global=TRUE', { global: true }],
  ['Global=false', 'a.service', 'Global=false', { global: false }],
  ['Global, last value wins (true)', 'a.service', 'Global=false\nGlobal=true', { global: true }],
  ['Global, last value wins (false)', 'a.service', 'Global=true\nGlobal=no', { global: false }],
  [
    'Global with MachineMetadata is allowed',
    'a.service',
    'Global=true\nMachineMetadata=role=edge',
    { global: true, metadata: { role: ['edge'] } },
  ],
  [
    'Global with Conflicts is allowed',
    'a.service',
    'Global=true\nConflicts=b*',
    { global: true, conflicts: ['b*'] },
  ],
  ['Replaces', 'new.service', 'Replaces=old.service', { replaces: ['old.service'] }],
  [
    'Replaces, glob and several',
    'new.service',
    'Replaces=old-*.service legacy.service',
    { replaces: ['old-*.service', 'legacy.service'] },
  ],
  [
    'specifiers are expanded in every value',
    'web@3.service',
    'MachineOf=db@%i.service\nConflicts=%p@*.service\nMachineMetadata=shard=%i',
    { machineOf: ['db@3.service'], conflicts: ['web@*.service'], metadata: { shard: ['3'] } },
  ],
  [
    '%n and %N',
    'web@3.service',
    'MachineOf=%N.socket\nReplaces=old-%n',
    { machineOf: ['web@3.socket'], replaces: ['old-web@3.service'] },
  ],
];

describe('unitRequirements', () => {
  test.each(cases)('%s', (_case, name, body, expected) => {
    const { requirements } = req(name, body);
    expect(requirements).toEqual({ ...none, ...expected });
  });

  test('options outside [X-Fleet] are not requirements', () => {
    const { requirements, warnings } = unitRequirements(
      'a.service',
      parseUnitFile('[Service]\nMachineID=m1\nGlobal=true\n'),
    );
    expect(requirements).toEqual(none);
    expect(warnings).toEqual([]);
  });
});

const warningCases: Array<[string, string, string, string[]]> = [
  ['unknown key', 'a.service', 'Weight=3\nWeight=4', ['unknown [X-Fleet] option "Weight" ignored']],
  [
    'keys are case-sensitive',
    'a.service',
    'machineid=m1',
    ['unknown [X-Fleet] option "machineid" ignored'],
  ],
  [
    'metadata without "="',
    'a.service',
    'MachineMetadata=region',
    ['MachineMetadata "region" ignored: expected key=value'],
  ],
  [
    'metadata with two "="',
    'a.service',
    'MachineMetadata=a=b=c',
    ['MachineMetadata "a=b=c" ignored: expected key=value'],
  ],
  [
    'metadata with an empty value',
    'a.service',
    'X-ConditionMachineMetadata=region=',
    ['X-ConditionMachineMetadata "region=" ignored: expected key=value'],
  ],
  [
    'metadata, two unquoted pairs on one line',
    'a.service',
    'MachineMetadata=region=us disk=ssd',
    ['MachineMetadata "region=us disk=ssd" ignored: expected key=value'],
  ],
  ['empty MachineID', 'a.service', 'MachineID=', ['empty MachineID= ignored']],
  [
    'MachineID given twice',
    'a.service',
    'MachineID=m1\nMachineID=m2',
    ['MachineID given more than once; using "m1"'],
  ],
  [
    'legacy MachineID after MachineID',
    'a.service',
    'MachineID=m1\nX-ConditionMachineID=m2',
    ['X-ConditionMachineID ignored: MachineID is already "m1"'],
  ],
  [
    'MachineOf naming the unit itself',
    'a.service',
    'MachineOf=%n',
    ['MachineOf names the unit itself ("a.service"); ignored'],
  ],
  [
    'MachineOf naming no valid unit',
    'a.service',
    'MachineOf=db',
    [
      'MachineOf "db" is not a valid unit name (unit name "db" has no type suffix (such as ".service")); the unit can never be placed',
    ],
  ],
  [
    'malformed Conflicts pattern',
    'a.service',
    'Conflicts=web[',
    ['Conflicts pattern "web[" is malformed and matches nothing'],
  ],
  [
    'malformed Replaces pattern',
    'a.service',
    'Replaces=[]',
    ['Replaces pattern "[]" is malformed and matches nothing'],
  ],
  [
    'Global not a boolean',
    'a.service',
    'Global=maybe',
    ['Global "maybe" is not a boolean; taken as false'],
  ],
];

describe('unitRequirements warnings', () => {
  test.each(warningCases)('%s', (_case, name, body, warnings) => {
    expect(req(name, body).warnings).toEqual(warnings);
  });

  test('no warnings for a clean section', () => {
    expect(
      req('a.service', 'MachineMetadata=region=us\nConflicts=b*\nGlobal=false').warnings,
    ).toEqual([]);
  });

  test('ignored MachineOf self-reference is dropped, MachineID empty ignored', () => {
    expect(req('a.service', 'MachineOf=a.service b.service\nMachineID=').requirements).toEqual({
      ...none,
      machineOf: ['b.service'],
    });
  });
});

const refusals: Array<[string, string, string, string]> = [
  [
    'MachineID with MachineOf',
    'a.service',
    'MachineID=m1\nMachineOf=b.service',
    'MachineID cannot be used with MachineOf',
  ],
  [
    'MachineID with Conflicts',
    'a.service',
    'MachineID=m1\nConflicts=b*',
    'MachineID cannot be used with Conflicts',
  ],
  [
    'MachineID with Global',
    'a.service',
    'MachineID=m1\nGlobal=true',
    'MachineID cannot be used with Global',
  ],
  [
    'MachineID with Replaces',
    'a.service',
    'MachineID=m1\nReplaces=b.service',
    'MachineID cannot be used with Replaces',
  ],
  [
    'legacy MachineID with legacy Conflicts',
    'a.service',
    'X-ConditionMachineID=m1\nX-Conflicts=b*',
    'MachineID cannot be used with Conflicts',
  ],
  [
    'Global with MachineOf',
    'a.service',
    'Global=true\nMachineOf=b.service',
    'Global cannot be used with MachineOf',
  ],
  [
    'Global with Replaces',
    'a.service',
    'Global=yes\nReplaces=b.service',
    'Global cannot be used with Replaces',
  ],
  [
    'Conflicts with Replaces',
    'a.service',
    'Conflicts=b*\nReplaces=c.service',
    'Conflicts cannot be used with Replaces',
  ],
  [
    'a MachineOf peer matched by Conflicts',
    'a.service',
    'MachineOf=db.service\nConflicts=d*',
    'MachineOf peer "db.service" matches Conflicts pattern "d*": the unit could never be placed',
  ],
  [
    'a MachineOf peer matched by Replaces',
    'a.service',
    'MachineOf=db.service\nReplaces=db.service',
    'MachineOf peer "db.service" matches Replaces pattern "db.service": the unit would push away the unit it must run beside',
  ],
  [
    'a MachineOf peer matched by a specifier pattern',
    'web@1.service',
    'MachineOf=%p-db@%i.service\nConflicts=web-db@*',
    'MachineOf peer "web-db@1.service" matches Conflicts pattern "web-db@*": the unit could never be placed',
  ],
];

describe('unitRequirements refusals', () => {
  test.each(refusals)('%s', (_case, name, body, message) => {
    let caught: unknown;
    try {
      req(name, body);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlotillaError);
    const e = caught as FlotillaError;
    expect(e.code).toBe(ErrorCode.UnitOptionsInvalid);
    expect(e.message).toBe(message);
    expect(e.details).toEqual({ unit: name });
  });

  test('Global=false does not clash with MachineID', () => {
    expect(req('a.service', 'MachineID=m1\nGlobal=false').requirements.machineId).toBe('m1');
  });
});

describe('parseMultivalue (fleet unit_test.go TestParseMultivalueLine)', () => {
  test.each([
    ['"bar" "ping" "pong"', ['bar', 'ping', 'pong']],
    ['"bar"', ['bar']],
    ['', ['']],
    ['""', ['']],
    ['"bar', ['"bar']],
    ['bar"', ['bar"']],
    ['foo\\"bar', ['foo\\"bar']],
    ['"bar" "', ['bar', '']],
    ['"foo\\"bar"', ['foo\\bar']],
    ['"a b" "c"', ['a b', 'c']],
  ])('%s', (line, values) => {
    expect(parseMultivalue(line)).toEqual(values);
  });
});

describe('isTruthy', () => {
  test.each([
    ['true', true],
    ['Yes', true],
    ['1', true],
    ['ON', true],
    ['t', true],
    ['false', false],
    ['2', false],
    ['', false],
    ['y', false],
  ])('%s → %s', (v, expected) => {
    expect(isTruthy(v)).toBe(expected);
  });
});
