import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { Server, ServerCredentials, type Metadata } from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context';
import type {
  handleServerStreamingCall,
  handleUnaryCall,
  ServerWritableStream,
  ChannelOptions,
} from '@grpc/grpc-js';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import { FlotillaService } from '../gen/flotilla/v1/flotilla';
import type { FlotillaServer } from '../gen/flotilla/v1/flotilla';
import { toGrpcStatus } from './errors';
import { nextTurn } from '../turn';
import { servingPreEncoded } from './pre-encoded';
import { guardingRequests, refusalOf } from './request-guard';
import { StreamLimits, type StreamLimitOptions } from './stream-limits';
import type { ClusterApi } from './types';
import { API_METHODS, callStream, callUnary, type MethodName, type Request } from './methods';
import {
  type CallContext,
  authorize,
  describeCertificate,
  FORWARDED_BY_HEADER,
  roleOfCertificate,
  withCall,
} from './access';

/** Large enough for CreateUnits with thousands of units and a 1000-unit ListUnits page. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface ApiServerOptions {
  api: ClusterApi;
  /**
   * Where to listen: `127.0.0.1:7070` or `[::1]:7070` (port 0: any free port) and/or
   * `unix:///run/flotilla/flotilla.sock` (the directory is created, the socket gets mode
   * 0660, a stale socket file left by a dead daemon is removed).
   */
  listen: string[];
  /** For the TCP listeners (default: plaintext); pass serverTls(...) for TLS/mTLS. Unix sockets stay plaintext (guarded by their file mode). */
  credentials?: ServerCredentials;
  /** Mode of unix sockets (default 0o660). */
  socketMode?: number;
  /** Told about every handler failure that is a bug rather than a refusal (log and count it). */
  onInternalError?: InternalErrorReport;
  /** Bounds on open streams (Watch, journal follow) per caller and in all. */
  streamLimits?: StreamLimitOptions;
}

export interface ApiServerHandle {
  /** The bound addresses, in `listen` order: `127.0.0.1:54321` (actual port), `unix:///…`. */
  readonly addresses: string[];
  /** Ends open streams, stops the server, removes the unix sockets it created. */
  close(): Promise<void>;
}

type Listen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses one `listen` entry; throws ConfigInvalid with the offending text. */
export function parseListenAddress(addr: string): Listen {
  if (addr.startsWith('unix:')) {
    const p = addr.startsWith('unix://') ? addr.slice('unix://'.length) : addr.slice(5);
    if (!path.isAbsolute(p)) {
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        `invalid listen address "${addr}": a unix socket needs an absolute path (unix:///path)`,
      );
    }
    return { kind: 'unix', path: p };
  }
  const m = /^(?:tcp:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:[\]/]+):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `invalid listen address "${addr}": expected host:port or unix:///path`,
    );
  }
  return { kind: 'tcp', host: m[1], port: Number(m[2]) };
}

/** Removes a socket file nobody listens on; refuses when a live server or a non-socket is there. */
export async function clearStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `cannot listen on ${p}: the path exists and is not a socket`,
    );
  }
  const alive = await new Promise<boolean>((resolve) => {
    const sock = net.connect(p);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
  if (alive) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `cannot listen on ${p}: another process is serving on this socket`,
    );
  }
  fs.rmSync(p, { force: true });
}

function bind(server: Server, target: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, creds, (err, port) => {
      if (err) {
        reject(
          new FlotillaError(ErrorCode.Unavailable, `cannot listen on ${target}: ${err.message}`, {
            cause: err,
          }),
        );
      } else resolve(port);
    });
  });
}

/** The caller's role (its client certificate) and the daemon that forwarded the call, if any. */
function contextOf(call: { getAuthContext(): AuthContext; metadata: Metadata }): CallContext {
  let cert: PeerCertificate | undefined;
  try {
    cert = call.getAuthContext()?.sslPeerCertificate;
  } catch {
    cert = undefined;
  }
  const fwd = call.metadata.get(FORWARDED_BY_HEADER)[0];
  return {
    role: roleOfCertificate(cert),
    who: describeCertificate(cert),
    ...(typeof fwd === 'string' && fwd !== '' ? { forwardedBy: fwd.slice(0, 1024) } : {}),
  };
}

/**
 * Called for every failure of a handler that is not a FlotillaError (a bug, not a refusal): the
 * daemon logs and counts it. The call itself ends INTERNAL; the daemon goes on.
 */
export type InternalErrorReport = (method: string, err: unknown) => void;

/** The status for `err`, reporting it when it is not one of Flotilla's own errors. */
function statusOf(method: string, err: unknown, report: InternalErrorReport | undefined) {
  if (!isFlotillaError(err) || err.code === ErrorCode.Internal) {
    try {
      report?.(method, err);
    } catch {
      // A failing reporter must not turn a refusal into a crash.
    }
  }
  return toGrpcStatus(err);
}

function unary<Req, Res>(
  name: MethodName,
  method: string,
  report: InternalErrorReport | undefined,
  fn: (req: Req) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const fail = (err: unknown): void => {
      try {
        callback(statusOf(method, err, report));
      } catch (e) {
        report?.(method, e);
      }
    };
    const refused = refusalOf(call.request);
    if (refused) {
      fail(refused);
      return;
    }
    let p: Promise<Res>;
    try {
      const ctx = contextOf(call);
      authorize(name, ctx, call.request);
      p = withCall(ctx, () => fn(call.request));
    } catch (err) {
      fail(err);
      return;
    }
    p.then((res) => callback(null, res), fail).catch(fail);
  };
}

