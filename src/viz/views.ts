import type { ClusterState, MachineRecord, UnitRecord } from '../engine/state';
import { machineMetadata } from '../engine/state';
import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import { compileGlob } from '../unit';
import type { History } from './history';
import { foldedUnitPhase, lifecyclePhase } from './phases';
import type { UnitLifecycle } from '../engine/lifecycle';
import { unitTimeline as replayTimeline } from '../history/replay';

/** The cluster at one point, with each unit's and machine's state in their machines. */
export interface ClusterView {
  state: ClusterState;
  /** Time of the last event folded into `state` (ms; 0 when none). */
  time: number;
  /**
   * The live leader's clock when the store had committed that event and the engine folded it:
   * from then on it exists (`time` is stamped earlier, when the leader took the write).
   */
  committedAt?: number;
  unitPhase(name: string): string | undefined;
  machinePhase(id: string): string;
  /** Units per state for the whole cluster, when maintained (the live leader). */
  unitTotals?(): Record<string, number>;
}

/** Which units (and machines) a view shows. Empty fields match everything. */
export interface VizFilter {
  /** Glob on unit names (fleetctl's patterns). */
  name: string;
  /** Machine ID prefix: units placed there, and that machine. */
  machine: string;
  /** key=value pairs the unit's machine's metadata must all have. */
  meta: Record<string, string>;
}

export const NO_FILTER: VizFilter = { name: '', machine: '', meta: {} };

export function isEmptyFilter(f: VizFilter): boolean {
  return !f.name && !f.machine && Object.keys(f.meta).length === 0;
}

/** The filter of a request's query (`name`, `machine`, `meta=k=v,k2=v2`). */
export function parseFilter(q: URLSearchParams): VizFilter {
  const meta: Record<string, string> = {};
  for (const pair of (q.get('meta') ?? '').split(',').filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0)
      throw new FlotillaError(ErrorCode.InvalidArgument, `meta: "${pair}" is not key=value`, {
        details: { field: 'meta' },
      });
    meta[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  const name = q.get('name') ?? '';
  if (name && compileGlob(name).bad)
    throw new FlotillaError(ErrorCode.InvalidArgument, `name: "${name}" is not a valid pattern`, {
      details: { field: 'name' },
    });
  return { name, machine: q.get('machine') ?? '', meta };
}

function machineMatches(f: VizFilter, m: MachineRecord | undefined, id: string): boolean {
  if (f.machine && !id.startsWith(f.machine)) return false;
  const metaKeys = Object.keys(f.meta);
  if (metaKeys.length === 0) return true;
  if (!m) return false;
  const md = machineMetadata(m);
  return metaKeys.every((k) => md[k] === f.meta[k]);
}

/** A unit test for the filter (compiled once per request). */
export function unitPredicate(state: ClusterState, f: VizFilter): (u: UnitRecord) => boolean {
  if (isEmptyFilter(f)) return () => true;
  const glob = f.name ? compileGlob(f.name) : undefined;
  const byMachine = !!f.machine || Object.keys(f.meta).length > 0;
  return (u) => {
    if (glob && !glob.match(u.name)) return false;
    if (!byMachine) return true;
    if (!u.machine) return false;
    return machineMatches(f, state.machines.get(u.machine), u.machine);
  };
}

export type Counts = Record<string, Record<string, number>>;

/** The retained history's span (the scrubber's range). */
export interface Range {
  first: number;
  last: number;
  firstTime: number;
  lastTime: number;
}

/** GET /ui/api/counts, and each message of the stream. */
export interface CountsReply {
  index: number;
  time: number;
  live: boolean;
  /** See ClusterView.committedAt (the live leader's stream only). */
  committed?: number;
  counts: Counts;
  compare?: { index: number; time: number; counts: Counts };
  range?: Range;
}

/** How many units are in each engine-unit state and machines in each engine-machine state. */
export function countStates(view: ClusterView, f: VizFilter): Counts {
  const machines = machineCounts(view, f);
  if (view.unitTotals && isEmptyFilter(f))
    return { 'engine-unit': view.unitTotals(), 'engine-machine': machines };
  const units: Record<string, number> = {};
  const keep = unitPredicate(view.state, f);
  for (const u of view.state.units.values()) {
    if (!keep(u)) continue;
    const p = view.unitPhase(u.name);
    if (p !== undefined) units[p] = (units[p] ?? 0) + 1;
  }
  return { 'engine-unit': units, 'engine-machine': machines };
}

export function machineCounts(view: ClusterView, f: VizFilter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of view.state.machines.values()) {
    if (!machineMatches(f, m, m.id)) continue;
    const p = view.machinePhase(m.id);
    out[p] = (out[p] ?? 0) + 1;
  }
  return out;
}

