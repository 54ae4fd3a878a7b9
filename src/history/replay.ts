import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import { applyEvent } from '../engine/fold';
import { lifecycleOf, phaseName, type UnitLifecycle } from '../engine/lifecycle';
import { decodeState, encodeState, toSnapshotDoc } from '../engine/snapshot';
import type { ClusterState, UnitRecord } from '../engine/state';
import { emptyState } from '../engine/state';
import type { Restored, Snapshot } from '../store/types';
import type { HistorySink } from './export-format';
import { unknownSchema } from './schema';

/**
 * Offline time travel over a retained history (snapshot + durable log), with the leader's own
 * fold: the cluster at an index or time, one unit's timeline, the difference between two
 * points, and a determinism check. Reads only.
 */

/** A point of the history as given: an event index, or a time (the last event at or before it). */
export type Point = { spec: string } & ({ index: number } | { time: number });

/** `INDEX` (a positive integer) or an RFC 3339 time, checked. */
export function parsePoint(spec: string, what: string): Point {
  const s = spec.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1) throw invalid(`${what} ${s}: indexes start at 1`);
    return { spec: s, index: n };
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s))
    throw invalid(
      `${what} "${spec}": give an event index (1, 2, …) or an RFC 3339 time (2026-12-06T10:00:00Z)`,
    );
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw invalid(`${what} "${spec}" is not a valid time`);
  return { spec: s, time: t };
}

/** `INDEX` (a positive integer) or an RFC 3339 time, resolved to the last event at or before it. */
export function resolvePoint(r: Restored, spec: string, what: string): number {
  const p = parsePoint(spec, what);
  if ('index' in p) return p.index;
  let at = 0;
  for (const e of r.tail) {
    if (e.time > p.time) break;
    at = e.index;
  }
  if (at === 0) return beforeFirstEvent(r.snapshot, r.tail[0]?.index, p, what);
  return at;
}

/** A time before the first event: the snapshot's index when the log starts after it. */
function beforeFirstEvent(
  snapshot: Snapshot | undefined,
  first: number | undefined,
  p: Point,
  what: string,
): number {
  if (snapshot && (first === undefined || first > 1)) return snapshot.index;
  throw invalid(`${what} ${p.spec} is before the first event of the history`);
}

function invalid(msg: string): FlotillaError {
  return new FlotillaError(ErrorCode.InvalidArgument, msg);
}

/** Where folding may start for a point: the empty state when the log starts at 1, else the snapshot. */
function base(r: Restored, until: number): { state: ClusterState; from: number } {
  return baseOf(r.snapshot, r.tail.length > 0 && r.tail[0].index === 1, until);
}

function baseOf(
  snapshot: Snapshot | undefined,
  fromStart: boolean,
  until: number,
): { state: ClusterState; from: number } {
  checkBase(snapshot, fromStart, until);
  if (fromStart || !snapshot) return { state: emptyState(), from: 0 };
  return { state: decodeState(snapshot.data), from: snapshot.index };
}

function checkBase(snapshot: Snapshot | undefined, fromStart: boolean, until: number): void {
  if (!fromStart && snapshot && until < snapshot.index) {
    throw invalid(
      `events before index ${snapshot.index} were compacted behind the snapshot at ${snapshot.index} ` +
        `(raise flotillad's log_retention to keep more history)`,
    );
  }
}

/** Where a history's fold starts: 0 (the empty cluster) for a whole log, else its snapshot's index. */
export function firstIndex(r: Restored): number {
  const fromStart = r.tail.length > 0 && r.tail[0].index === 1;
  return fromStart || !r.snapshot ? 0 : r.snapshot.index;
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
  const t = new Timeline(state, unit);
  for (const e of r.tail) {
    if (e.index > until) break;
    if (e.index > from) t.add(e);
  }
  return t.result();
}

/** A unit's timeline, event after event (unitTimeline, and the streaming replay below). */
class Timeline {
  private readonly entries: TimelineEntry[] = [];

