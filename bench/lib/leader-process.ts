/**
 * An in-process leader for the delivery comparison (figure 4): an Engine and its EngineApi on an
 * EtcdLogStore term, wired as src/daemon/daemon.ts wires them, serving gRPC. The only
 * difference between the two designs is the Bus the engine publishes on: NATS directly
 * (Flotilla), or HerdLeaderBus (fleet's shared etcd prefix, `--watch-all`).
 * Config: one JSON argument (LeaderConfig). It serves gRPC on a loopback port it picks and prints
 * "ready ADDRESS" when it serves; SIGTERM stops it.
 */
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { API_METHODS, type ClusterApi } from '../../src/api/methods';
import { startApiServer } from '../../src/api/server';
import { NatsBus } from '../../src/bus/nats';
import type { Bus } from '../../src/bus/types';
import { EngineApi } from '../../src/engine/api';
import { Engine } from '../../src/engine/engine';
import { EtcdLogStore } from '../../src/store/etcd';
import { HerdLeaderBus } from './herd';

export interface LeaderConfig {
  cluster: string;
  natsUrl: string;
  etcdEndpoints: string[];
  agentTtlMs: number;
  watchAll?: { prefix: string };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as LeaderConfig;
  const machineId = randomBytes(16).toString('hex');
  const store = new EtcdLogStore({
    endpoints: cfg.etcdEndpoints,
    cluster: cfg.cluster,
    leaseTtlSeconds: 2,
  });
  const nats = await NatsBus.connect({ servers: [cfg.natsUrl], name: 'bench leader' });
  let etcd: Etcd3 | undefined;
  let bus: Bus = nats;
  if (cfg.watchAll) {
    etcd = new Etcd3({ hosts: cfg.etcdEndpoints });
    bus = new HerdLeaderBus(nats, etcd, cfg.watchAll.prefix);
  }
  // The server binds port 0 first: the address the leader campaigns with is known only then, and
  // the engine behind the server comes after (nobody calls before "ready" names the address).
  const behind: { api?: ClusterApi } = {};
  const late = Object.fromEntries(
    API_METHODS.map((m) => [
      m.name,
      (...args: unknown[]) => (behind.api![m.name] as (...a: unknown[]) => unknown)(...args),
    ]),
  ) as ClusterApi;
  const server = await startApiServer({ api: late, listen: ['127.0.0.1:0'] });
  const address = server.addresses[0];
  const term = await store.campaign({ machine: machineId, address }, new AbortController().signal);
  const engine = await Engine.start({
    term,
    bus,
    cluster: cfg.cluster,
    machineId,
    address,
    agentTtlMs: cfg.agentTtlMs,
  });
  behind.api = new EngineApi(engine, bus, cfg.cluster, { machineId, address });
  process.stdout.write(`ready ${address}\n`);
  process.on('SIGTERM', () => {
    void (async () => {
      await server.close();
      await engine.stop('bench done');
      await term.resign().catch(() => undefined);
      await bus.close();
      etcd?.close();
      await store.close();
      process.exit(0);
    })();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`leader: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
