import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterApi } from '../../../src/api/types';
import { fleetApiHandler } from '../../../src/fleetapi';
import { startEngineCluster, type EngineCluster } from '../../helpers/engine-cluster';

/** A fleet API handler on an in-process HTTP server on loopback, and a client that speaks to it. */
export interface Served {
  /** Sends a request; `body` objects are sent as JSON with fleetctl's Content-Type. */
  req(
    method: string,
    path: string,
    body?: unknown,
    headers?: http.OutgoingHttpHeaders,
  ): Promise<Res>;
  close(): Promise<void>;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export function request(
  target: { port: number } | { socketPath: string },
  method: string,
  path: string,
  body?: unknown,
  headers: http.OutgoingHttpHeaders = {},
): Promise<Res> {
  const data =
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const h: http.OutgoingHttpHeaders = { ...headers };
  if (data !== undefined && !('content-type' in h)) h['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const r = http.request(
      { ...target, host: '127.0.0.1', method, path, headers: h, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    r.on('error', reject);
    r.end(data);
  });
}

export async function serve(api: ClusterApi, tokenLimit?: number): Promise<Served> {
  const server = http.createServer(fleetApiHandler(api, { tokenLimit }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    req: (method, path, body, headers) => request({ port }, method, path, body, headers),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Before each test: the real engine with three machines (test/helpers/engine-cluster.ts)
 * behind a served fleet API, handed to `use`; after it, both closed.
 */
export function serveClusterEachTest(use: (cluster: EngineCluster, api: Served) => void): void {
  let cluster: EngineCluster;
  let api: Served;
  beforeEach(async () => {
    cluster = await startEngineCluster();
    api = await serve(cluster.api);
    use(cluster, api);
  });
  afterEach(async () => {
    await api.close();
    await cluster.close();
  });
}
