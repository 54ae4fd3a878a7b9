import type { Decision, SchedMachine, SchedUnit, Scheduler } from '../../../src/scheduler';
import { formatDecision } from '../../../src/scheduler';
import { parseUnitFile, unitRequirements, type TargetState } from '../../../src/unit';

/** A unit whose [X-Fleet] section is `xfleet` (lines joined by "\n"), read as fleet would. */
export function unit(
  name: string,
  xfleet = '',
  target: TargetState = 'launched',
): SchedUnit & { machine?: string } {
  const options = parseUnitFile(`[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n${xfleet}\n`);
  return { name, target, requirements: unitRequirements(name, options).requirements };
}

export function placed(u: SchedUnit, machine: string): SchedUnit & { machine: string } {
  return { ...u, machine };
}

export function machine(id: string, metadata: Record<string, string> = {}): SchedMachine {
  return { id, metadata };
}

export function lines(ds: Decision[]): string[] {
  return ds.map(formatDecision);
}

/** One plan as the engine runs it: the decisions, then committed (applied to the scheduler). */
export function planned(s: Scheduler): Decision[] {
  const d = s.plan();
  s.commit(d);
  return d;
}
