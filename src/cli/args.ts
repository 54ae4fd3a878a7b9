import { CliError } from './errors';

/**
 * A small command-line parser with fleetctl's conventions: `--flag=value`, `--flag value`,
 * `-f` shorthands, single-dash long names (Go's flag package accepted `-no-block`), boolean
 * flags that take no value (`--full`, `--full=false`), `--` to end flags. Flags may appear
 * before or after the command; command flags only after it. Every global flag can also come
 * from the environment as FLOTILLA_<NAME> (dashes become underscores); the command line wins
 * and empty variables are ignored, as fleetctl's getFlagsFromEnv did.
 */

export type FlagType = 'bool' | 'string' | 'int' | 'float';
export type FlagValue = boolean | string | number;

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  help: string;
  default: FlagValue;
  /** Placeholder in help output (`--lines=N`). */
  valueName?: string;
  /** Validates a parsed value; returns an error reason or undefined. */
  check?: (v: FlagValue) => string | undefined;
  /**
   * Whether FLOTILLA_<NAME> may set the flag. Global flags: yes unless false (--help,
   * --version make no sense as configuration). Command flags: only when true (the store
   * flags, so a secret need not be on the command line).
   */
  fromEnv?: boolean;
}

export const ENV_PREFIX = 'FLOTILLA';
export const DEFAULT_ENDPOINT = 'unix:///run/flotilla/flotilla.sock';

const nonNegative = (v: FlagValue): string | undefined =>
  typeof v === 'number' && v < 0 ? 'must not be negative' : undefined;

/** Flags every command accepts (fleetctl's global and shared flags). */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'endpoint',
    type: 'string',
    default: DEFAULT_ENDPOINT,
    valueName: 'URL',
    help: 'Flotilla API: unix:///path/to/flotilla.sock or host:port',
  },
  {
    name: 'ca-file',
    type: 'string',
    default: '',
    valueName: 'FILE',
    help: 'PEM CA bundle to verify the API server with (TLS)',
  },
  {
    name: 'cert-file',
    type: 'string',
    default: '',
    valueName: 'FILE',
    help: 'PEM client certificate for a server that requires one (mTLS)',
  },
  {
    name: 'key-file',
    type: 'string',
    default: '',
    valueName: 'FILE',
    help: 'PEM private key of --cert-file',
  },
  {
    name: 'request-timeout',
    type: 'float',
    default: 10,
    valueName: 'SECONDS',
    help: 'Time allowed for a single request before it is considered failed',
    check: (v) => (typeof v === 'number' && v <= 0 ? 'must be greater than 0' : undefined),
  },
  { name: 'json', type: 'bool', default: false, help: 'Print machine-readable JSON' },
  { name: 'full', short: 'l', type: 'bool', default: false, help: 'Do not ellipsize fields' },
  { name: 'no-legend', type: 'bool', default: false, help: 'Do not print column headers' },
  {
    name: 'fields',
    type: 'string',
    default: '',
    valueName: 'LIST',
    help: 'Columns to print, comma-separated (see each list command)',
  },
  {
    name: 'block-attempts',
    type: 'int',
    default: 0,
    valueName: 'N',
    help: 'Wait for units, giving up after N attempts of ~2 s (0: wait forever)',
    check: nonNegative,
  },
  {
    name: 'no-block',
    type: 'bool',
    default: false,
    help: 'Do not wait for units to reach their state before exiting',
  },
  {
    name: 'replace',
    type: 'bool',
    default: false,
    help: 'Replace units in the cluster that differ from the local unit files',
  },
  {
    name: 'help',
    short: 'h',
    type: 'bool',
    default: false,
    help: 'Print usage and exit',
    fromEnv: false,
  },
  {
    name: 'version',
    short: 'v',
    type: 'bool',
    default: false,
    help: 'Print the version and exit',
    fromEnv: false,
  },
];

export interface ParsedArgs {
  /** The command word, or undefined when none was given. */
  command?: string;
  /** Positional arguments after the command. */
  args: string[];
  /** Every known flag's value: command line, then environment, then default. */
  values: Map<string, FlagValue>;
  /** Names of flags given on the command line (not from the environment). */
  given: Set<string>;
}

