/** The process driver's slice of systemd unit syntax: sections, ExecStart= prefixes, quoting, Environment=. */
import { parseCommandLine, parseEnvironment, serviceSpec } from '../../../src/drivers/unit-file';
import { optionValues, parseUnitFile } from '../../../src/unit';
import { isFlotillaError } from '../../../src/errors';

describe('unit file parsing', () => {
  it('reads sections, skips comments, joins continuation lines, resets lists on empty assignments', () => {
    const e = parseUnitFile(
      '# c\n[Unit]\nDescription = Hello\n; c\n[Service]\nExecStart=/bin/echo a \\\n  b\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n',
    );
    expect(optionValues(e, 'Unit', 'Description')).toEqual(['Hello']);
    // As systemd: the backslash becomes a space, the next line is kept as it is.
    expect(optionValues(e, 'Service', 'ExecStart')).toEqual(['/bin/echo a    b']);
    expect(optionValues(e, 'Service', 'Environment')).toEqual(['B=2']);
  });

  it('strips ExecStart= prefixes; "@" sets argv[0]; "-" ignores failure', () => {
    expect(parseCommandLine('-/bin/false', {})).toEqual({
      path: '/bin/false',
      argv0: '/bin/false',
      args: [],
      ignoreFailure: true,
    });
    expect(parseCommandLine('+!@/bin/sleep mysleep 5', {})).toEqual({
      path: '/bin/sleep',
      argv0: 'mysleep',
      args: ['5'],
      ignoreFailure: false,
    });
    expect(parseCommandLine('!!/bin/true', {}).path).toBe('/bin/true');
  });

  it('handles quotes, escapes and variables', () => {
    const env = { NAME: 'world', ARGS: '-a  -b' };
    expect(parseCommandLine(`/bin/sh -c 'echo "hi there"' "x\\"y" a\\ b`, env).args).toEqual([
      '-c',
      'echo "hi there"',
      'x"y',
      'a b',
    ]);
    expect(parseCommandLine('/bin/echo hello-${NAME} $ARGS "$ARGS" $$HOME', env).args).toEqual([
      'hello-world',
      '-a',
      '-b',
      '-a  -b',
      '$HOME',
    ]);
    expect(parseCommandLine(':/bin/echo ${NAME}', env).args).toEqual(['${NAME}']);
  });

  it('rejects an unterminated quote and an empty command with UNIT_FILE_INVALID', () => {
    expect(() => parseCommandLine('/bin/echo "oops', {})).toThrow(/unterminated/);
    try {
      parseCommandLine('-', {});
      throw new Error('no throw');
    } catch (err) {
      expect(isFlotillaError(err, 'UNIT_FILE_INVALID')).toBe(true);
    }
  });

  it('parses Environment= with several quoted assignments', () => {
    expect(parseEnvironment(['A=1 "B=two words"', 'C=\'x y\' D=\\"q\\"'])).toEqual({
      A: '1',
      B: 'two words',
      C: 'x y',
      D: '"q"',
    });
  });

  it('builds a service spec; the last ExecStart= wins; WorkingDirectory=- is optional', () => {
    const s = serviceSpec(
      'a.service',
      '[Unit]\nDescription=A\n[Service]\nExecStart=/bin/true\nExecStart=/bin/sleep 1\nWorkingDirectory=-/nope\n',
    );
    expect(s).toMatchObject({
      description: 'A',
      exec: { path: '/bin/sleep', args: ['1'] },
      workingDirectory: '/nope',
      workingDirectoryOptional: true,
    });
    expect(() => serviceSpec('b.service', '[Service]\nType=simple\n')).toThrow(/no ExecStart/);
  });
});
