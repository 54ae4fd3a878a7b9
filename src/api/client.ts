import { credentials as grpcCredentials, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type {
  CallOptions,
  ChannelCredentials,
  ChannelOptions,
  ClientReadableStream,
} from '@grpc/grpc-js';
import { ErrorCode, FlotillaError } from '../errors';
import { FlotillaClient } from '../gen/flotilla/v1/flotilla';
import { fromServiceError, isServiceError } from './errors';
import { definitionOf, deriveApi, type Request, type Response, type UnaryName } from './methods';
import { MAX_MESSAGE_BYTES } from './server';
import type { ClusterApi } from './types';

export interface ConnectOptions {
  /** Deadline of each unary call in milliseconds (default 10 000; 0: none). Streams have none. */
  requestTimeoutMs?: number;
  /** Defaults to insecure; pass credentials.createSsl(...) for TLS/mTLS. */
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /** Metadata for each call, read when it starts (a forwarding daemon names the hops so far). */
  metadata?: () => Record<string, string>;
}

/** A ClusterApi over gRPC. The same client serves the CLI and a follower forwarding to its leader. */
export interface ApiClient extends ClusterApi {
  /** The endpoint as the user wrote it (used in error messages). */
  readonly endpoint: string;
  close(): void;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Maps a user-facing endpoint to a grpc-js target: `unix:///p` and `unix:/p` stay, a bare
 * absolute path becomes `unix:///p`, `http://` and `tcp://` prefixes are dropped (fleetctl
 * users write `http://host:port`), `host:port` stays.
 */
export function grpcTarget(endpoint: string): string {
  const e = endpoint.trim();
  if (e.startsWith('unix:')) return e;
  if (e.startsWith('/')) return `unix://${e}`;
  const m = /^(?:https?|tcp):\/\/(.*?)\/?$/.exec(e);
  if (m) return m[1];
  return e;
}

function isCancelled(err: unknown): boolean {
  return isServiceError(err) && err.code === GrpcStatus.CANCELLED;
}

/** The client's HTTP/2 receive window (per connection and per stream). */
const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** Connects lazily (the first call dials); every failure is a FlotillaError. */
export function connectApi(endpoint: string, opts: ConnectOptions = {}): ApiClient {
  const target = grpcTarget(endpoint);
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  let client: FlotillaClient;
  try {
    client = new FlotillaClient(target, opts.credentials ?? grpcCredentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // HTTP/2's default 64 KiB receive window makes a 2 MB listing 30 round trips of
      // WINDOW_UPDATE, each waiting for the leader's event loop: let a whole page come at once.
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
      ...opts.channelOptions,
    });
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.InvalidArgument,
      `invalid endpoint "${endpoint}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }

  const md = (): Metadata => {
    const m = new Metadata();
    for (const [k, v] of Object.entries(opts.metadata?.() ?? {})) m.set(k, v);
    return m;
  };

  const toError = (err: unknown): FlotillaError =>
    isServiceError(err)
      ? fromServiceError(err, endpoint)
      : err instanceof FlotillaError
        ? err
        : new FlotillaError(ErrorCode.Internal, err instanceof Error ? err.message : String(err), {
            cause: err,
          });

  function unary<M extends UnaryName>(name: M, req: Request<M>): Promise<Response<M>> {
    const def = definitionOf(name);
    return new Promise<Response<M>>((resolve, reject) => {
      const options: Partial<CallOptions> =
        timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        req,
        md(),
        options,
        (err, res) => {
          if (err) reject(toError(err));
          else resolve(res as Response<M>);
        },
      );
    });
  }

  async function* stream<T>(
    open: () => ClientReadableStream<T>,
    signal: AbortSignal,
  ): AsyncGenerator<T, void, undefined> {
    if (signal.aborted) return;
    const call = open();
    const onAbort = (): void => call.cancel();
    signal.addEventListener('abort', onAbort);
    try {
      for await (const msg of call) {
        yield msg as T;
        if (signal.aborted) return;
      }
    } catch (err) {
      if (signal.aborted && isCancelled(err)) return;
      throw toError(err);
    } finally {
      signal.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  // Every method of the service (src/api/methods.ts), called by its path and serializers.
  const api = deriveApi({
    unary,
    stream: (name, req, signal) => {
      const def = definitionOf(name);
      return stream(
        () =>
          client.makeServerStreamRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            req,
            md(),
          ),
        signal,
      );
    },
  });
  return { ...api, endpoint, close: () => client.close() };
}
