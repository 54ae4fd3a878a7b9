import { ErrorCode, FlotillaError } from '../errors';
import { EVENT_TYPES, SCHEMA_VERSION, type FlotillaEvent } from '../events/types';
import type { Restored, Term } from '../store/types';

const KNOWN = new Set<string>(EVENT_TYPES);

/**
 * Refuses a history holding an event this version does not know — a type it has never heard
 * of, or a schema version `v` newer than its own — with a typed error naming the first such
 * event, unless `allowUnknown` (flotillad's `allow_unknown_events`, `flotilla replay
 * --allow-unknown`): then they are kept and skipped by the fold, which counts them.
 */
export function checkSchema(
  events: Iterable<FlotillaEvent>,
  opts: { allowUnknown?: boolean; source?: string } = {},
): void {
  if (opts.allowUnknown) return;
  for (const e of events) {
    const err = unknownSchema(e, opts.source);
    if (err) throw err;
  }
}

/** checkSchema's refusal of one event (only its type, index and v are read), if it is refused. */
export function unknownSchema(
  e: { type: string; index: number },
  source?: string,
): FlotillaError | undefined {
  const v = (e as { v?: unknown }).v;
  const known = KNOWN.has(e.type);
  if (known && typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= SCHEMA_VERSION)
    return undefined;
  const what = !known
    ? `event type ${e.type}`
    : `schema version ${JSON.stringify(v)} of ${e.type} (this version reads 1–${SCHEMA_VERSION})`;
  return new FlotillaError(
    ErrorCode.UnknownEventSchema,
    `${source ? `${source}: ` : ''}event ${e.index} has ${what}, which this version of ` +
      `Flotilla does not know; upgrade, or allow unknown events (allow_unknown_events=true, ` +
      `replay --allow-unknown) to skip them`,
    { details: { index: e.index, type: e.type, v: typeof v === 'number' ? v : -1 } },
  );
}

/**
 * The daemon's check at restore: `term` with a `restore()` that refuses (UNKNOWN_EVENT_SCHEMA,
 * naming the first unknown event) a log holding an event type or schema version this daemon
 * does not know, before the engine folds any of it — unless `allowUnknown`
 * (`allow_unknown_events`). A leader that folded such a log would skip what a newer version
 * meant and then write its own decisions after it.
 */
export function schemaCheckedTerm<T extends Pick<Term, 'restore'>>(
  term: T,
  opts: { allowUnknown: boolean },
): T {
  return new Proxy(term, {
    get(target, prop, receiver) {
      if (prop === 'restore') {
        return async (): Promise<Restored> => {
          const r = await target.restore();
          checkSchema(r.tail, { allowUnknown: opts.allowUnknown, source: 'the cluster log' });
          return r;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
