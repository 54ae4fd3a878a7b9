import fs from 'node:fs';
import path from 'node:path';
import { cliVersion } from '../cli/version';
import { ErrorCode, FlotillaError } from '../errors';
import type { Restored } from '../store/types';
import { historyLines, parseHistory, type HistoryFile } from './export-format';

/**
 * Writing and reading history files (the format: src/history/export-format.ts), for `flotilla
 * events export`, `flotilla backup`, `flotilla replay FILE` and `flotilla viz FILE`.
 */

/** Writes a history file: to a temporary name, synced, then renamed (never half a file). */
export function writeHistoryFile(
  file: string,
  restored: Restored,
  cluster: string,
): { bytes: number } {
  const tmp = path.join(
    path.dirname(path.resolve(file)),
    `.${path.basename(file)}.${process.pid}.tmp`,
  );
  const fd = fs.openSync(tmp, 'w', 0o600);
  let bytes = 0;
  try {
    for (const line of historyLines(restored, { cluster, flotilla: cliVersion() }))
      bytes += fs.writeSync(fd, line);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return { bytes };
}

/** Reads and checks a history file; a file that cannot be read is HISTORY_NOT_FOUND. */
export function readHistoryFile(file: string): HistoryFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.HistoryNotFound,
      `cannot read history file ${file}: ${(err as Error).message}`,
      { cause: err, details: { file } },
    );
  }
  return parseHistory(text, file);
}
