import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet } from './http';
import { natsPorts } from './nats';
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
 * Starts `size` nats-server processes on loopback, joined by routes into one cluster, each in a
 * fresh temp directory; resolves once every node has a route to every other. Each node picks its
 * own client, route and monitoring ports (`-1`, read back from its ports file: no port handed
 * over from a probe, so no race with another process), so the nodes start one after the other,
 * each routed to those before it; then every node's configuration is rewritten with its ports
 * and routes to every other, for restarts.
 */
export async function startNatsCluster(size: number): Promise<NatsCluster> {
  const binary = process.env.FLOTILLA_NATS_BIN ?? DEFAULT_BIN;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-natsc-'));
  const clusterName = path.basename(root).replace(/[^A-Za-z0-9]/g, '');
  const ports: { client: number; route: number; monitor: number }[] = [];
  const conf = (i: number, own: { client: number; route: number; monitor: number }): string =>
    [
      `server_name: n${i}`,
      `listen: 127.0.0.1:${own.client}`,
      `http: 127.0.0.1:${own.monitor}`,
      'max_payload: 8MB',
      `ports_file_dir: "${path.join(root, `n${i}`)}"`,
      ...(size > 1
        ? [
            'cluster {',
            `  name: ${clusterName}`,
            `  listen: 127.0.0.1:${own.route}`,
            `  routes: [${ports
              .filter((_, j) => j !== i)
              .map((p) => `nats-route://127.0.0.1:${p.route}`)
              .join(', ')}]`,
            '}',
          ]
        : []),
      '',
    ].join('\n');
  // While starting, node i waits for routes to the i nodes before it; after, to every node up.
  let starting = true;
  const nodes: NatsNode[] = [];
  const nodesUp = (): NatsNode[] => nodes.filter((n) => n.server.running);
  const makeNode = (i: number): NatsNode => {
    const name = `n${i}`;
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    const confFile = path.join(dir, 'nats.conf');
    fs.writeFileSync(confFile, conf(i, { client: -1, route: -1, monitor: -1 }));
    let own: { client: number; route: number; monitor: number } | undefined;
    const monitor = (): string => `http://127.0.0.1:${own?.monitor ?? 0}`;
    const routed = async (): Promise<boolean> => {
      if (!own) {
        const p = natsPorts(dir, server.pid);
        if (!p || (size > 1 && !p.route)) return false;
        own = { client: p.client, monitor: p.monitor, route: p.route ?? 0 };
      }
      if ((await httpGet(`${monitor()}/healthz`)).status !== 200) return false;
      if (size === 1) return true;
      const r = await json<{ num_routes: number; routes?: { remote_id?: string }[] }>(
        `${monitor()}/routez`,
      );
      // Several connections per pair may exist (route pooling): count distinct peers.
      const peers = new Set((r.routes ?? []).map((x) => x.remote_id ?? ''));
      return peers.size >= (starting ? i : nodesUp().length - 1);
    };
    const server: ManagedServer = new ManagedServer({
      name: 'nats-server',
      binary,
      debianPackage: 'nats-server',
      dir,
      args: ['-c', confFile],
      ready: routed,
    });
    return {
      name,
      get url() {
        return `nats://127.0.0.1:${own?.client ?? 0}`;
      },
      server,
      async clientNames() {
        const c = await json<{ connections?: { name?: string }[] }>(
          `${monitor()}/connz?limit=1024`,
        );
        return (c.connections ?? []).map((x) => x.name ?? '');
      },
      stop: (kill = false) => server.stop(kill ? 'SIGKILL' : 'SIGTERM'),
      async start() {
        await server.start();
        if (own && ports.length === i) ports.push(own);
      },
    };
  };
  const dispose = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.server.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) {
      nodes.push(makeNode(i));
      await nodes[i].start();
    }
    for (let i = 0; i < size; i++)
      fs.writeFileSync(path.join(root, `n${i}`, 'nats.conf'), conf(i, ports[i]));
    // Every node routed to every other (the first ones learnt of the later ones as they came).
    starting = false;
    const deadline = Date.now() + 20_000;
    for (const n of nodes)
      while (!(await n.server.spec.ready().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`nats cluster: ${n.name} lacks routes`);
        await new Promise((r) => setTimeout(r, 50));
      }
  } catch (err) {
    await dispose();
    throw err;
  }
  return { urls: nodes.map((n) => n.url), nodes, dispose, [Symbol.asyncDispose]: dispose };
}
