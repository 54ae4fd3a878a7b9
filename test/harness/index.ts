export { startEtcd, startEtcdCluster } from './etcd';
export type { EtcdCluster, EtcdMember, EtcdOptions } from './etcd';
export { startNats } from './nats';
export type { NatsServer, NatsOptions } from './nats';
export { startSystemd } from './systemd';
export type { SystemdManager, SystemdOptions } from './systemd';
export { HarnessError, HarnessErrorCode } from './errors';
export { freePort } from './ports';
export { cleanupAll } from './registry';
