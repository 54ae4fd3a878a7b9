import path from 'node:path';
import { FileLogStore } from '../store/file';
import { EtcdLogStore } from '../store/etcd';
import type { LogStore } from '../store/types';
import type { DaemonConfig } from './config';

/** The durable store for this daemon: etcd, or in dev mode a log file in the data directory. */
export async function openStore(cfg: DaemonConfig): Promise<LogStore> {
  if (cfg.dev) return new FileLogStore({ dir: path.join(cfg.data_dir, 'store') });
  return new EtcdLogStore({
    endpoints: cfg.etcd_servers,
    cluster: cfg.cluster,
    leaseTtlSeconds: Math.max(1, Math.round(cfg.lease_ttl / 1000)),
  });
}
