import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import { applyEvent } from '../engine/fold';
import { lifecycleOf, phaseName, type UnitLifecycle } from '../engine/lifecycle';
import { decodeState, encodeState, toSnapshotDoc } from '../engine/snapshot';
import type { ClusterState, UnitRecord } from '../engine/state';
import { emptyState } from '../engine/state';
import type { Restored } from '../store/types';

/**
 * Offline time travel over a retained history (snapshot + durable log), with the leader's own
 * fold: the cluster at an index or time, one unit's timeline, the difference between two
 * points, and a determinism check. Reads only.
 */

/** `INDEX` (a positive integer) or an RFC 3339 time, resolved to the last event at or before it. */
export function resolvePoint(r: Restored, spec: string, what: string): number {
  const s = spec.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1) throw invalid(`${what} ${s}: indexes start at 1`);
    return n;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s))
    throw invalid(
      `${what} "${spec}": give an event index (1, 2, …) or an RFC 3339 time (2026-12-06T10:00:00Z)`,
    );
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw invalid(`${what} "${spec}" is not a valid time`);
  let at = 0;
  for (const e of r.tail) {
    if (e.time > t) break;
    at = e.index;
  }
  if (at === 0) {
    if (r.snapshot && (r.tail.length === 0 || r.tail[0].index > 1)) return r.snapshot.index;
    throw invalid(`${what} ${s} is before the first event of the history`);
  }
  return at;
}

function invalid(msg: string): FlotillaError {
  return new FlotillaError(ErrorCode.InvalidArgument, msg);
}

/** Where folding may start for a point: the empty state when the log starts at 1, else the snapshot. */
function base(r: Restored, until: number): { state: ClusterState; from: number } {
  const fromStart = r.tail.length > 0 && r.tail[0].index === 1;
  if (fromStart || !r.snapshot) return { state: emptyState(), from: 0 };
  if (until < r.snapshot.index) {
    throw invalid(
      `events before index ${r.snapshot.index} were compacted behind the snapshot at ${r.snapshot.index} ` +
        `(raise flotillad's log_retention to keep more history)`,
    );
  }
  return { state: decodeState(r.snapshot.data), from: r.snapshot.index };
}

/** The newest index of a history. */
export function lastIndex(r: Restored): number {
  return Math.max(r.tail[r.tail.length - 1]?.index ?? 0, r.snapshot?.index ?? 0);
}

/** The cluster as of `until` (inclusive; Infinity: everything). */
export function stateAt(r: Restored, until = Infinity): ClusterState {
  const { state, from } = base(r, until);
  for (const e of r.tail) {
    if (e.index > until) break;
    if (e.index > from) applyEvent(state, e);
  }
  return state;
}

/** Events about a unit, or about a machine it was on when the event happened. */
export interface TimelineEntry {
  event: FlotillaEvent;
  /** The unit's lifecycle state after the event ('destroyed' once it is gone). */
  phase: string;
  /** The unit's lifecycle before and after the event (undefined: it did not exist). */
  before?: UnitLifecycle;
  after?: UnitLifecycle;
}

/**
 * Machine events: every one is folded (a machine's presence decides whether its reports count
 * for the unit); those of the machine the unit is on are in its timeline. The transient ones
 * (joined, lost) are in the live leader's history only; the durable log has up and down.
 */
const MACHINE_EVENTS = new Set<FlotillaEvent['type']>([
  'MachineUp',
  'MachineDown',
  'MachineJoined',
  'MachineLost',
  'MachineMetadataSet',
]);

/**
 * One unit's whole timeline: every event about it (requests, placements with reasons, what its
 * agents observed with results and exit statuses, the scheduler's reasons) and the machine
 * events of the machine it was on, each with the lifecycle state it led to. Only the unit's
 * own events and machines' events are folded (its lifecycle depends on nothing else), so this
 * is fast on a long log. `flotilla replay --unit` and the visualizer's timeline both show this.
 */
