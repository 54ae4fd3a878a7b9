import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HarnessError, HarnessErrorCode } from './errors';
import { httpGet } from './http';
import { addressInUse, onFreshPorts } from './ports';
import { ManagedServer } from './server';

export interface EtcdOptions {
  /** Path of the etcd binary (default: $FLOTILLA_ETCD_BIN or /usr/bin/etcd). */
  binary?: string;
  /**
   * Serve clients over TLS with this certificate; with `ca`, clients must present a
   * certificate it signed (etcd's --client-cert-auth). Readiness is then probed on a plaintext
   * metrics URL.
   */
  tls?: { cert: string; key: string; ca?: string };
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly server: ManagedServer;
  /** Stops this member (SIGTERM, or SIGKILL with `kill`), keeping its data. */
  stop(kill?: boolean): Promise<void>;
  /** Starts a stopped member again on the same ports and data directory. */
  start(): Promise<void>;
}

export interface EtcdCluster extends AsyncDisposable {
  /** Client URLs of every member, e.g. ["http://127.0.0.1:41234"]. */
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** Stops every member and removes its data. */
  dispose(): Promise<void>;
}

const DEFAULT_BIN = '/usr/bin/etcd';

async function healthy(clientUrl: string): Promise<boolean> {
  const res = await httpGet(`${clientUrl}/health`);
  return res.status === 200 && res.body.includes('"health":"true"');
}

/**
 * Starts an etcd cluster of `size` members on loopback, on fresh ports in a
 * fresh temp directory, and waits until every member reports healthy.
 *
 * etcd cannot pick its own ports: it binds port 0 but then advertises `:0` to its cluster and
 * dials itself there (etcd 3.4, checked), and its members must know each other's peer URLs
 * before they start. So the ports are probed free and handed over (`onFreshPorts`), and the few
 * times another process takes one in between, etcd exits with "address already in use" and the
 * cluster is started again on fresh ports.
 */
export function startEtcdCluster(size: number, opts: EtcdOptions = {}): Promise<EtcdCluster> {
  return onFreshPorts(
    3 * size,
    (ports) => startEtcdClusterOnce(size, opts, ports),
    (err) =>
      err instanceof HarnessError && err.code === HarnessErrorCode.ExitedEarly && addressInUse(err),
  );
}

/** `ports`: three a member (client, peer, metrics). */
async function startEtcdClusterOnce(
  size: number,
  opts: EtcdOptions,
  ports: number[],
): Promise<EtcdCluster> {
  const binary = opts.binary ?? process.env.FLOTILLA_ETCD_BIN ?? DEFAULT_BIN;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-etcd-'));
  const specs: { name: string; client: number; peer: number; metrics: number }[] = [];
  for (let i = 0; i < size; i++) {
    specs.push({
      name: `m${i}`,
      client: ports[3 * i],
      peer: ports[3 * i + 1],
      metrics: ports[3 * i + 2],
    });
  }
  const tls = opts.tls;
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const members: EtcdMember[] = specs.map((s) => {
    const clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${s.client}`;
    const metricsUrl = `http://127.0.0.1:${s.metrics}`;
    const tlsArgs = tls
      ? [
          '--cert-file',
          tls.cert,
          '--key-file',
          tls.key,
          ...(tls.ca ? ['--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
          '--listen-metrics-urls',
          metricsUrl,
        ]
      : [];
    const dir = path.join(root, s.name);
    fs.mkdirSync(dir, { recursive: true });
    const server = new ManagedServer({
      name: 'etcd',
      binary,
      debianPackage: 'etcd-server',
      dir,
      args: [
        '--name',
        s.name,
        '--data-dir',
        path.join(dir, 'data'),
        '--listen-client-urls',
        clientUrl,
        '--advertise-client-urls',
        clientUrl,
        '--listen-peer-urls',
        `http://127.0.0.1:${s.peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${s.peer}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        path.basename(root),
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
        '--log-level',
        'error',
        ...tlsArgs,
      ],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH },
      ready: () => healthy(tls ? metricsUrl : clientUrl),
      readyTimeoutMs: 30000,
    });
    return {
      name: s.name,
      clientUrl,
      server,
      stop: (kill = false) => server.stop(kill ? 'SIGKILL' : 'SIGTERM'),
      start: () => server.start(),
    };
  });
  try {
    // Members of a new cluster wait for each other, so start them together.
    await Promise.all(members.map((m) => m.start()));
  } catch (err) {
    await Promise.all(members.map((m) => m.server.stop()));
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const dispose = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.server.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** Starts a single-member etcd. */
export function startEtcd(opts: EtcdOptions = {}): Promise<EtcdCluster> {
  return startEtcdCluster(1, opts);
}
