import type { ApiClient } from '../api/client';
import { connectApi } from '../api/client';
import type { ClusterApi } from '../api/types';
import { ErrorCode, FlotillaError } from '../errors';
import type { LeaderInfo } from '../store/types';

/**
 * The ClusterApi every daemon serves. On the leader it is the engine's own API; on a follower
 * every call (reads too: only the leader holds the state) is forwarded to the leader's gRPC
 * address, which the daemon learns from the election key.
 */
export class ApiRouter implements ClusterApi {
  private local: ClusterApi | undefined;
  private leader: LeaderInfo | undefined;
  private remote: { address: string; client: ApiClient } | undefined;

  constructor(private readonly self: { machine: string }) {}

  setLocal(api: ClusterApi | undefined): void {
    this.local = api;
  }

  setLeader(leader: LeaderInfo | undefined): void {
    this.leader = leader;
  }

  get leaderInfo(): LeaderInfo | undefined {
    return this.leader;
  }

  private target(): ClusterApi {
    if (this.local) return this.local;
    const l = this.leader;
    if (!l || l.machine === this.self.machine) {
      throw new FlotillaError(
        ErrorCode.NoLeader,
        'no leader is elected right now; try again in a few seconds',
        { retryable: true },
      );
    }
    if (!this.remote || this.remote.address !== l.address) {
      this.remote?.client.close();
      this.remote = { address: l.address, client: connectApi(l.address) };
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
