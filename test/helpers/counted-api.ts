import { API_METHODS } from '../../src/api/methods';
import type { ClusterApi } from '../../src/api/types';

/**
 * A ClusterApi passed through unchanged, with counters per method and one-shot failure
 * injection: tests check that a command makes O(1) requests, that a stream was cancelled on the
 * server side, and how an error from the cluster reaches the user. Nothing here answers a
 * request: every call goes to the wrapped API (the real engine in these tests).
 */
export interface CountedApi extends ClusterApi {
  /** Calls of `method` since the start or the last resetCounts(). */
  count(method: keyof ClusterApi): number;
  /** Calls of all methods. */
  total(): number;
  resetCounts(): void;
  /** Streams of `method` that ended because their signal was aborted (the client went away). */
  aborted(method: 'watch' | 'unitJournal'): number;
  /** The next call of `method` fails with `err` (once), before reaching the wrapped API. */
  failNext(method: keyof ClusterApi, err: Error): void;
}

type Unary = (req: unknown) => Promise<unknown>;
type Stream = (req: unknown, signal: AbortSignal) => AsyncIterable<unknown>;

export function countedApi(api: ClusterApi): CountedApi {
  const calls = new Map<string, number>();
  const aborted = new Map<string, number>();
  const failures = new Map<string, Error>();
  const enter = (method: string): void => {
    calls.set(method, (calls.get(method) ?? 0) + 1);
    const f = failures.get(method);
    if (f) {
      failures.delete(method);
      throw f;
    }
  };
  const out: Record<string, unknown> = {
    count: (m: string) => calls.get(m) ?? 0,
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
    resetCounts: () => calls.clear(),
    aborted: (m: string) => aborted.get(m) ?? 0,
    failNext: (m: string, err: Error) => failures.set(m, err),
  };
  // Every method of the API's one table (src/api/methods.ts), unary or streaming.
  for (const { name, kind } of API_METHODS) {
    const target = api as unknown as Record<string, Unary & Stream>;
    if (kind === 'unary') {
      out[name] = async (req: unknown) => {
        enter(name);
        return (target[name] as Unary).call(api, req);
      };
    } else {
      out[name] = async function* (req: unknown, signal: AbortSignal) {
        enter(name);
        try {
          yield* (target[name] as Stream).call(api, req, signal);
        } finally {
          if (signal.aborted) aborted.set(name, (aborted.get(name) ?? 0) + 1);
        }
      };
    }
  }
  return out as unknown as CountedApi;
}