  constructor(
    private readonly state: ClusterState,
    private readonly unit: string,
  ) {
    // Only the unit's record is needed: drop the others so their lifecycles are never made.
    for (const name of [...state.units.keys()]) if (name !== unit) state.units.delete(name);
  }

  /** The next event (after the base state's index). */
  add(e: FlotillaEvent): void {
    const { state, unit } = this;
    const about = 'unit' in e && e.unit === unit;
    const machineEvent = !('unit' in e) && 'machine' in e && MACHINE_EVENTS.has(e.type);
    if (!about && !machineEvent) {
      state.index = e.index;
      return;
    }
    const onItsMachine = machineEvent && state.units.get(unit)?.machine === e.machine;
    const before = about || onItsMachine ? this.lifecycle() : undefined;
    applyEvent(state, e);
    if (!about && !onItsMachine) return;
    const after = this.lifecycle();
    this.entries.push({ event: e, phase: after ? phaseName(after) : 'destroyed', before, after });
  }

  private lifecycle(): UnitLifecycle | undefined {
    const u = this.state.units.get(this.unit);
    return u && lifecycleOf(this.state, u);
  }

  /** The next event, known not to be about the unit nor a machine's (a stub): its index only. */
  skip(index: number): void {
    this.state.index = index;
  }

  result(): { entries: TimelineEntry[]; record?: UnitRecord; state: ClusterState } {
    return { entries: this.entries, record: this.state.units.get(this.unit), state: this.state };
  }
}

/**
 * A replay fed a history as it is read (`streamHistoryFile`), holding none of its events: the
 * point, the fold's base (the empty state, or the snapshot when the log starts after it) and
 * the schema check are decided as resolvePoint, base and checkSchema decide them over the whole
 * history, event by event. Folding a long file then costs its parsing and the fold (holding a
 * million parsed events cost more in garbage collection than the fold itself).
 */
abstract class StreamingReplay implements HistorySink {
  private snap: Snapshot | undefined;
  private first: number | undefined;
  private last = 0;
  /** The last event at or before the point, and its time. */
  private at = 0;
  private atTime: number | undefined;
  private stopped = false;
  private from = 0;
  /** The base state's index, and the time of the event at it (wherever it is in the log). */
  private baseIndex = 0;
  private baseTime: number | undefined;
  private refused: FlotillaError | undefined;

  constructor(
    protected readonly point: Point | undefined,
    private readonly opts: { allowUnknown?: boolean } = {},
  ) {}

  snapshot(s: Snapshot): void {
    this.snap = s;
  }

  event(e: FlotillaEvent): void {
    if (this.take(e.type, e.index, e.time, e.v)) this.fold(e);
  }

  stub(type: string, index: number, time: number, v: number): void {
    if (this.take(type, index, time, v)) this.skip(index);
  }

  /** Whether the event is one to fold: after the base, at or before the point, and known. */
  private take(type: string, index: number, time: number, v: number): boolean {
    this.last = index;
    if (this.first === undefined) {
      this.first = index;
      this.begin(index === 1);
    }
    if (index === this.baseIndex) this.baseTime = time;
    if (!this.opts.allowUnknown && !this.refused) {
      this.refused = unknownSchema({ type, index, v } as FlotillaEvent);
      // The history is refused (after it is read, as checkSchema would): nothing more to fold.
      if (this.refused) this.stopped = true;
    }
    if (this.stopped) return false;
    const p = this.point;
    if (p && ('index' in p ? index > p.index : time > p.time)) {
      this.stopped = true;
      return false;
    }
    this.at = index;
    this.atTime = time;
    return index > this.from;
  }

  private begin(fromStart: boolean): void {
    const { state, from } = baseOf(this.snap, fromStart, Infinity);
    this.from = from;
    this.baseIndex = state.index;
    this.started(state);
  }

  protected abstract started(state: ClusterState): void;
  protected abstract fold(e: FlotillaEvent): void;
  protected abstract skip(index: number): void;

  /** Once the whole history was read: refuses an unknown event as checkSchema would. */
  finish(): void {
    if (this.first === undefined) this.begin(false);
    if (this.refused) throw this.refused;
  }

