/**
 * Machines ordered by (load, machine ID): the scheduler's "least loaded, ties by ID" order.
 *
 * Buckets indexed by load, each a sorted array of IDs. A load change moves one ID between
 * neighbouring buckets (binary search + splice), and walking machines in order starts at the
 * lowest non-empty bucket, so finding the least-loaded machine that passes a check costs the
 * number of machines looked at, not the number of machines.
 */
import { insertSorted, removeSorted } from './sorted';

export class LoadIndex {
  private readonly buckets: string[][] = [];
  private readonly loads = new Map<string, number>();
  /** No bucket below this one is non-empty. */
  private min = 0;

  get size(): number {
    return this.loads.size;
  }

  loadOf(id: string): number | undefined {
    return this.loads.get(id);
  }

  /** Adds a machine or changes its load. */
  set(id: string, load: number): void {
    const old = this.loads.get(id);
    if (old === load) return;
    if (old !== undefined) removeSorted(this.buckets[old], id);
    while (this.buckets.length <= load) this.buckets.push([]);
    insertSorted(this.buckets[load], id);
    this.loads.set(id, load);
    if (load < this.min) this.min = load;
    this.settleMin();
  }

  remove(id: string): void {
    const old = this.loads.get(id);
    if (old === undefined) return;
    removeSorted(this.buckets[old], id);
    this.loads.delete(id);
    this.settleMin();
  }

  /**
   * Visits machines in (load, ID) order until `visit` returns true; returns that machine.
   * `visit` must not change the index.
   */
  find(visit: (id: string, load: number) => boolean): string | undefined {
    for (let load = this.min; load < this.buckets.length; load++) {
      for (const id of this.buckets[load]) if (visit(id, load)) return id;
    }
    return undefined;
  }

  private settleMin(): void {
    if (this.loads.size === 0) {
      this.min = 0;
      return;
    }
    while (this.min < this.buckets.length && this.buckets[this.min].length === 0) this.min++;
  }
}
