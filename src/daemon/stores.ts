import path from 'node:path';
import { openLogStore } from '../store';
import type { LogStore } from '../store/types';
import type { DaemonConfig } from './config';

/** The durable store for this daemon: etcd, or in dev mode a log file in the data directory. */
export function openStore(cfg: DaemonConfig): LogStore {
  if (cfg.dev) return openLogStore({ kind: 'file', dir: path.join(cfg.data_dir, 'store') });
  return openLogStore({
    kind: 'etcd',
    endpoints: cfg.etcd_servers,
    cluster: cfg.cluster,
    leaseTtlSeconds: Math.max(1, Math.round(cfg.lease_ttl / 1000)),
  });
}
