import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { localFiles, runCli as runCliFunction } from '../../src/cli/run';

/**
 * Runs the `flotilla` CLI, in-process (`runCliInProcess`, `startCliInProcess`: the CLI's own
 * entry function src/cli/run.ts, talking gRPC to the endpoint as the binary does) or as a real
 * subprocess (`runCli`, `spawnCli`: for what only a process shows, such as signals and the
 * built bin), and parses its tables.
 *
 *   const r = await runCli(['list-units'], { endpoint: '127.0.0.1:7070' });
 *   expect(r.code).toBe(0);
 *   expect(parseTable(r.stdout).rows).toEqual([['hello.service', '32d3a898.../10.0.0.1', 'active', 'running']]);
 *
 * By default the CLI runs from its TypeScript sources through a small @swc/core require hook,
 * so a test always exercises the current code without a build. `mode: 'dist'` runs the built
 * `dist/src/cli/main.js` instead (the `flotilla` bin; needs `npm run build`).
 */

function repoRoot(): string {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
}

export const REPO_ROOT = repoRoot();
export const CLI_SOURCE = path.join(REPO_ROOT, 'src', 'cli', 'main.ts');
export const CLI_DIST = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunCliOptions {
  /** Sets FLOTILLA_ENDPOINT (flags in `args` still win). */
  endpoint?: string;
  /** Extra environment. FLOTILLA_* variables of the test process are never inherited. */
  env?: Record<string, string>;
  /** Working directory (unit files are read relative to it). */
  cwd?: string;
  /** Kill the CLI after this long (default 60 s) and fail with its output so far. */
  timeoutMs?: number;
  mode?: 'source' | 'dist';
}

/** Loads .ts files through @swc/core, then runs the CLI's main() with the arguments after `--`. */
const BOOT = `
const fs = require('fs');
const swc = require(${JSON.stringify(require.resolve('@swc/core', { paths: [REPO_ROOT] }))});
require.extensions['.ts'] = function (m, filename) {
  const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  m._compile(out.code, filename);
};
require(${JSON.stringify(CLI_SOURCE)}).main(process.argv.slice(1));
`;

function cliEnv(opts: RunCliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOTILLA_')) env[k] = v;
  if (opts.endpoint !== undefined) env.FLOTILLA_ENDPOINT = opts.endpoint;
  return { ...env, ...opts.env };
}

/**
 * Waiting for a command's output, in a process or in this one: `wait(re)` resolves once stdout
 * matches `re` and rejects once the command has `ended()` without; `check()` is called on new
 * output and when the command ends.
 */
function outputWaiters(
  stdout: () => string,
  stderr: () => string,
  ended: () => boolean,
  endedWord: string,
): { check(): void; wait(re: RegExp): Promise<void> } {
  const waiters = new Set<() => void>();
  return {
    check: () => {
      for (const w of waiters) w();
    },
    wait: (re) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (re.test(stdout())) {
            waiters.delete(check);
            resolve();
          } else if (ended()) {
            waiters.delete(check);
            reject(
              new Error(
                `flotilla ${endedWord} before printing ${re}; stdout:\n${stdout()}\nstderr:\n${stderr()}`,
              ),
            );
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

/** A running CLI process, for commands that do not end by themselves (`journal -f`). */
export interface CliProcess {
  proc: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches `re` (rejects if the process ends first). */
  waitForStdout(re: RegExp): Promise<void>;
  /** Sends a signal (default SIGINT) and returns the result once the process ended. */
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
  result: Promise<CliResult>;
}

export function spawnCli(args: readonly string[], opts: RunCliOptions = {}): CliProcess {
  const argv = opts.mode === 'dist' ? [CLI_DIST, ...args] : ['-e', BOOT, '--', ...args];
  const proc = spawn(process.execPath, argv, {
    cwd: opts.cwd ?? process.cwd(),
    env: cliEnv(opts),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const output = outputWaiters(
    () => stdout,
    () => stderr,
    () => proc.exitCode !== null || proc.signalCode !== null,
    'exited',
  );
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    output.check();
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, timeoutMs);
  const result = new Promise<CliResult>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      output.check();
      if (timedOut) {
        reject(
          new Error(
            `flotilla ${args.join(' ')} did not finish within ${timeoutMs} ms\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`,
          ),
        );
      } else resolve({ stdout, stderr, code, signal });
    });
  });
  return {
    proc,
    stdout: () => stdout,
    stderr: () => stderr,
    result,
    waitForStdout: output.wait,
    stop: (signal = 'SIGINT') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return result;
    },
  };
}

