import type { ClusterApi } from '../api/types';
import { clip, ErrorCode, FlotillaError } from '../errors';
import type { EventBody, FlotillaEvent } from '../events/types';
import type {
  ClusterStatus,
  CreateUnitResult,
  CreateUnitsRequest,
  CreateUnitsResponse,
  DestroyUnitsRequest,
  DestroyUnitsResponse,
  Event,
  GetClusterStatusRequest,
  GetUnitRequest,
  ExportHistoryRequest,
  HistoryChunk,
  JournalChunk,
  ListMachinesResponse,
  ListUnitsRequest,
  ListUnitsResponse,
  ListUnitStatesRequest,
  ListUnitStatesResponse,
  Machine,
  SetMachineMetadataRequest,
  SetMachineMetadataResponse,
  SetTargetStatesRequest,
  SetTargetStatesResponse,
  Unit,
  UnitJournalRequest,
  UnitState,
  UnitStatusRequest,
  UnitStatusResponse,
  WatchRequest,
} from '../gen/flotilla/v1/flotilla';
import {
  ListUnitsResponse as ListUnitsResponseCodec,
  ListUnitStatesResponse as ListUnitStatesResponseCodec,
  UnitState as UnitStateCodec,
  UnitView,
} from '../gen/flotilla/v1/flotilla';
import type { Bus } from '../bus/types';
import type { RawRestored, Restored } from '../store/types';
import { randomUUID } from 'node:crypto';
import {
  type AgentRpcRequest,
  decodeAgentRpcReply,
  decodeJournalLines,
  encode,
  JOURNAL_FOLLOW_IDLE_MS,
  PROTOCOL_VERSION,
  subjects,
} from '../protocol';
import {
  checkNewRequirements,
  checkUnitOptions,
  DEFAULT_MAX_UNIT_BYTES,
  parseUnitName,
  unitHash,
  unitRequirements,
  validateUnitName,
} from '../unit';
import type { TargetState } from '../unit/types';
import { TARGET_STATES } from '../unit/types';
import type { Engine } from './engine';

/** How often a journal follow checks that the unit's machine is alive and this daemon leads. */
const FOLLOW_CHECK_MS = 1000;
import { requestAgent } from './agent-subjects';
import type { EngineOptions } from './types';
import { encodePageInSlices, writeItem } from './listing';
import { EncodedUnitViews, liveReports, unitView } from './unit-views';
import { machineMetadata } from './state';
import { patchOverlay } from './metadata';
import { checkEventTypes, checkMetadata, checkView } from './requests';
import { decodePageToken, encodePageToken } from '../api/page-token';
import { historyChunks } from '../history/export-format';
import { cliVersion } from '../version';

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;
const AGENT_RPC_TIMEOUT_MS = 5000;
/** A client write of more events than this is a bulk write: small ones may overtake it. */
const BULK_WRITE_EVENTS = 50;

/**
 * The cluster API served by the leader: validates requests, turns them into events, and answers
 * reads from the in-memory fold (never from the store).
 */
export class EngineApi implements ClusterApi {
  private readonly subj;
  private readonly views = new EncodedUnitViews();

  constructor(
    private readonly engine: Engine,
    private readonly bus: Bus,
    private readonly cluster: string,
    /** This leader; `subjectNames` as the engine's (where it asks agents for status, journal). */
    private readonly leader: {
      machineId: string;
      address: string;
      subjectNames?: EngineOptions['subjectNames'];
    },
    /** `max_unit_bytes`: the largest unit file accepted, the same whatever the store. */
    private readonly limits: { maxUnitBytes: number } = { maxUnitBytes: DEFAULT_MAX_UNIT_BYTES },
    /** The retained durable history in the store, for watchers asking for older events. */
    private readonly history?: () => Promise<Restored>,
    /** The same to be copied out (exportHistory): from etcd unparsed, as stored. */
    private readonly historyToCopy: (() => Promise<Restored | RawRestored>) | undefined = history,
  ) {
    this.subj = subjects(cluster);
    // Every folded event about a unit makes its encoded view stale.
    engine.watch(0, (e) => {
      // A lost machine's reports stop counting, a returning one's count again (liveReports).
      if (e.type === 'MachineLost' || e.type === 'MachineJoined') this.views.forgetStatuses();
      if (!('unit' in e)) return;
      if (e.type === 'UnitSubmitted' || e.type === 'UnitReplaced' || e.type === 'UnitDestroyed')
        this.views.forgetFile(e.unit);
      else this.views.forget(e.unit);
    });
  }

