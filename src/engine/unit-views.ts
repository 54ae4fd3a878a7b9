import type { Unit } from '../gen/flotilla/v1/flotilla';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { UnitOption as UnitOptionCodec, Unit as UnitCodec } from '../gen/flotilla/v1/flotilla';
import type { TargetState, UnitOption } from '../unit/types';
import { lifecycleOf, statusOf } from './lifecycle';

export { liveReports } from './lifecycle';
import type { ClusterState, UnitFailure, UnitRecord } from './state';

/** What the API shows of a unit, wherever the unit is kept. */
export interface UnitFields {
  name: string;
  options: UnitOption[];
  hash: string;
  target: TargetState;
  machine?: string;
  global: boolean;
  description: string;
  why?: string;
  lastFailure?: UnitFailure;
}

/** What the unit's lifecycle says: its state, and the STATE column derived from it. */
export interface UnitStatusFields {
  phase: string;
  currentState: string;
}

/** The API's `Unit` message of a unit. */
export function unitMessage(u: UnitFields, status: UnitStatusFields): Unit {
  const f = u.lastFailure;
  return {
    name: u.name,
    options: u.options,
    hash: u.hash,
    targetState: u.target,
    targetMachine: u.machine ?? '',
    global: u.global,
    description: u.description,
    currentState: status.currentState,
    phase: status.phase,
    reason: u.why ?? '',
    lastFailure: f
      ? {
          machineId: f.machine,
          result: f.result,
          exitStatus: f.exitStatus ?? 0,
          hasExitStatus: f.exitStatus !== undefined,
          timeMs: f.time,
        }
      : undefined,
  };
}

/** A unit of the state as the API shows it (GetUnit, ListUnits), from its lifecycle. */
export function unitView(state: ClusterState, u: UnitRecord): Unit {
  return unitMessage({ ...u, global: u.requirements.global }, statusOf(lifecycleOf(state, u)));
}

/**
 * A unit's `Unit` message in encoded parts; their concatenation (fields in any order, as
 * protobuf allows) is the whole message.
 */
export interface EncodedUnit {
  /** What changes only with the unit's file: name, hash, global, description. */
  file: Uint8Array;
  /** The `options` entries (field 2): left out of the BASIC view. */
  options: Uint8Array;
  /** What changes as the unit runs: target state, target machine, current state. */
  status: Uint8Array;
}

const NO_FIELDS: Unit = {
  name: '',
  options: [],
  hash: '',
  targetState: '',
  targetMachine: '',
  global: false,
  description: '',
  currentState: '',
  phase: '',
  reason: '',
  lastFailure: undefined,
};

/**
 * Each unit's `Unit` message, encoded once and kept until an event about the unit is folded.
 * The parts that come from its file are kept until the file changes (`forgetFile`), the part
 * that changes as it runs until any event about it (`forget`): listing 20,000 units is then
 * mostly copying bytes, and during a burst, when most units change every few hundred
 * milliseconds, only the small status part is encoded again. Cleared when the state is
 * replaced (a new term, a recovery).
 */
export class EncodedUnitViews {
  private readonly files = new Map<string, { file: Uint8Array; options: Uint8Array }>();
  private readonly statuses = new Map<string, Uint8Array>();
  private of: ClusterState | undefined;

  /** The unit's encoded view, or undefined when the unit does not exist. */
  get(state: ClusterState, name: string): EncodedUnit | undefined {
    if (state !== this.of) {
      this.files.clear();
      this.statuses.clear();
      this.of = state;
    }
    const u = state.units.get(name);
    if (!u) return undefined;
    let view: Unit | undefined;
    let f = this.files.get(name);
    if (!f) {
      view = unitView(state, u);
      const w = new BinaryWriter();
      for (const o of view.options) UnitOptionCodec.encode(o, w.uint32(18).fork()).join();
      const { name: n, hash, global, description } = view;
      f = {
        file: UnitCodec.encode({ ...NO_FIELDS, name: n, hash, global, description }).finish(),
        options: w.finish(),
      };
      this.files.set(name, f);
    }
    let status = this.statuses.get(name);
    if (!status) {
      view ??= unitView(state, u);
      const { targetState, targetMachine, currentState, phase, reason, lastFailure } = view;
      status = UnitCodec.encode({
        ...NO_FIELDS,
        targetState,
        targetMachine,
        currentState,
        phase,
        reason,
        lastFailure,
      }).finish();
      this.statuses.set(name, status);
    }
    return { ...f, status };
  }

  /** Something about the unit's status changed (placement, target, reports). */
  forget(name: string): void {
    this.statuses.delete(name);
  }

  /** A machine was lost or came back: every unit's status part may change. */
  forgetStatuses(): void {
    this.statuses.clear();
  }

  /** The unit's file changed, or the unit is gone. */
  forgetFile(name: string): void {
    this.files.delete(name);
    this.statuses.delete(name);
  }

  get size(): number {
    return this.files.size;
  }
}
