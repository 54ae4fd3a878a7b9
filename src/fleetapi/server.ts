import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { clearStaleSocket, parseListenAddress } from '../api/server';
import type { ClusterApi } from '../api/types';
import { ErrorCode, FlotillaError } from '../errors';
import type { FleetApiOptions } from './handler';
import { fleetApiHandler } from './handler';

export interface FleetApiServerOptions extends FleetApiOptions {
  api: ClusterApi;
  /** `unix:///var/run/fleet.sock` (fleetctl's default endpoint) and/or `host:port` (port 0: any). */
  listen: string[];
  /** Mode of unix sockets (default 0o660, as the gRPC API's). */
  socketMode?: number;
  /** Listening sockets passed by systemd (socket activation), served besides `listen`. */
  fds?: number[];
  /**
   * HTTPS on the TCP listeners, configured or passed by systemd (unix sockets, configured or
   * passed, stay plain HTTP, guarded by their file mode): the daemon's certificate, and with `ca` mutual TLS — a client must present a
   * certificate `ca` signed, and its role decides what it may do (src/api/access.ts).
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
}

export interface FleetApiServerHandle {
  /** Bound addresses in `listen` order: `127.0.0.1:54321` (actual port) or `unix:///…`. */
  readonly addresses: string[];
  /** The TCP sockets systemd passed, as `host:port` (`[::]:7072` for IPv6), for the exposure rule. */
  readonly passedTcp: string[];
  /** Stops accepting, ends open connections, removes the unix sockets it created. */
  close(): Promise<void>;
}

function listen(
  server: net.Server,
  target: string | { host: string; port: number } | { fd: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(
        new FlotillaError(
          ErrorCode.Unavailable,
          `fleet API: cannot listen on ${describe(target)}: ${err.message}`,
          { cause: err },
        ),
      );
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else if ('fd' in target) server.listen({ fd: target.fd }, done);
    else server.listen(target.port, target.host.replace(/^\[(.*)\]$/, '$1'), done);
  });
}

function describe(target: string | { host: string; port: number } | { fd: number }): string {
  if (typeof target === 'string') return target;
  return 'fd' in target ? `fd://${target.fd}` : `${target.host}:${target.port}`;
}

/**
 * Serves fleet's HTTP API v1 over `api` on each listen address (one http.Server each). A stale
 * unix socket left by a dead daemon is removed; a live one or a non-socket file is refused.
 */
export async function startFleetApiServer(
  opts: FleetApiServerOptions,
): Promise<FleetApiServerHandle> {
  const parsed = opts.listen.map(parseListenAddress);
  const handler = fleetApiHandler(opts.api, opts);
  const servers: (net.Server | http.Server)[] = [];
  const sockets: string[] = [];
  const addresses: string[] = [];
  const passedTcp: string[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            // An HTTP(S) server fed by a passed socket never listens itself: close() still calls back.
            s.close(() => resolve());
            if ('closeAllConnections' in s) s.closeAllConnections();
          }),
      ),
    );
    for (const p of sockets) fs.rmSync(p, { force: true });
  };
  const tls = opts.tls;
  const serverFor = (tcp: boolean): http.Server =>
    tcp && tls
      ? https.createServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
          handler,
        )
      : http.createServer(handler);
  try {
    for (const l of parsed) {
      const server = serverFor(l.kind === 'tcp');
      if (l.kind === 'unix') {
        fs.mkdirSync(path.dirname(l.path), { recursive: true });
        await clearStaleSocket(l.path);
        await listen(server, l.path);
        servers.push(server);
        sockets.push(l.path);
        fs.chmodSync(l.path, opts.socketMode ?? 0o660);
        addresses.push(`unix://${l.path}`);
      } else {
        await listen(server, l);
        servers.push(server);
        const a = server.address();
        addresses.push(a && typeof a === 'object' ? `${l.host}:${a.port}` : `${l.host}:${l.port}`);
      }
    }
    // A passed socket's family is known once listening: TCP gets HTTPS like a configured TCP
    // listener, a unix socket plain HTTP. Its connections go to the matching server.
    for (const fd of opts.fds ?? []) {
      const raw = net.createServer();
      await listen(raw, { fd });
      const bound = raw.address();
      const tcp = typeof bound === 'object' && bound !== null;
      if (tcp)
        passedTcp.push(
          bound.family === 'IPv6'
            ? `[${bound.address}]:${bound.port}`
            : `${bound.address}:${bound.port}`,
        );
      const server = serverFor(tcp);
      raw.on('connection', (s) => server.emit('connection', s));
      servers.push(raw, server);
      addresses.push(`fd://${fd}`);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return { addresses, passedTcp, close: () => (closing ??= closeAll()) };
}
