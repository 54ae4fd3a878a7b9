import fs from 'node:fs';
import path from 'node:path';
import { pidAlive, procStartTime } from '../drivers/process';
import { ErrorCode, FlotillaError } from '../errors';

/** The lock file in a locked directory: "<pid> <start time>" of the flotillad holding it. */
export const LOCK_FILE = 'flotillad.lock';

/** The live process holding `file`, or undefined when nobody does (no file, or its holder died). */
function holder(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const [pidStr, start] = text.trim().split(/\s+/);
  const pid = Number(pidStr);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !pidAlive(pid)) return undefined;
  // A different start time: the PID was reused by another process after the holder died.
  if (start && procStartTime(pid) !== null && procStartTime(pid) !== start) return undefined;
  return pid;
}

/**
 * Takes `dir` for this flotillad: a second daemon on the same state (dev mode's data directory,
 * the process driver's units) would adopt the same processes and fence the first. Refuses with
 * the other daemon's PID while it lives; takes over the lock of a daemon that died. Returns the
 * release function (removes the lock file if it is still ours).
 */
export function lockDirectory(dir: string, what: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const mine = `${process.pid} ${procStartTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx', mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = holder(file);
    if (pid !== undefined) {
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        `${what} ${dir} is in use by another flotillad (PID ${pid}); stop it first or use another directory`,
        { details: { file, pid } },
      );
    }
    if (attempt >= 3) {
      throw new FlotillaError(ErrorCode.Unavailable, `cannot lock ${what} ${dir} (${file})`, {
        details: { file },
      });
    }
    // Left by a daemon that died: take it over (one of two racing daemons wins the create).
    fs.rmSync(file, { force: true });
  }
  return () => {
    try {
      if (fs.readFileSync(file, 'utf8') === mine) fs.rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
}
