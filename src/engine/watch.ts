import type { FlotillaEvent } from '../events/types';

/**
 * The watch ring: the latest committed events kept in memory for watchers resuming from an
 * index (older ones: `flotilla replay`), and the live listeners every new event goes to.
 */
export class WatchRing {
  private readonly ring: FlotillaEvent[] = [];
  private readonly watchers = new Set<(e: FlotillaEvent) => void>();

  /** `max`: events kept (the ring is trimmed back to it when a quarter over). */
  constructor(private readonly max: number) {}

  /** Keeps a committed event and hands it to every watcher. */
  remember(e: FlotillaEvent): void {
    this.ring.push(e);
    if (this.ring.length > this.max * 1.25) this.ring.splice(0, this.ring.length - this.max);
    for (const w of this.watchers) w(e);
  }

  /**
   * Events with index >= from still in memory (from 0: none), then every new one via
   * `listener`. `next`: the index the next event will have (the oldest when the ring is empty).
   */
  watch(
    from: number,
    listener: (e: FlotillaEvent) => void,
    next: number,
  ): { backlog: FlotillaEvent[]; oldest: number; close: () => void } {
    const backlog = from > 0 ? this.ring.filter((e) => e.index >= from) : [];
    this.watchers.add(listener);
    return {
      backlog,
      oldest: this.ring[0]?.index ?? next,
      close: () => this.watchers.delete(listener),
    };
  }
}
