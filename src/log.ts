/**
 * A small structured logger: one line per record on stderr, `time LEVEL msg key=value…`
 * (log_format=text) or one JSON object (log_format=json). Under systemd, when stderr is the
 * journal (JOURNAL_STREAM names it), text lines carry no timestamp of their own, since journald
 * stamps each line, and start with a syslog priority prefix (`<3>` for errors) so that
 * `journalctl -p err` finds them.
 */
import fs from 'node:fs';

/** Where a component writes its log lines; `fields` are structured context. */
export interface LogSink {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The daemon's logger: a sink that can add context for a component. */
export interface Logger extends LogSink {
  child(fields: Record<string, unknown>): Logger;
}

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** syslog priorities journald reads from a `<N>` line prefix. */
const PRIORITY: Record<Level, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/**
 * Whether file descriptor `fd` is the journal stream systemd connected (JOURNAL_STREAM is
 * "device:inode" of that stream; a redirected stderr no longer matches).
 */
export function isJournalStream(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd);
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

export function createLogger(
  opts: {
    level?: Level;
    /** `text` (default) or `json`. */
    format?: 'text' | 'json';
    /** @deprecated use `format`. */
    json?: boolean;
    /** Text lines for journald: no timestamp, a `<priority>` prefix (default: detected). */
    journal?: boolean;
    write?: (line: string) => void;
    fields?: Record<string, unknown>;
  } = {},
): Logger {
  const level = opts.level ?? (process.env.FLOTILLA_LOG_LEVEL as Level | undefined) ?? 'info';
  const json =
    opts.format !== undefined
      ? opts.format === 'json'
      : (opts.json ?? process.env.FLOTILLA_LOG_JSON === '1');
  const journal = opts.journal ?? (!json && isJournalStream());
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const base = opts.fields ?? {};
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] < ORDER[level]) return;
    const all = { ...base, ...fields };
    if (json) {
      write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...all }));
      return;
    }
    const kv = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    const head = journal ? `<${PRIORITY[lvl]}>` : `${new Date().toISOString()} `;
    write(`${head}${lvl.toUpperCase()} ${msg}${kv ? ' ' + kv : ''}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) =>
      createLogger({
        level,
        format: json ? 'json' : 'text',
        journal,
        write,
        fields: { ...base, ...fields },
      }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
