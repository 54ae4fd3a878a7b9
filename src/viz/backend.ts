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
  /** The cluster now; undefined when this daemon is not the leader. */
  head(): ClusterView | undefined;
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
    live: true,
    get why() {
      return 'this daemon is not the leader: open /ui/ on the leader';
    },
    head: () => current()?.view(),
    version: () => current()?.version ?? 0,
    onChange(listener) {
      listeners.add(listener);
      current();
      return () => listeners.delete(listener);
    },
    history() {
      const engine = getEngine();
      if (!engine) return Promise.reject(new Error('this daemon is not the leader'));
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

/** A live history no page has used for this long is dropped (read again when needed). */
export const HISTORY_IDLE_MS = 5 * 60_000;
