import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ApiServerHandle } from '../api/server';
import { startApiServer } from '../api/server';
import type { Bus } from '../bus/types';
import { LocalHub } from '../bus/local';
import { NatsBus } from '../bus/nats';
import { EngineApi } from '../engine/api';
import type { FleetApiServerHandle } from '../fleetapi/server';
import { startFleetApiServer } from '../fleetapi/server';
import { Engine } from '../engine/engine';
import { ErrorCode, FlotillaError } from '../errors';
import type { Logger } from '../log';
import type { LogStore } from '../store/types';
import type { DaemonConfig } from './config';
import { ApiRouter, readOnlyView } from './router';
import { makeDriver, startLocalAgent, type LocalAgent } from './wiring';
import { openStore } from './stores';
import { renderMetrics } from './metrics';
import { natsSecurity } from './stores';
import { clientTls, serverTls } from '../api/tls';

export interface DaemonHandle {
  readonly machineId: string;
  /** gRPC addresses actually listened on (port 0 resolved). */
  readonly grpcAddresses: string[];
  readonly httpAddress?: string;
  /** fleet API v1 addresses actually listened on (`fleet_api_listen`; empty when off). */
  readonly fleetApiAddresses: string[];
  readonly router: ApiRouter;
  engine(): Engine | undefined;
  /** Applies a re-read configuration (SIGHUP): metadata and log level now, the rest on restart. */
  reload(next: DaemonConfig): void;
  /** Stops everything; units keep running unless `unload_on_shutdown`. */
  stop(): Promise<void>;
}

/** Reads /etc/machine-id, or in dev mode a machine ID kept in the data directory. */
export function resolveMachineId(cfg: DaemonConfig): string {
  if (cfg.machine_id) return cfg.machine_id;
  if (cfg.dev) {
    const file = path.join(cfg.data_dir, 'machine-id');
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
    const id = randomBytes(16).toString('hex');
    fs.mkdirSync(cfg.data_dir, { recursive: true });
    fs.writeFileSync(file, id + '\n');
    return id;
  }
  try {
    const id = fs.readFileSync('/etc/machine-id', 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(id)) return id;
  } catch {
    /* fall through */
  }
  throw new FlotillaError(
    ErrorCode.ConfigInvalid,
    'machine_id is not set and /etc/machine-id is missing or invalid',
    {
      details: { field: 'machine_id' },
    },
  );
}