  /** A client's write: large ones go in the bulk lane (engine/batching.ts). */
  private write(bodies: EventBody[]): Promise<number> {
    return this.engine.append(bodies, { bulk: bodies.length > BULK_WRITE_EVENTS });
  }

  async createUnits(req: CreateUnitsRequest): Promise<CreateUnitsResponse> {
    const seen = new Set<string>();
    const bodies: EventBody[] = [];
    const results: CreateUnitResult[] = [];
    for (const spec of req.units) {
      validateUnitName(spec.name);
      if (seen.has(spec.name)) {
        throw new FlotillaError(
          ErrorCode.InvalidArgument,
          `unit ${clip(spec.name)} appears twice in one request`,
          { details: { unit: spec.name } },
        );
      }
      seen.add(spec.name);
      const options = spec.options.map((o) => ({
        section: o.section,
        name: o.name,
        value: o.value,
      }));
      // What systemd will read is exactly these options, and not too many bytes of them.
      checkUnitOptions(spec.name, options, this.limits.maxUnitBytes);
      try {
        checkNewRequirements(spec.name, unitRequirements(spec.name, options).requirements);
      } catch (err) {
        // Name the unit: a request may carry thousands.
        if (err instanceof FlotillaError) {
          throw new FlotillaError(err.code, `${spec.name}: [X-Fleet] ${err.message}`, {
            cause: err,
            details: { ...err.details, unit: spec.name },
          });
        }
        throw err;
      }
      const target = parseTarget(spec.targetState || 'inactive');
      if (target !== 'inactive') refuseTemplate(spec.name);
      const hash = unitHash(options);
      const existing = this.engine.state.units.get(spec.name);
      if (!existing) {
        bodies.push({ type: 'UnitSubmitted', unit: spec.name, options, hash, target });
        results.push({ name: spec.name, outcome: 'created' });
      } else if (existing.hash === hash) {
        results.push({ name: spec.name, outcome: 'unchanged' });
      } else if (!req.replace) {
        results.push({ name: spec.name, outcome: 'differs' });
      } else {
        bodies.push({ type: 'UnitReplaced', unit: spec.name, options, hash });
        results.push({ name: spec.name, outcome: 'replaced' });
      }
    }
    const index = await this.write(bodies);
    return { results, index };
  }

  async setTargetStates(req: SetTargetStatesRequest): Promise<SetTargetStatesResponse> {
    const target = parseTarget(req.targetState);
    const missing = req.names.filter((n) => !this.engine.state.units.has(n));
    if (missing.length > 0) {
      throw new FlotillaError(ErrorCode.UnitNotFound, `units not found: ${listed(missing)}`, {
        details: { unit: missing[0] },
      });
    }
    if (target !== 'inactive') req.names.forEach(refuseTemplate);
    const bodies: EventBody[] = [];
    for (const name of new Set(req.names)) {
      if (this.engine.state.units.get(name)!.target !== target)
        bodies.push({ type: 'UnitTargetSet', unit: name, target });
    }
    return { index: await this.write(bodies) };
  }

  async destroyUnits(req: DestroyUnitsRequest): Promise<DestroyUnitsResponse> {
    const destroyed = [...new Set(req.names)].filter((n) => this.engine.state.units.has(n));
    const index = await this.write(destroyed.map((unit) => ({ type: 'UnitDestroyed', unit })));
    return { destroyed, index };
  }

