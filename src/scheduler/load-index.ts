/**
 * Machines ordered by (load, machine ID): the scheduler's "least loaded, ties by ID" order.
 *
 * Buckets indexed by load, each sorted by ID. A load change moves one machine between two
 * buckets (binary search + splice), and walking machines in order starts at the lowest
 * non-empty bucket, so finding the least-loaded machine that passes a check costs the number of
 * machines looked at, not the number of machines. Items are the caller's machine records, so a
 * walk needs no lookups; the caller keeps each item's current load (one machine has one load,
 * whatever index it is in) and passes it to every call.
 */

export interface Keyed {
  readonly id: string;
}

export class LoadIndex<T extends Keyed> {
  private readonly buckets: T[][] = [];
  private count = 0;
  /** No bucket below this one is non-empty. */
  private min = 0;

  get size(): number {
    return this.count;
  }

  add(item: T, load: number): void {
    while (this.buckets.length <= load) this.buckets.push([]);
    const b = this.buckets[load];
    if (b.length === 0 || b[b.length - 1].id < item.id) b.push(item);
    else {
      const i = lowerBound(b, item.id);
      if (i < b.length && b[i].id === item.id) return;
      b.splice(i, 0, item);
    }
    this.count++;
    if (load < this.min || this.count === 1) this.min = load;
  }

  remove(item: T, load: number): void {
    const b = this.buckets[load];
    if (!b) return;
    const i = lowerBound(b, item.id);
    if (i >= b.length || b[i].id !== item.id) return;
    if (i === 0) b.shift();
    else if (i === b.length - 1) b.pop();
    else b.splice(i, 1);
    this.count--;
    this.settleMin();
  }

  /** Moves an item from load `from` to load `to`. */
  move(item: T, from: number, to: number): void {
    if (from === to) return;
    this.remove(item, from);
    this.add(item, to);
  }

  /**
   * Visits items in (load, ID) order until `visit` returns true; returns that item.
   * `visit` must not change the index.
   */
  find(visit: (item: T) => boolean): T | undefined {
    const buckets = this.buckets;
    for (let load = this.min; load < buckets.length; load++) {
      const b = buckets[load];
      for (let i = 0; i < b.length; i++) if (visit(b[i])) return b[i];
    }
    return undefined;
  }

  private settleMin(): void {
    if (this.count === 0) {
      this.min = 0;
      return;
    }
    while (this.min < this.buckets.length && this.buckets[this.min].length === 0) this.min++;
  }
}

function lowerBound<T extends Keyed>(b: T[], id: string): number {
  let lo = 0;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (b[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
