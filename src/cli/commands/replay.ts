import type { FlagSpec } from '../args';
import { flagBool, flagNumber, flagString } from '../args';
import type { Command, Context } from '../command';
import { err, isFull, isJson, out } from '../command';
import { CliError, errorMessage } from '../errors';
import { formatTable } from '../tabwriter';
import { machineIdLegend } from '../format';
import { lifecycleOf, phaseName } from '../../engine/lifecycle';
import { toSnapshotDoc } from '../../engine/snapshot';
import type { ClusterState, UnitRecord } from '../../engine/state';
import type { FlotillaEvent } from '../../events/types';
import { checkSchema } from '../../history/schema';
import { describeEvent, describeFailure } from '../../history/describe';
import { streamHistoryFile } from '../../history/export';
import {
  diff,
  firstIndex,
  lastIndex,
  parsePoint,
  resolvePoint,
  stateAt,
  StreamingState,
  StreamingTimeline,
  unitTimeline,
  verify,
  type Point,
  type TimelineEntry,
} from '../../history/replay';
import { readHistory } from '../../history/source';
import { STORE_FLAGS, etcdOptionsFromFlags, historySourceOf } from '../history-source';
import type { Restored } from '../../store/types';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'at',
    type: 'string',
    default: '',
    valueName: 'INDEX|TIME',
    help: 'The cluster as it was at this event index or RFC 3339 time (default: now)',
  },
  {
    name: 'until',
    type: 'int',
    default: 0,
    valueName: 'INDEX',
    help: 'Same as --at INDEX (kept for scripts)',
    check: (v) =>
      typeof v === 'number' && v < 1 ? 'must be an event index (1 or more)' : undefined,
  },
  {
    name: 'unit',
    type: 'string',
    default: '',
    valueName: 'NAME',
    help: "Print one unit's whole timeline: requests, placements and reasons, what its agents observed, its machine's events",
  },
  {
    name: 'diff',
    type: 'string',
    default: '',
    valueName: 'FROM..TO',
    help: 'What changed between two points (indexes or RFC 3339 times; an open end or "now": the end)',
  },
  {
    name: 'verify',
    type: 'bool',
    default: false,
    help: 'Fold the history twice and against the stored snapshot; fail on the first divergence',
  },
  {
    name: 'events',
    type: 'bool',
    default: false,
    help: 'Print the replayed events instead of the resulting state',
  },
];

const ALL_FLAGS: readonly FlagSpec[] = [
  ...FLAGS,
  {
    name: 'allow-unknown',
    type: 'bool',
    default: false,
    help: 'Skip events of types or schema versions this version does not know instead of refusing',
  },
  ...STORE_FLAGS,
];

// viz and backup/restore read their store the way replay does.
export { STORE_FLAGS, etcdOptionsFromFlags };

function untilOf(ctx: Context, r: Restored): number {
  const at = flagString(ctx.parsed, 'at');
  if (at && ctx.parsed.given.has('until')) throw new CliError('Give --at or --until, not both.');
  if (at) return resolvePoint(r, at, '--at');
  if (ctx.parsed.given.has('until'))
    return resolvePoint(r, String(flagNumber(ctx.parsed, 'until')), '--until');
  return Infinity;
}

function unitRow(ctx: Context, u: UnitRecord, phase: string): string[] {
  const target = u.requirements.global
    ? 'global'
    : u.machine
      ? machineIdLegend(u.machine, isFull(ctx))
      : '-';
  return [
    u.name,
    isFull(ctx) ? u.hash : u.hash.slice(0, 7),
    u.target,
    phase,
    target,
    u.why ?? describeFailure(u.lastFailure),
  ];
}

