/**
 * One machine-readable line per fault case, `FAULT-RESULT {json}`, on the test's output (and
 * appended to $FLOTILLA_FAULTS_RESULTS when set); `npm run faults:report` turns those lines
 * into the table of docs/reliability.md.
 */
import fs from 'node:fs';
import type { FaultCluster, UnitStart } from './fault-cluster';

export interface FaultResult {
  /** Short name of the fault, e.g. "leader kill -9". */
  fault: string;
  /** What was done, in a few words. */
  done: string;
  /** What was checked. */
  checked: string;
  /** Units whose process started again after the fault (from the units' own records). */
  unitsRestarted: number;
  /** Units the case expects to start again (moved off a lost machine, rebooted machine). */
  unitsExpectedToStart: number;
  writesAcked: number;
  writesLost: number;
  /** From the end of the fault (or its start, see `recovery`) to `recovery`, in ms. */
  recoverMs: number;
  recovery: string;
}

export function report(r: FaultResult): void {
  const line = `FAULT-RESULT ${JSON.stringify(r)}`;
  console.log(line);
  const file = process.env.FLOTILLA_FAULTS_RESULTS;
  if (file) fs.appendFileSync(file, `${line}\n`);
}

/** Units of `units` with more starts in `after` than in `before`. */
export function restarted(
  units: string[],
  before: Map<string, UnitStart[]>,
  after: Map<string, UnitStart[]>,
): string[] {
  return units.filter((u) => (after.get(u)?.length ?? 0) > (before.get(u)?.length ?? 0));
}

/** Acknowledged writes missing from `present`. */
export function lost(acked: string[], present: Iterable<string>): string[] {
  const have = new Set(present);
  return acked.filter((n) => !have.has(n));
}

export interface Outcome {
  restarted: string[];
  lost: string[];
  acked: number;
}

/** After a fault: which of `units` started again since `before`, and which acknowledged writes are missing. */
export async function outcome(
  c: FaultCluster,
  units: string[],
  before: Map<string, UnitStart[]>,
  acked: string[],
): Promise<Outcome> {
  const present = await c.unitNames();
  return {
    restarted: restarted(units, before, c.starts()),
    lost: lost(acked, present),
    acked: acked.length,
  };
}
