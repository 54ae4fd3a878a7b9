import fs from 'node:fs';
import path from 'node:path';
import { killGroup } from '../harness/registry';

/** Kills the process groups of the units a process driver started in `units` (its pidfiles). */
export function killUnitProcesses(units: string): void {
  if (!fs.existsSync(units)) return;
  for (const f of fs.readdirSync(units).filter((x) => x.endsWith('.pid'))) {
    const pid = parseInt(fs.readFileSync(path.join(units, f), 'utf8'), 10);
    if (pid > 0) killGroup(pid, 'SIGKILL');
  }
}
