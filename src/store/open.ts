/**
 * One factory for the daemon's configuration: etcd in production, a directory in dev mode,
 * memory for tests and simulations.
 */
import type { StoreLogger } from './common';
import { EtcdLogStore, type EtcdLogStoreOptions } from './etcd';
import { FileLogStore } from './file';
import { MemoryBackend, MemoryLogStore } from './memory';
import type { LogStore } from './types';

export type LogStoreConfig =
  | ({ kind: 'etcd' } & EtcdLogStoreOptions)
  | { kind: 'file'; dir: string; fsync?: boolean; logger?: StoreLogger }
  | { kind: 'memory'; backend?: MemoryBackend };

export function openLogStore(config: LogStoreConfig): LogStore {
  switch (config.kind) {
    case 'etcd': {
      const { kind: _kind, ...options } = config;
      return new EtcdLogStore(options);
    }
    case 'file':
      return new FileLogStore(config);
    case 'memory':
      return new MemoryLogStore(config.backend ?? new MemoryBackend());
  }
}
