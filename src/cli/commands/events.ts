import type { FlagSpec } from '../args';
import { flagBool, flagNumber, flagString } from '../args';
import { EVENT_TYPES, type EventType } from '../../events/types';
import type { Event } from '../../gen/flotilla/v1/flotilla';
import type { Command, Context } from '../command';
import { err, isJson } from '../command';
import { errorMessage } from '../errors';

/** Without --from, the last this many events. */
export const DEFAULT_EVENTS = 100;

/**
 * Without --follow the command ends at the newest index the leader reported; should that event
 * never come (a leader change in between), it ends after this long without any event.
 */
const IDLE_END_MS = 3000;

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'from',
    type: 'int',
    default: 0,
    valueName: 'INDEX',
    help: `First event index to print (default: the last ${DEFAULT_EVENTS} events)`,
    check: (v) => (typeof v === 'number' && v < 0 ? 'must not be negative' : undefined),
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
    help: 'Only events of these types, comma-separated (e.g. UnitScheduled,UnitStateReported)',
    check: (v) => {
      const unknown = parseTypes(String(v)).filter((t) => !EVENT_TYPES.includes(t as EventType));
      return unknown.length > 0
        ? `unknown event type "${unknown[0]}" (known: ${EVENT_TYPES.join(', ')})`
        : undefined;
    },
  },
];

function parseTypes(v: string): string[] {
  return v
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** `12 2026-11-22T02:21:32.123Z UnitSubmitted unit=hello.service` */
export function formatEvent(e: Event): string {
  let line = `${e.index} ${new Date(e.timeMs).toISOString()} ${e.type}`;
  if (e.unit) line += ` unit=${e.unit}`;
  if (e.machine) line += ` machine=${e.machine}`;
  return line;
}

export const events: Command = {
  name: 'events',
  summary: "Print the cluster's committed events",
  usage: '[--from=INDEX] [--type=TYPES] [-f|--follow] [--json]',
  description: `Prints events from the leader's log, one per line: index, time, type, unit, machine.
--json prints each event as stored (one JSON object per line). --follow keeps printing new
events until interrupted.`,
  flags: FLAGS,
  async run(ctx: Context): Promise<number> {
    const api = ctx.api();
    const follow = flagBool(ctx.parsed, 'follow');
    const types = parseTypes(flagString(ctx.parsed, 'type'));
    const wanted = (t: string): boolean => types.length === 0 || types.includes(t);
    try {
      const { logIndex } = await api.getClusterStatus({});
      const from = ctx.parsed.given.has('from')
        ? Math.max(1, flagNumber(ctx.parsed, 'from'))
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
        // Following, the leader filters (it skips other events before encoding them); a
        // bounded listing filters here, so it still knows when it reached the newest event.
        const req = { fromIndex: from, types: follow ? types : [] };
        for await (const e of api.watch(req, stop.signal)) {
          if (wanted(e.type)) ctx.io.stdout(`${isJson(ctx) ? e.json : formatEvent(e)}\n`);
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
