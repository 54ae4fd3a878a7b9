/**
 * An in-process leader for the delivery comparison (figure 4): an Engine and its EngineApi on an
 * EtcdLogStore term, wired as src/daemon/daemon.ts wires them, serving gRPC. The only
 * difference between the two designs is the Bus the engine publishes on: NATS directly
 * (Flotilla), or HerdLeaderBus (fleet's shared etcd prefix, `--watch-all`).
 * Config: one JSON argument (LeaderConfig). Prints "ready" when it serves; SIGTERM stops it.
 */
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
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
  listen: string;
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
  const term = await store.campaign(
    { machine: machineId, address: cfg.listen },
    new AbortController().signal,
  );
  const engine = await Engine.start({
    term,
    bus,
    cluster: cfg.cluster,
    machineId,
    address: cfg.listen,
    agentTtlMs: cfg.agentTtlMs,
  });
  const api = new EngineApi(engine, bus, cfg.cluster, { machineId, address: cfg.listen });
  const server = await startApiServer({ api, listen: [cfg.listen] });
  process.stdout.write('ready\n');
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