  async getUnit(req: GetUnitRequest): Promise<Unit> {
    const u = this.engine.state.units.get(req.name);
    if (!u)
      throw new FlotillaError(ErrorCode.UnitNotFound, `unit ${clip(req.name)} not found`, {
        details: { unit: req.name },
      });
    return unitView(this.engine.state, u);
  }

  /** One page, written a slice at a time (see listing.ts). */
  async listUnits(req: ListUnitsRequest): Promise<ListUnitsResponse> {
    checkView(req.view);
    const names = this.engine.sortedUnitNames();
    const { page, next } = paginate('units', names, req.pageSize, req.pageToken, (n) => n);
    const basic = req.view === UnitView.UNIT_VIEW_BASIC;
    return encodePageInSlices(
      page.length,
      (i, w) => {
        const v = this.views.get(this.engine.state, page[i]);
        if (v && basic) writeItem(w, v.file, v.status);
        else if (v) writeItem(w, v.file, v.options, v.status);
      },
      next,
      (b) => ListUnitsResponseCodec.decode(b),
    );
  }

  async listUnitStates(req: ListUnitStatesRequest): Promise<ListUnitStatesResponse> {
    const rows: UnitState[] = [];
    const { state } = this.engine;
    for (const unit of [...state.reported.keys()].sort()) {
      const live = [...liveReports(state, unit)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [machine, s] of live) {
        rows.push({
          name: unit,
          machineId: machine,
          machineIp: state.machines.get(machine)?.ip ?? '',
          loadState: s.load,
          activeState: s.active,
          subState: s.sub,
          hash: s.hash,
          starts: s.starts ?? 0,
        });
      }
    }
    const { page, next } = paginate(
      'states',
      rows,
      req.pageSize,
      req.pageToken,
      (r) => `${r.name}\u0000${r.machineId}`,
    );
    return encodePageInSlices(
      page.length,
      (i, w) => UnitStateCodec.encode(page[i], w.uint32(10).fork()).join(),
      next,
      (b) => ListUnitStatesResponseCodec.decode(b),
    );
  }

  async listMachines(): Promise<ListMachinesResponse> {
    const machines: Machine[] = [];
    for (const id of [...this.engine.state.machines.keys()].sort()) {
      const m = this.engine.state.machines.get(id)!;
      if (m.presence !== 'alive') continue;
      machines.push({
        id,
        ip: m.ip,
        metadata: machineMetadata(m),
        state: this.engine.machinePhase(id) ?? 'alive',
      });
    }
    return { machines };
  }

  async setMachineMetadata(req: SetMachineMetadataRequest): Promise<SetMachineMetadataResponse> {
    if (!req.machineId)
      throw new FlotillaError(ErrorCode.InvalidArgument, 'machine_id is required');
    // Only for a machine the cluster knows: metadata is stored durably, per machine.
    if (!this.engine.state.machines.has(req.machineId)) {
      throw new FlotillaError(
        ErrorCode.MachineNotFound,
        `machine ${clip(req.machineId, 64)} is not known to the cluster`,
        { details: { machine: req.machineId } },
      );
    }
    const id = req.machineId;
    let overlay: Record<string, string>;
    if (req.patch) {
      // Over the overlay of the last metadata write still in flight, if any: two patches sent
      // together both count (each event holds the whole overlay).
      const m = this.engine.state.machines.get(id)!;
      overlay = patchOverlay(this.overlays.get(id) ?? m.overrides, m.reported, req.metadata);
    } else {
      checkMetadata(req.metadata);
      overlay = { ...req.metadata };
    }
    this.overlays.set(id, overlay);
    try {
      const index = await this.engine.append([
        { type: 'MachineMetadataSet', machine: id, metadata: overlay },
      ]);
      return { index };
    } finally {
      if (this.overlays.get(id) === overlay) this.overlays.delete(id);
    }
  }

