import { ErrorCode, FlotillaError } from '../../../src/errors';
import {
  expandSpecifiers,
  KNOWN_UNIT_TYPES,
  parseUnitName,
  splitUnitName,
  templateOf,
  validateUnitName,
} from '../../../src/unit';

function refusal(name: string): FlotillaError {
  try {
    validateUnitName(name);
  } catch (err) {
    return err as FlotillaError;
  }
  throw new Error(`${name} was accepted`);
}

describe('validateUnitName', () => {
  test.each([
    'hello.service',
    'web@.service',
    'web@1.service',
    'web@a@b.service',
    'foo.1@2.service',
    'a-b_c:d.e\\x2d.socket',
    'ssh@.socket',
    'backup@daily.timer',
    'watch@x.path',
    'multi-user@x.target',
    'x.device',
    'srv.mount',
    'srv.automount',
    'swapfile.swap',
    'user.slice',
    'session.scope',
    '.hidden.service',
    `${'a'.repeat(247)}.service`,
  ])('accepts %s', (name) => {
    expect(() => validateUnitName(name)).not.toThrow();
  });

  test.each([
    ['empty', '', 'unit name is empty'],
    [
      'too long',
      `${'a'.repeat(248)}.service`,
      `unit name "${'a'.repeat(40)}…(216 more characters)" is 256 characters long; the limit is 255`,
    ],
    ['no type', 'hello', 'unit name "hello" has no type suffix (such as ".service")'],
    ['ends in a dot', 'hello.', 'unit name "hello." ends in "."'],
    [
      'unknown type',
      'hello.network',
      `unit name "hello.network" has unknown type "network"; known types: ${KNOWN_UNIT_TYPES.join(', ')}`,
    ],
    [
      'a space',
      'hel lo.service',
      'unit name "hel lo.service" contains " "; allowed are ASCII letters, digits and ":_.\\@-"',
    ],
    [
      'a slash',
      'a/b.service',
      'unit name "a/b.service" contains "/"; allowed are ASCII letters, digits and ":_.\\@-"',
    ],
    [
      'non-ASCII',
      'café.service',
      'unit name "café.service" contains "é"; allowed are ASCII letters, digits and ":_.\\@-"',
    ],
    [
      'busname (gone from systemd)',
      'old.busname',
      `unit name "old.busname" has unknown type "busname"; known types: ${KNOWN_UNIT_TYPES.join(', ')}`,
    ],
    [
      'snapshot (gone from systemd)',
      'a.snapshot',
      `unit name "a.snapshot" has unknown type "snapshot"; known types: ${KNOWN_UNIT_TYPES.join(', ')}`,
    ],
    [
      'a newline',
      'a\nb.service',
      'unit name "a\\u000ab.service" contains "\\n"; allowed are ASCII letters, digits and ":_.\\@-"',
    ],
    ['nothing before the type', '.service', 'unit name ".service" has nothing before ".service"'],
    ['starts with @', '@x.service', 'unit name "@x.service" starts with "@"'],
    [
      'a template of a type that has none',
      'srv@.mount',
      'unit name "srv@.mount" is a template or instance, but only service, socket, target, timer, path units can be',
    ],
    [
      'an instance of a type that has none',
      'dev@sda.device',
      'unit name "dev@sda.device" is a template or instance, but only service, socket, target, timer, path units can be',
    ],
  ])('refuses %s', (_case, name, message) => {
    const err = refusal(name);
    expect(err).toBeInstanceOf(FlotillaError);
    expect(err.code).toBe(ErrorCode.UnitNameInvalid);
    expect(err.message).toBe(message);
    expect(err.details).toEqual({ unit: name });
  });

  test('the type list is the one of systemd 252 (`systemctl -t help`)', () => {
    expect([...KNOWN_UNIT_TYPES].sort()).toEqual([
      'automount',
      'device',
      'mount',
      'path',
      'scope',
      'service',
      'slice',
      'socket',
      'swap',
      'target',
      'timer',
    ]);
  });

  test('a 120 KB name is refused on its length, quoting 40 characters of it', () => {
    const err = refusal(`${'x'.repeat(120_000)}.service`);
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).toContain('120008 characters long');
  });
});

describe('parseUnitName', () => {
  // fleet's unit_test.go TestNamedUnit table.
  test.each([
    ['foo.service', 'foo', 'foo', undefined, false, false],
    ['foo@.service', 'foo@', 'foo', undefined, true, false],
    ['foo@bar.service', 'foo@bar', 'foo', 'bar', false, true],
    ['foo@bar@baz.service', 'foo@bar@baz', 'foo', 'bar@baz', false, true],
    ['foo.1@.service', 'foo.1@', 'foo.1', undefined, true, false],
    ['foo.1@2.service', 'foo.1@2', 'foo.1', '2', false, true],
    ['ssh@.socket', 'ssh@', 'ssh', undefined, true, false],
    ['ssh@1.socket', 'ssh@1', 'ssh', '1', false, true],
  ])('%s', (full, name, prefix, instance, isTemplate, isInstance) => {
    const info = parseUnitName(full);
    expect(info).toEqual({
      fullName: full,
      name,
      prefix,
      type: full.slice(full.lastIndexOf('.') + 1),
      isTemplate,
      isInstance,
      ...(instance === undefined ? {} : { instance }),
    });
  });

  test('validates first', () => {
    expect(() => parseUnitName('foo')).toThrow('unit name "foo" has no type suffix');
  });

  test('splitUnitName needs a dot, like fleet NewUnitNameInfo', () => {
    expect(splitUnitName('foo')).toBeUndefined();
    expect(splitUnitName('bar@baz')).toBeUndefined();
  });
});

describe('templateOf', () => {
  test.each([
    ['web@1.service', 'web@.service'],
    ['ssh@1.socket', 'ssh@.socket'],
    ['foo@bar@baz.service', 'foo@.service'],
    ['web@.service', undefined],
    ['web.service', undefined],
    ['nodot', undefined],
  ])('%s → %s', (name, template) => {
    expect(templateOf(name)).toBe(template);
  });
});

describe('expandSpecifiers', () => {
  test.each([
    ['%n', 'foo@bar.service', 'foo@bar.service'],
    ['%N', 'foo@bar.service', 'foo@bar'],
    ['%p', 'foo@bar.service', 'foo'],
    ['%i', 'foo@bar.service', 'bar'],
    ['%p.socket', 'foo.service', 'foo.socket'],
    ['%i', 'foo.service', ''],
    ['%i', 'foo@.service', ''],
    ['db@%i.service %p-log.service', 'web@3.service', 'db@3.service web-log.service'],
    ['a%nb%Nc%pd%ie', 'x@y.timer', 'ax@y.timerbx@ycxdye'],
    ['no specifiers', 'foo@bar.service', 'no specifiers'],
    ['%x stays', 'foo.service', '%x stays'],
    ['%n', 'nodot', '%n'],
  ])('%s in %s → %s', (value, unit, expected) => {
    expect(expandSpecifiers(value, unit)).toBe(expected);
  });
});
