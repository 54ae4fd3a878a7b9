#!/usr/bin/env node
import { quietIpServerNameWarning } from '../api/quiet-warning';
import { localFiles, runCli } from './run';

/**
 * The `flotilla` executable. Output is written with process.stdout/stderr and the exit status
 * is set with process.exitCode (not process.exit), so piped output is never cut short.
 */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  quietIpServerNameWarning();
  const interrupted = new AbortController();
  let interrupts = 0;
  // Ctrl-C ends streams (journal -f, events -f) and waits cleanly; a command that does not
  // stop within a second, or a second Ctrl-C, exits at once as it would without a handler.
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    interrupted.abort();
    setTimeout(() => process.exit(130), 1000).unref();
  };
  process.on('SIGINT', onSigint);
  // A closed pipe (`flotilla list-units | head`) is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    process.exitCode = await runCli(
      argv,
      {
        stdout: (s) => process.stdout.write(s),
        stderr: (s) => process.stderr.write(s),
        stderrIsTTY: process.stderr.isTTY === true,
        env: process.env,
        ...localFiles(process.cwd()),
      },
      { signal: interrupted.signal },
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
}

if (require.main === module) void main();
