/**
 * Submits units "as fast as the API accepts": CreateUnits calls of `chunk` units with target
 * `launched`, `inFlight` calls at a time, recording every call's latency.
 */
import type { ClusterApi } from '../../src/api/types';
import { LineChild } from './child';
import { chunks, listAllUnitNames, trivialSpec } from './units';

export interface SubmitResult {
  /** Latency of each mutating call, ms. */
  callMs: number[];
  failures: number;
  firstError?: string;
}

export async function submitLaunched(
  api: ClusterApi,
  names: string[],
  chunk = 1000,
  inFlight = 2,
): Promise<SubmitResult> {
  const queue = chunks(names, chunk);
  const res: SubmitResult = { callMs: [], failures: 0 };
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      // A failed call is retried (up to 5 times): "as fast as the API accepts" means every unit
      // ends up accepted; failures are counted and the first error is kept for the record.
      for (let attempt = 0; attempt < 5; attempt++) {
        const t = performance.now();
        try {
          await api.createUnits({
            units: c.map((n) => trivialSpec(n, 'launched')),
            replace: false,
          });
          res.callMs.push(performance.now() - t);
          break;
        } catch (err) {
          res.failures++;
          res.firstError ??= (err as Error).message;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return res;
}

/** Lists every unit again and again until stopped; each full listing's latency in ms. */
export function listingProbe(
  api: ClusterApi,
  pauseMs = 500,
): { stop(): Promise<{ ms: number[]; sizes: number[] }> } {
  const ms: number[] = [];
  const sizes: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const names = await listAllUnitNames(api).catch(() => []);
      ms.push(performance.now() - t);
      sizes.push(names.length);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ms, sizes };
    },
  };
}

/**
 * A user's small writes while a burst runs: one single-unit `CreateUnits` (target inactive, so
 * nothing is placed) every `everyMs`, each call's latency in ms.
 */
export function mutationProbe(api: ClusterApi, everyMs = 50): { stop(): Promise<number[]> } {
  const ms: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const t = performance.now();
      await api
        .createUnits({ units: [trivialSpec(`probe-${i}.service`)], replace: false })
        .then(() => void ms.push(performance.now() - t))
        .catch(() => void ms.push(Infinity));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return ms;
    },
  };
}

/** A probe (see probe-process.ts) running in its own process. */
export async function probeProcess(
  kind: 'mutate' | 'list',
  endpoint: string,
): Promise<{ stop(): Promise<{ ms: number[]; sizes: number[] }> }> {
  const child = new LineChild('probe-process.js', [kind, endpoint]);
  const first = await child.next(30_000);
  if (first !== 'ready') throw new Error(`probe ${kind}: unexpected "${first}"`);
  return {
    async stop() {
      child.send('stop');
      const res = await child.nextJson<{ ms: (number | null)[]; sizes: number[] }>(120_000);
      await child.waitExit();
      // JSON has no Infinity (a failed call): it arrives as null.
      return { ms: res.ms.map((x) => x ?? Infinity), sizes: res.sizes };
    },
  };
}
