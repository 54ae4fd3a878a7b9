import fs from 'node:fs';
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
import { clip, ErrorCode, errorText, FlotillaError } from '../errors';
import type { Logger } from '../log';
import type { LogStore } from '../store/types';
import { sleep } from '../store/common';
import type { DaemonConfig } from './config';
import { ApiRouter, readOnlyView } from './router';
import { makeDriver, startLocalAgent, type LocalAgent } from './wiring';
import { openStore } from './stores';
import { DaemonMetrics } from './metrics';
import { startHealthServer, storeProbe, type HttpEndpoint } from './health';
import { cliVersion } from '../version';
import type { ActivatedSocket } from './sd';
import { natsSecurity } from './stores';
import { checkAdvertise, checkApiExposure, httpExposureWarning } from './exposure';
import { lockDirectory } from './dir-lock';
import { CampaignRetry } from './campaign-retry';
import { subjects } from '../protocol/subjects';
import { clientTls, serverPem, serverTls } from '../api/tls';
import { VizServer } from '../viz/server';
import { liveBackend } from '../viz/backend';
import { schemaCheckedTerm } from '../history/schema';
import { readToCopy } from '../history/source';

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
  /** The step stop() is at ('' before it starts): what a shutdown that hangs is waiting for. */
  stopStep(): string;
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
export interface DaemonOptions {
  /** Sockets passed by systemd (socket activation) for the fleet API. */
  listenFds?: ActivatedSocket[];
}

