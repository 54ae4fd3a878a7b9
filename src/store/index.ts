// The store package: the LogStore contract and its three implementations.
export type {
  Candidate,
  LeaderInfo,
  LogStore,
  Restored,
  Snapshot,
  SnapshotStats,
  Term,
} from './types';
export type { StoreLogger } from './common';
export { EtcdLogStore, EtcdTerm } from './etcd';
export type { EtcdLogStoreOptions } from './etcd';
export { FileLogStore, FileTerm } from './file';
export type { FileLogStoreOptions } from './file';
export { MemoryBackend, MemoryLogStore, MemoryTerm } from './memory';
export type { MemoryBackendOptions } from './memory';
export { openLogStore } from './open';
export type { LogStoreConfig } from './open';
