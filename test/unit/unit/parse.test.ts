import { ErrorCode, isFlotillaError } from '../../../src/errors';
import {
  parseUnitFile,
  parseUnitFileNamed,
  UnitFileError,
  type UnitOption,
} from '../../../src/unit';

const o = (section: string, name: string, value: string): UnitOption => ({ section, name, value });

// Cases from go-systemd's deserialize_test.go (the parser fleet used), plus Flotilla's own.
const cases: Array<[string, string, UnitOption[]]> = [
  [
    'multiple options underneath a section, duplicates kept in order',
    '[Unit]\nDescription=Foo\nDescription=Bar\nRequires=baz.service\nAfter=baz.service\n',
    [
      o('Unit', 'Description', 'Foo'),
      o('Unit', 'Description', 'Bar'),
      o('Unit', 'Requires', 'baz.service'),
      o('Unit', 'After', 'baz.service'),
    ],
  ],
  [
    'multiple sections',
    '[Unit]\nDescription=Foo\n\n[Service]\nExecStart=/usr/bin/sleep infinity\n\n[X-Third-Party]\nPants=on\n\n',
    [
      o('Unit', 'Description', 'Foo'),
      o('Service', 'ExecStart', '/usr/bin/sleep infinity'),
      o('X-Third-Party', 'Pants', 'on'),
    ],
  ],
  ['sections with no options', '[Unit]\n[Service]\n[X-Third-Party]\n', []],
  ['empty file', '', []],
  [
    'quoted multiple values are not special-cased',
    '[Service]\nEnvironment= "FOO=BAR" "BAZ=QUX"\n',
    [o('Service', 'Environment', '"FOO=BAR" "BAZ=QUX"')],
  ],
  [
    '"=" inside a value is kept',
    '[Service]\nEnvironment=A=B=C\n',
    [o('Service', 'Environment', 'A=B=C')],
  ],
  [
    'a continuation keeps the backslash, the newline and the next line verbatim',
    '[Unit]\nDescription= Unnecessarily wrapped \\\n    words here\n',
    [o('Unit', 'Description', 'Unnecessarily wrapped \\\n    words here')],
  ],
  [
    'comments ignored, before and inside sections',
    '; comment alpha\n# comment bravo\n[Unit]\n; comment charlie\n# comment delta\n#Description=Foo\nDescription=Bar\n; comment echo\n# comment foxtrot\n',
    [o('Unit', 'Description', 'Bar')],
  ],
  [
    'apparent comment lines inside continuations are value text',
    '[Unit]\nDescription=Bar\\\n# comment alpha\n\nDescription=Bar\\\n# comment bravo \\\nBaz\n',
    [
      o('Unit', 'Description', 'Bar\\\n# comment alpha'),
      o('Unit', 'Description', 'Bar\\\n# comment bravo \\\nBaz'),
    ],
  ],
  [
    'a comment ending in a backslash swallows the next line',
    '[Unit]\n# note \\\nDescription=hidden\nAfter=x.service\n',
    [o('Unit', 'After', 'x.service')],
  ],
  [
    'options before the first section are ignored',
    'Description=Foo\n[Unit]\nDescription=Bar\n',
    [o('Unit', 'Description', 'Bar')],
  ],
  [
    'garbage before the first section is ignored',
    '<<<<<<<<\n[Unit]\nDescription=Bar\n',
    [o('Unit', 'Description', 'Bar')],
  ],
  [
    'a "[" anywhere before the first section starts the header',
    'junk [Unit]\nDescription=Bar\n',
    [o('Unit', 'Description', 'Bar')],
  ],
  ['garbage used as an option name', '[Unit]\n<<<<<<<<=Bar\n', [o('Unit', '<<<<<<<<', 'Bar')]],
  ['option names with spaces', '[Unit]\nSome Thing = Bar\n', [o('Unit', 'Some Thing', 'Bar')]],
  ['no final newline', '[Unit]\nDescription=Bar', [o('Unit', 'Description', 'Bar')]],
  [
    'a continuation at the end of the file keeps the backslash',
    '[Unit]\nDescription=Bar \\',
    [o('Unit', 'Description', 'Bar \\')],
  ],
  ['UTF-8 is preserved', '[©]\nµ☃=ÇôrèÕ$', [o('©', 'µ☃', 'ÇôrèÕ$')]],
  [
    'whitespace around the name is removed',
    '[Unit]\n Description   =words here\n',
    [o('Unit', 'Description', 'words here')],
  ],
  [
    'whitespace around the value is removed',
    '[Unit]\nDescription= words here ',
    [o('Unit', 'Description', 'words here')],
  ],
  [
    'a continuation followed by a blank line keeps its newline',
    '[Unit]\nDescription= words here \\\n  ',
    [o('Unit', 'Description', 'words here \\\n')],
  ],
  [
    'a backslash followed by text is no continuation',
    '[Service]\nExecStart=/bin/bash -c "while true; do echo \\"ping\\"; sleep 1; done"\n',
    [o('Service', 'ExecStart', '/bin/bash -c "while true; do echo \\"ping\\"; sleep 1; done"')],
  ],
  [
    'a backslash followed by spaces is no continuation but is kept',
    '[Service]\nExecStart=/bin/bash echo poof \\  ',
    [o('Service', 'ExecStart', '/bin/bash echo poof \\')],
  ],
  ['empty values are allowed', '[Service]\nEnvironment=\n', [o('Service', 'Environment', '')]],
  [
    'a repeated section is kept as options in file order',
    '[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n',
    [o('Unit', 'A', '1'), o('Service', 'B', '2'), o('Unit', 'C', '3')],
  ],
  [
    'CRLF line ends: the CR is trimmed with the value',
    '[Unit]\r\nDescription=Foo\r\n\r\n[Service]\r\nExecStart=/bin/true\r\n',
    [o('Unit', 'Description', 'Foo'), o('Service', 'ExecStart', '/bin/true')],
  ],
  [
    'a line of 2047 bytes is accepted',
    `[Service]\nExecStart=${'.'.repeat(2047 - 'ExecStart='.length)}\nOption=value\n`,
    [
      o('Service', 'ExecStart', '.'.repeat(2047 - 'ExecStart='.length)),
      o('Service', 'Option', 'value'),
    ],
  ],
];