export const replay: Command = {
  name: 'replay',
  summary:
    "Replay the durable history offline: the cluster at any index or time, a unit's timeline, diffs",
  usage:
    '[FILE | --data-dir=DIR | --etcd-servers=URLS --cluster=NAME] [--at=INDEX|TIME] [--unit=NAME] [--diff=FROM..TO] [--verify] [--events] [--json]',
  description: `Reads a retained history — a file written by 'flotilla events export' or
'flotilla backup', a dev-mode data directory, or etcd — without a leader and without writing or
creating anything, and folds it with the leader's own fold. Prints the units as they were at
--at (target, lifecycle state, placement, why not running); with --unit the unit's whole
timeline (requests, placements with the scheduler's reasons, what its agents observed with
results and exit statuses, its machine joining or being lost), each event with the state it led
to; with --diff what changed between two points; with --verify it folds the history twice and
against the stored snapshot and fails (HISTORY_DIVERGED) naming the first differing event. A
source that does not exist or holds no cluster is an error.`,
  flags: ALL_FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    const source = historySourceOf(ctx);
    const streamed = source.kind === 'file' ? streamable(ctx) : undefined;
    if (source.kind === 'file' && streamed) return runStreamed(ctx, source.file, streamed);
    let r: Restored;
    try {
      r = (await readHistory(source)).restored;
      checkSchema(r.tail, { allowUnknown: flagBool(ctx.parsed, 'allow-unknown') });
    } catch (e) {
      err(ctx, `Error reading the history: ${errorMessage(e)}`);
      return 1;
    }
    try {
      return run(ctx, r);
    } catch (e) {
      err(ctx, `Error replaying: ${errorMessage(e)}`);
      return 1;
    }
  },
};

/**
 * The state at a point, or a unit's timeline, of a history file can be folded while the file is
 * read (StreamingState, StreamingTimeline), holding none of its events; --verify, --diff and
 * --events read it whole. Undefined also when the point is not valid: the whole read then
 * refuses it, after the file, as it always did.
 */
function streamable(ctx: Context): { point?: Point; what: string; unit?: string } | undefined {
  if (flagBool(ctx.parsed, 'verify') || flagString(ctx.parsed, 'diff')) return undefined;
  if (flagBool(ctx.parsed, 'events')) return undefined;
  const at = flagString(ctx.parsed, 'at');
  const hasUntil = ctx.parsed.given.has('until');
  if (at && hasUntil) return undefined;
  const what = at ? '--at' : '--until';
  let point: Point | undefined;
  try {
    if (at) point = parsePoint(at, what);
    else if (hasUntil) point = parsePoint(String(flagNumber(ctx.parsed, 'until')), what);
  } catch {
    return undefined;
  }
  return { point, what, unit: flagString(ctx.parsed, 'unit') || undefined };
}

function runStreamed(
  ctx: Context,
  file: string,
  { point, what, unit }: { point?: Point; what: string; unit?: string },
): number {
  const opts = { allowUnknown: flagBool(ctx.parsed, 'allow-unknown') };
  const replay = unit ? new StreamingTimeline(unit, point, opts) : new StreamingState(point, opts);
  try {
    // One unit's timeline needs only the lines about it or a machine whole; the others are stubs.
    const keepIfContains = replay instanceof StreamingTimeline ? replay.keep : undefined;
    streamHistoryFile(file, replay, { keepIfContains });
    replay.finish();
  } catch (e) {
    err(ctx, `Error reading the history: ${errorMessage(e)}`);
    return 1;
  }
  try {
    const until = replay.until(what);
    if (until !== Infinity && until > replay.lastIndex)
      throw new CliError(`--at ${until}: the history ends at index ${replay.lastIndex}`);
    if (replay instanceof StreamingTimeline)
      return printTimeline(ctx, unit!, until, replay.result(until));
    const { state, time } = replay.result(until);
    return printState(ctx, state, time);
  } catch (e) {
    err(ctx, `Error replaying: ${errorMessage(e)}`);
    return 1;
  }
}

