/**
 * What the process driver needs of systemd's unit syntax beyond the file's grammar: command
 * lines with systemd's prefixes and quoting, `Environment=` assignments, specifiers (`%i`,
 * `%n`…, specifiers.ts) and `${VAR}`/`$VAR` expansion. The file itself is read by Flotilla's one parser (src/unit), values as systemd
 * applies them (continuations joined, empty assignments resetting a list).
 * Reference: systemd.syntax(7), systemd.service(5) "COMMAND LINES", systemd.exec(5).
 */
import { ErrorCode, FlotillaError } from '../errors';
import { optionValues, parseUnitFile } from '../unit';
import { expandSystemdSpecifiers, thisHost, type SpecifierHost } from './specifiers';

const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  '"': '"',
  "'": "'",
  ' ': ' ',
  s: ' ',
};

/**
 * Splits a command line or an `Environment=` value into words: whitespace separates words,
 * "double" and 'single' quotes group, backslash escapes (\n \t \\ \" \' \s). Throws
 * UNIT_FILE_INVALID on an unterminated quote. A word's `quoted`
 * flag tells `$VAR` expansion not to split it.
 */
export function splitWords(s: string): { word: string; quoted: boolean }[] {
  const words: { word: string; quoted: boolean }[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i >= s.length) break;
    let word = '';
    let quoted = false;
    while (i < s.length && !/\s/.test(s[i])) {
      const c = s[i];
      if (c === '"' || c === "'") {
        quoted = true;
        const end = c;
        i++;
        while (i < s.length && s[i] !== end) {
          if (s[i] === '\\' && end === '"' && i + 1 < s.length) {
            word += ESCAPES[s[i + 1]] ?? s[i + 1];
            i += 2;
          } else word += s[i++];
        }
        if (i >= s.length)
          throw new FlotillaError(ErrorCode.UnitFileInvalid, `unterminated ${end} in: ${s}`);
        i++;
      } else if (c === '\\' && i + 1 < s.length) {
        word += ESCAPES[s[i + 1]] ?? s[i + 1];
        i += 2;
      } else {
        word += c;
        i++;
      }
    }
    words.push({ word, quoted });
  }
  return words;
}

/** Parses `Environment=` values (several assignments per line, quoting allowed) into a map. */
export function parseEnvironment(vals: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of vals) {
    for (const { word } of splitWords(v)) {
      const eq = word.indexOf('=');
      if (eq <= 0) continue;
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return env;
}

export interface CommandLine {
  /** The executable (absolute path or a name looked up in PATH). */
  path: string;
  /** argv[0] the process sees (differs from `path` with the `@` prefix). */
  argv0: string;
  args: string[];
  /** `-` prefix: a non-zero exit is not a failure. */
  ignoreFailure: boolean;
}

/**
 * Parses one `ExecStart=` value: strips systemd's prefixes (`@`, `-`, `:`, `+`, `!`, `!!`),
 * splits words, expands `${VAR}` inside words, a lone unquoted `$VAR` into several words and a
 * quoted one into one word (`$$` is a literal `$`; the `:` prefix disables expansion).
 */
export function parseCommandLine(value: string, env: Record<string, string>): CommandLine {
  let s = value.trim();
  let argv0Next = false;
  let ignoreFailure = false;
  let expand = true;
  for (;;) {
    if (s.startsWith('!!')) s = s.slice(2);
    else if (s.startsWith('@')) {
      argv0Next = true;
      s = s.slice(1);
    } else if (s.startsWith('-')) {
      ignoreFailure = true;
      s = s.slice(1);
    } else if (s.startsWith(':')) {
      expand = false;
      s = s.slice(1);
    } else if (s.startsWith('+') || s.startsWith('!')) s = s.slice(1);
    else break;
  }
  const words: string[] = [];
  for (const { word, quoted } of splitWords(s)) {
    if (!expand) {
      words.push(word);
      continue;
    }
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) {
      const v = env[whole[1]] ?? '';
      // Unquoted: split at whitespace into several words; quoted: exactly one word.
      if (quoted) words.push(v);
      else words.push(...v.split(/\s+/).filter((w) => w !== ''));
      continue;
    }
    words.push(
      word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name?: string) =>
        m === '$$' ? '$' : (env[name ?? ''] ?? ''),
      ),
    );
  }
  if (words.length === 0)
    throw new FlotillaError(ErrorCode.UnitFileInvalid, `empty command line: ${value}`);
  const path = words[0];
  if (argv0Next) {
    if (words.length < 2)
      throw new FlotillaError(ErrorCode.UnitFileInvalid, `"@" needs argv[0]: ${value}`);
    return { path, argv0: words[1], args: words.slice(2), ignoreFailure };
  }
  return { path, argv0: path, args: words.slice(1), ignoreFailure };
}

export interface ServiceSpec {
  description: string;
  exec: CommandLine;
  env: Record<string, string>;
  workingDirectory?: string;
  /** `WorkingDirectory=-…`: a missing directory is not an error. */
  workingDirectoryOptional: boolean;
}

/** What the process driver needs from a service unit. Throws UNIT_FILE_INVALID without ExecStart=. */
export function serviceSpec(
  unit: string,
  text: string,
  host: SpecifierHost = thisHost(),
): ServiceSpec {
  let entries;
  try {
    entries = parseUnitFile(text);
  } catch (err) {
    throw new FlotillaError(ErrorCode.UnitFileInvalid, `${unit}: ${(err as Error).message}`, {
      cause: err,
      details: { unit },
    });
  }
  // systemd expands specifiers (%i, %n, %H…) in these settings before anything else.
  const values = (section: string, name: string): string[] =>
    optionValues(entries, section, name).map((v) => expandSystemdSpecifiers(v, unit, host));
  const env = parseEnvironment(values('Service', 'Environment'));
  const exec = values('Service', 'ExecStart');
  if (exec.length === 0)
    throw new FlotillaError(
      ErrorCode.UnitFileInvalid,
      `${unit}: Service has no ExecStart= setting. Refusing.`,
      { details: { unit } },
    );
  let wd = values('Service', 'WorkingDirectory').at(-1);
  let optional = false;
  if (wd?.startsWith('-')) {
    optional = true;
    wd = wd.slice(1);
  }
  return {
    description: values('Unit', 'Description').at(-1) ?? unit,
    // Several ExecStart= lines are for Type=oneshot only (not supported): the last one runs.
    exec: parseCommandLine(exec[exec.length - 1], env),
    env,
    workingDirectory: wd,
    workingDirectoryOptional: optional,
  };
}
