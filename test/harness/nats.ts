import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet } from './http';
import { readPortsFile } from './ports';
import { ManagedServer } from './server';

export interface NatsOptions {
  /** Path of the nats-server binary (default: $FLOTILLA_NATS_BIN or /usr/sbin/nats-server). */
  binary?: string;
  /** The server's max_payload (default "8MB"; NATS's own default is "1MB"). */
  maxPayload?: string;
  /** Serve clients over TLS; with `ca`, clients must present a certificate it signed. */
  tls?: { cert: string; key: string; ca?: string };
  /** Require this user and password of every client. */
  auth?: { user: string; password: string };
  /** Configuration appended as is (e.g. the `authorization` block `flotilla bus-auth` writes). */
  config?: string;
}

export interface NatsServer extends AsyncDisposable {
  /** Client URL, e.g. "nats://127.0.0.1:4222". */
  readonly url: string;
  readonly port: number;
  readonly server: ManagedServer;
  /** Stops the server (SIGKILL with `kill`); clients see a disconnect. */
  stop(kill?: boolean): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

const DEFAULT_BIN = '/usr/sbin/nats-server';

/**
 * Starts nats-server on ports it picks itself (`-1`: no port handed over from a probe, so no race
 * with another process), read back from the ports file it writes (`ports_file_dir`); the
 * monitoring endpoint is the readiness probe. A restart (`start()`) keeps the same ports.
 */
export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const binary = opts.binary ?? process.env.FLOTILLA_NATS_BIN ?? DEFAULT_BIN;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-nats-'));
  const conf = path.join(dir, 'nats.conf');
  const writeConf = (port: number, monitor: number): void =>
    fs.writeFileSync(
      conf,
      // 8 MiB payloads: a full schedule for one machine with tens of thousands of units fits in one reply.
      `listen: 127.0.0.1:${port}\nhttp: 127.0.0.1:${monitor}\nmax_payload: ${opts.maxPayload ?? '8MB'}\nmax_pending: 256MB\n` +
        `ports_file_dir: "${dir}"\n` +
        (opts.tls
          ? `tls {\n  cert_file: "${opts.tls.cert}"\n  key_file: "${opts.tls.key}"\n` +
            (opts.tls.ca ? `  ca_file: "${opts.tls.ca}"\n  verify: true\n` : '') +
            '}\n'
          : '') +
        (opts.auth
          ? `authorization {\n  user: "${opts.auth.user}"\n  password: "${opts.auth.password}"\n}\n`
          : '') +
        (opts.config ?? ''),
    );
  writeConf(-1, -1);
  let ports: { client: number; monitor: number } | undefined;
  const server: ManagedServer = new ManagedServer({
    name: 'nats-server',
    binary,
    debianPackage: 'nats-server',
    dir,
    args: ['-c', conf],
    ready: async () => {
      ports ??= natsPorts(dir, server.pid);
      if (!ports) return false;
      return (await httpGet(`http://127.0.0.1:${ports.monitor}/healthz`)).status === 200;
    },
  });
  try {
    await server.start();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { client: port, monitor } = ports!;
  // Restarts come back on the same ports, as clients expect of a server they reconnect to.
  writeConf(port, monitor);
  const dispose = () => server.dispose();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    server,
    stop: (kill = false) => server.stop(kill ? 'SIGKILL' : 'SIGTERM'),
    start: () => server.start(),
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** The client and monitoring ports the nats-server of `pid` wrote in its ports file, if it has. */
export function natsPorts(
  dir: string,
  pid: number | undefined,
): { client: number; monitor: number; route?: number } | undefined {
  const p = readPortsFile(dir, pid);
  if (!p) return undefined;
  const port = (urls: string[] | undefined): number | undefined => {
    const u = urls?.[0];
    return u ? Number(new URL(u).port) : undefined;
  };
  const client = port(p.nats);
  const monitor = port(p.monitoring);
  if (!client || !monitor) return undefined;
  const route = port(p.cluster);
  return { client, monitor, ...(route ? { route } : {}) };
}
