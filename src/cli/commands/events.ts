import type { FlagSpec } from '../args';
import { flagBool, flagString } from '../args';
import { EVENT_TYPES, type EventType, type FlotillaEvent } from '../../events/types';
import type { Event } from '../../gen/flotilla/v1/flotilla';
import type { Command, Context } from '../command';
import { err, isJson, out } from '../command';
import { CliError, errorMessage } from '../errors';
import { eventDetails } from '../../history/describe';
import { AtomicFile, writeHistoryFile } from '../../history/export';
import { HISTORY_FORMAT, type HistoryHeader } from '../../history/export-format';
import { readHistoryToCopy } from '../../history/source';
import { STORE_FLAGS, historySourceOf, namesStore } from '../history-source';

/** Without --since, the last this many events. */
export const DEFAULT_EVENTS = 100;

/**
 * Without --follow the command ends at the newest index the leader reported; should that event
 * never come (a leader change in between), it ends after this long without any event.
 */
const IDLE_END_MS = 3000;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function checkSince(v: unknown): string | undefined {
  const s = String(v).trim();
  if (s === '') return undefined;
  if (/^\d+$/.test(s)) return Number(s) >= 1 ? undefined : 'indexes start at 1';
  if (RFC3339.test(s) && !Number.isNaN(Date.parse(s))) return undefined;
  return 'give an event index (1, 2, …) or an RFC 3339 time (2026-12-06T10:00:00Z)';
}

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'since',
    type: 'string',
    default: '',
    valueName: 'INDEX|TIME',
    help: `First event: an index, or an RFC 3339 time (default: the last ${DEFAULT_EVENTS} events)`,
    check: checkSince,
  },
  {
    name: 'from',
    type: 'string',
    default: '',
    valueName: 'INDEX',
    help: 'Same as --since INDEX',
    check: (v) =>
      String(v) === '' || /^\d+$/.test(String(v)) ? undefined : 'must be an event index',
  },
  {
    name: 'follow',
    short: 'f',
    type: 'bool',
    default: false,
    help: 'Keep printing events as they are committed',
  },
  {
    name: 'type',
    type: 'string',
    default: '',
    valueName: 'TYPES',
    help: 'Only events of these types, comma-separated (e.g. UnitScheduled,UnitObserved)',
    check: (v) => {
      const unknown = parseList(String(v)).filter((t) => !EVENT_TYPES.includes(t as EventType));
      return unknown.length > 0
        ? `unknown event type "${unknown[0]}" (known: ${EVENT_TYPES.join(', ')})`
        : undefined;
    },
  },
  {
    name: 'unit',
    type: 'string',
    default: '',
    valueName: 'NAMES',
    help: 'Only events about these units, comma-separated',
  },
  {
    name: 'machine',
    type: 'string',
    default: '',
    valueName: 'IDS',
    help: 'Only events about these machines (full IDs or prefixes), comma-separated',
  },
  ...STORE_FLAGS.map((f) => ({ ...f, help: `events export: ${f.help}` })),
];

function parseList(v: string): string[] {
  return v
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** `12 2026-11-22T02:21:32.123Z UnitScheduled unit=hello.service machine=… reason="…"` */
export function formatEvent(e: Event): string {
  let line = `${e.index} ${new Date(e.timeMs).toISOString()} ${e.type}`;
  let details: string[];
  try {
    details = eventDetails(JSON.parse(e.json) as FlotillaEvent);
  } catch {
    details = [];
  }
  if (details.length === 0) {
    if (e.unit) details.push(`unit=${e.unit}`);
    if (e.machine) details.push(`machine=${e.machine}`);
  }
  if (details.length > 0) line += ' ' + details.join(' ');
  return line;
}

/**
 * `events export FILE`: the retained history as one history file, from the leader through the
 * API, or read from the store the flags name (--data-dir, --etcd-servers, --cluster), which
 * needs no leader.
 */
async function exportHistory(ctx: Context): Promise<number> {
  if (ctx.args.length !== 2) throw new CliError('Usage: flotilla events export FILE');
  const file = ctx.args[1];
  try {
    if (!namesStore(ctx.parsed.given)) return await exportFromLeader(ctx, file);
    const { restored, cluster } = await readHistoryToCopy(historySourceOf(ctx, []));
    const { bytes } = writeHistoryFile(file, restored, cluster);
    err(ctx, exportedLine(restored.tail.length, restored.snapshot?.index, file, bytes));
    return 0;
  } catch (e) {
    if (e instanceof CliError && e.exitCode === 130) throw e;
    err(ctx, `Error exporting the history: ${errorMessage(e)}`);
    return 1;
  }
}

function exportedLine(
  events: number,
  snapshotIndex: number | undefined,
  file: string,
  bytes: number,
): string {
  const snap = snapshotIndex !== undefined ? ` and the snapshot at index ${snapshotIndex}` : '';
  return `Exported ${events} events${snap} to ${file} (${bytes} bytes)`;
}

/** The leader's ExportHistory stream, written as it comes (never half a file). */
async function exportFromLeader(ctx: Context, file: string): Promise<number> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal?.addEventListener('abort', onAbort);
  const out = new AtomicFile(file);
  let header: HistoryHeader | undefined;
  let last: Uint8Array | undefined;
  try {
    for await (const chunk of ctx.api().exportHistory({}, stop.signal)) {
      if (!header) header = headerOf(chunk.data);
      out.write(chunk.data);
      last = chunk.data;
    }
    // Interrupted (Ctrl-C): no file, and exit like an interrupted shell command.
    if (stop.signal.aborted) throw new CliError('', 130);
    if (!header || !last || !endsWithEndLine(last))
      throw new CliError('the leader sent an incomplete history; nothing was written');
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    stop.abort();
    ctx.signal?.removeEventListener('abort', onAbort);
  }
  err(ctx, exportedLine(header.events, header.snapshot?.index, file, out.bytes));
  return 0;
}

