/**
 * The one-shot form of the scheduler: the same rules as {@link Scheduler}, for a whole cluster
 * at once. `schedule(units, machines)` gives exactly the decisions a fresh Scheduler fed the same
 * facts (in any order) gives from plan().
 */
import { Scheduler } from './scheduler';
import type { Decision, SchedMachine, SchedUnit } from './types';

/**
 * Decides placements for `units` (each with its current machine, if placed) on `machines`.
 * Pure: the inputs are not modified.
 */
export function schedule(
  units: ReadonlyArray<SchedUnit & { machine?: string }>,
  machines: readonly SchedMachine[],
): Decision[] {
  const s = new Scheduler();
  for (const m of machines) s.upsertMachine(m);
  for (const u of units)
    s.upsertUnit({ name: u.name, target: u.target, requirements: u.requirements });
  for (const u of units) if (u.machine !== undefined) s.place(u.name, u.machine);
  return s.plan();
}

/** One line for logs and the CLI: `schedule web.service on m2: least loaded (3 units)`. */
export function formatDecision(d: Decision): string {
  return d.kind === 'schedule'
    ? `schedule ${d.unit} on ${d.machine}: ${d.reason}`
    : `unschedule ${d.unit} from ${d.machine}: ${d.reason}`;
}
