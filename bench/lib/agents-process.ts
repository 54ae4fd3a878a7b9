/**
 * A process holding many agents, each with its own NATS connection and a SimulatedDriver
 * (`--watch-all`: each also with its own etcd client watching the shared schedule prefix).
 * Config: one JSON argument (AgentsConfig). Protocol on stdin/stdout, one line each:
 *   → "ready"             every agent started
 *   ← "stats"  → AgentsStats as JSON
 *   ← "quit"   → drains every agent, prints "bye", exits
 */
import readline from 'node:readline';
import { Etcd3 } from 'etcd3';
import { startAgent, type AgentHandle } from '../../src/actors/agent';
import { SimulatedDriver } from '../../src/drivers/simulated';
import { NatsBus } from '../../src/bus/nats';
import type { Bus } from '../../src/bus/types';
import { HerdAgentBus } from './herd';
import { openLogStore } from '../../src/store/open';
import type { LeaderInfo } from '../../src/store/types';

export interface AgentsConfig {
  cluster: string;
  natsUrl: string;
  machineIds: string[];
  agentTtlMs: number;
  /**
   * etcd, to follow the election as flotillad's agents do: each agent then acts only on the
   * current leader's schedules (`leaderCheck`). Unset: agents listen on the unnamed subjects of
   * an in-process engine.
   */
  leaderFrom?: { etcdEndpoints: string[] };
  /** Set for the --watch-all baseline. */
  watchAll?: { etcdEndpoints: string[]; prefix: string };
}

export interface AgentStatsRow {
  machine: string;
  scheduleMessages: number;
  scheduleChanges: number;
  fullSchedules: number;
  herdMessages: number;
  herdBytes: number;
  units: number;
  active: number;
  starts: number;
  stops: number;
  loads: number;
  unloads: number;
}

export interface AgentsStats {
  agents: AgentStatsRow[];
  cpuMs: number;
  rssBytes: number;
}

interface Running {
  handle: AgentHandle;
  driver: SimulatedDriver;
  bus: Bus;
  herd?: HerdAgentBus;
  etcd?: Etcd3;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as AgentsConfig;
  const running: Running[] = [];
  // One election watch for every agent of this process, as each flotillad has one.
  let leader: LeaderInfo | undefined;
  const election = cfg.leaderFrom
    ? openLogStore({ kind: 'etcd', endpoints: cfg.leaderFrom.etcdEndpoints, cluster: cfg.cluster })
    : undefined;
  const unwatch = election?.watchLeader((l) => {
    leader = l;
    for (const r of running) r.handle.setLeader(l);
  });
  const startOne = async (machineId: string): Promise<void> => {
    const nats = await NatsBus.connect({
      servers: [cfg.natsUrl],
      name: `bench agent ${machineId}`,
    });
    let bus: Bus = nats;
    let herd: HerdAgentBus | undefined;
    let etcd: Etcd3 | undefined;
    if (cfg.watchAll) {
      etcd = new Etcd3({ hosts: cfg.watchAll.etcdEndpoints });
      herd = await HerdAgentBus.open(nats, etcd, cfg.watchAll.prefix, machineId);
      bus = herd;
    }
    const driver = new SimulatedDriver({});
    const handle = await startAgent({
      cluster: cfg.cluster,
      machineId,
      ip: '127.0.0.1',
      metadata: {},
      bus,
      driver,
      agentTtlMs: cfg.agentTtlMs,
      leaderCheck: election !== undefined,
    });
    if (election) handle.setLeader(leader);
    running.push({ handle, driver, bus, herd, etcd });
  };
  // A few at a time: hundreds of simultaneous connects only measure the accept queue.
  for (let i = 0; i < cfg.machineIds.length; i += 10)
    await Promise.all(cfg.machineIds.slice(i, i + 10).map(startOne));
  const out = (s: string): void => void process.stdout.write(s + '\n');
  out('ready');

  const stats = (): AgentsStats => {
    const cpu = process.cpuUsage();
    return {
      agents: running.map((r) => {
        let active = 0;
        for (const u of r.driver.system.units.values()) if (u.active === 'active') active++;
        return {
          machine: r.handle.machineId,
          scheduleMessages: r.herd ? r.herd.ownMessages : r.handle.stats.scheduleMessages,
          scheduleChanges: r.handle.stats.scheduleChanges,
          fullSchedules: r.handle.stats.fullSchedules,
          herdMessages: r.herd?.herdMessages ?? r.handle.stats.scheduleMessages,
          herdBytes: r.herd?.herdBytes ?? 0,
          units: r.driver.system.units.size,
          active,
          starts: r.driver.counts.start,
          stops: r.driver.counts.stop,
          loads: r.driver.counts.load,
          unloads: r.driver.counts.unload,
        };
      }),
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBytes: process.memoryUsage().rss,
    };
  };

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line === 'stats') out(JSON.stringify(stats()));
    else if (line === 'quit') {
      await Promise.all(
        running.map(async (r) => {
          await r.handle.drain();
          await r.bus.close();
          r.etcd?.close();
        }),
      );
      unwatch?.();
      await election?.close();
      out('bye');
      process.exit(0);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`agents: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
