import type { ClusterApi } from '../api/types';
import type { FlagSpec, ParsedArgs } from './args';
import { flagBool, flagNumber, flagString } from './args';
import { formatTable } from './tabwriter';
import type { LocalUnitReader } from './units';
import type { WaitIO } from './wait';

/** Where a command's output goes; injectable so commands run in-process in tests. */
export interface CliIO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  stderrIsTTY: boolean;
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a local unit file (relative paths against the working directory). */
  readUnitFile: LocalUnitReader;
  /** True when a local file exists (for template lookups). */
  fileExists: (file: string) => boolean;
}

export interface Context {
  command: Command;
  args: string[];
  parsed: ParsedArgs;
  io: CliIO;
  /** The API client, connected on first use. */
  api: () => ClusterApi;
  /** Aborted on SIGINT (journal --follow, events --follow, long waits). */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  /** Arguments and flags after the command word, for help. */
  usage: string;
  description?: string;
  /** Flags only this command accepts (globals are always accepted). */
  flags?: readonly FlagSpec[];
  /**
   * False for commands that run without a server (help, version, replay…), or whether the given
   * arguments need it (`events` does, `events export` does not). The API client is loaded only
   * when needed: a command without it starts faster.
   */
  needsApi?: boolean | ((args: readonly string[], given: ReadonlySet<string>) => boolean);
  run(ctx: Context): Promise<number>;
}

/** Prints a line on stdout. */
export function out(ctx: Context, line: string): void {
  ctx.io.stdout(`${line}\n`);
}

/** Prints a line on stderr. */
export function err(ctx: Context, line: string): void {
  ctx.io.stderr(`${line}\n`);
}

export function isFull(ctx: Context): boolean {
  return flagBool(ctx.parsed, 'full');
}

export function isJson(ctx: Context): boolean {
  return flagBool(ctx.parsed, 'json');
}

/** The --fields value, or undefined when neither the flag nor FLOTILLA_FIELDS set one. */
export function fieldsFlag(ctx: Context): string | undefined {
  return ctx.parsed.given.has('fields') || flagString(ctx.parsed, 'fields') !== ''
    ? flagString(ctx.parsed, 'fields')
    : undefined;
}

/**
 * fleetctl's getBlockAttempts: -1 with --no-block (do not wait), 0 to wait forever (the
 * default), N to give up after N attempts.
 */
export function blockAttempts(ctx: Context): number {
  if (flagBool(ctx.parsed, 'no-block')) return -1;
  return Math.max(0, flagNumber(ctx.parsed, 'block-attempts'));
}

export function waitIO(ctx: Context): WaitIO {
  return {
    out: (line) => out(ctx, line),
    err: (s) => ctx.io.stderr(s),
    stderrIsTTY: ctx.io.stderrIsTTY,
  };
}

/**
 * Prints a list: a tab-aligned table (header unless --no-legend) or, with --json, an array of
 * objects keyed by the lower-case field names.
 */
export function printList(
  ctx: Context,
  cols: readonly string[],
  rows: readonly (readonly string[])[],
  jsonRows: readonly Record<string, unknown>[],
): void {
  if (isJson(ctx)) {
    ctx.io.stdout(`${JSON.stringify(jsonRows, null, 2)}\n`);
    return;
  }
  const table = flagBool(ctx.parsed, 'no-legend')
    ? rows
    : [cols.map((c) => c.toUpperCase()), ...rows];
  ctx.io.stdout(formatTable(table));
}
