import type {
  ClusterStatus,
  CreateUnitsRequest,
  CreateUnitsResponse,
  DestroyUnitsRequest,
  DestroyUnitsResponse,
  Event,
  GetClusterStatusRequest,
  GetUnitRequest,
  JournalChunk,
  ListMachinesRequest,
  ListMachinesResponse,
  ListUnitsRequest,
  ListUnitsResponse,
  ListUnitStatesRequest,
  ListUnitStatesResponse,
  SetMachineMetadataRequest,
  SetMachineMetadataResponse,
  SetTargetStatesRequest,
  SetTargetStatesResponse,
  Unit,
  UnitJournalRequest,
  UnitStatusRequest,
  UnitStatusResponse,
  WatchRequest,
} from '../gen/flotilla/v1/flotilla';

/**
 * The cluster API, exactly the gRPC service in proto/flotilla/v1/flotilla.proto with its
 * generated message types. Implemented by the engine on the leader, by a forwarding gRPC client
 * on followers, and by fakes in tests; the gRPC server is a thin adapter over it. Failures are
 * FlotillaError with a stable code (src/errors.ts).
 */
export interface ClusterApi {
  createUnits(req: CreateUnitsRequest): Promise<CreateUnitsResponse>;
  setTargetStates(req: SetTargetStatesRequest): Promise<SetTargetStatesResponse>;
  destroyUnits(req: DestroyUnitsRequest): Promise<DestroyUnitsResponse>;
  getUnit(req: GetUnitRequest): Promise<Unit>;
  listUnits(req: ListUnitsRequest): Promise<ListUnitsResponse>;
  listUnitStates(req: ListUnitStatesRequest): Promise<ListUnitStatesResponse>;
  listMachines(req: ListMachinesRequest): Promise<ListMachinesResponse>;
  setMachineMetadata(req: SetMachineMetadataRequest): Promise<SetMachineMetadataResponse>;
  getClusterStatus(req: GetClusterStatusRequest): Promise<ClusterStatus>;
  /** Committed events with index >= from_index (0: only new ones), then live, until `signal` aborts. */
  watch(req: WatchRequest, signal: AbortSignal): AsyncIterable<Event>;
  unitStatus(req: UnitStatusRequest): Promise<UnitStatusResponse>;
  unitJournal(req: UnitJournalRequest, signal: AbortSignal): AsyncIterable<JournalChunk>;
}