describe('parseUnitFile', () => {
  test.each(cases)('%s', (_name, input, expected) => {
    expect(parseUnitFile(input)).toEqual(expected);
  });
});

// Each refusal: [case, input, line, problem, message].
const failures: Array<[string, string, number, string, string]> = [
  [
    'section header without "]"',
    '[Unit\nDescription=Foo\n',
    1,
    'section-unterminated',
    'line 1: section header has no closing "]": "[Unit"',
  ],
  [
    'text after "]" on a header line',
    '[Unit]\nDescription=Foo\n[Service] pants\n',
    3,
    'section-trailing-text',
    'line 3: unexpected text after section header [Service]: "pants"',
  ],
  [
    'an option line without "="',
    '[Unit]\nDescription\n',
    2,
    'option-missing-equals',
    'line 2: expected "Name=Value", found "Description"',
  ],
  [
    'garbage inside a section',
    '[Unit]\n\n  <<<<<<\nDescription=Foo\n',
    3,
    'option-missing-equals',
    'line 3: expected "Name=Value", found "<<<<<<"',
  ],
  [
    'an option without "=" at the end of the file',
    '[Unit]\nDescription',
    2,
    'option-missing-equals',
    'line 2: expected "Name=Value", found "Description"',
  ],
  [
    'a line of 2048 bytes',
    `[Service]\nExecStart=${'.'.repeat(2048 - 'ExecStart='.length)}\n`,
    2,
    'line-too-long',
    'line 2: line is 2048 bytes long; the limit is 2047',
  ],
  [
    'a long line counts bytes, not characters',
    `[Service]\nX=${'é'.repeat(1100)}\n`,
    2,
    'line-too-long',
    'line 2: line is 2202 bytes long; the limit is 2047',
  ],
  [
    'a long continuation line',
    `[Service]\nX=a \\\n${'b'.repeat(3000)}\n`,
    3,
    'line-too-long',
    'line 3: line is 3000 bytes long; the limit is 2047',
  ],
  [
    'a long line before any section',
    `${'#'.repeat(2100)}\n[Unit]\n`,
    1,
    'line-too-long',
    'line 1: line is 2100 bytes long; the limit is 2047',
  ],
];

describe('parseUnitFile refusals', () => {
  test.each(failures)('%s', (_name, input, line, problem, message) => {
    let caught: unknown;
    try {
      parseUnitFile(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnitFileError);
    const e = caught as UnitFileError;
    expect(isFlotillaError(e, ErrorCode.UnitFileInvalid)).toBe(true);
    expect(e.code).toBe('UNIT_FILE_INVALID');
    expect(e.line).toBe(line);
    expect(e.problem).toBe(problem);
    expect(e.message).toBe(message);
    expect(e.details).toEqual({ line, problem });
  });
});

describe('parseUnitFileNamed', () => {
  test('prefixes errors with file:line and keeps line', () => {
    let caught: unknown;
    try {
      parseUnitFileNamed('hello.service', '[Unit]\nDescription=x\nExecStart\n');
    } catch (err) {
      caught = err;
    }
    const e = caught as UnitFileError;
    expect(e).toBeInstanceOf(UnitFileError);
    expect(e.message).toBe('hello.service:3: expected "Name=Value", found "ExecStart"');
    expect(e.line).toBe(3);
    expect(e.file).toBe('hello.service');
    expect(e.detail).toBe('expected "Name=Value", found "ExecStart"');
    expect(e.details).toEqual({ line: 3, problem: 'option-missing-equals', file: 'hello.service' });
  });

  test('parses like parseUnitFile', () => {
    const text = '[Unit]\nDescription=hi\n[X-Fleet]\nGlobal=true\n';
    expect(parseUnitFileNamed('a.service', text)).toEqual(parseUnitFile(text));
  });
});
