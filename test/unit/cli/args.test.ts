import {
  DEFAULT_ENDPOINT,
  envName,
  flagBool,
  flagNumber,
  flagString,
  GLOBAL_FLAGS,
  parseArgs,
} from '../../../src/cli/args';
import type { FlagSpec } from '../../../src/cli/args';
import { CliError } from '../../../src/cli/errors';

const JOURNAL: FlagSpec[] = [
  { name: 'lines', short: 'n', type: 'int', default: 10, help: '' },
  { name: 'follow', short: 'f', type: 'bool', default: false, help: '' },
];
const commands: Record<string, FlagSpec[]> = { journal: JOURNAL, 'list-units': [], start: [] };
const lookup = (c: string): FlagSpec[] | undefined => commands[c];

function parse(argv: string[], env: Record<string, string> = {}) {
  return parseArgs(argv, lookup, env);
}

function parseError(argv: string[], env: Record<string, string> = {}): string {
  try {
    parse(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('parsing', () => {
  test('defaults', () => {
    const p = parse(['list-units']);
    expect(p.command).toBe('list-units');
    expect(p.args).toEqual([]);
    expect(flagString(p, 'endpoint')).toBe(DEFAULT_ENDPOINT);
    expect(DEFAULT_ENDPOINT).toBe('unix:///run/flotilla/flotilla.sock');
    expect(flagNumber(p, 'block-attempts')).toBe(0);
    expect(flagNumber(p, 'request-timeout')).toBe(10);
    expect(flagBool(p, 'full')).toBe(false);
    expect(p.given.size).toBe(0);
  });

  test.each([
    [['--endpoint=127.0.0.1:7070', 'list-units'], '127.0.0.1:7070'],
    [['--endpoint', '127.0.0.1:7070', 'list-units'], '127.0.0.1:7070'],
    [['list-units', '--endpoint', 'unix:///x.sock'], 'unix:///x.sock'],
    [['-endpoint=h:1', 'list-units'], 'h:1'], // Go's flag package accepted one dash
  ])('endpoint from %j', (argv, endpoint) => {
    expect(flagString(parse(argv), 'endpoint')).toBe(endpoint);
  });

  test('flags before and after the command, positional arguments kept in order', () => {
    const p = parse(['--no-block', 'start', 'a.service', '--block-attempts=3', 'b', '-l']);
    expect(p.command).toBe('start');
    expect(p.args).toEqual(['a.service', 'b']);
    expect(flagBool(p, 'no-block')).toBe(true);
    expect(flagNumber(p, 'block-attempts')).toBe(3);
    expect(flagBool(p, 'full')).toBe(true);
  });

  test('-l is --full (fleetctl registered it as --l only: fix)', () => {
    expect(flagBool(parse(['list-units', '-l']), 'full')).toBe(true);
    expect(flagBool(parse(['list-units', '--full']), 'full')).toBe(true);
    expect(flagBool(parse(['list-units', '--full=false']), 'full')).toBe(false);
  });

  test('command flags: long, short with a separate value, bool shorthands', () => {
    const p = parse(['journal', '-n', '5', '-f', 'hello']);
    expect(flagNumber(p, 'lines')).toBe(5);
    expect(flagBool(p, 'follow')).toBe(true);
    expect(p.args).toEqual(['hello']);
    expect(flagNumber(parse(['journal', '--lines=7', 'x']), 'lines')).toBe(7);
    expect(flagNumber(parse(['journal', 'x']), 'lines')).toBe(10);
  });

  test('-- ends flags', () => {
    const p = parse(['start', '--', '--weird-name.service']);
    expect(p.args).toEqual(['--weird-name.service']);
  });

  test('--fields= is given and empty (Must define output format is the command’s job)', () => {
    const p = parse(['list-units', '--fields=']);
    expect(p.given.has('fields')).toBe(true);
    expect(flagString(p, 'fields')).toBe('');
  });
});

describe('errors (exit 1: fleetctl exited 0 on unknown flags: fix)', () => {
  test.each([
    [['list-units', '--bogus'], 'Unknown flag "--bogus". Run \'flotilla help\' for usage.'],
    [['-x', 'list-units'], 'Unknown flag "-x". Run \'flotilla help\' for usage.'],
    // a command flag before its command is unknown there
    [['-n', '3', 'journal', 'x'], 'Unknown flag "-n". Run \'flotilla help\' for usage.'],
    // a command flag of another command
    [['list-units', '--lines=3'], 'Unknown flag "--lines=3". Run \'flotilla help\' for usage.'],
    [
      ['start', '--block-attempts=x'],
      'invalid value "x" for flag --block-attempts: expected an integer',
    ],
    [
      ['start', '--block-attempts', '-1'],
      'invalid value "-1" for flag --block-attempts: must not be negative',
    ],
    [
      ['list-units', '--request-timeout=0'],
      'invalid value "0" for flag --request-timeout: must be greater than 0',
    ],
    [
      ['list-units', '--full=maybe'],
      'invalid value "maybe" for flag --full: expected true or false',
    ],
    [['list-units', '--endpoint'], 'flag needs an argument: --endpoint'],
  ])('%j', (argv, message) => {
    expect(parseError(argv)).toBe(message);
  });

  test('an unknown command wins over its unknown flags (reported by the runner)', () => {
    const p = parse(['bogus', '--whatever']);
    expect(p.command).toBe('bogus');
  });
});

describe('environment: FLOTILLA_<FLAG>, flags win', () => {
  test('names', () => {
    expect(envName('endpoint')).toBe('FLOTILLA_ENDPOINT');
    expect(envName('block-attempts')).toBe('FLOTILLA_BLOCK_ATTEMPTS');
    expect(envName('no-legend')).toBe('FLOTILLA_NO_LEGEND');
  });

  test('every global flag except help/version reads its variable', () => {
    const env: Record<string, string> = {
      FLOTILLA_ENDPOINT: 'env:1',
      FLOTILLA_REQUEST_TIMEOUT: '2.5',
      FLOTILLA_CA_FILE: '/ca.pem',
      FLOTILLA_CERT_FILE: '/client.pem',
      FLOTILLA_KEY_FILE: '/client.key',
      FLOTILLA_JSON: 'true',
      FLOTILLA_FULL: '1',
      FLOTILLA_NO_LEGEND: 'T',
      FLOTILLA_FIELDS: 'unit',
      FLOTILLA_BLOCK_ATTEMPTS: '4',
      FLOTILLA_NO_BLOCK: 'true',
      FLOTILLA_REPLACE: 'true',
      FLOTILLA_HELP: 'true',
      FLOTILLA_VERSION: 'true',
    };
    const p = parse(['list-units'], env);
    expect(flagString(p, 'endpoint')).toBe('env:1');
    expect(flagNumber(p, 'request-timeout')).toBe(2.5);
    expect(['ca-file', 'cert-file', 'key-file'].map((k) => flagString(p, k))).toEqual([
      '/ca.pem',
      '/client.pem',
      '/client.key',
    ]);
    for (const b of ['json', 'full', 'no-legend', 'no-block', 'replace'])
      expect(flagBool(p, b)).toBe(true);
    expect(flagString(p, 'fields')).toBe('unit');
    expect(flagNumber(p, 'block-attempts')).toBe(4);
    expect(flagBool(p, 'help')).toBe(false);
    expect(flagBool(p, 'version')).toBe(false);
    expect(p.given.size).toBe(0);
    const covered = GLOBAL_FLAGS.filter((f) => f.fromEnv !== false).map((f) => envName(f.name));
    expect(covered.every((k) => k in env)).toBe(true);
  });

  test('a command flag reads its variable only when it says so (the store flags do)', () => {
    const flags: FlagSpec[] = [
      { name: 'etcd-password', type: 'string', default: '', help: '', fromEnv: true },
      { name: 'lines', type: 'int', default: 10, help: '' },
    ];
    const env = { FLOTILLA_ETCD_PASSWORD: 's3cret', FLOTILLA_LINES: '99' };
    const p = parseArgs(['replay'], (c) => (c === 'replay' ? flags : undefined), env);
    expect(flagString(p, 'etcd-password')).toBe('s3cret');
    expect(flagNumber(p, 'lines')).toBe(10);
    expect(p.given.has('etcd-password')).toBe(false);
  });

  test('the command line wins over the environment', () => {
    const env = { FLOTILLA_ENDPOINT: 'env:1', FLOTILLA_BLOCK_ATTEMPTS: '4', FLOTILLA_FULL: 'true' };
    const p = parse(['--endpoint=flag:2', 'start', '--block-attempts=1', '--full=false'], env);
    expect(flagString(p, 'endpoint')).toBe('flag:2');
    expect(flagNumber(p, 'block-attempts')).toBe(1);
    expect(flagBool(p, 'full')).toBe(false);
  });

  test('empty variables are ignored (fleetctl getFlagsFromEnv)', () => {
    const p = parse(['list-units'], { FLOTILLA_ENDPOINT: '', FLOTILLA_FIELDS: '' });
    expect(flagString(p, 'endpoint')).toBe(DEFAULT_ENDPOINT);
    expect(flagString(p, 'fields')).toBe('');
    expect(p.given.has('fields')).toBe(false);
  });

  test('a bad value in the environment names the variable', () => {
    expect(parseError(['start'], { FLOTILLA_BLOCK_ATTEMPTS: 'soon' })).toBe(
      'invalid value "soon" for FLOTILLA_BLOCK_ATTEMPTS: expected an integer',
    );
  });

  test('command flags do not come from the environment', () => {
    const p = parse(['journal', 'x'], { FLOTILLA_LINES: '99' });
    expect(flagNumber(p, 'lines')).toBe(10);
  });
});