export async function startDaemon(
  cfg: DaemonConfig,
  log: Logger,
  opts: DaemonOptions = {},
): Promise<DaemonHandle> {
  // One daemon per state: dev mode's data directory, the process driver's units.
  const unlock = cfg.dev
    ? lockDirectory(cfg.data_dir, 'data directory')
    : cfg.driver === 'process'
      ? lockDirectory(cfg.units_directory, 'units directory')
      : () => undefined;
  const machineId = resolveMachineId(cfg);
  const ip = cfg.public_ip || firstPublicIp();
  const dlog = log.child({ machine: machineId.slice(0, 8) });

  let hub: LocalHub | undefined;
  const insecure = checkApiExposure(cfg);
  for (const w of insecure) dlog.warn(w);
  const httpExposed = httpExposureWarning(cfg);
  if (httpExposed) dlog.warn(httpExposed);
  const store: LogStore = openStore(cfg);
  let engine: Engine | undefined;
  let agent: LocalAgent | undefined;
  // Each bus connection's state, for /readyz and flotilla_bus_up.
  const buses = new Map<string, boolean>();
  if (!cfg.disable_agent) buses.set('agent', false);
  if (!cfg.disable_engine) buses.set('engine', false);
  const storeUp = storeProbe(store);
  const metrics = new DaemonMetrics({
    // A leader past its lease is not reported as one (flotilla_is_leader and the engine series).
    engine: () => (engine?.holdsLease() ? engine : undefined),
    agent: () => agent,
    leader: () => router.leaderInfo,
    storeUp,
    version: cliVersion(),
  });
  const connectBus = async (role: 'agent' | 'engine'): Promise<Bus> => {
    const name = `flotillad ${role} ${machineId}`;
    const bus = cfg.dev
      ? (hub ??= new LocalHub()).connect()
      : await NatsBus.connect({
          servers: cfg.nats_servers,
          name,
          ...natsSecurity(cfg),
          // Replies come to this machine's own inboxes: the only ones its NATS user may read.
          inboxPrefix: subjects(cfg.cluster).inbox(machineId),
          onError: (message) =>
            dlog.warn(
              message.includes('PERMISSIONS_VIOLATION')
                ? 'the NATS server refused a publish or subscribe of this identity: is its authorization (flotilla bus-auth) made for this cluster and machine ID? (the server logs the subject)'
                : 'NATS error',
              { connection: name, error: message },
            ),
        });
    buses.set(role, true);
    metrics.setBus(role, true);
    bus.onStatus((st) => {
      buses.set(role, st === 'connected');
      metrics.setBus(role, st === 'connected');
    });
    return bus;
  };

  // TLS on the gRPC API's TCP listeners; the same certificate (and CA) when this daemon forwards
  // calls to the leader, which checks it like any client's.
  const tlsFiles = { cert: cfg.grpc_tls_cert, key: cfg.grpc_tls_key, ca: cfg.grpc_tls_ca };
  const serverCredentials = serverTls(tlsFiles);
  const forwardCredentials = serverCredentials
    ? clientTls(tlsFiles, { cert: 'grpc_tls_cert', key: 'grpc_tls_key', ca: 'grpc_tls_ca' })
    : undefined;
  const router = new ApiRouter({ machine: machineId }, forwardCredentials);
  const internal =
    (kind: 'grpc' | 'fleet') =>
    (what: string, err: unknown): void => {
      metrics.internalError(kind);
      dlog.error('API handler failed; answered INTERNAL', {
        api: kind,
        call: what,
        error: clip(err instanceof Error ? (err.stack ?? err.message) : errorText(err), 2000),
      });
    };
  const served = metrics.instrumentApi(router);
  const api: ApiServerHandle = await startApiServer({
    api: served,
    listen: cfg.grpc_listen,
    credentials: serverCredentials,
    onInternalError: internal('grpc'),
  });
  const advertise =
    cfg.grpc_advertise ||
    api.addresses.find((a) => !a.startsWith('unix:'))?.replace(/^(0\.0\.0\.0|\[::\])/, ip) ||
    api.addresses[0];
  try {
    checkAdvertise(cfg, advertise);
  } catch (err) {
    await api.close();
    await store.close();
    throw err;
  }
  dlog.info('API listening', { addresses: api.addresses.join(','), advertise });
  // fleet's HTTP API over the same router: any daemon answers, a follower forwards to the leader.
  let fleetApi: FleetApiServerHandle | undefined;
  // Sockets systemd passed (flotillad.socket) serve the fleet API, as they did in fleet.
  const activated = opts.listenFds ?? [];
  if (cfg.fleet_api_listen.length > 0 || activated.length > 0) {
    try {
      fleetApi = await startFleetApiServer({
        api: served,
        listen: cfg.fleet_api_listen,
        fds: activated.map((s) => s.fd),
        tokenLimit: cfg.token_limit,
        // HTTPS with the gRPC API's certificate and CA (mTLS, roles) on TCP listeners.
        tls: serverPem(tlsFiles),
        log: dlog.child({ component: 'fleet-api' }),
        onInternalError: internal('fleet'),
      });
      // A passed TCP socket's address is known only now: the same rule as a configured one.
      const passed = checkApiExposure({
        ...cfg,
        grpc_listen: [],
        fleet_api_listen: fleetApi.passedTcp,
      });
      for (const w of passed) dlog.warn(w);
      insecure.push(...passed);
    } catch (err) {
      await fleetApi?.close();
      await api.close();
      throw err;
    }
    dlog.info('fleet API v1 listening', { addresses: fleetApi.addresses.join(',') });
  }

  // ---- HTTP: /healthz, /readyz, /metrics and the visualizer (/ui/)
  let http: HttpEndpoint | undefined;
  const viz = cfg.http_listen ? new VizServer(liveBackend(() => engine, store)) : undefined;
  if (cfg.http_listen) {
    try {
      http = await startHealthServer(
        cfg.http_listen,
        {
          machineId,
          leader: () => router.leaderInfo,
          isLeader: () => engine?.holdsLease() === true,
          buses: () => buses,
          storeUp,
          insecure,
        },
        metrics,
        viz,
      );
    } catch (err) {
      await fleetApi?.close();
      await api.close();
      await store.close();
      throw err;
    }
    dlog.info('HTTP listening (/healthz, /readyz, /metrics, /ui/)', { address: http.address });
  }

  const unwatchLeader = store.watchLeader((l) => {
    router.setLeader(l);
    agent?.handle.setLeader(l);
    dlog.info('leader', {
      leader: l ? `${l.machine.slice(0, 8)}@${l.address} epoch ${l.epoch}` : 'none',
    });
  });

  if (!cfg.disable_agent) {
    const driver = await makeDriver(cfg, dlog);
    agent = await startLocalAgent({
      cfg,
      machineId,
      ip,
      bus: await connectBus('agent'),
      driver,
      log: dlog,
    });
    agent.handle.setLeader(router.leaderInfo);
  }

  // ---- leader campaign: campaign, lead until the term ends, campaign again.
  const campaignAbort = new AbortController();
  let campaignDone: Promise<void> = Promise.resolve();
  if (!cfg.disable_engine) {
    const engineBus = await connectBus('engine');
    const retry = new CampaignRetry({ cluster: cfg.cluster, log: dlog });
    const subjectNames = cfg.nats_legacy_subjects ? 'both' : 'named';
    campaignDone = (async () => {
      while (!campaignAbort.signal.aborted) {
        try {
          const term = schemaCheckedTerm(
            metrics.instrumentTerm(
              await store.campaign(
                { machine: machineId, address: advertise },
                campaignAbort.signal,
              ),
            ),
            { allowUnknown: cfg.allow_unknown_events },
          );
          retry.succeeded();
          dlog.info('elected leader', { epoch: term.epoch });
          const e = await Engine.start({
            term,
            bus: engineBus,
            cluster: cfg.cluster,
            machineId,
            address: advertise,
            agentTtlMs: cfg.agent_ttl,
            livenessGraceMs: cfg.agent_ttl_grace || cfg.agent_ttl,
            massLossThreshold: cfg.mass_loss_threshold,
            snapshotEvery: cfg.snapshot_every,
            snapshotIntervalMs: cfg.snapshot_interval,
            retention: cfg.log_retention,
            retentionAgeMs: cfg.log_retention_age,
            subjectNames,
            log: dlog,
          }).catch(async (err: unknown) => {
            // Refused at restore (or failed before leading): let another candidate lead.
            await term.resign().catch(() => undefined);
            throw err;
          });
          engine = e;
          const unfollow = metrics.followEngine(e);
          const engineApi = new EngineApi(
            e,
            engineBus,
            cfg.cluster,
            { machineId, address: advertise, subjectNames },
            { maxUnitBytes: cfg.max_unit_bytes },
            () => store.readAll(),
            () => readToCopy(store),
          );
          let endReason = '';
          e.onStopped((reason) => (endReason = reason));
          router.setStale(undefined);
          // Deposed the moment its lease may have expired or the election key names a newer
          // term, even before the engine notices and stops.
          router.setLocal(engineApi, () => {
            const l = router.leaderInfo;
            return e.holdsLease() && !(l && l.machine !== machineId && l.epoch > e.epoch);
          });
          await new Promise<void>((resolve) => {
            if (e.isStopped) return resolve();
            e.onStopped(() => resolve());
            campaignAbort.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          router.setLocal(undefined);
          unfollow();
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
            // Leaving without resigning only delays the next leader by the lease's TTL.
            await term.resign().catch((err: unknown) =>
              dlog.warn('resigning the leadership failed; the lease will expire', {
                error: errorText(err),
              }),
            );
          } else {
            dlog.warn('leadership ended; campaigning again');
          }
        } catch (err) {
          if (campaignAbort.signal.aborted) break;
          await sleep(retry.failed(err), campaignAbort.signal);
        }
      }
      await engineBus.close();
    })();
  }

  let stopped = false;
  let stopStep = '';
  return {
    machineId,
    grpcAddresses: api.addresses,
    httpAddress: http?.address,
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
      await stopAll();
      stopStep = 'closing the HTTP listener';
      viz?.close();
      await http?.close();
      unlock();
      stopStep = 'done';
    },
    stopStep: () => stopStep,
  };

  async function stopAll(): Promise<void> {
    stopStep = 'ending the leader campaign and the engine';
    campaignAbort.abort();
    await campaignDone;
    unwatchLeader();
    stopStep = 'stopping the agent';
    await agent?.stop(cfg.unload_on_shutdown);
    stopStep = 'closing the fleet API';
    await fleetApi?.close();
    stopStep = 'closing the gRPC API';
    await api.close();
    router.close();
    stopStep = 'closing the store';
    await store.close();
  }
}
