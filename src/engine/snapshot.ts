import type { UnitRuntimeState } from '../events/types';
import { ErrorCode, FlotillaError } from '../errors';
import type { TargetState, UnitOption } from '../unit/types';
import { unitDescription, unitRequirements } from '../unit';
import type { ClusterState, MachineRecord, UnitFailure } from './state';

/** Snapshot format version; restore refuses versions it does not know. */
export const SNAPSHOT_FORMAT = 1;

interface SnapshotDoc {
  format: number;
  index: number;
  epoch: number;
  leader?: { machine: string; address: string };
  unknownEvents: number;
  units: {
    name: string;
    options: UnitOption[];
    hash: string;
    target: TargetState;
    machine?: string;
    left?: string;
    why?: string;
    lastFailure?: UnitFailure;
  }[];
  machines: MachineRecord[];
  reported: { unit: string; machine: string; state: UnitRuntimeState }[];
}

const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * A canonical JSON document of the state: same state, same bytes (everything sorted). Derived
 * fields (requirements, description) are not stored; restore recomputes them.
 */
export function toSnapshotDoc(state: ClusterState): SnapshotDoc {
  const units = [...state.units.values()].sort(byKey((u) => u.name));
  const machines = [...state.machines.values()].sort(byKey((m) => m.id));
  const reported: SnapshotDoc['reported'] = [];
  for (const unit of [...state.reported.keys()].sort()) {
    const byMachine = state.reported.get(unit)!;
    for (const machine of [...byMachine.keys()].sort()) {
      reported.push({ unit, machine, state: byMachine.get(machine)! });
    }
  }
  return {
    format: SNAPSHOT_FORMAT,
    index: state.index,
    epoch: state.epoch,
    leader: state.leader,
    unknownEvents: state.unknownEvents,
    units: units.map((u) => ({
      name: u.name,
      options: u.options,
      hash: u.hash,
      target: u.target,
      ...(u.machine === undefined ? {} : { machine: u.machine }),
      ...(u.left === undefined ? {} : { left: u.left }),
      ...(u.why === undefined ? {} : { why: u.why }),
      ...(u.lastFailure === undefined ? {} : { lastFailure: u.lastFailure }),
    })),
    machines: machines.map((m) => ({
      id: m.id,
      ip: m.ip,
      reported: sortObj(m.reported),
      overrides: sortObj(m.overrides),
      presence: m.presence,
      since: m.since,
    })),
    reported,
  };
}

function sortObj(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function encodeState(state: ClusterState): Uint8Array {
  return Buffer.from(JSON.stringify(toSnapshotDoc(state)));
}

/**
 * The same bytes as `encodeState`, written a slice at a time with `pause()` awaited between
 * slices. The state is captured at once (a consistent copy as of its index); only the JSON text,
 * most of the cost (36 MiB for 100,000 units), is spread over event-loop turns, so a leader
 * writing a snapshot keeps answering calls and renewing its lease.
 */
export async function encodeStateInSlices(
  state: ClusterState,
  pause: () => Promise<void>,
  sliceSize = 2000,
): Promise<Uint8Array> {
  const { units, machines, reported, ...head } = toSnapshotDoc(state);
  const parts: string[] = [JSON.stringify(head).slice(0, -1), ',"units":['];
  const slices = async (xs: readonly unknown[]): Promise<void> => {
    for (let i = 0; i < xs.length; i += sliceSize) {
      if (i > 0) {
        parts.push(',');
        await pause();
      }
      parts.push(
        xs
          .slice(i, i + sliceSize)
          .map((x) => JSON.stringify(x))
          .join(','),
      );
    }
  };
  await slices(units);
  parts.push('],"machines":', JSON.stringify(machines), ',"reported":[');
  await slices(reported);
  parts.push(']}');
  return Buffer.from(parts.join(''));
}

export function decodeState(data: Uint8Array): ClusterState {
  let doc: SnapshotDoc;
  try {
    doc = JSON.parse(Buffer.from(data).toString('utf8')) as SnapshotDoc;
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.StoreCorrupt,
      `snapshot is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (doc.format !== SNAPSHOT_FORMAT) {
    throw new FlotillaError(
      ErrorCode.StoreCorrupt,
      `snapshot format ${doc.format} is not supported (want ${SNAPSHOT_FORMAT})`,
    );
  }
  const state: ClusterState = {
    index: doc.index,
    epoch: doc.epoch,
    leader: doc.leader,
    unknownEvents: doc.unknownEvents,
    units: new Map(),
    machines: new Map(),
    reported: new Map(),
  };
  for (const u of doc.units) {
    state.units.set(u.name, {
      ...u,
      requirements: unitRequirements(u.name, u.options).requirements,
      description: unitDescription(u.options),
    });
  }
  for (const m of doc.machines) state.machines.set(m.id, m);
  for (const r of doc.reported) {
    let byMachine = state.reported.get(r.unit);
    if (!byMachine) state.reported.set(r.unit, (byMachine = new Map()));
    byMachine.set(r.machine, r.state);
  }
  return state;
}