export function unitTimeline(
  r: Restored,
  unit: string,
  until = Infinity,
): { entries: TimelineEntry[]; record?: UnitRecord; state: ClusterState } {
  const { state, from } = base(r, until);
  // Only the unit's record is needed: drop the others so their lifecycles are never made.
  for (const name of [...state.units.keys()]) if (name !== unit) state.units.delete(name);
  const lifecycle = (): UnitLifecycle | undefined => {
    const u = state.units.get(unit);
    return u && lifecycleOf(state, u);
  };
  const entries: TimelineEntry[] = [];
  for (const e of r.tail) {
    if (e.index > until) break;
    if (e.index <= from) continue;
    const about = 'unit' in e && e.unit === unit;
    const machineEvent = !('unit' in e) && 'machine' in e && MACHINE_EVENTS.has(e.type);
    if (!about && !machineEvent) {
      state.index = e.index;
      continue;
    }
    const onItsMachine = machineEvent && state.units.get(unit)?.machine === e.machine;
    const before = about || onItsMachine ? lifecycle() : undefined;
    applyEvent(state, e);
    if (!about && !onItsMachine) continue;
    const after = lifecycle();
    entries.push({ event: e, phase: after ? phaseName(after) : 'destroyed', before, after });
  }
  return { entries, record: state.units.get(unit), state };
}

/** What a unit looks like in a diff. */
function unitSummary(s: ClusterState, u: UnitRecord): Record<string, string> {
  const f = u.lastFailure;
  return {
    hash: u.hash.slice(0, 7),
    target: u.target,
    machine: u.machine ?? '-',
    state: phaseName(lifecycleOf(s, u)),
    ...(u.why ? { reason: u.why } : {}),
    ...(f
      ? {
          failure: `${f.result}${f.exitStatus === undefined ? '' : ` (exit ${f.exitStatus})`} on ${f.machine}`,
        }
      : {}),
  };
}

export interface DiffLine {
  kind: 'added' | 'removed' | 'changed';
  what: string;
  /** field: from → to */
  changes: string[];
}

/** What changed between two points of the history. */
export function diff(r: Restored, from: number, to: number): DiffLine[] {
  if (from > to) throw invalid(`--diff ${from}..${to}: the first point is after the second`);
  const a = stateAt(r, from);
  const before = new Map<string, Record<string, string>>();
  for (const u of a.units.values()) before.set(u.name, unitSummary(a, u));
  const machinesBefore = new Map([...a.machines.values()].map((m) => [m.id, m.presence]));
  for (const e of r.tail) if (e.index > from && e.index <= to) applyEvent(a, e);
  const out: DiffLine[] = [];
  const names = new Set([...before.keys(), ...a.units.keys()]);
  for (const name of [...names].sort()) {
    const was = before.get(name);
    const u = a.units.get(name);
    const now = u ? unitSummary(a, u) : undefined;
    if (!was && now) out.push({ kind: 'added', what: `unit ${name}`, changes: fields(now) });
    else if (was && !now) out.push({ kind: 'removed', what: `unit ${name}`, changes: [] });
    else if (was && now) {
      const changes: string[] = [];
      for (const k of new Set([...Object.keys(was), ...Object.keys(now)]))
        if (was[k] !== now[k]) changes.push(`${k}: ${was[k] ?? '-'} → ${now[k] ?? '-'}`);
      if (changes.length > 0) out.push({ kind: 'changed', what: `unit ${name}`, changes });
    }
  }
  for (const m of [...a.machines.values()].sort((x, y) => (x.id < y.id ? -1 : 1))) {
    const was = machinesBefore.get(m.id);
    if (was === undefined)
      out.push({ kind: 'added', what: `machine ${m.id}`, changes: [`presence: ${m.presence}`] });
    else if (was !== m.presence)
      out.push({
        kind: 'changed',
        what: `machine ${m.id}`,
        changes: [`presence: ${was} → ${m.presence}`],
      });
  }
  return out;
}

function fields(o: Record<string, string>): string[] {
  return Object.entries(o).map(([k, v]) => `${k}: ${v}`);
}

