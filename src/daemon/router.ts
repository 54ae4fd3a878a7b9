import type { ApiClient } from '../api/client';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { connectApi } from '../api/client';
import type { ClusterApi } from '../api/types';
import { ErrorCode, FlotillaError } from '../errors';
import type { LeaderInfo } from '../store/types';

/**
 * The ClusterApi every daemon serves. On the leader it is the engine's own API; on a follower
 * every call (reads too: only the leader holds the state) is forwarded to the leader's gRPC
 * address, which the daemon learns from the election key.
 */
/**
 * What a leader that lost its term while the store was unreachable keeps serving: its last state
 * for reads, a clear refusal for writes. Dropped as soon as a leader is known again.
 */
export function readOnlyView(api: ClusterApi, why: string): ClusterApi {
  const refuse = (): never => {
    throw new FlotillaError(
      ErrorCode.StoreUnavailable,
      `writes are refused: ${why}; reads are served from the last known state`,
      { retryable: true },
    );
  };
  return {
    ...bindAll(api),
    createUnits: async () => refuse(),
    setTargetStates: async () => refuse(),
    destroyUnits: async () => refuse(),
    setMachineMetadata: async () => refuse(),
    getClusterStatus: async (r) => (r.resumeRescheduling ? refuse() : api.getClusterStatus(r)),
  };
}

/** `api` with every method bound to it, as a plain object. */
export function bindAll(api: ClusterApi): ClusterApi {
  return {
    createUnits: (r) => api.createUnits(r),
    setTargetStates: (r) => api.setTargetStates(r),
    destroyUnits: (r) => api.destroyUnits(r),
    getUnit: (r) => api.getUnit(r),
    listUnits: (r) => api.listUnits(r),
    listUnitStates: (r) => api.listUnitStates(r),
    listMachines: (r) => api.listMachines(r),
    setMachineMetadata: (r) => api.setMachineMetadata(r),
    getClusterStatus: (r) => api.getClusterStatus(r),
    watch: (r, s) => api.watch(r, s),
    unitStatus: (r) => api.unitStatus(r),
    unitJournal: (r, s) => api.unitJournal(r, s),
  };
}

export class ApiRouter implements ClusterApi {
  private local: ClusterApi | undefined;
  private leader: LeaderInfo | undefined;
  private remote: { address: string; client: ApiClient } | undefined;
  private stale: ClusterApi | undefined;

  /** `credentials`: for calls forwarded to the leader (TLS/mTLS; default plaintext). */
  constructor(
    private readonly self: { machine: string },
    private readonly credentials?: ChannelCredentials,
  ) {}

  setLocal(api: ClusterApi | undefined): void {
    this.local = api;
  }

  /** Serves `api` read-only until a leader is known (the store is unreachable). */
  setStale(api: ClusterApi | undefined): void {
    this.stale = api;
  }

  setLeader(leader: LeaderInfo | undefined): void {
    this.leader = leader;
    if (leader) this.stale = undefined;
  }

  get leaderInfo(): LeaderInfo | undefined {
    return this.leader;
  }

  private target(): ClusterApi {
    if (this.local) return this.local;
    const l = this.leader;
    if (this.stale && (!l || l.machine === this.self.machine)) return this.stale;
    if (!l || l.machine === this.self.machine) {
      throw new FlotillaError(
        ErrorCode.NoLeader,
        'no leader is elected right now; try again in a few seconds',
        { retryable: true },
      );
    }
    if (!this.remote || this.remote.address !== l.address) {
      this.remote?.client.close();
      this.remote = {
        address: l.address,
        client: connectApi(l.address, { credentials: this.credentials }),
      };
    }
    return this.remote.client;
  }

  close(): void {
    this.remote?.client.close();
    this.remote = undefined;
  }

  createUnits: ClusterApi['createUnits'] = (r) => this.target().createUnits(r);
  setTargetStates: ClusterApi['setTargetStates'] = (r) => this.target().setTargetStates(r);
  destroyUnits: ClusterApi['destroyUnits'] = (r) => this.target().destroyUnits(r);
  getUnit: ClusterApi['getUnit'] = (r) => this.target().getUnit(r);
  listUnits: ClusterApi['listUnits'] = (r) => this.target().listUnits(r);
  listUnitStates: ClusterApi['listUnitStates'] = (r) => this.target().listUnitStates(r);
  listMachines: ClusterApi['listMachines'] = (r) => this.target().listMachines(r);
  setMachineMetadata: ClusterApi['setMachineMetadata'] = (r) => this.target().setMachineMetadata(r);
  getClusterStatus: ClusterApi['getClusterStatus'] = (r) => this.target().getClusterStatus(r);
  unitStatus: ClusterApi['unitStatus'] = (r) => this.target().unitStatus(r);
  watch: ClusterApi['watch'] = (r, s) => this.target().watch(r, s);
  unitJournal: ClusterApi['unitJournal'] = (r, s) => this.target().unitJournal(r, s);
}
