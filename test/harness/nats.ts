import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet } from './http';
import { freePort } from './ports';
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

/** Starts nats-server on a fresh port with a monitoring endpoint used as the readiness probe. */
export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const binary = opts.binary ?? process.env.FLOTILLA_NATS_BIN ?? DEFAULT_BIN;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-nats-'));
  const port = await freePort();
  const monitor = await freePort();
  const conf = path.join(dir, 'nats.conf');
  // 8 MiB payloads: a full schedule for one machine with tens of thousands of units fits in one reply.
  fs.writeFileSync(
    conf,
    `listen: 127.0.0.1:${port}\nhttp: 127.0.0.1:${monitor}\nmax_payload: ${opts.maxPayload ?? '8MB'}\nmax_pending: 256MB\n` +
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
  const server = new ManagedServer({
    name: 'nats-server',
    binary,
    debianPackage: 'nats-server',
    dir,
    args: ['-c', conf],
    ready: async () => (await httpGet(`http://127.0.0.1:${monitor}/healthz`)).status === 200,
  });
  try {
    await server.start();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
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
