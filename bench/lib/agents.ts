/** Simulated agents spread over a few child processes (lib/agents-process.ts). */
import { randomBytes } from 'node:crypto';
import { LineChild } from './child';
import { profileEnv } from './cluster';
import type { AgentsConfig, AgentsStats, AgentStatsRow } from './agents-process';

export class AgentFleet {
  private constructor(
    readonly children: LineChild[],
    readonly machineIds: string[],
  ) {}

  static async start(
    o: Omit<AgentsConfig, 'machineIds'> & {
      agents: number;
      processes: number;
      nodeArgs?: string[];
    },
  ): Promise<AgentFleet> {
    const ids = Array.from({ length: o.agents }, () => randomBytes(16).toString('hex'));
    const children: LineChild[] = [];
    const per = Math.ceil(o.agents / o.processes);
    for (let p = 0; p < o.processes; p++) {
      const machineIds = ids.slice(p * per, (p + 1) * per);
      if (machineIds.length === 0) break;
      const cfg: AgentsConfig = {
        cluster: o.cluster,
        natsUrl: o.natsUrl,
        agentTtlMs: o.agentTtlMs,
        watchAll: o.watchAll,
        leaderFrom: o.leaderFrom,
        machineIds,
      };
      children.push(
        new LineChild('agents-process.js', [JSON.stringify(cfg)], profileEnv(), [
          '--max-old-space-size=4096',
          ...(o.nodeArgs ?? []),
        ]),
      );
    }
    const fleet = new AgentFleet(children, ids);
    try {
      for (const c of children) {
        const l = await c.next(120_000);
        if (l !== 'ready') throw new Error(`agents process said ${l}: ${c.stderr}`);
      }
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  async stats(): Promise<{ rows: AgentStatsRow[]; cpuMs: number; rssBytes: number }> {
    const all = await Promise.all(
      this.children.map(async (c) => {
        c.send('stats');
        return c.nextJson<AgentsStats>(60_000);
      }),
    );
    return {
      rows: all.flatMap((s) => s.agents),
      cpuMs: all.reduce((s, a) => s + a.cpuMs, 0),
      rssBytes: all.reduce((s, a) => s + a.rssBytes, 0),
    };
  }

  /** Drains every agent (units keep running in their simulated systems) and ends the processes. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        try {
          c.send('quit');
          await c.next(30_000);
        } catch {
          /* killed below */
        }
        await c.stop(5000);
      }),
    );
  }
}
