/**
 * The etcd3 client as this store configures it, and the one map from etcd3/gRPC errors to
 * FlotillaError codes.
 *
 * Fault handling (measured on this project's machines; see docs/store.md):
 * - etcd3's default host policy is a circuit breaker that, after 3 failures, fails every call
 *   for 5 s, even once etcd is back. Ours half-opens after 200 ms, so writes resume < 0.5 s
 *   after etcd returns.
 * - The global policy retries a recoverable failure on another member (never more than
 *   members - 1 times, at least once), so one dead member of three costs a retry, not an error.
 * - Every unary call carries a deadline (`callTimeoutMs`): a member that accepts connections but
 *   does not answer cannot hang a write. Streams (watch, keepalive) carry their own timers.
 * - The watch stream reconnects with a backoff capped at 1 s (etcd3's default grows to 30 s and
 *   never resets, which left followers blind for ~10 s after an outage).
 */
import {
  ConsecutiveBreaker,
  ConstantBackoff,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
  type IBackoff,
} from 'cockatiel';
import { Etcd3, EtcdPermissionDeniedError, isRecoverableError, type IOptions } from 'etcd3';
import { ErrorCode, FlotillaError, isFlotillaError } from '../../errors';
import { unavailableError } from '../common';
import type { ResolvedEtcdOptions } from './options';

export function createEtcdClient(o: ResolvedEtcdOptions): Etcd3 {
  const recoverable = handleWhen((err) => isRecoverableError(err));
  const options: IOptions = {
    hosts: o.endpoints,
    credentials: o.credentials,
    auth: o.auth,
    dialTimeout: o.callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + o.callTimeoutMs }),
    grpcOptions: {
      // Log pages and snapshot chunks can exceed gRPC's 4 MiB default receive limit.
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // etcd's server refuses pings more often than every 5 s (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 3_000,
    },
    faultHandling: {
      host: () =>
        circuitBreaker(recoverable, { halfOpenAfter: 200, breaker: new ConsecutiveBreaker(3) }),
      global: retry(recoverable, {
        maxAttempts: Math.max(1, o.endpoints.length - 1),
        backoff: new ConstantBackoff(50),
      }),
      // etcd3 types this as IBackoff but calls `.next()` on it first, as on its own default
      // (a factory): pass the factory.
      watchBackoff: new ExponentialBackoff({
        initialDelay: 50,
        maxDelay: 1000,
      }) as unknown as IBackoff<unknown>,
    },
  };
  return new Etcd3(options);
}

/**
 * Maps an error from etcd3 to the store's codes: network, deadline and open-circuit failures are
 * STORE_UNAVAILABLE (retryable); a request etcd refuses as too large is INVALID_ARGUMENT (a bug
 * in our limits, not an outage); a request the credentials' role does not allow is
 * PERMISSION_DENIED (a configuration to fix, not an outage); anything else is STORE_UNAVAILABLE,
 * not retryable.
 */
export function toStoreError(err: unknown, what: string): FlotillaError {
  if (isFlotillaError(err)) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (isRecoverableError(e) || isBrokenCircuitError(e)) return unavailableError(what, e);
  // A paged read pinned to a revision that etcd's auto-compaction removed meanwhile: read again.
  if (/required revision has been compacted/i.test(e.message)) return unavailableError(what, e);
  if (e instanceof EtcdPermissionDeniedError || /etcdserver: permission denied/i.test(e.message)) {
    return new FlotillaError(
      ErrorCode.PermissionDenied,
      `etcd refused ${what}: permission denied`,
      {
        cause: e,
      },
    );
  }
  if (/request is too large|too many operations in txn/i.test(e.message)) {
    return new FlotillaError(ErrorCode.InvalidArgument, `etcd refused ${what}: ${e.message}`, {
      cause: e,
    });
  }
  if (/client was already closed/i.test(e.message)) {
    return new FlotillaError(ErrorCode.StoreUnavailable, `store closed (${what})`, { cause: e });
  }
  return new FlotillaError(ErrorCode.StoreUnavailable, `etcd failed ${what}: ${e.message}`, {
    cause: e,
    retryable: false,
  });
}
