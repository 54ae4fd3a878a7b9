import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  parseUnitFile,
  serializeUnitFile,
  unitDescription,
  unitHash,
  type UnitOption,
} from '../../../src/unit';

const o = (section: string, name: string, value: string): UnitOption => ({ section, name, value });

// Cases from go-systemd's serialize_test.go (the serializer fleet hashed).
const cases: Array<[string, UnitOption[], string]> = [
  ['no options is the empty string', [], ''],
  [
    'options of one section share the header',
    [o('Unit', 'Description', 'Foo'), o('Unit', 'BindsTo', 'bar.service')],
    '[Unit]\nDescription=Foo\nBindsTo=bar.service\n',
  ],
  [
    'options with the same name are not combined',
    [o('Unit', 'Description', 'Foo'), o('Unit', 'Description', 'Bar')],
    '[Unit]\nDescription=Foo\nDescription=Bar\n',
  ],
  [
    'one blank line between sections, none at the end',
    [o('Unit', 'Description', 'Foo'), o('Service', 'ExecStart', '/usr/bin/sleep infinity')],
    '[Unit]\nDescription=Foo\n\n[Service]\nExecStart=/usr/bin/sleep infinity\n',
  ],
  [
    'sections in first-seen order, a repeated section merged into the first',
    [
      o('Unit', 'Description', 'Foo'),
      o('Service', 'ExecStart', '/usr/bin/sleep infinity'),
      o('Unit', 'BindsTo', 'bar.service'),
      o('X-Foo', 'Bar', 'baz'),
      o('Service', 'ExecStop', '/usr/bin/sleep 1'),
      o('Unit', 'Documentation', 'https://foo.com'),
    ],
    '[Unit]\nDescription=Foo\nBindsTo=bar.service\nDocumentation=https://foo.com\n\n' +
      '[Service]\nExecStart=/usr/bin/sleep infinity\nExecStop=/usr/bin/sleep 1\n\n' +
      '[X-Foo]\nBar=baz\n',
  ],
  ['UTF-8', [o('©', 'µ☃', 'ÇôrèÕ$')], '[©]\nµ☃=ÇôrèÕ$\n'],
  ['empty values', [o('Service', 'Environment', '')], '[Service]\nEnvironment=\n'],
  [
    'values are written verbatim, continuation newlines included',
    [o('Unit', 'Description', 'Fo\\\no')],
    '[Unit]\nDescription=Fo\\\no\n',
  ],
];

describe('serializeUnitFile', () => {
  test.each(cases)('%s', (_name, options, expected) => {
    expect(serializeUnitFile(options)).toBe(expected);
  });
});

describe('unitHash', () => {
  test("matches fleet's own test vector (unit/unit_test.go TestUnitHash)", () => {
    const options = parseUnitFile('[Service]\nExecStart=/bin/sleep 100\n');
    expect(unitHash(options)).toBe('1c6fb6f3684bafb0c173d8b8b957ceff031180c1');
    expect(unitHash(options).slice(0, 7)).toBe('1c6fb6f');
  });

  test('is the SHA-1 of the canonical form (checked with sha1sum)', () => {
    const text =
      '# hello\n[Unit]\nDescription = Hello World\n\n\n[Service]\n' +
      'ExecStart=/bin/bash -c "while true; do echo \\"Hello, world\\"; sleep 1; done"\n';
    // printf '[Unit]\nDescription=Hello World\n\n[Service]\nExecStart=...\n' | sha1sum
    expect(unitHash(parseUnitFile(text))).toBe('e55c0aeb44ba0b68004ceb8a200e685194448b45');
  });

  test('of no options is the SHA-1 of the empty string', () => {
    expect(unitHash([])).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
  });

  test('ignores comments, blank lines and whitespace around names and values', () => {
    const a = parseUnitFile('[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n');
    const b = parseUnitFile(
      '; c\n[Unit]\n  Description =  x  \n\n# c\n\n[Service]\nExecStart=/bin/true',
    );
    expect(unitHash(b)).toBe(unitHash(a));
  });

  test('differs when a value differs', () => {
    const a = unitHash(parseUnitFile('[Service]\nExecStart=/bin/true\n'));
    const b = unitHash(parseUnitFile('[Service]\nExecStart=/bin/false\n'));
    expect(a).not.toBe(b);
  });

  test('hashes UTF-8 bytes', () => {
    const options = [o('Unit', 'Description', 'café')];
    const expected = createHash('sha1')
      .update(Buffer.from('[Unit]\nDescription=café\n', 'utf8'))
      .digest('hex');
    expect(unitHash(options)).toBe(expected);
  });
});

describe('canonical form', () => {
  // Printable text without the characters the format gives meaning to.
  const word = fc
    .string({ minLength: 1, maxLength: 12 })
    .map((s) =>
      s.replace(/[\s\\[\]=#;"\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/g, ''),
    )
    .filter((s) => s.length > 0);
  const option = fc.record({
    section: fc.constantFrom('Unit', 'Service', 'X-Fleet', 'Install'),
    name: word,
    value: fc.oneof(
      fc.constant(''),
      word,
      fc.tuple(word, word).map(([a, b]) => `${a} ${b}`),
    ),
  });

  test('parsing the serialization gives the options back, grouped by section', () => {
    fc.assert(
      fc.property(fc.array(option, { maxLength: 20 }), (options) => {
        const sections = [...new Set(options.map((x) => x.section))];
        const grouped = sections.flatMap((s) => options.filter((x) => x.section === s));
        expect(parseUnitFile(serializeUnitFile(options))).toEqual(grouped);
      }),
    );
  });

  test('serialization is a fixed point: serialize(parse(serialize(x))) = serialize(x)', () => {
    fc.assert(
      fc.property(fc.array(option, { maxLength: 20 }), (options) => {
        const once = serializeUnitFile(options);
        expect(serializeUnitFile(parseUnitFile(once))).toBe(once);
      }),
    );
  });
});

describe('unitDescription', () => {
  test.each([
    ['the first Description in [Unit]', '[Unit]\nDescription=Foo\nDescription=Bar\n', 'Foo'],
    ['none', '[Unit]\nAfter=x.service\n', ''],
    ['only [Unit] counts', '[Service]\nDescription=Nope\n', ''],
  ])('%s', (_name, text, expected) => {
    expect(unitDescription(parseUnitFile(text))).toBe(expected);
  });
});