  /** Per machine, the overlay of the latest metadata write not yet committed. */
  private readonly overlays = new Map<string, Record<string, string>>();

  async getClusterStatus(req: Partial<GetClusterStatusRequest> = {}): Promise<ClusterStatus> {
    const resumed = req.resumeRescheduling ? this.engine.resumeRescheduling() : undefined;
    const { state } = this.engine;
    const hold = this.engine.reschedulingHold;
    return {
      ...(hold ? { reschedulingHeld: hold.machines.join(',') } : {}),
      ...(resumed !== undefined ? { resumed } : {}),
      leaderMachineId: this.leader.machineId,
      leaderAddress: this.leader.address,
      epoch: this.engine.epoch,
      logIndex: state.index,
      units: state.units.size,
      machines: [...state.machines.values()].filter((m) => m.presence === 'alive').length,
      snapshotIndex: this.engine.stats.lastSnapshotIndex,
    };
  }

  async *watch(req: WatchRequest, signal: AbortSignal): AsyncIterable<Event> {
    checkEventTypes(req.types);
    const queue: FlotillaEvent[] = [];
    let wake: (() => void) | undefined;
    const types = new Set(req.types);
    const wanted = (e: FlotillaEvent): boolean => types.size === 0 || types.has(e.type);
    const w = this.engine.watch(req.fromIndex, (e) => {
      if (!wanted(e)) return;
      queue.push(e);
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    const onStop = this.engine.onStopped(() => wake?.());
    try {
      let last = 0;
      if (req.fromIndex > 0 && req.fromIndex < w.oldest) {
        // Older than the leader's memory: the durable ones are in the store (what agents
        // reported in between is not: it is rebuilt from the agents, not stored).
        if (!this.history)
          throw new FlotillaError(
            ErrorCode.InvalidArgument,
            `events before index ${w.oldest} are no longer in the leader's memory; read them with \`flotilla replay\``,
          );
        const { tail } = await this.history();
        let n = 0;
        for (const e of tail) {
          if (e.index < req.fromIndex || e.index >= w.oldest) continue;
          last = e.index;
          if (wanted(e)) yield toProtoEvent(e);
          // Hand the loop back now and then (the store may hold a long history).
          if (++n % 1000 === 0) await new Promise((r) => setImmediate(r));
          if (signal.aborted) return;
        }
      }
      for (const e of w.backlog) {
        last = e.index;
        if (wanted(e)) yield toProtoEvent(e);
      }
      while (!signal.aborted && !this.engine.isStopped) {
        // Take the whole backlog at once: shift() on a long array is O(n) per event, and a
        // slow watcher's backlog can hold tens of thousands of events.
        while (queue.length > 0) {
          const batch = queue.splice(0);
          for (const e of batch) {
            if (e.index <= last) continue;
            last = e.index;
            yield toProtoEvent(e);
          }
        }
        // Aborted while the consumer held a yielded event: nothing would wake the wait below.
        if (signal.aborted) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (this.engine.isStopped && !signal.aborted) {
        throw new FlotillaError(
          ErrorCode.NotLeader,
          'the leader stepped down; watch again to follow the new one',
          { retryable: true },
        );
      }
    } finally {
      w.close();
      onStop();
      signal.removeEventListener('abort', onAbort);
    }
  }

  async unitStatus(req: UnitStatusRequest): Promise<UnitStatusResponse> {
    const machine = this.machineFor(req.name, req.machineId);
    const text = await this.agentRpc(machine, {
      v: PROTOCOL_VERSION,
      kind: 'status',
      unit: req.name,
    });
    return { machineId: machine, text };
  }

  /**
   * The retained history as a history file, in chunks of its bytes (`flotilla events export`):
   * the store's latest snapshot and the durable log behind it, as a restore reads them.
   */
  async *exportHistory(
    _req: ExportHistoryRequest,
    signal: AbortSignal,
  ): AsyncIterable<HistoryChunk> {
    if (!this.historyToCopy)
      throw new FlotillaError(
        ErrorCode.InvalidState,
        'this leader has no durable history to export; read its store with `flotilla events export --data-dir` or `--etcd-servers`',
      );
    const restored = await this.historyToCopy();
    const chunks = historyChunks(restored, { cluster: this.cluster, flotilla: cliVersion() });
    for (const data of chunks) {
      if (signal.aborted) return;
      yield { data };
      // A long history: hand the loop back between chunks.
      await new Promise((r) => setImmediate(r));
    }
  }

  async *unitJournal(req: UnitJournalRequest, signal: AbortSignal): AsyncIterable<JournalChunk> {
    const machine = this.machineFor(req.name, req.machineId);
    const lines = req.lines || 10;
    if (!req.follow) {
      yield {
        text: await this.agentRpc(machine, {
          v: PROTOCOL_VERSION,
          kind: 'journal',
          unit: req.name,
          lines,
        }),
      };
      return;
    }
    // Follow: the agent streams lines to a private inbox while we keep it alive.
    const inbox = `${this.subj.journalInbox(machine)}.${randomUUID().replace(/-/g, '')}`;
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    // Why the stream ends although nobody asked it to: the agent stopped following, its machine
    // was lost (kill -9 says nothing: only the missing heartbeats do), this leader stepped down.
    let ended: FlotillaError | undefined;
    const end = (e: FlotillaError | undefined): void => {
      if (e === undefined || ended !== undefined) return;
      ended = e;
      wake?.();
    };
    const sub = this.bus.subscribe(inbox, (m) => {
      try {
        const lines = decodeJournalLines(m.data);
        if (lines.text !== '') queue.push(lines.text);
        if (lines.end === true) end(this.followStopped(machine, req.name));
        wake?.();
      } catch {
        // A malformed chunk is dropped; the stream goes on.
      }
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort);
    const alive = setInterval(
      () => this.bus.publish(`${inbox}.alive`, encode({ v: PROTOCOL_VERSION })),
      JOURNAL_FOLLOW_IDLE_MS / 3,
    );
    const watch = setInterval(() => end(this.followLost(machine)), FOLLOW_CHECK_MS);
    try {
      await this.agentRpc(machine, {
        v: PROTOCOL_VERSION,
        kind: 'journal',
        unit: req.name,
        lines,
        follow: true,
        inbox,
      });
      while (!signal.aborted) {
        while (queue.length > 0) yield { text: queue.shift()! };
        if (signal.aborted) break;
        if (ended) throw ended;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      clearInterval(alive);
      clearInterval(watch);
      signal.removeEventListener('abort', onAbort);
      sub.unsubscribe();
      this.bus.publish(`${inbox}.stop`, encode({ v: PROTOCOL_VERSION }));
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Why a journal follow of `machine` cannot go on, if it cannot. */
  private followLost(machine: string): FlotillaError | undefined {
    if (this.engine.isStopped) {
      return new FlotillaError(
        ErrorCode.NotLeader,
        'the leader stepped down; follow the journal again to follow it through the new one',
        { retryable: true },
      );
    }
    if (this.engine.state.machines.get(machine)?.presence === 'alive') return undefined;
    return new FlotillaError(
      ErrorCode.AgentUnavailable,
      `machine ${machine} was lost: its agent no longer answers`,
      { retryable: true, details: { machine } },
    );
  }

  /** The agent ended a follow by itself (it is shutting down, or its journal failed). */
  private followStopped(machine: string, unit: string): FlotillaError {
    return (
      this.followLost(machine) ??
      new FlotillaError(
        ErrorCode.AgentUnavailable,
        `the agent on machine ${machine} stopped following the journal of ${clip(unit)}`,
        { retryable: true, details: { machine, unit } },
      )
    );
  }

  private machineFor(name: string, requested: string): string {
    const u = this.engine.state.units.get(name);
    if (!u)
      throw new FlotillaError(ErrorCode.UnitNotFound, `unit ${clip(name)} not found`, {
        details: { unit: name },
      });
    if (requested) {
      // The ID becomes part of a NATS subject: only a machine the cluster knows.
      if (!this.engine.state.machines.has(requested)) {
        throw new FlotillaError(
          ErrorCode.MachineNotFound,
          `machine ${clip(requested, 64)} is not known to the cluster`,
          { details: { machine: requested } },
        );
      }
      return requested;
    }
    if (u.machine) return u.machine;
    const reportedOn = [...(this.engine.state.reported.get(name)?.keys() ?? [])].sort();
    if (reportedOn.length > 0) return reportedOn[0];
    throw new FlotillaError(
      ErrorCode.InvalidState,
      `unit ${clip(name)} does not run on any machine`,
      {
        details: { unit: name },
      },
    );
  }

  private async agentRpc(machine: string, req: AgentRpcRequest): Promise<string> {
    let data: Uint8Array;
    try {
      data = await requestAgent(
        { bus: this.bus, ...this.leader },
        this.subj,
        machine,
        { ...req, epoch: this.engine.epoch },
        AGENT_RPC_TIMEOUT_MS,
      );
    } catch (err) {
      throw new FlotillaError(
        ErrorCode.AgentUnavailable,
        `the agent on machine ${machine} did not answer: ${(err as Error).message}`,
        {
          cause: err,
          retryable: true,
        },
      );
    }
    const reply = decodeAgentRpcReply(data);
    if (!reply.ok)
      throw new FlotillaError(
        ErrorCode.AgentUnavailable,
        reply.error ?? `the agent on ${machine} failed`,
      );
    return reply.text;
  }
}

function parseTarget(t: string): TargetState {
  if ((TARGET_STATES as readonly string[]).includes(t)) return t as TargetState;
  throw new FlotillaError(
    ErrorCode.InvalidArgument,
    `invalid target state "${clip(t)}": use inactive, loaded or launched`,
    { details: { field: 'target_state' } },
  );
}

function refuseTemplate(name: string): void {
  if (parseUnitName(name).isTemplate) {
    throw new FlotillaError(ErrorCode.InvalidState, `cannot activate template "${name}"`, {
      details: { unit: name },
    });
  }
}

/** Names for a message: the first few, each clipped, and how many more. */
function listed(names: string[]): string {
  const shown = names.slice(0, 10).map((n) => clip(n, 60));
  return names.length > 10 ? `${shown.join(', ')} and ${names.length - 10} more` : shown.join(', ');
}

/**
 * Pages through a sorted list; the token encodes the key of the last item of the previous page
 * (requests.ts), and a token this server did not issue is refused.
 */
function paginate<T>(
  kind: 'units' | 'states',
  items: T[],
  pageSize: number,
  rawToken: string,
  key: (x: T) => string,
): { page: T[]; next: string } {
  const size = Math.min(pageSize > 0 ? pageSize : DEFAULT_PAGE, MAX_PAGE);
  const token = decodePageToken(kind, rawToken);
  let lo = 0;
  if (token) {
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (key(items[mid]) <= token) lo = mid + 1;
      else hi = mid;
    }
  }
  const page = items.slice(lo, lo + size);
  const next =
    lo + size < items.length && page.length > 0
      ? encodePageToken(kind, key(page[page.length - 1]))
      : '';
  return { page, next };
}

export function toProtoEvent(e: FlotillaEvent): Event {
  const unit = 'unit' in e ? e.unit : '';
  const machine = 'machine' in e ? e.machine : '';
  return {
    index: e.index,
    epoch: e.epoch,
    timeMs: e.time,
    schemaVersion: e.v,
    type: e.type,
    unit,
    machine,
    json: JSON.stringify(e),
  };
}