/** Runs `flotilla <args>` to completion. */
export function runCli(args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return spawnCli(args, opts).result;
}

export interface Table {
  /** Header cells, as printed (upper case); empty when `hasHeader` is false. */
  header: string[];
  rows: string[][];
}

/**
 * Splits tab-aligned output (fleetctl's tabwriter) into cells: runs of tabs separate cells.
 * Pass `hasHeader: false` for `--no-legend` output.
 */
export function parseTable(text: string, hasHeader = true): Table {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const cells = lines.map((l) => l.split(/\t+/));
  if (!hasHeader) return { header: [], rows: cells };
  return { header: cells[0] ?? [], rows: cells.slice(1) };
}

/** Rows of a table with a header as objects keyed by the lower-case column names. */
export function tableObjects(text: string): Record<string, string>[] {
  const { header, rows } = parseTable(text);
  const keys = header.map((h) => h.toLowerCase());
  return rows.map((r) => Object.fromEntries(keys.map((k, i) => [k, r[i] ?? ''])));
}

/** stderr without progress lines (`waiting: 12/3000 launched`) and terminal redraws. */
export function stripProgress(stderr: string): string {
  return stderr
    .split('\r\x1b[2K')
    .join('\n')
    .split('\n')
    .filter((l) => l.length > 0 && !/^waiting: \d+\/\d+ /.test(l))
    .map((l) => `${l}\n`)
    .join('');
}

export interface InProcessCliOptions {
  /** Sets FLOTILLA_ENDPOINT in the CLI's environment (flags in `args` still win). */
  endpoint?: string;
  /** The CLI's whole environment besides FLOTILLA_ENDPOINT (the test process's is not read). */
  env?: Record<string, string>;
  /** Directory unit files are read relative to. */
  cwd?: string;
}

/** A CLI invocation running in this process; `stop()` is the Ctrl-C of a subprocess. */
export interface InProcessCli {
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches `re` (rejects if the command ends first). */
  waitForStdout(re: RegExp): Promise<void>;
  /** Aborts the command's signal, as main() does on SIGINT, and returns its result. */
  stop(): Promise<CliResult>;
  /** Settles with the exit status the binary would exit with. */
  result: Promise<CliResult>;
  /** True once the command returned. */
  done(): boolean;
}

/**
 * Starts `flotilla <args>` in this process through the CLI's entry function (runCli in
 * src/cli/run.ts): output is captured, stderr is not a terminal, the exit status is returned.
 */
export function startCliInProcess(
  args: readonly string[],
  opts: InProcessCliOptions = {},
): InProcessCli {
  let stdout = '';
  let stderr = '';
  let finished = false;
  const output = outputWaiters(
    () => stdout,
    () => stderr,
    () => finished,
    'ended',
  );
  const interrupt = new AbortController();
  const env = {
    ...(opts.endpoint !== undefined ? { FLOTILLA_ENDPOINT: opts.endpoint } : {}),
    ...opts.env,
  };
  const result = runCliFunction(
    args,
    {
      stdout: (s) => {
        stdout += s;
        output.check();
      },
      stderr: (s) => (stderr += s),
      stderrIsTTY: false,
      env,
      ...localFiles(opts.cwd ?? process.cwd()),
    },
    { signal: interrupt.signal },
  ).then((code): CliResult => {
    finished = true;
    output.check();
    return { stdout, stderr, code, signal: null };
  });
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    done: () => finished,
    result,
    waitForStdout: output.wait,
    stop: () => {
      interrupt.abort();
      return result;
    },
  };
}

/** Runs `flotilla <args>` in this process to completion. */
export function runCliInProcess(
  args: readonly string[],
  opts: InProcessCliOptions = {},
): Promise<CliResult> {
  return startCliInProcess(args, opts).result;
}