/** `FLOTILLA_BLOCK_ATTEMPTS` for `block-attempts`. */
export function envName(flag: string): string {
  return `${ENV_PREFIX}_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/** Go's strconv.ParseBool. */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

function parseValue(spec: FlagSpec, raw: string, source: string): FlagValue {
  const bad = (why: string): CliError =>
    new CliError(`invalid value "${raw}" for ${source}: ${why}`);
  let v: FlagValue;
  switch (spec.type) {
    case 'bool': {
      const b = parseBool(raw);
      if (b === undefined) throw bad('expected true or false');
      v = b;
      break;
    }
    case 'int':
      if (!/^[+-]?\d+$/.test(raw)) throw bad('expected an integer');
      v = Number(raw);
      break;
    case 'float':
      if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw)) throw bad('expected a number');
      v = Number(raw);
      break;
    case 'string':
      v = raw;
      break;
  }
  const why = spec.check?.(v);
  if (why !== undefined) throw bad(why);
  return v;
}

function findFlag(flags: readonly FlagSpec[], key: string, dashes: number): FlagSpec | undefined {
  if (dashes === 2) return flags.find((f) => f.name === key);
  // One dash: a shorthand, or a long name as Go's flag package accepted.
  return flags.find((f) => f.short === key) ?? flags.find((f) => f.name === key);
}

/**
 * Parses argv (without node and script). `commandFlags` gives the extra flags of a command
 * word (undefined for an unknown command: its flags are then checked by the caller, which
 * reports the unknown command first).
 */
export function parseArgs(
  argv: readonly string[],
  commandFlags: (command: string) => readonly FlagSpec[] | undefined,
  env: Readonly<Record<string, string | undefined>> = {},
): ParsedArgs {
  const values = new Map<string, FlagValue>();
  const given = new Set<string>();
  const positional: string[] = [];
  let command: string | undefined;
  let known: readonly FlagSpec[] = GLOBAL_FLAGS;
  let unknownFlag: string | undefined;
  let unknownBeforeCommand = false;

  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (tok === '--') {
      const rest = argv.slice(i + 1);
      if (command === undefined && rest.length > 0) {
        command = rest[0];
        positional.push(...rest.slice(1));
      } else positional.push(...rest);
      break;
    }
    if (tok.length > 1 && tok.startsWith('-') && !/^-\d/.test(tok)) {
      const dashes = tok.startsWith('--') ? 2 : 1;
      const body = tok.slice(dashes);
      const eq = body.indexOf('=');
      const key = eq >= 0 ? body.slice(0, eq) : body;
      const spec = findFlag(known, key, dashes);
      if (!spec) {
        // Remember the first unknown flag; an unknown command is the better error to report.
        if (unknownFlag === undefined) {
          unknownFlag = tok;
          unknownBeforeCommand = command === undefined;
        }
        continue;
      }
      const display = dashes === 2 || spec.short !== key ? `--${spec.name}` : `-${spec.short}`;
      let raw: string;
      if (eq >= 0) raw = body.slice(eq + 1);
      else if (spec.type === 'bool') raw = 'true';
      else if (i + 1 < argv.length) raw = argv[++i];
      else throw new CliError(`flag needs an argument: ${display}`);
      values.set(spec.name, parseValue(spec, raw, `flag ${display}`));
      given.add(spec.name);
      continue;
    }
    if (command === undefined) {
      command = tok;
      const extra = commandFlags(tok);
      if (extra) known = [...GLOBAL_FLAGS, ...extra];
    } else positional.push(tok);
  }

  // After an unknown command its flags are unknown too: the runner reports the command.
  if (
    unknownFlag !== undefined &&
    (unknownBeforeCommand || command === undefined || commandFlags(command))
  ) {
    throw new CliError(`Unknown flag "${unknownFlag}". Run 'flotilla help' for usage.`);
  }

  for (const spec of known) {
    if (values.has(spec.name)) continue;
    const envOk = spec.fromEnv ?? GLOBAL_FLAGS.includes(spec);
    const fromEnv = envOk ? env[envName(spec.name)] : undefined;
    values.set(
      spec.name,
      fromEnv !== undefined && fromEnv !== ''
        ? parseValue(spec, fromEnv, envName(spec.name))
        : spec.default,
    );
  }
  return { command, args: positional, values, given };
}

/** Typed accessors over ParsedArgs.values. */
export function flagBool(p: ParsedArgs, name: string): boolean {
  return p.values.get(name) === true;
}
export function flagString(p: ParsedArgs, name: string): string {
  const v = p.values.get(name);
  return typeof v === 'string' ? v : '';
}
export function flagNumber(p: ParsedArgs, name: string): number {
  const v = p.values.get(name);
  return typeof v === 'number' ? v : 0;
}

/** `--name=VALUE` / `-s, --name` for help output. */
export function flagUsage(spec: FlagSpec): string {
  const long =
    spec.type === 'bool' ? `--${spec.name}` : `--${spec.name}=${spec.valueName ?? 'VALUE'}`;
  return spec.short ? `-${spec.short}, ${long}` : `    ${long}`;
}
