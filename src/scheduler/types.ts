import type { TargetState, UnitRequirements } from '../unit/types';

export interface SchedUnit {
  name: string;
  target: TargetState;
  requirements: UnitRequirements;
}

export interface SchedMachine {
  id: string;
  metadata: Readonly<Record<string, string>>;
}

/**
 * One scheduling decision with a human reason, e.g.
 * { kind: 'schedule', unit: 'web.service', machine: 'm2', reason: 'least loaded (3 units)' }.
 */
export type Decision =
  | { kind: 'schedule'; unit: string; machine: string; reason: string }
  | { kind: 'unschedule'; unit: string; machine: string; reason: string };
