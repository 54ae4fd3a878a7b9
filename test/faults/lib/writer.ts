/**
 * A client writing all through a fault: one new unit (target inactive, so nothing is placed)
 * every `everyMs`, sent whatever happened to the previous ones, each to the next reachable
 * daemon in turn (any daemon forwards to the leader). A write counts as acknowledged only when
 * the call returned success: those must all be in the cluster afterwards.
 */
import type { ApiClient } from '../../../src/api/client';
import type { DaemonNode } from '../../helpers/cluster';
import { sleep } from './wait';

export interface Send {
  name: string;
  /** performance.now() when sent, and when acknowledged. */
  sent: number;
  acked?: number;
  error?: string;
  /** The daemon it was sent to. */
  to: string;
}

export interface Writer {
  readonly sends: Send[];
  acked(): string[];
  /** The first write sent at or after `t` that was acknowledged. */
  firstAckAfter(t: number): Send | undefined;
  stop(): Promise<void>;
}

export function startWriter(
  targets: () => DaemonNode[],
  api: (n: DaemonNode) => ApiClient,
  everyMs = 50,
  prefix = 'w',
): Writer {
  const sends: Send[] = [];
  const inFlight = new Set<Promise<void>>();
  let running = true;
  const write = async (i: number): Promise<void> => {
    const nodes = targets();
    if (nodes.length === 0) return;
    const node = nodes[i % nodes.length];
    const s: Send = { name: `${prefix}-${i}.service`, sent: performance.now(), to: node.machineId };
    sends.push(s);
    try {
      await api(node).createUnits({
        units: [
          {
            name: s.name,
            options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }],
            targetState: '',
          },
        ],
        replace: false,
      });
      s.acked = performance.now();
    } catch (err) {
      s.error = (err as Error).message;
    }
  };
  const loop = (async () => {
    for (let i = 0; running; i++) {
      if (inFlight.size < 200) {
        const p: Promise<void> = write(i).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await sleep(everyMs);
    }
    await Promise.all(inFlight);
  })();
  return {
    sends,
    acked: () => sends.filter((s) => s.acked !== undefined).map((s) => s.name),
    firstAckAfter: (t) => sends.find((s) => s.sent >= t && s.acked !== undefined),
    async stop() {
      running = false;
      await loop;
    },
  };
}
