import type { TargetState, UnitOption } from '../unit/types';

/**
 * Schema version written into every event; bump when an event's shape changes or types are
 * added. 1: the first log. 2: durable lifecycle history (UnitObserved, UnitUnplaceable,
 * MachineUp, MachineDown; `exitStatus` in reported states).
 */
export const SCHEMA_VERSION = 2;

/** Reported state of one unit on one machine, as systemd sees it. */
export interface UnitRuntimeState {
  load: string;
  active: string;
  sub: string;
  /** Hash of the unit file the agent has loaded ('' when none). */
  hash: string;
  mainPid?: number;
  /** systemd's Result (e.g. "exit-code") when the unit failed. */
  result?: string;
  /** The main process's exit status (ExecMainStatus) when the unit failed (schema 2). */
  exitStatus?: number;
  /**
   * Start operations the reporting agent has applied to the unit since the agent started
   * (absent: none, or an agent from before this field). A new value says "started again",
   * whatever the unit did next — what fleet's `launched` meant (src/fleetapi/launched.ts).
   * Reports only: the leader keeps it with the reported state, never in a durable event.
   */
  starts?: number;
}

/**
 * The event log's one union. APPEND-ONLY: add new types at the end, never change the meaning
 * of an existing one. Policy for unknown types (written by a newer version): the fold skips
 * them and counts them; they are kept in the log and in snapshots untouched.
 */
export type EventBody =
  // durable: a user's intent
  | {
      type: 'UnitSubmitted';
      unit: string;
      options: UnitOption[];
      hash: string;
      target: TargetState;
    }
  | { type: 'UnitReplaced'; unit: string; options: UnitOption[]; hash: string }
  | { type: 'UnitTargetSet'; unit: string; target: TargetState }
  | { type: 'UnitDestroyed'; unit: string }
  // durable: the schedule
  | { type: 'UnitScheduled'; unit: string; machine: string; reason: string }
  | { type: 'UnitUnscheduled'; unit: string; machine: string; reason: string }
  | { type: 'MachineMetadataSet'; machine: string; metadata: Record<string, string> }
  | { type: 'LeaderElected'; machine: string; address: string }
  // transient: rebuilt from agents after a failover
  | { type: 'MachineJoined'; machine: string; ip: string; metadata: Record<string, string> }
  | { type: 'MachineLost'; machine: string; reason: string }
  | { type: 'UnitStateReported'; unit: string; machine: string; state: UnitRuntimeState | null }
  // durable: the leader's liveness judgement (src/engine/liveness.ts), for the record
  | {
      type: 'ReschedulingHeld';
      /** Machines whose TTL passed and that were not declared lost. */
      machines: string[];
      reason: string;
    }
  | { type: 'ReschedulingResumed'; reason: string }
  // durable (schema 2): the history of what happened on the machines, coalesced (see
  // src/history/observations.ts): a change of what an agent observes (loaded, active, failed,
  // inactive, gone, a new main PID), the scheduler's reason for a unit it cannot place, and
  // machines joining and being lost. Folded as their transient counterparts.
  | { type: 'UnitObserved'; unit: string; machine: string; state: UnitRuntimeState | null }
  | { type: 'UnitUnplaceable'; unit: string; reason: string }
  | { type: 'MachineUp'; machine: string; ip: string; metadata: Record<string, string> }
  | { type: 'MachineDown'; machine: string; reason: string };

export type EventType = EventBody['type'];

export interface EventMeta {
  /** Position in the log; strictly increasing (transient events are not stored, so gaps appear in etcd). */
  index: number;
  /** Leadership term that appended the event. */
  epoch: number;
  /** Milliseconds since the epoch, taken by the leader when appending. */
  time: number;
  /** Schema version of the body. */
  v: number;
}

export type FlotillaEvent = EventMeta & EventBody;

export const DURABLE_TYPES: ReadonlySet<EventType> = new Set<EventType>([
  'UnitSubmitted',
  'UnitReplaced',
  'UnitTargetSet',
  'UnitDestroyed',
  'UnitScheduled',
  'UnitUnscheduled',
  'MachineMetadataSet',
  'LeaderElected',
  'ReschedulingHeld',
  'ReschedulingResumed',
  'UnitObserved',
  'UnitUnplaceable',
  'MachineUp',
  'MachineDown',
]);

/** Every event type this version knows (the record makes the compiler check the list). */
const KNOWN: Record<EventType, true> = {
  UnitSubmitted: true,
  UnitReplaced: true,
  UnitTargetSet: true,
  UnitDestroyed: true,
  UnitScheduled: true,
  UnitUnscheduled: true,
  MachineMetadataSet: true,
  LeaderElected: true,
  MachineJoined: true,
  MachineLost: true,
  UnitStateReported: true,
  ReschedulingHeld: true,
  ReschedulingResumed: true,
  UnitObserved: true,
  UnitUnplaceable: true,
  MachineUp: true,
  MachineDown: true,
};
export const EVENT_TYPES: readonly EventType[] = Object.keys(KNOWN) as EventType[];

export function isDurable(e: { type: string }): boolean {
  return DURABLE_TYPES.has(e.type as EventType);
}
