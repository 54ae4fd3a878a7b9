/**
 * An error the CLI reports as one line on stderr with exit status 1. `message` is printed
 * exactly as given (fleetctl's wording is part of the interface scripts rely on).
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Collapses a message to one line: the CLI's errors are always a single line on stderr. */
export function oneLine(message: string): string {
  return message
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .join(' ');
}

/** The message of anything thrown, on one line. */
export function errorMessage(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}
