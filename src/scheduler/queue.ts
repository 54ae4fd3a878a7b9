/**
 * The order plan() decides units in: by name. The units dirty when plan() starts are sorted
 * once and read in order; units queued while planning (an evicted unit, followers of a unit that
 * moved) go to a small heap, and the smaller of the two heads is taken next. Deterministic:
 * the order depends only on the names queued.
 */

/** A binary min-heap of strings (code-unit order). */
export class NameHeap {
  private readonly a: string[] = [];

  get size(): number {
    return this.a.length;
  }

  peek(): string | undefined {
    return this.a[0];
  }

  push(v: string): void {
    const a = this.a;
    let i = a.push(v) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= v) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = v;
  }

  pop(): string | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as string;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r] < a[l] ? r : l;
        if (a[c] >= last) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** A sorted batch plus a heap for later arrivals; pops the smallest head. */
export class PlanQueue {
  private readonly heap = new NameHeap();
  private next = 0;

  constructor(private readonly sorted: readonly string[]) {}

  get size(): number {
    return this.sorted.length - this.next + this.heap.size;
  }

  push(name: string): void {
    this.heap.push(name);
  }

  pop(): string | undefined {
    const h = this.heap.peek();
    if (this.next < this.sorted.length && (h === undefined || this.sorted[this.next] <= h)) {
      return this.sorted[this.next++];
    }
    return this.heap.pop();
  }
}
