/**
 * Which queued writes go into the next store transaction (group commit), and in what order.
 *
 * Writes come in two lanes. `bulk` is a client's large write (say 1,000 units in one
 * CreateUnits): it may be overtaken. Everything else (a user's single-unit call, the engine's own
 * placement decisions, agents' state reports) is `normal` and keeps its order. Normal writes go
 * first, so a user's `fleetctl start one.service` does not queue behind a script creating
 * thousands of units.
 *
 * Why overtaking is safe, and only for client bulk writes: concurrent client calls have no order
 * between them, so committing a later small one first is the same as it having arrived first;
 * and an engine decision overtaking a bulk write lands before it, on the state it was computed
 * from. Engine decisions themselves are never overtaken: they depend on what came before them.
 *
 * A bulk write passed over `maxSkips` times goes first in the next batch, so a steady stream of
 * normal writes cannot starve it.
 *
 * Admission: while the engine is still applying the effects of earlier writes (placement,
 * actors, publishing), it holds bulk writes back (`admitBulk: false`). Accepting a burst faster
 * than it can be applied only lengthens every queue in the leader, and with them the wait of
 * every other caller; the burst itself does not finish any sooner.
 */
export interface Queued {
  readonly events: number;
  readonly bulk: boolean;
  /** Batches committed while this write waited (counted for bulk writes). */
  skipped: number;
}

export const DEFAULT_MAX_SKIPS = 2;

/**
 * Normal writes only, in arrival order up to `max` events (bulk writes are held back: the
 * engine is still busy with the previous ones; they are not counted as passed over).
 */
function takeNormal<T extends Queued>(queue: T[], max: number): T[] {
  const batch: T[] = [];
  let n = 0;
  for (let i = 0; i < queue.length;) {
    const w = queue[i];
    if (w.bulk) i++;
    else if (batch.length === 0 || n + w.events <= max) {
      queue.splice(i, 1);
      batch.push(w);
      n += w.events;
    } else break;
  }
  return batch;
}

/**
 * Removes the next batch from `queue` and returns it in commit order. At most `max` events,
 * except that a batch always takes at least one write, however large.
 */
export function takeBatch<T extends Queued>(
  queue: T[],
  max: number,
  opts: { maxSkips?: number; admitBulk?: boolean } = {},
): T[] {
  const maxSkips = opts.maxSkips ?? DEFAULT_MAX_SKIPS;
  if (opts.admitBulk === false) return takeNormal(queue, max);
  const batch: T[] = [];
  let n = 0;
  const fits = (w: T): boolean => batch.length === 0 || n + w.events <= max;
  const take = (i: number): void => {
    const [w] = queue.splice(i, 1);
    batch.push(w);
    n += w.events;
  };
  const starving = queue.find((w) => w.bulk)?.skipped ?? 0;
  if (starving >= maxSkips) {
    // Plain arrival order this time (always safe).
    while (queue.length > 0 && fits(queue[0])) take(0);
  } else {
    // Normal writes in arrival order, stopping at the first that does not fit: none overtakes
    // another normal one, and no bulk write overtakes a normal one.
    let i = 0;
    while (i < queue.length) {
      if (queue[i].bulk) i++;
      else if (fits(queue[i])) take(i);
      else break;
    }
    if (!queue.some((w) => !w.bulk)) while (queue.length > 0 && fits(queue[0])) take(0);
  }
  for (const w of queue) if (w.bulk) w.skipped++;
  return batch;
}