/**
 * Adapts an AsyncIterable source to a server stream: writes with backpressure, aborts the
 * source's signal when the client cancels (or the server closes), and ends with the mapped
 * status when the source throws.
 */
function streaming<Req, Res>(
  name: MethodName,
  method: string,
  report: InternalErrorReport | undefined,
  streams: OpenStreams,
  fn: (req: Req, signal: AbortSignal) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  const live = streams.live;
  return (call: ServerWritableStream<Req, Res>) => {
    let ctx: CallContext;
    let release: () => void;
    try {
      const refused = refusalOf(call.request);
      if (refused) throw refused;
      ctx = contextOf(call);
      authorize(name, ctx);
      release = streams.limits.acquire(ctx, method);
    } catch (err) {
      call.emit('error', statusOf(method, err, report));
      return;
    }
    const ac = new AbortController();
    live.add(ac);
    const abort = (): void => ac.abort();
    call.on('cancelled', abort);
    call.on('close', abort);
    void withCall(ctx, async () => {
      try {
        let written = 0;
        for await (const msg of fn(call.request, ac.signal)) {
          if (ac.signal.aborted) break;
          // A watcher catching up on thousands of events must not hold the event loop.
          if (++written % STREAM_TURN_MESSAGES === 0) await nextTurn();
          if (!call.write(msg)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                call.off('drain', done);
                ac.signal.removeEventListener('abort', done);
                resolve();
              };
              call.on('drain', done);
              ac.signal.addEventListener('abort', done);
            });
          }
        }
        if (!call.cancelled) call.end();
      } catch (err) {
        if (!call.cancelled) call.emit('error', statusOf(method, err, report));
      } finally {
        live.delete(ac);
        release();
        ac.abort();
      }
    }).catch((err: unknown) => report?.(method, err));
  };
}

/** Messages a stream writes in one event-loop turn before handing it back. */
const STREAM_TURN_MESSAGES = 256;

/** The server's open streams: each one's abort (for close()), and their bounds. */
export interface OpenStreams {
  live: Set<AbortController>;
  limits: StreamLimits;
}

/**
 * The generated service's handlers over a ClusterApi: one per method of the table
 * (src/api/methods.ts), named in failure reports by its gRPC name (`CreateUnits`).
 */
export function makeHandlers(
  api: ClusterApi,
  streams: OpenStreams,
  report?: InternalErrorReport,
): FlotillaServer {
  const handlers: Record<string, unknown> = {};
  for (const m of API_METHODS) {
    handlers[m.name] =
      m.kind === 'unary'
        ? unary(m.name, m.grpcName, report, (req: Request<typeof m.name>) =>
            callUnary(api, m.name, req),
          )
        : streaming(m.name, m.grpcName, report, streams, (req: Request<typeof m.name>, signal) =>
            callStream(api, m.name, req, signal),
          );
  }
  // One handler of the right shape for every method of the service, set just above.
  return handlers as FlotillaServer;
}

/**
 * Serves the gRPC API (proto/flotilla/v1) over a ClusterApi on TCP and/or unix sockets.
 * Errors from the api become gRPC statuses with the `flotilla-error-code` trailer.
 */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServerHandle> {
  if (opts.listen.length === 0) {
    throw new FlotillaError(ErrorCode.ConfigInvalid, 'startApiServer: no listen address given');
  }
  const parsed = opts.listen.map(parseListenAddress);
  const channelOptions: ChannelOptions = {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  };
  const server = new Server(channelOptions);
  const live = new Set<AbortController>();
  server.addService(
    servingPreEncoded(guardingRequests(FlotillaService)),
    makeHandlers(
      opts.api,
      { live, limits: new StreamLimits(opts.streamLimits) },
      opts.onInternalError,
    ),
  );
  const creds = opts.credentials ?? ServerCredentials.createInsecure();
  const sockets: string[] = [];
  const addresses: string[] = [];
  try {
    for (const l of parsed) {
      if (l.kind === 'unix') {
        fs.mkdirSync(path.dirname(l.path), { recursive: true });
        await clearStaleSocket(l.path);
        // A unix socket is guarded by its file mode (0660): plaintext, even when TCP uses TLS.
        await bind(server, `unix://${l.path}`, ServerCredentials.createInsecure());
        sockets.push(l.path);
        fs.chmodSync(l.path, opts.socketMode ?? 0o660);
        addresses.push(`unix://${l.path}`);
      } else {
        const port = await bind(server, `${l.host}:${l.port}`, creds);
        addresses.push(`${l.host}:${port}`);
      }
    }
  } catch (err) {
    server.forceShutdown();
    for (const s of sockets) fs.rmSync(s, { force: true });
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const ac of live) ac.abort();
      const timer = setTimeout(() => server.forceShutdown(), 2000);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        for (const s of sockets) fs.rmSync(s, { force: true });
        resolve();
      });
    });
    return closing;
  };
  return { addresses, close };
}
