import type { Engine } from '../engine/engine';
import type { FlotillaEvent } from '../events/types';
import type { LogStore, Restored } from '../store/types';
import { History } from './history';
import { LiveStates } from './live';
import type { ClusterView } from './views';
import { countStates, foldedView, NO_FILTER } from './views';

/** Where the visualizer's data comes from: the live leader, or a history read offline. */
export interface VizBackend {
  readonly live: boolean;
  /** The cluster now; undefined when there is none (yet). */
  head(): ClusterView | undefined;
  /** Resolves once head() has something to show, if it can (a follower reading the store). */
  ready?(): Promise<void>;
  /** Changes since the last call (the stream sends only when this moved). */
  version(): number;
  /** Calls `listener` after each change (live only); returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  /** The retained history, for the scrubber and timelines (read once, then kept current). */
  history(): Promise<History>;
  /** Why there is no head (for the page). */
  readonly why?: string;
  close(): void;
}

/**
 * An exported history or a data directory, read once: the head is its last point, every unit's
 * state in it worked out while loading (a page's first request then counts nothing).
 */
export function offlineBackend(restored: Restored): VizBackend {
  const history = new History(restored);
  const folded = foldedView(history.current, history.timeAt(history.last));
  const totals = countStates(folded, NO_FILTER)['engine-unit'];
  const head: ClusterView = { ...folded, unitTotals: () => totals };
  return {
    live: false,
    head: () => head,
    version: () => 0,
    onChange: () => () => undefined,
    history: async () => history,
    close: () => undefined,
  };
}

/**
 * The leader's data: live states from its engine (see live.ts); the history from the store
 * (snapshot and durable log) joined with the events the leader holds in memory (which include
 * the transient ones), then followed as events are folded.
 */
export function liveBackend(
  getEngine: () => Engine | undefined,
  store: LogStore,
  idleMs = HISTORY_IDLE_MS,
): VizBackend {
  let states: LiveStates | undefined;
  const listeners = new Set<() => void>();
  let unlisten: (() => void) | undefined;
  let history:
    { engine: Engine; loading: Promise<History>; close: () => void; used: number } | undefined;
  // The history costs the leader a second fold of every event while it is kept: dropped when no
  // page has scrubbed or opened a timeline for a while.
  const sweeper = setInterval(
    () => {
      if (history && Date.now() - history.used > idleMs) {
        history.close();
        history = undefined;
      }
    },
    Math.min(idleMs, 60_000),
  );
  sweeper.unref();
  const follower = new StoreReader(store);
  const current = (): LiveStates | undefined => {
    const engine = getEngine();
    if (states?.engine !== engine || engine?.isStopped) {
      states?.close();
      unlisten?.();
      states = engine && !engine.isStopped ? new LiveStates(engine) : undefined;
      unlisten = states?.onChange(() => {
        for (const l of listeners) l();
      });
    }
    return states;
  };
  return {
    // A follower shows the durable history in the store (read again every few seconds while
    // pages ask): the same views, from the log rather than the leader's memory.
    get live() {
      return current() !== undefined;
    },
    get why() {
      return follower.why ?? 'this daemon is not the leader and the store is unreadable';
    },
    head: () => current()?.view() ?? follower.head(),
    ready: () => (current() ? Promise.resolve() : follower.ready()),
    version: () => current()?.version ?? follower.version,
    onChange(listener) {
      listeners.add(listener);
      current();
      return () => listeners.delete(listener);
    },
    history() {
      const engine = getEngine();
      if (!engine || engine.isStopped) return follower.history();
      if (history?.engine !== engine) {
        history?.close();
        const buffered: FlotillaEvent[] = [];
        let h: History | undefined;
        const w = engine.watch(1, (e) => (h ? h.append(e) : buffered.push(e)));
        const loading = store.readAll().then((r) => {
          const memory = [...w.backlog, ...buffered];
          const stored = r.tail.filter((e) => e.index < w.oldest);
          h = new History({ snapshot: r.snapshot, tail: stored });
          for (const e of memory) h.append(e);
          return h;
        });
        history = { engine, loading, close: w.close, used: Date.now() };
      }
      history.used = Date.now();
      return history.loading;
    },
    close() {
      clearInterval(sweeper);
      states?.close();
      history?.close();
    },
  };
}

/** A follower reads the store's history again when a page asks and it is older than this. */
export const FOLLOWER_REFRESH_MS = 3000;

/**
 * A follower's view of the cluster: the store's durable history (snapshot and log, which holds
 * what agents observed and machines' presence since schema 2), read when a page asks and read
 * again once it is FOLLOWER_REFRESH_MS old. Nothing is read while no page is open.
 */
class StoreReader {
  private loaded?: { history: History; head: ClusterView; at: number };
  private loading?: Promise<void>;
  version = 0;
  why?: string;

  constructor(private readonly store: LogStore) {}

  head(): ClusterView | undefined {
    this.refresh();
    return this.loaded?.head;
  }

  async ready(): Promise<void> {
    this.refresh();
    if (!this.loaded) await this.loading;
  }

  async history(): Promise<History> {
    await this.ready();
    if (!this.loaded) throw new Error(this.why ?? 'the store could not be read');
    return this.loaded.history;
  }

  private refresh(): void {
    if (this.loading || (this.loaded && Date.now() - this.loaded.at < FOLLOWER_REFRESH_MS)) return;
    this.loading = this.store
      .readAll()
      .then(async (r) => {
        const was = this.loaded?.history.last;
        const b = offlineBackend(r);
        const history = await b.history();
        this.loaded = { history, head: b.head()!, at: Date.now() };
        if (history.last !== was) this.version++;
        this.why = undefined;
      })
      .catch((err: unknown) => {
        this.why = `this daemon is not the leader, and reading the store failed: ${(err as Error).message}`;
      })
      .finally(() => (this.loading = undefined));
  }
}

/** A live history no page has used for this long is dropped (read again when needed). */
export const HISTORY_IDLE_MS = 5 * 60_000;
