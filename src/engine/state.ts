import type { UnitRuntimeState } from '../events/types';
import type { EngineUnitEvent, EngineUnitInput } from '../machines/engine-unit';
import type { UnitLifecycle } from './lifecycle';
import type { TargetState, UnitOption, UnitRequirements } from '../unit/types';
import { effectiveMetadata } from './metadata';

export interface UnitRecord {
  name: string;
  options: UnitOption[];
  hash: string;
  target: TargetState;
  /** Where the scheduler placed it (durable); undefined when unplaced or global. */
  machine?: string;
  requirements: UnitRequirements;
  description: string;
  /** Why it last left a machine (the scheduler's reason: machine lost, target inactive, …). */
  left?: string;
  /** The scheduler's reason for not placing it (until it is placed or its target is inactive). */
  why?: string;
  /** Its last failure as its machine reported it. */
  lastFailure?: UnitFailure;
  /** Its lifecycle as last stepped (derived, never stored: see src/engine/lifecycle.ts). */
  lifecycle?: UnitLifecycle;
  /** Lifecycle events committed and not stepped yet (and the input to start from, if new). */
  lifecycleQueue?: { init?: EngineUnitInput; events: EngineUnitEvent[] };
}

export interface UnitFailure {
  machine: string;
  /** systemd's Result: exit-code, signal, timeout, core-dump, … */
  result: string;
  exitStatus?: number;
  /** When the leader committed the report (ms). */
  time: number;
}

export type MachinePresence = 'alive' | 'lost';

export interface MachineRecord {
  id: string;
  ip: string;
  /** Metadata the agent reports (its configuration). */
  reported: Record<string, string>;
  /** Metadata set through the API (durable); wins over `reported` key by key ('' hides it). */
  overrides: Record<string, string>;
  presence: MachinePresence;
  /** Time (ms) of the event that last changed presence. */
  since: number;
}

/**
 * The cluster as folded from the event log. Owned by the fold: nothing else mutates it.
 * Maps are iterated only after sorting where order is visible (determinism).
 */
export interface ClusterState {
  /** Index of the last folded event (0: empty log). */
  index: number;
  epoch: number;
  leader?: { machine: string; address: string };
  units: Map<string, UnitRecord>;
  machines: Map<string, MachineRecord>;
  /** unit -> machine -> what its agent reported. */
  reported: Map<string, Map<string, UnitRuntimeState>>;
  /** Events of types this version does not know (kept in the log, skipped by the fold). */
  unknownEvents: number;
}

export function emptyState(): ClusterState {
  return {
    index: 0,
    epoch: 0,
    units: new Map(),
    machines: new Map(),
    reported: new Map(),
    unknownEvents: 0,
  };
}

/**
 * Effective metadata: the agent's, overridden key by key by the API's; an API value of '' hides
 * the agent's key (a removal, src/engine/metadata.ts).
 */
export function machineMetadata(m: MachineRecord): Record<string, string> {
  return effectiveMetadata(m.reported, m.overrides);
}