export interface UnitRow {
  name: string;
  state: string;
  target: string;
  machine: string;
  active: string;
  sub: string;
}

function unitRow(view: ClusterView, u: UnitRecord): UnitRow {
  const r = u.machine ? view.state.reported.get(u.name)?.get(u.machine) : undefined;
  return {
    name: u.name,
    state: view.unitPhase(u.name) ?? '',
    target: u.target,
    machine: u.machine ?? (u.requirements.global ? '(global)' : ''),
    active: r?.active ?? '',
    sub: r?.sub ?? '',
  };
}

/**
 * One page of the units in `stateId` (a leaf, or a compound state: every leaf under it; '' for
 * all), matching the filter and containing `search`, in name order.
 */
export function unitsIn(
  view: ClusterView,
  f: VizFilter,
  opts: { state: string; search: string; offset: number; limit: number; names?: string[] },
): { total: number; units: UnitRow[] } {
  const keep = unitPredicate(view.state, f);
  const names = opts.names ?? [...view.state.units.keys()].sort();
  const inState = (p: string | undefined): boolean =>
    !opts.state || p === opts.state || (p !== undefined && p.startsWith(opts.state + '.'));
  const rows: UnitRow[] = [];
  let total = 0;
  for (const n of names) {
    if (opts.search && !n.includes(opts.search)) continue;
    const u = view.state.units.get(n);
    if (!u || !keep(u) || !inState(view.unitPhase(n))) continue;
    if (total >= opts.offset && rows.length < opts.limit) rows.push(unitRow(view, u));
    total++;
  }
  return { total, units: rows };
}

export interface MachineRow {
  id: string;
  ip: string;
  state: string;
  presence: string;
  since: number;
  metadata: Record<string, string>;
  units: number;
  /** Units placed there by their engine-unit state. */
  unitStates: Record<string, number>;
}

/** Every machine the state knows, with its units and health (a lost one shows as lost). */
export function machineRows(view: ClusterView, f: VizFilter): MachineRow[] {
  const rows = new Map<string, MachineRow>();
  for (const m of [...view.state.machines.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (!machineMatches(f, m, m.id)) continue;
    rows.set(m.id, {
      id: m.id,
      ip: m.ip,
      state: view.machinePhase(m.id),
      presence: m.presence,
      since: m.since,
      metadata: machineMetadata(m),
      units: 0,
      unitStates: {},
    });
  }
  for (const u of view.state.units.values()) {
    const row = u.machine ? rows.get(u.machine) : undefined;
    if (!row) continue;
    row.units++;
    const p = view.unitPhase(u.name) ?? '';
    row.unitStates[p] = (row.unitStates[p] ?? 0) + 1;
  }
  return [...rows.values()];
}

/** A view of a folded state with no actors: each state as a restored leader would see it. */
export function foldedView(state: ClusterState, time: number): ClusterView {
  const phases = new Map<string, string>();
  return {
    state,
    time,
    unitPhase(name) {
      let p = phases.get(name);
      if (p === undefined) {
        const u = state.units.get(name);
        if (!u) return undefined;
        phases.set(name, (p = foldedUnitPhase(state, u)));
      }
      return p;
    },
    machinePhase: (id) => state.machines.get(id)?.presence ?? 'unknown',
  };
}

export interface TimelineEntry {
  index: number;
  time: number;
  epoch: number;
  type: string;
  /** The event's own fields (reason, machine, target, result, exit status…). */
  details: Record<string, unknown>;
  /** The unit's engine-unit state before and after the event ('' when it did not exist). */
  from: string;
  to: string;
}

const META_KEYS = new Set(['index', 'epoch', 'time', 'v', 'type', 'unit', 'options']);

/**
 * Every event of a unit's history, with the state it moved the unit between: the timeline
 * `flotilla replay --unit` shows (src/history/replay.ts), its states named as the chart names
 * them (a global unit's `global.launched`).
 */
export function unitTimeline(history: History, name: string, until?: number): TimelineEntry[] {
  const phase = (l: UnitLifecycle | undefined): string => (l ? lifecyclePhase(l) : '');
  return replayTimeline(history.restored(), name, until).entries.map(
    ({ event: e, before, after }) => ({
      index: e.index,
      time: e.time,
      epoch: e.epoch,
      type: e.type,
      details: detailsOf(e),
      from: phase(before),
      to: phase(after),
    }),
  );
}

function detailsOf(e: FlotillaEvent): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (!META_KEYS.has(k)) d[k] = v;
  return d;
}
