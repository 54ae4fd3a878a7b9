/**
 * The starting point of the benchmarks that take a leader away (failover, soak): two engine-only
 * flotillad leader candidates (lease TTL 2 s), simulated agents in processes of their own, and a
 * burst of launched units, every one active before the measurement starts.
 */
import { connectApi } from '../../src/api/client';
import type { DaemonNode } from '../../test/helpers/cluster';
import { AgentFleet } from './agents';
import { startBenchCluster, waitReady, type BenchCluster } from './cluster';
import { submitLaunched } from './submit';
import { unitNames } from './units';
import { ActiveWatcher } from './watcher';

export interface LoadedClusterOptions {
  /** Unit names are `<prefix>-<n>.service`. */
  prefix: string;
  units: number;
  agents: number;
  /** Processes the simulated agents are spread over. */
  processes: number;
  /** Extra flags for both leader candidates. */
  leaderFlags?: string[];
}

export interface LoadedCluster {
  readonly cluster: BenchCluster;
  readonly fleet: AgentFleet;
  /** The leader the units were submitted to, holding the election key. */
  readonly leader: DaemonNode;
  /** The units submitted, all active. */
  readonly names: string[];
  /** How many the watcher saw active. */
  readonly active: number;
  /** Stops the agents, then the cluster. */
  dispose(): Promise<void>;
}

export async function startLoadedCluster(o: LoadedClusterOptions): Promise<LoadedCluster> {
  const cluster = await startBenchCluster({
    leaders: 2,
    systemdAgents: 0,
    agentTtl: '10s',
    leaseTtl: '2s',
    leaderFlags: o.leaderFlags,
  });
  let fleet: AgentFleet | undefined;
  let watcher: ActiveWatcher | undefined;
  const dispose = async (): Promise<void> => {
    await watcher?.close();
    await fleet?.stop();
    await cluster.dispose();
  };
  try {
    fleet = await AgentFleet.start({
      cluster: cluster.clusterName,
      natsUrl: cluster.nats.url,
      leaderFrom: { etcdEndpoints: cluster.etcd.endpoints },
      agentTtlMs: 10_000,
      agents: o.agents,
      processes: o.processes,
    });
    await waitReady(cluster.leaders[0].endpoint, o.agents, 120_000);
    const leader = await cluster.currentLeader();
    watcher = new ActiveWatcher(() => leader.endpoint);
    await watcher.ready;
    const api = connectApi(leader.endpoint, { requestTimeoutMs: 120_000 });
    const names = unitNames(o.prefix, o.units);
    try {
      await submitLaunched(api, names);
    } finally {
      api.close();
    }
    const active = await watcher.waitActive(names, 600_000);
    await watcher.close();
    watcher = undefined;
    return { cluster, fleet, leader, names, active, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
