/**
 * Asks every daemon, every `everyMs`, whom it takes for the leader (GetClusterStatus), and keeps
 * every answer, so a case can check that no two daemons ever called themselves leader at once
 * and that none did after a newer term had begun.
 */
import type { ApiClient } from '../../../src/api/client';
import type { DaemonNode } from '../../helpers/cluster';
import { sleep } from './wait';

export interface LeaderSample {
  /** The daemon asked. */
  node: string;
  /** performance.now() when asked and when it answered. */
  asked: number;
  answered: number;
  leader: string;
  epoch: number;
}

export interface LeaderProbe {
  readonly samples: LeaderSample[];
  stop(): Promise<void>;
  /** Answers in which a daemon called itself leader although another daemon had already answered for a newer epoch, or while another called itself leader of another epoch in the same round. */
  violations(): string[];
}

export function probeLeaders(
  nodes: () => DaemonNode[],
  api: (n: DaemonNode) => ApiClient,
  everyMs = 100,
): LeaderProbe {
  const samples: LeaderSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(
        nodes().map(async (n) => {
          const asked = performance.now();
          try {
            const s = await api(n).getClusterStatus({});
            samples.push({
              node: n.machineId,
              asked,
              answered: performance.now(),
              leader: s.leaderMachineId,
              epoch: Number(s.epoch),
            });
          } catch {
            /* a frozen or dead daemon does not answer */
          }
        }),
      );
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
    },
    violations() {
      const out: string[] = [];
      const selves = samples.filter((s) => s.leader === s.node && s.epoch > 0);
      for (const s of selves) {
        // Someone answered for a newer epoch before this daemon was even asked.
        const newer = samples.find((o) => o.epoch > s.epoch && o.answered < s.asked);
        if (newer)
          out.push(
            `${s.node.slice(0, 8)} called itself leader of epoch ${s.epoch} after ${newer.node.slice(0, 8)} had answered for epoch ${newer.epoch}`,
          );
        // Two self-proclaimed leaders whose answers overlap in time.
        const other = selves.find(
          (o) =>
            o.node !== s.node &&
            o.epoch !== s.epoch &&
            o.asked < s.answered &&
            s.asked < o.answered,
        );
        if (other)
          out.push(
            `${s.node.slice(0, 8)} (epoch ${s.epoch}) and ${other.node.slice(0, 8)} (epoch ${other.epoch}) both called themselves leader at once`,
          );
      }
      return [...new Set(out)];
    },
  };
}