/**
 * Folds the history twice, side by side, and compares the two after every event (the records
 * the event touched), then compares the fold at the stored snapshot's index with the snapshot.
 * A divergence is a HISTORY_DIVERGED error naming the first differing event.
 */
export function verify(r: Restored): { events: number; snapshotChecked: boolean } {
  const fromStart = r.tail.length > 0 && r.tail[0].index === 1;
  const start = (): ClusterState =>
    fromStart || !r.snapshot ? emptyState() : decodeState(r.snapshot.data);
  const a = start();
  const b = start();
  let snapshotChecked = false;
  let n = 0;
  for (const e of r.tail) {
    if (e.index <= a.index) continue;
    applyEvent(a, e);
    applyEvent(b, e);
    n++;
    const ka = touchedJson(a, e);
    const kb = touchedJson(b, e);
    if (ka !== kb) throw diverged(e, 'folding it twice gave different states');
    if (fromStart && r.snapshot && e.index === r.snapshot.index) {
      const err = snapshotDivergence(r, a, e);
      if (err) throw err;
      snapshotChecked = true;
    }
  }
  if (Buffer.compare(Buffer.from(encodeState(a)), Buffer.from(encodeState(b))) !== 0)
    throw new FlotillaError(
      ErrorCode.HistoryDiverged,
      'folding the history twice gave different states',
    );
  return { events: n, snapshotChecked };
}

function touchedJson(s: ClusterState, e: FlotillaEvent): string {
  const parts: unknown[] = [s.index, s.epoch];
  if ('unit' in e) {
    const u = s.units.get(e.unit);
    parts.push(
      u && { ...u, requirements: undefined, lifecycle: undefined, lifecycleQueue: undefined },
    );
    parts.push(u && lifecycleOf(s, u).value);
    parts.push([...(s.reported.get(e.unit) ?? new Map()).entries()]);
  }
  if ('machine' in e) parts.push(s.machines.get(e.machine));
  return JSON.stringify(parts);
}

function diverged(e: FlotillaEvent, why: string): FlotillaError {
  return new FlotillaError(
    ErrorCode.HistoryDiverged,
    `the history diverges at event ${e.index} (${e.type}${'unit' in e ? ` ${e.unit}` : ''}): ${why}`,
    { details: { index: e.index, type: e.type } },
  );
}

type Doc = ReturnType<typeof toSnapshotDoc>;

/**
 * What of a snapshot the durable log decides: the units' files, targets and placements, the
 * metadata set through the API, the leader. (A snapshot also holds what agents reported; the
 * log records only its milestones, so that part is not compared.)
 */
function durableParts(d: Doc): { units: Map<string, string>; rest: string } {
  const units = new Map(
    d.units.map((u) => [
      u.name,
      JSON.stringify({ options: u.options, hash: u.hash, target: u.target, machine: u.machine }),
    ]),
  );
  const overrides = d.machines
    .filter((m) => Object.keys(m.overrides).length > 0)
    .map((m) => [m.id, m.overrides]);
  return { units, rest: JSON.stringify([d.leader, overrides]) };
}

/** The stored snapshot against the fold at its index: the last event about the first differing unit. */
function snapshotDivergence(
  r: Restored,
  s: ClusterState,
  at: FlotillaEvent,
): FlotillaError | undefined {
  const want = durableParts(JSON.parse(Buffer.from(r.snapshot!.data).toString('utf8')) as Doc);
  const got = durableParts(toSnapshotDoc(s));
  const names = [...new Set([...want.units.keys(), ...got.units.keys()])].sort();
  const unit = names.find((n) => want.units.get(n) !== got.units.get(n));
  if (unit !== undefined) {
    let last: FlotillaEvent | undefined;
    for (const e of r.tail) {
      if (e.index > at.index) break;
      if ('unit' in e && e.unit === unit) last = e;
    }
    return diverged(last ?? at, `the stored snapshot at ${at.index} differs for unit ${unit}`);
  }
  if (want.rest !== got.rest)
    return diverged(at, `the stored snapshot at ${at.index} differs (leader or machine metadata)`);
  return undefined;
}