  /** The newest index of the history (lastIndex). */
  get lastIndex(): number {
    return Math.max(this.last, this.snap?.index ?? 0);
  }

  /** The point as an index (resolvePoint's), Infinity without one. */
  until(what: string): number {
    const p = this.point;
    if (!p) return Infinity;
    if ('index' in p) return p.index;
    return this.at === 0 ? beforeFirstEvent(this.snap, this.first, p, what) : this.at;
  }

  /** Refuses a point behind the snapshot the log starts after, as `base` does. */
  protected checkBase(until: number): void {
    checkBase(this.snap, this.first === 1, until);
  }

  /**
   * The time of the event at the folded state's `index`: the last one folded, or, when none was,
   * the one at the base state's index (even after the point, as the whole read finds it).
   */
  protected timeOf(index: number): number | undefined {
    if (index === this.at) return this.atTime;
    return index === this.baseIndex ? this.baseTime : undefined;
  }
}

/** `stateAt(r, resolvePoint(r, point))` of a history being read (see StreamingReplay). */
export class StreamingState extends StreamingReplay {
  private state!: ClusterState;

  protected started(state: ClusterState): void {
    this.state = state;
  }

  protected fold(e: FlotillaEvent): void {
    applyEvent(this.state, e);
  }

  protected skip(): void {
    throw new Error('StreamingState folds every event: read it without stubs');
  }

  /** The state at `until` (this.until()), and the time of its last event. */
  result(until: number): { state: ClusterState; time?: number } {
    this.checkBase(until);
    const time = this.state.index > 0 ? this.timeOf(this.state.index) : undefined;
    return { state: this.state, ...(time === undefined ? {} : { time }) };
  }
}

/**
 * `unitTimeline(r, unit, resolvePoint(r, point))` of a history being read: the lines not about
 * the unit nor a machine can be read as stubs (`keepIfContains`: keep).
 */
export class StreamingTimeline extends StreamingReplay {
  private timeline!: Timeline;

  constructor(
    private readonly unit: string,
    point: Point | undefined,
    opts: { allowUnknown?: boolean } = {},
  ) {
    super(point, opts);
  }

  /** What a history file's lines must hold to be read whole for this unit's timeline. */
  get keep(): string[] {
    return [JSON.stringify(this.unit), '"type":"Machine'];
  }

  protected started(state: ClusterState): void {
    this.timeline = new Timeline(state, this.unit);
  }

  protected fold(e: FlotillaEvent): void {
    this.timeline.add(e);
  }

  protected skip(index: number): void {
    this.timeline.skip(index);
  }

  result(until: number): { entries: TimelineEntry[]; record?: UnitRecord; state: ClusterState } {
    this.checkBase(until);
    return this.timeline.result();
  }
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
  // The snapshot is compared with the fold of the durable events up to its index: it may have
  // been taken at a transient event's index, which the log does not hold.
  const snapIndex = fromStart && r.snapshot ? r.snapshot.index : undefined;
  let snapshotChecked = false;
  let last: FlotillaEvent | undefined;
  const checkSnapshot = (): void => {
    if (snapIndex === undefined || snapshotChecked || !last || last.index > snapIndex) return;
    const err = snapshotDivergence(r, a, last);
    if (err) throw err;
    snapshotChecked = true;
  };
  let n = 0;
  for (const e of r.tail) {
    if (e.index <= a.index) continue;
    if (snapIndex !== undefined && e.index > snapIndex) checkSnapshot();
    applyEvent(a, e);
    applyEvent(b, e);
    n++;
    last = e;
    const ka = touchedJson(a, e);
    const kb = touchedJson(b, e);
    if (ka !== kb) throw diverged(e, 'folding it twice gave different states');
  }
  checkSnapshot();
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
    return diverged(
      last ?? at,
      `the stored snapshot at ${r.snapshot!.index} differs for unit ${unit}`,
    );
  }
  if (want.rest !== got.rest)
    return diverged(
      at,
      `the stored snapshot at ${r.snapshot!.index} differs (leader or machine metadata)`,
    );
  return undefined;
}