function firstPublicIp(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * Starts flotillad: the API server, the agent (unless disable_agent) and the leader campaign
 * (unless disable_engine). Each part fails on its own terms: losing the store or the bus never
 * stops the agent's units.
 */
export async function startDaemon(cfg: DaemonConfig, log: Logger): Promise<DaemonHandle> {
  const machineId = resolveMachineId(cfg);
  const ip = cfg.public_ip || firstPublicIp();
  const dlog = log.child({ machine: machineId.slice(0, 8) });

  let hub: LocalHub | undefined;
  const connectBus = async (name: string): Promise<Bus> => {
    if (cfg.dev) return (hub ??= new LocalHub()).connect();
    return NatsBus.connect({ servers: cfg.nats_servers, name, ...natsSecurity(cfg) });
  };

  const store: LogStore = openStore(cfg);
  // TLS on the gRPC API's TCP listeners; the same certificate (and CA) when this daemon forwards
  // calls to the leader, which checks it like any client's.
  const tlsFiles = { cert: cfg.grpc_tls_cert, key: cfg.grpc_tls_key, ca: cfg.grpc_tls_ca };
  const serverCredentials = serverTls(tlsFiles);
  const forwardCredentials = serverCredentials
    ? clientTls(tlsFiles, { cert: 'grpc_tls_cert', key: 'grpc_tls_key', ca: 'grpc_tls_ca' })
    : undefined;
  const router = new ApiRouter({ machine: machineId }, forwardCredentials);
  const api: ApiServerHandle = await startApiServer({
    api: router,
    listen: cfg.grpc_listen,
    credentials: serverCredentials,
  });
  const advertise =
    cfg.grpc_advertise ||
    api.addresses.find((a) => !a.startsWith('unix:'))?.replace(/^(0\.0\.0\.0|\[::\])/, ip) ||
    api.addresses[0];
  dlog.info('API listening', { addresses: api.addresses.join(','), advertise });
  // fleet's HTTP API over the same router: any daemon answers, a follower forwards to the leader.
  let fleetApi: FleetApiServerHandle | undefined;
  if (cfg.fleet_api_listen.length > 0) {
    try {
      fleetApi = await startFleetApiServer({
        api: router,
        listen: cfg.fleet_api_listen,
        tokenLimit: cfg.token_limit,
        log: dlog.child({ component: 'fleet-api' }),
      });
    } catch (err) {
      await api.close();
      throw err;
    }
    dlog.info('fleet API v1 listening', { addresses: fleetApi.addresses.join(',') });
  }

  const unwatchLeader = store.watchLeader((l) => {
    router.setLeader(l);
    dlog.info('leader', {
      leader: l ? `${l.machine.slice(0, 8)}@${l.address} epoch ${l.epoch}` : 'none',
    });
  });

  let agent: LocalAgent | undefined;
  if (!cfg.disable_agent) {
    const driver = await makeDriver(cfg, dlog);
    agent = await startLocalAgent({
      cfg,
      machineId,
      ip,
      bus: await connectBus(`flotillad agent ${machineId}`),
      driver,
      log: dlog,
    });
  }

  // ---- leader campaign: campaign, lead until the term ends, campaign again.
  let engine: Engine | undefined;
  const campaignAbort = new AbortController();
  let campaignDone: Promise<void> = Promise.resolve();
  if (!cfg.disable_engine) {
    const engineBus = await connectBus(`flotillad engine ${machineId}`);
    campaignDone = (async () => {
      while (!campaignAbort.signal.aborted) {
        try {
          const term = await store.campaign(
            { machine: machineId, address: advertise },
            campaignAbort.signal,
          );
          dlog.info('elected leader', { epoch: term.epoch });
          const e = await Engine.start({
            term,
            bus: engineBus,
            cluster: cfg.cluster,
            machineId,
            address: advertise,
            agentTtlMs: cfg.agent_ttl,
            snapshotEvery: cfg.snapshot_every,
            snapshotIntervalMs: cfg.snapshot_interval,
            retention: cfg.log_retention,
            retentionAgeMs: cfg.log_retention_age,
            log: dlog,
          });
          engine = e;
          const engineApi = new EngineApi(
            e,
            engineBus,
            cfg.cluster,
            { machineId, address: advertise },
            () => store.readAll(),
          );
          let endReason = '';
          e.onStopped((reason) => (endReason = reason));
          router.setStale(undefined);
          router.setLocal(engineApi);
          await new Promise<void>((resolve) => {
            if (e.isStopped) return resolve();
            e.onStopped(() => resolve());
            campaignAbort.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          router.setLocal(undefined);
          // Until a leader is known again (most often: the store is unreachable and no one can
          // win), keep answering reads from this term's state and refuse writes clearly.
          if (!campaignAbort.signal.aborted) {
            router.setStale(
              readOnlyView(
                engineApi,
                `this daemon lost its leadership (${endReason}) and no new leader is known`,
              ),
            );
          }
          engine = undefined;
          if (campaignAbort.signal.aborted) {
            await e.stop('shutting down');
            await term.resign().catch(() => undefined);
          } else {
            dlog.warn('leadership ended; campaigning again');
          }
        } catch (err) {
          if (campaignAbort.signal.aborted) break;
          dlog.warn('campaign failed; retrying', { error: (err as Error).message });
          await new Promise((r) => setTimeout(r, 500 + Math.random() * 500));
        }
      }
      await engineBus.close();
    })();
  }

  // ---- HTTP: /healthz and /metrics
  let httpServer: http.Server | undefined;
  let httpAddress: string | undefined;
  if (cfg.http_listen) {
    httpServer = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ok: true,
            machine: machineId,
            leader: router.leaderInfo ?? null,
            engine: engine !== undefined,
          }),
        );
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(renderMetrics({ machineId, engine, agent }));
      } else {
        res.writeHead(404).end('not found\n');
      }
    });
    const [host, port] = splitHostPort(cfg.http_listen);
    await new Promise<void>((resolve, reject) => {
      httpServer!.once('error', reject);
      httpServer!.listen(port, host, () => resolve());
    });
    const a = httpServer.address();
    httpAddress = a && typeof a === 'object' ? `${host}:${a.port}` : cfg.http_listen;
  }

  let stopped = false;
  return {
    machineId,
    grpcAddresses: api.addresses,
    httpAddress,
    fleetApiAddresses: fleetApi?.addresses ?? [],
    router,
    engine: () => engine,
    reload(next: DaemonConfig) {
      if (JSON.stringify(next.metadata) !== JSON.stringify(cfg.metadata)) {
        agent?.setMetadata(next.metadata);
        cfg.metadata = next.metadata;
      }
      const restartOnly = (Object.keys(next) as (keyof DaemonConfig)[]).filter(
        (k) => k !== 'metadata' && JSON.stringify(next[k]) !== JSON.stringify(cfg[k]),
      );
      if (restartOnly.length > 0)
        dlog.warn('changed settings take effect after a restart', { keys: restartOnly.join(',') });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      campaignAbort.abort();
      await campaignDone;
      unwatchLeader();
      await agent?.stop(cfg.unload_on_shutdown);
      await fleetApi?.close();
      await api.close();
      router.close();
      httpServer?.close();
      await store.close();
    },
  };
}

function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(addr)];
  return [addr.slice(0, i) || '0.0.0.0', Number(addr.slice(i + 1))];
}
