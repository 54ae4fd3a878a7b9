import { assertNever } from '../errors';
import type { FlotillaEvent, UnitRuntimeState } from '../events/types';
import {
  afterPresenceChange,
  beforePresenceChange,
  beforeUnitEvent,
  stepLifecycle,
  type UnitBefore,
} from './lifecycle';

/** Events that set a machine's presence, and to what. */
const PRESENCE: Partial<Record<string, 'alive' | 'lost'>> = {
  MachineJoined: 'alive',
  MachineUp: 'alive',
  MachineLost: 'lost',
  MachineDown: 'lost',
};

const NEW_UNIT: UnitBefore = { machine: undefined, global: false, observed: 'none' };
import { unitDescription, unitRequirements } from '../unit';
import type { ClusterState, MachineRecord } from './state';
import { emptyState } from './state';

/**
 * Applies one event to the state, in place. Deterministic: the result depends only on the state
 * and the event (time travels inside the event; no clock, no randomness). Events must arrive in
 * index order; an event at or below the state's index is ignored (idempotent replay).
 *
 * Unknown types (from a newer version) are counted and skipped: the log keeps them.
 */
export function applyEvent(state: ClusterState, e: FlotillaEvent): void {
  if (e.index <= state.index) return;
  const u = 'unit' in e ? state.units.get(e.unit) : undefined;
  const before =
    u && beforeUnitEvent(state, u, e.type === 'UnitObserved' || e.type === 'UnitStateReported');
  // A machine lost or back: the units its agent reported are observed differently.
  const presence = PRESENCE[e.type] && 'machine' in e ? state.machines.get(e.machine) : undefined;
  const was = presence?.presence;
  const reportedThere =
    presence && presence.presence !== PRESENCE[e.type]
      ? beforePresenceChange(state, presence.id)
      : undefined;
  applyRecords(state, e);
  stepLifecycle(state, e, before ?? NEW_UNIT);
  if (reportedThere && presence!.presence !== was) afterPresenceChange(state, reportedThere);
}

function applyRecords(state: ClusterState, e: FlotillaEvent): void {
  state.index = e.index;
  if (e.epoch > state.epoch) state.epoch = e.epoch;
  switch (e.type) {
    case 'UnitSubmitted': {
      // Requirements were validated when the event was created; a unit in the log is valid.
      const { requirements } = unitRequirements(e.unit, e.options);
      state.units.set(e.unit, {
        name: e.unit,
        options: e.options,
        hash: e.hash,
        target: e.target,
        requirements,
        description: unitDescription(e.options),
      });
      return;
    }
    case 'UnitReplaced': {
      const u = state.units.get(e.unit);
      if (!u) return;
      u.options = e.options;
      u.hash = e.hash;
      u.requirements = unitRequirements(e.unit, e.options).requirements;
      u.description = unitDescription(e.options);
      return;
    }
    case 'UnitTargetSet': {
      const u = state.units.get(e.unit);
      if (u) u.target = e.target;
      if (u && e.target === 'inactive') u.why = undefined;
      return;
    }
    case 'UnitDestroyed':
      state.units.delete(e.unit);
      return;
    case 'UnitScheduled': {
      const u = state.units.get(e.unit);
      if (u) {
        u.machine = e.machine;
        u.why = undefined;
      }
      return;
    }
    case 'UnitUnscheduled': {
      const u = state.units.get(e.unit);
      if (u && u.machine === e.machine) {
        u.machine = undefined;
        u.left = e.reason;
      }
      return;
    }
    case 'UnitUnplaceable': {
      const u = state.units.get(e.unit);
      if (u && u.machine === undefined) u.why = e.reason;
      return;
    }
    case 'MachineMetadataSet': {
      // A machine not seen yet is recorded as lost until its agent joins.
      machineOf(state, e.machine, e.time, 'lost').overrides = { ...e.metadata };
      return;
    }
    case 'LeaderElected':
      state.leader = { machine: e.machine, address: e.address };
      return;
    case 'ReschedulingHeld':
    case 'ReschedulingResumed':
      return;
    case 'MachineJoined':
    case 'MachineUp': {
      const m = machineOf(state, e.machine, e.time, 'alive');
      m.ip = e.ip;
      m.reported = { ...e.metadata };
      if (m.presence !== 'alive') {
        m.presence = 'alive';
        m.since = e.time;
      }
      return;
    }
    case 'MachineLost':
    case 'MachineDown': {
      const m = state.machines.get(e.machine);
      if (m && m.presence !== 'lost') {
        m.presence = 'lost';
        m.since = e.time;
      }
      return;
    }
    case 'UnitStateReported':
    case 'UnitObserved': {
      let byMachine = state.reported.get(e.unit);
      if (e.state?.active === 'failed' && byMachine?.get(e.machine)?.active !== 'failed')
        recordFailure(state, e.unit, e.machine, e.state, e.time);
      if (e.state === null) {
        byMachine?.delete(e.machine);
        if (byMachine?.size === 0) state.reported.delete(e.unit);
        return;
      }
      if (!byMachine) state.reported.set(e.unit, (byMachine = new Map()));
      // A UnitObserved follows the report it records, without the agent's start count (not
      // kept in the log): the count stays.
      const starts = e.type === 'UnitObserved' ? byMachine.get(e.machine)?.starts : undefined;
      byMachine.set(e.machine, starts === undefined ? e.state : { ...e.state, starts });
      return;
    }
    default:
      state.unknownEvents++;
      assertUnknown(e);
  }
}

/** Compile-time exhaustiveness; at run time an unknown type is only counted. */
function assertUnknown(e: never): void {
  void (e as unknown);
  if (process.env.FLOTILLA_STRICT_EVENTS === '1') assertNever(e, 'event type');
}

/** A unit's failure, when reported by the machine that counts for it. */
function recordFailure(
  state: ClusterState,
  unit: string,
  machine: string,
  s: UnitRuntimeState,
  time: number,
): void {
  const u = state.units.get(unit);
  if (!u || (u.machine !== undefined && u.machine !== machine)) return;
  u.lastFailure = {
    machine,
    result: s.result ?? 'unknown',
    ...(s.exitStatus === undefined ? {} : { exitStatus: s.exitStatus }),
    time,
  };
}

function machineOf(
  state: ClusterState,
  id: string,
  time: number,
  presence: MachineRecord['presence'],
): MachineRecord {
  let m = state.machines.get(id);
  if (!m) {
    m = { id, ip: '', reported: {}, overrides: {}, presence, since: time };
    state.machines.set(id, m);
  }
  return m;
}

/** Folds a whole log from the empty state. */
export function foldAll(
  events: Iterable<FlotillaEvent>,
  from: ClusterState = emptyState(),
): ClusterState {
  for (const e of events) applyEvent(from, e);
  return from;
}
