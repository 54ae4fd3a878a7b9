/**
 * Options of EtcdLogStore, their defaults and the limits they must respect.
 *
 * etcd refuses a request over --max-request-bytes (1.5 MiB by default) and a txn with more than
 * --max-txn-ops operations (128 by default). Every txn this store sends stays under both: values
 * are cut to `snapshotChunkBytes` and packed into txns of at most `maxTxnBytes` and
 * MAX_TXN_OPS operations.
 */
import { ErrorCode, FlotillaError } from '../../errors';
import { stderrLogger, type StoreLogger } from '../common';

/** etcd's default --max-request-bytes. */
export const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** Operations per txn we allow ourselves (etcd's default limit is 128). */
export const MAX_TXN_OPS = 100;
/** Room kept in a txn for keys, the fencing compare and protobuf framing. */
export const TXN_OVERHEAD_BYTES = 8 * 1024;

export interface EtcdLogStoreOptions {
  /** Client URLs of the etcd members, e.g. ["http://10.0.0.1:2379"]. */
  endpoints: string[];
  /** Cluster name: every key lives under /flotilla/<cluster>/. */
  cluster: string;
  /** TTL of the leader's lease (default 5 s): how long a dead leader blocks a failover. */
  leaseTtlSeconds?: number;
  /** Largest value written: snapshot chunks and log pieces (default 1 MiB). */
  snapshotChunkBytes?: number;
  /** Largest txn payload (default 1.4 MiB, below etcd's 1.5 MiB request limit). */
  maxTxnBytes?: number;
  /** Largest single append (default 64 MiB); bigger ones are refused with INVALID_ARGUMENT. */
  maxAppendBytes?: number;
  /** Deadline of every unary call (default 2000 ms), so a dead member cannot hang a write. */
  callTimeoutMs?: number;
  /** Fallback poll of the leader key while its watch is down (default 1000 ms). */
  pollMs?: number;
  /** TLS and auth for the etcd client, passed through to etcd3. */
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  auth?: { username: string; password: string };
  logger?: StoreLogger;
}

export interface ResolvedEtcdOptions {
  endpoints: string[];
  cluster: string;
  leaseTtlSeconds: number;
  snapshotChunkBytes: number;
  maxTxnBytes: number;
  maxAppendBytes: number;
  callTimeoutMs: number;
  pollMs: number;
  credentials?: EtcdLogStoreOptions['credentials'];
  auth?: EtcdLogStoreOptions['auth'];
  logger: StoreLogger;
}

function invalid(message: string, field: string): FlotillaError {
  return new FlotillaError(ErrorCode.ConfigInvalid, `etcd store: ${message}`, {
    details: { field },
  });
}

export function resolveOptions(o: EtcdLogStoreOptions): ResolvedEtcdOptions {
  const r: ResolvedEtcdOptions = {
    endpoints: o.endpoints,
    cluster: o.cluster,
    leaseTtlSeconds: o.leaseTtlSeconds ?? 5,
    snapshotChunkBytes: o.snapshotChunkBytes ?? 1024 * 1024,
    maxTxnBytes: o.maxTxnBytes ?? Math.floor(1.4 * 1024 * 1024),
    maxAppendBytes: o.maxAppendBytes ?? 64 * 1024 * 1024,
    callTimeoutMs: o.callTimeoutMs ?? 2000,
    pollMs: o.pollMs ?? 1000,
    credentials: o.credentials,
    auth: o.auth,
    logger: o.logger ?? stderrLogger,
  };
  if (!Array.isArray(r.endpoints) || r.endpoints.length === 0) {
    throw invalid('at least one endpoint is required', 'endpoints');
  }
  if (!/^[A-Za-z0-9._-]+$/.test(r.cluster)) {
    throw invalid(
      `cluster name ${JSON.stringify(r.cluster)} must match [A-Za-z0-9._-]+`,
      'cluster',
    );
  }
  if (!Number.isInteger(r.leaseTtlSeconds) || r.leaseTtlSeconds < 2) {
    throw invalid('leaseTtlSeconds must be an integer >= 2', 'leaseTtlSeconds');
  }
  if (r.maxTxnBytes > ETCD_MAX_REQUEST_BYTES - TXN_OVERHEAD_BYTES) {
    throw invalid(
      `maxTxnBytes must stay under etcd's request limit (<= ${ETCD_MAX_REQUEST_BYTES - TXN_OVERHEAD_BYTES})`,
      'maxTxnBytes',
    );
  }
  if (
    !Number.isInteger(r.snapshotChunkBytes) ||
    r.snapshotChunkBytes < 1024 ||
    r.snapshotChunkBytes > r.maxTxnBytes - TXN_OVERHEAD_BYTES
  ) {
    throw invalid(
      `snapshotChunkBytes must be between 1024 and ${r.maxTxnBytes - TXN_OVERHEAD_BYTES}`,
      'snapshotChunkBytes',
    );
  }
  if (!(r.callTimeoutMs >= 100)) throw invalid('callTimeoutMs must be >= 100', 'callTimeoutMs');
  if (!(r.pollMs >= 50)) throw invalid('pollMs must be >= 50', 'pollMs');
  return r;
}