/** Whether a history file's last chunk ends with its end line (`{"end":…}`). */
function endsWithEndLine(last: Uint8Array): boolean {
  const tail = Buffer.from(last).toString('utf8', Math.max(0, last.length - 256));
  return tail.endsWith('\n') && tail.slice(0, -1).split('\n').pop()!.startsWith('{"end":');
}

/** The header line a history file starts with (its first chunk holds it whole). */
function headerOf(data: Uint8Array): HistoryHeader {
  const text = Buffer.from(data).toString('utf8', 0, Math.min(data.length, 64 * 1024));
  const nl = text.indexOf('\n');
  let h: Partial<HistoryHeader> | undefined;
  try {
    h = nl > 0 ? (JSON.parse(text.slice(0, nl)) as Partial<HistoryHeader>) : undefined;
  } catch {
    h = undefined;
  }
  if (h?.format !== HISTORY_FORMAT || typeof h.events !== 'number')
    throw new CliError('the leader answered with something that is not a history file');
  return h as HistoryHeader;
}

export const events: Command = {
  name: 'events',
  summary: "Print the cluster's committed events, or export its history",
  usage:
    '[--since=INDEX|TIME] [--type=TYPES] [--unit=NAMES] [--machine=IDS] [-f|--follow] [--json] | export FILE [--data-dir=DIR | --etcd-servers=URLS --cluster=NAME]',
  needsApi: (args, given) => args[0] !== 'export' || !namesStore(given),
  description: `Prints events from the leader, one per line with their details (index, time, type,
unit, machine, target, observed state with result and exit status, reason). Events older than
the leader's memory are read from the store (its durable ones: what agents reported in between
is only kept as milestones, UnitObserved). --since takes an index or an RFC 3339 time; --json
prints each event as stored (one JSON object per line); --follow keeps printing new events until
interrupted.

'events export FILE' writes the retained history (the latest snapshot and the durable log) as
one versioned, self-describing file (src/history/export.ts) for 'flotilla replay FILE': from the
leader, or, with --data-dir (a dev-mode daemon's) or --etcd-servers/--cluster, read from the
store directly, which needs no leader.`,
  flags: FLAGS,
  async run(ctx: Context): Promise<number> {
    if (ctx.args[0] === 'export') return exportHistory(ctx);
    if (ctx.args.length > 0)
      throw new CliError(`Unknown argument "${ctx.args[0]}" (did you mean 'events export FILE'?)`);
    const api = ctx.api();
    const follow = flagBool(ctx.parsed, 'follow');
    const types = parseList(flagString(ctx.parsed, 'type'));
    const units = new Set(parseList(flagString(ctx.parsed, 'unit')));
    const machines = parseList(flagString(ctx.parsed, 'machine'));
    const since = flagString(ctx.parsed, 'since') || flagString(ctx.parsed, 'from');
    const sinceTime = since && !/^\d+$/.test(since) ? Date.parse(since) : undefined;
    const wanted = (e: Event): boolean =>
      (types.length === 0 || types.includes(e.type)) &&
      (units.size === 0 || units.has(e.unit)) &&
      (machines.length === 0 ||
        machines.some((m) => e.machine !== '' && e.machine.startsWith(m))) &&
      (sinceTime === undefined || e.timeMs >= sinceTime);
    try {
      const { logIndex } = await api.getClusterStatus({});
      const from =
        sinceTime !== undefined
          ? 1
          : since
            ? Math.max(1, Number(since))
            : Math.max(1, logIndex - DEFAULT_EVENTS + 1);
      if (!follow && logIndex < from) return 0;
      const stop = new AbortController();
      const onAbort = (): void => stop.abort();
      ctx.signal.addEventListener('abort', onAbort);
      let idle: NodeJS.Timeout | undefined;
      const armIdle = (): void => {
        if (follow) return;
        clearTimeout(idle);
        idle = setTimeout(() => stop.abort(), IDLE_END_MS);
      };
      armIdle();
      try {
        // Following, the leader filters by type (it skips other events before encoding them);
        // a bounded listing filters here, so it still knows when it reached the newest event.
        const req = { fromIndex: from, types: follow ? types : [] };
        for await (const e of api.watch(req, stop.signal)) {
          if (wanted(e)) out(ctx, isJson(ctx) ? e.json : formatEvent(e));
          if (!follow && e.index >= logIndex) break;
          armIdle();
        }
      } finally {
        clearTimeout(idle);
        ctx.signal.removeEventListener('abort', onAbort);
        stop.abort();
      }
    } catch (e) {
      err(ctx, `Error retrieving events: ${errorMessage(e)}`);
      return 1;
    }
    return 0;
  },
};
