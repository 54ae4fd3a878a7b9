import type { FlotillaEvent } from '../events/types';

/**
 * Effects of committed events are applied for about this long per event-loop turn; then the
 * loop is handed back. Bounds what a burst costs other callers (and the lease keepalive).
 */
export const EFFECTS_TURN_MS = 5;
/** How many events are applied between two looks at the clock. */
const EFFECTS_CHECK_EVERY = 32;

/**
 * Committed events whose effects are not applied yet, in commit order, applied in turns of
 * bounded length: `turn` runs in a later event-loop turn (setImmediate) once events are queued.
 */
export class EffectQueue {
  private batches: FlotillaEvent[][] = [];
  /** Position in batches[0]. */
  private pos = 0;
  /** Events queued and not applied yet (bulk writes wait while this is high). */
  pending = 0;
  private timer: NodeJS.Immediate | undefined;
  private stopped = false;

  /** `turn(budgetMs)`: the engine's turn of effects (it calls run() and then its own steps). */
  constructor(private readonly turn: (budgetMs: number) => void) {}

  get empty(): boolean {
    return this.batches.length === 0;
  }

  push(events: FlotillaEvent[]): void {
    this.batches.push(events);
    this.pending += events.length;
    this.schedule();
  }

  schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setImmediate(() => {
      this.timer = undefined;
      this.turn(EFFECTS_TURN_MS);
    });
  }

  /** Applies queued events with `apply` for about `budgetMs`; returns how many were applied. */
  run(budgetMs: number, apply: (e: FlotillaEvent) => void): number {
    const deadline = performance.now() + budgetMs;
    let n = 0;
    while (this.batches.length > 0) {
      const batch = this.batches[0];
      const end = Math.min(batch.length, this.pos + EFFECTS_CHECK_EVERY);
      for (; this.pos < end; this.pos++, n++) apply(batch[this.pos]);
      if (this.pos >= batch.length) {
        this.batches.shift();
        this.pos = 0;
      }
      if (performance.now() >= deadline) break;
    }
    this.pending -= n;
    return n;
  }

  /** Runs every queued effect now, in this turn (for reads of actors and placement reasons). */
  flush(): void {
    if (this.batches.length === 0) return;
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
    this.turn(Infinity);
  }

  /** Forgets queued effects (the state they derive from is being rebuilt). */
  clear(): void {
    this.batches = [];
    this.pos = 0;
    this.pending = 0;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearImmediate(this.timer);
  }
}
