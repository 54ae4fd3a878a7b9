import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

/** Where journald keeps its files: volatile and persistent storage, each with machine-ID dirs. */
const JOURNAL_DIRS = ['/run/log/journal', '/var/log/journal'];

function hasJournalFiles(dir: string, depth = 2): boolean {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some(
    (e) =>
      (e.isFile() && e.name.endsWith('.journal')) ||
      (e.isDirectory() && depth > 0 && hasJournalFiles(path.join(dir, e.name), depth - 1)),
  );
}

export interface JournalOptions {
  /** The user manager's units: `journalctl --user-unit` instead of `--unit`. */
  user: boolean;
  /** Overridable for tests; default: the standard journald directories. */
  journalDirs?: string[];
  /** Default "journalctl" (from PATH). */
  journalctl?: string;
}

/**
 * A unit's log lines from journalctl (the journal has no D-Bus API). When this machine has no
 * journal (no journald: containers, the test harness's user managers) or no journalctl, yields
 * one line saying so instead of failing. With `follow`, goes on until `signal` aborts.
 */
export async function* journalLines(
  unit: string,
  lines: number,
  follow: boolean,
  signal: AbortSignal | undefined,
  opts: JournalOptions,
): AsyncGenerator<string> {
  const unavailable = `no journal available for ${unit} on this machine`;
  if (!(opts.journalDirs ?? JOURNAL_DIRS).some((d) => hasJournalFiles(d))) {
    yield unavailable;
    return;
  }
  if (signal?.aborted) return;
  const args = [opts.user ? '--user-unit' : '--unit', unit, '--lines', String(lines)];
  args.push('--no-pager', '--output', 'short', '--quiet');
  if (follow) args.push('--follow');
  const child = spawn(opts.journalctl ?? 'journalctl', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let spawnFailed = false;
  let stderr = '';
  child.on('error', () => (spawnFailed = true));
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  const stop = (): void => {
    child.kill('SIGTERM');
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    let produced = 0;
    for await (const line of readline.createInterface({ input: child.stdout })) {
      produced++;
      yield line;
    }
    const code = await exited;
    if (produced === 0 && (spawnFailed || (code !== 0 && !signal?.aborted))) {
      yield stderr.includes('No journal files') || spawnFailed
        ? unavailable
        : `journalctl failed for ${unit}: ${stderr.trim() || `exit code ${code}`}`;
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}