function run(ctx: Context, r: Restored): number {
  if (flagBool(ctx.parsed, 'verify')) {
    const v = verify(r);
    out(
      ctx,
      `History verified: ${v.events} events folded twice to the same state` +
        (v.snapshotChecked
          ? `; the stored snapshot at ${r.snapshot!.index} matches the fold`
          : '') +
        '.',
    );
    return 0;
  }
  const d = flagString(ctx.parsed, 'diff');
  if (d) {
    const m = /^(.*?)\.\.(.*)$/.exec(d);
    if (!m || (m[1] === '' && m[2] === ''))
      throw new CliError(
        `--diff "${d}": give FROM..TO (indexes or RFC 3339 times; FROM.. or FROM..now: up to the end)`,
      );
    // An open end: the start of the retained history, or its end.
    const from = m[1] === '' ? firstIndex(r) : resolvePoint(r, m[1], '--diff FROM');
    const to = m[2] === '' || m[2] === 'now' ? lastIndex(r) : resolvePoint(r, m[2], '--diff TO');
    if (to > lastIndex(r))
      throw new CliError(`--diff TO ${to}: the history ends at index ${lastIndex(r)}`);
    const lines = diff(r, from, to);
    if (isJson(ctx)) {
      out(ctx, JSON.stringify({ from, to, changes: lines }));
      return 0;
    }
    err(ctx, `Changes from index ${from} to ${to}: ${lines.length}`);
    for (const l of lines)
      out(ctx, `${l.kind} ${l.what}${l.changes.length ? ': ' + l.changes.join(', ') : ''}`);
    return 0;
  }
  const until = untilOf(ctx, r);
  if (until !== Infinity && until > lastIndex(r))
    throw new CliError(`--at ${until}: the history ends at index ${lastIndex(r)}`);
  const unit = flagString(ctx.parsed, 'unit');
  if (unit) return printTimeline(ctx, unit, until, unitTimeline(r, unit, until));
  if (flagBool(ctx.parsed, 'events')) {
    const picked: FlotillaEvent[] = r.tail.filter((e) => e.index <= until);
    for (const e of picked) out(ctx, isJson(ctx) ? JSON.stringify(e) : describeEvent(e));
    return 0;
  }
  const state = stateAt(r, until);
  const when = state.index > 0 ? r.tail.find((e) => e.index === state.index)?.time : undefined;
  return printState(ctx, state, when);
}

function printTimeline(
  ctx: Context,
  unit: string,
  until: number,
  t: { entries: TimelineEntry[]; record?: UnitRecord; state: ClusterState },
): number {
  if (t.entries.length === 0 && !t.record) {
    err(ctx, `No events for unit ${unit}${until !== Infinity ? ` up to index ${until}` : ''}`);
    return 1;
  }
  for (const { event, phase } of t.entries)
    out(
      ctx,
      isJson(ctx) ? JSON.stringify({ ...event, phase }) : `${describeEvent(event)} → ${phase}`,
    );
  if (t.record && !isJson(ctx)) {
    const u = t.record;
    const why = u.why ? `; not placed: ${u.why}` : '';
    const fail = u.lastFailure ? `; last failure: ${describeFailure(u.lastFailure)}` : '';
    out(
      ctx,
      `Now: ${phaseName(lifecycleOf(t.state, u))}, target ${u.target}${u.machine ? ` on ${u.machine}` : ''}${why}${fail}`,
    );
  }
  return 0;
}

/** The cluster as folded; `when`: the time of its last event. */
function printState(ctx: Context, state: ClusterState, when: number | undefined): number {
  if (isJson(ctx)) {
    out(ctx, JSON.stringify(toSnapshotDoc(state), null, 2));
    return 0;
  }
  const rows = [['UNIT', 'HASH', 'DSTATE', 'STATE', 'TARGET', 'WHY']];
  for (const name of [...state.units.keys()].sort()) {
    const u = state.units.get(name)!;
    rows.push(unitRow(ctx, u, phaseName(lifecycleOf(state, u))));
  }
  err(
    ctx,
    `State at index ${state.index}${when ? ` (${new Date(when).toISOString()})` : ''} (epoch ${state.epoch}): ${state.units.size} units`,
  );
  ctx.io.stdout(formatTable(rows));
  return 0;
}
