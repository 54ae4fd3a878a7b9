import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet } from './http';
import { freePort } from './ports';
import { ManagedServer } from './server';

export interface NatsNode {
  readonly name: string;
  /** Client URL, e.g. "nats://127.0.0.1:4222". */
  readonly url: string;
  readonly server: ManagedServer;
  /** Names of the clients connected to this node now (the `name` each gave at connect). */
  clientNames(): Promise<string[]>;
  /** Stops this node (SIGKILL with `kill`); its clients see a disconnect. */
  stop(kill?: boolean): Promise<void>;
  /** Starts it again on the same ports and configuration, and waits for its routes. */
  start(): Promise<void>;
}

export interface NatsCluster extends AsyncDisposable {
  /** Client URLs of every node. */
  readonly urls: string[];
  readonly nodes: NatsNode[];
  dispose(): Promise<void>;
}

const DEFAULT_BIN = '/usr/sbin/nats-server';

async function json<T>(url: string): Promise<T> {
  const res = await httpGet(url);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return JSON.parse(res.body) as T;
}

/**
 * Starts `size` nats-server processes on loopback, joined by routes into one cluster (every node
 * lists every other as a route), each on fresh client, route and monitoring ports in a fresh temp
 * directory; resolves once every node has a route to every other.
 */
export async function startNatsCluster(size: number): Promise<NatsCluster> {
  const binary = process.env.FLOTILLA_NATS_BIN ?? DEFAULT_BIN;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-natsc-'));
  const specs: { name: string; client: number; route: number; monitor: number }[] = [];
  for (let i = 0; i < size; i++)
    specs.push({
      name: `n${i}`,
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    });
  const routes = specs.map((s) => `nats-route://127.0.0.1:${s.route}`);
  const nodes: NatsNode[] = specs.map((s, i) => {
    const dir = path.join(root, s.name);
    fs.mkdirSync(dir);
    const conf = path.join(dir, 'nats.conf');
    fs.writeFileSync(
      conf,
      [
        `server_name: ${s.name}`,
        `listen: 127.0.0.1:${s.client}`,
        `http: 127.0.0.1:${s.monitor}`,
        'max_payload: 8MB',
        ...(size > 1
          ? [
              'cluster {',
              `  name: ${path.basename(root).replace(/[^A-Za-z0-9]/g, '')}`,
              `  listen: 127.0.0.1:${s.route}`,
              `  routes: [${routes.filter((_, j) => j !== i).join(', ')}]`,
              '}',
            ]
          : []),
        '',
      ].join('\n'),
    );
    const monitor = `http://127.0.0.1:${s.monitor}`;
    const routed = async (): Promise<boolean> => {
      if ((await httpGet(`${monitor}/healthz`)).status !== 200) return false;
      if (size === 1) return true;
      const r = await json<{ num_routes: number; routes?: { remote_id?: string }[] }>(
        `${monitor}/routez`,
      );
      // Several connections per pair may exist (route pooling): count distinct peers.
      const peers = new Set((r.routes ?? []).map((x) => x.remote_id ?? ''));
      const live = nodesUp().length - 1;
      return peers.size >= live;
    };
    const server = new ManagedServer({
      name: 'nats-server',
      binary,
      debianPackage: 'nats-server',
      dir,
      args: ['-c', conf],
      ready: routed,
    });
    return {
      name: s.name,
      url: `nats://127.0.0.1:${s.client}`,
      server,
      async clientNames() {
        const c = await json<{ connections?: { name?: string }[] }>(`${monitor}/connz?limit=1024`);
        return (c.connections ?? []).map((x) => x.name ?? '');
      },
      stop: (kill = false) => server.stop(kill ? 'SIGKILL' : 'SIGTERM'),
      start: () => server.start(),
    };
  });
  // While starting, every node must see all the others; after one stops, the ones still up.
  let starting = true;
  const nodesUp = (): NatsNode[] => (starting ? nodes : nodes.filter((n) => n.server.running));
  const dispose = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.server.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    await dispose();
    throw err;
  }
  starting = false;
  return { urls: nodes.map((n) => n.url), nodes, dispose, [Symbol.asyncDispose]: dispose };
}
