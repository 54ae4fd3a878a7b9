/**
 * flotillad's HTTP endpoint (`http_listen`): `/healthz` (the process answers), `/readyz` (it can
 * do its job: store reachable, bus connected, leader known) and `/metrics` (Prometheus).
 * Status codes mean what they say: 200 alive/ready, 503 not ready, 404 unknown path, 405 for
 * anything but GET/HEAD.
 */
import http from 'node:http';
import { ErrorCode, FlotillaError } from '../errors';
import type { LeaderInfo, LogStore } from '../store/types';
import type { DaemonMetrics } from './metrics';

/** How long `/readyz` (and a scrape) waits for the store before calling it unreachable. */
export const STORE_PROBE_MS = 2000;

/**
 * Asks the store who leads, within `timeoutMs`: true when it answered. Concurrent callers share
 * one probe, so a scrape storm against an unreachable store does not pile up requests.
 */
export function storeProbe(store: LogStore, timeoutMs = STORE_PROBE_MS): () => Promise<boolean> {
  let inflight: Promise<boolean> | undefined;
  return () =>
    (inflight ??= new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      store.leader().then(
        () => {
          clearTimeout(t);
          resolve(true);
        },
        () => {
          clearTimeout(t);
          resolve(false);
        },
      );
    }).finally(() => (inflight = undefined)));
}

export interface HealthSources {
  machineId: string;
  leader(): LeaderInfo | undefined;
  isLeader(): boolean;
  /** Each of this daemon's bus connections and whether it is up. */
  buses(): ReadonlyMap<string, boolean>;
  storeUp(): Promise<boolean>;
  /** What this daemon serves without authentication because grpc_insecure allows it (docs/security.md). */
  insecure?: string[];
}

export interface Readiness {
  ready: boolean;
  machine: string;
  checks: {
    store: { ok: boolean };
    bus: { ok: boolean; connections: Record<string, boolean> };
    leader: { ok: boolean; machine?: string; address?: string; epoch?: number; self: boolean };
  };
}

/** Ready: the store answered, every bus connection is up, and a leader is known. */
export async function readiness(src: HealthSources): Promise<Readiness> {
  const storeOk = await src.storeUp();
  const connections = Object.fromEntries(src.buses());
  const busOk = Object.values(connections).every((v) => v);
  const l = src.leader();
  return {
    ready: storeOk && busOk && l !== undefined,
    machine: src.machineId,
    checks: {
      store: { ok: storeOk },
      bus: { ok: busOk, connections },
      leader: { ok: l !== undefined, ...(l ?? {}), self: src.isLeader() },
    },
  };
}

export interface HttpEndpoint {
  /** host:port actually listened on (port 0 resolved). */
  readonly address: string;
  close(): Promise<void>;
}

/** More paths on the same listener (the visualizer): `handle` answers true when it served. */
export interface HttpExtension {
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

/** Serves /healthz, /readyz and /metrics on `listen` (host:port), and `extra`'s paths. */
export async function startHealthServer(
  listen: string,
  src: HealthSources,
  metrics: DaemonMetrics,
  extra?: HttpExtension,
): Promise<HttpEndpoint> {
  const server = http.createServer((req, res) => {
    if (extra?.handle(req, res)) return;
    void answer(req, res, src, metrics);
  });
  const [host, port] = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new FlotillaError(
          ErrorCode.ConfigInvalid,
          `http_listen ${listen}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message} (set http_listen to another host:port, or "" to turn it off)`,
          { details: { field: 'http_listen' } },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const address = a && typeof a === 'object' ? `${host}:${a.port}` : listen;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  src: HealthSources,
  metrics: DaemonMetrics,
): Promise<void> {
  const json = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body) + '\n');
  };
  try {
    const path = (req.url ?? '/').split('?')[0];
    if (!['/healthz', '/readyz', '/metrics'].includes(path)) {
      json(404, { error: 'not found', paths: ['/healthz', '/readyz', '/metrics'] });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      json(405, { error: 'method not allowed' });
      return;
    }
    if (path === '/healthz') {
      const insecure = src.insecure ?? [];
      json(200, {
        alive: true,
        machine: src.machineId,
        ...(insecure.length > 0 ? { insecure } : {}),
      });
    } else if (path === '/readyz') {
      const r = await readiness(src);
      json(r.ready ? 200 : 503, r);
    } else {
      const text = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(req.method === 'HEAD' ? undefined : text);
    }
  } catch (err) {
    json(500, { error: (err as Error).message });
  }
}

/** Splits `host:port` (`[::1]:9090` too); a bare port means loopback. */
export function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(addr)];
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return [host || '0.0.0.0', Number(addr.slice(i + 1))];
}
