import fs from 'node:fs';
import path from 'node:path';
import { killGroup } from '../harness/registry';

/**
 * Kills the process groups of the units a process driver started in `units` (its pidfiles);
 * returns how many units it found.
 */
export function killUnitProcesses(units: string): number {
  if (!fs.existsSync(units)) return 0;
  let n = 0;
  for (const f of fs.readdirSync(units).filter((x) => x.endsWith('.pid'))) {
    // "<pid> <starttime> <boot id> <keeper pid>": the keeper first, so that it cannot write its
    // unit's exit file into a directory the caller is about to remove.
    const [pid, , , keeper] = fs
      .readFileSync(path.join(units, f), 'utf8')
      .trim()
      .split(/\s+/)
      .map((x) => parseInt(x, 10));
    if (keeper > 0) killGroup(keeper, 'SIGKILL');
    if (pid > 0) {
      killGroup(pid, 'SIGKILL');
      n++;
    }
  }
  return n;
}
