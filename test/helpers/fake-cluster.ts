import type { ClusterApi } from '../../src/api/types';
import { decodePageToken, encodePageToken } from '../../src/engine/requests';
import { ErrorCode, FlotillaError } from '../../src/errors';
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
  JournalChunk,
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
  UnitOption,
  UnitState,
  UnitStatusRequest,
  UnitStatusResponse,
  WatchRequest,
} from '../../src/gen/flotilla/v1/flotilla';
import { UnitView } from '../../src/gen/flotilla/v1/flotilla';
import { unitMessage } from '../../src/engine/unit-views';
import { lifecycleFrom, observe, statusOf } from '../../src/engine/lifecycle';
import {
  parseUnitFile,
  splitUnitName,
  unitDescription,
  unitHash,
  unitRequirements,
  validateUnitName,
} from '../../src/unit';

/**
 * An in-memory ClusterApi for CLI and API tests: units with target states, machines, and
 * simulated agents. With `agents: 'auto'` (the default) every unit whose target changes
 * reaches it a tick later, as a healthy cluster would; with `'manual'` nothing moves until
 * the test calls {@link FakeCluster.converge}. Counts calls per method so tests can check
 * that a command made O(1) requests.
 */

export interface FakeMachine {
  id: string;
  ip: string;
  metadata: Record<string, string>;
}

export interface FakeClusterOptions {
  machines?: { id: string; ip?: string; metadata?: Record<string, string> }[];
  agents?: 'auto' | 'manual';
  /** Delay before simulated agents report the target state (auto mode). */
  tickMs?: number;
}

type Target = 'inactive' | 'loaded' | 'launched';
type Reported = { load: string; active: string; sub: string; hash: string; starts?: number };

interface FakeUnit {
  name: string;
  options: UnitOption[];
  hash: string;
  target: Target;
  machine?: string;
  global: boolean;
  description: string;
  reported: Map<string, Reported>;
}

/** Three machines with fleet-like 32-character IDs. */
export const DEFAULT_MACHINES: FakeMachine[] = [
  {
    id: '32d3a898aa1bc3b5ec9e07a4e2a8c0f1',
    ip: '10.0.0.1',
    metadata: { region: 'us-east', disk: 'ssd' },
  },
  { id: '7b2c6f1e9d0a4b3c8e5f6a7b8c9d0e1f', ip: '10.0.0.2', metadata: {} },
  { id: 'c9f0e1d2c3b4a5968778695a4b3c2d1e', ip: '10.0.0.3', metadata: { region: 'eu-west' } },
];

const TARGETS: readonly string[] = ['inactive', 'loaded', 'launched'];

export class FakeCluster implements ClusterApi {
  readonly machines: FakeMachine[];
  readonly units = new Map<string, FakeUnit>();
  readonly events: Event[] = [];
  /** Calls per ClusterApi method name. */
  readonly calls = new Map<string, number>();
  /** Streams whose signal was aborted (client cancelled), by method. */
  readonly aborted = new Map<string, number>();
  agents: 'auto' | 'manual';
  private readonly tickMs: number;
  private readonly failures = new Map<string, Error>();
  private readonly listeners = new Set<(e: Event) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly journals = new Map<string, string[]>();
  private readonly journalListeners = new Set<(unit: string, line: string) => void>();
  private epoch = 1;
  /** Machines held by the mass-loss guard, comma-separated (undefined: not held). */
  held: string | undefined;

  constructor(opts: FakeClusterOptions = {}) {
    this.machines = (opts.machines ?? DEFAULT_MACHINES).map((m) => ({
      id: m.id,
      ip: m.ip ?? '',
      metadata: { ...(m.metadata ?? {}) },
    }));
    this.agents = opts.agents ?? 'auto';
    this.tickMs = opts.tickMs ?? 10;
  }

  // ------------------------------------------------------------------ test controls

  /** The next call of `method` fails with `err` (once). */
  failNext(method: keyof ClusterApi, err: Error): void {
    this.failures.set(method, err);
  }

  count(method: keyof ClusterApi): number {
    return this.calls.get(method) ?? 0;
  }

  resetCounts(): void {
    this.calls.clear();
  }

  /** Simulated agents report every named unit (default: all) at its target state now. */
  converge(names?: readonly string[]): void {
    for (const name of names ?? [...this.units.keys()]) {
      const u = this.units.get(name);
      if (u) this.reportTarget(u);
    }
  }

  /** Sets what the agents report for a unit on a machine, whatever its target. */
  report(name: string, machine: string, state: Reported | null): void {
    const u = this.mustGet(name);
    if (state) u.reported.set(machine, state);
    else u.reported.delete(machine);
    this.emit({ type: 'UnitStateReported', unit: name, machine });
  }

  /** Appends a journal line to a unit (delivered to `journal --follow` streams). */
  appendJournal(unit: string, line: string): void {
    this.journalLines(unit).push(line);
    for (const l of this.journalListeners) l(unit, line);
  }

  /** Stops timers and ends open streams. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Adds units as if created with that target state and already converged (the agents report
   * it), without counting calls.
   */
  seed(units: { name: string; text?: string; options?: UnitOption[]; target?: Target }[]): void {
    for (const s of units) {
      const options = s.options ?? parseUnitFile(s.text ?? `[Service]\nExecStart=/bin/true\n`);
      const u = this.newUnit(s.name, options, s.target ?? 'inactive');
      this.units.set(u.name, u);
      this.emit({ type: 'UnitSubmitted', unit: u.name });
      this.placeIfNeeded(u);
      this.reportTarget(u);
    }
  }

  // ------------------------------------------------------------------ ClusterApi

  async createUnits(req: CreateUnitsRequest): Promise<CreateUnitsResponse> {
    this.enter('createUnits');
    const seen = new Set<string>();
    const results: CreateUnitResult[] = [];
    const todo: (() => void)[] = [];
    for (const spec of req.units) {
      validateUnitName(spec.name);
      if (seen.has(spec.name)) {
        throw new FlotillaError(
          ErrorCode.InvalidArgument,
          `unit ${spec.name} appears twice in one request`,
        );
      }
      seen.add(spec.name);
      unitRequirements(spec.name, spec.options);
      const target = parseTarget(spec.targetState || 'inactive');
      if (target !== 'inactive') refuseTemplate(spec.name);
      const hash = unitHash(spec.options);
      const existing = this.units.get(spec.name);
      if (!existing) {
        results.push({ name: spec.name, outcome: 'created' });
        todo.push(() => {
          const u = this.newUnit(spec.name, spec.options, target);
          this.units.set(u.name, u);
          this.emit({ type: 'UnitSubmitted', unit: u.name });
          if (target !== 'inactive') this.targetChanged(u);
        });
      } else if (existing.hash === hash) {
        results.push({ name: spec.name, outcome: 'unchanged' });
      } else if (!req.replace) {
        results.push({ name: spec.name, outcome: 'differs' });
      } else {
        results.push({ name: spec.name, outcome: 'replaced' });
        todo.push(() => {
          existing.options = spec.options;
          existing.hash = hash;
          existing.description = unitDescription(spec.options);
          this.emit({ type: 'UnitReplaced', unit: existing.name });
          this.targetChanged(existing);
        });
      }
    }
    for (const f of todo) f();
    return { results, index: this.index };
  }

  async setTargetStates(req: SetTargetStatesRequest): Promise<SetTargetStatesResponse> {
    this.enter('setTargetStates');
    const target = parseTarget(req.targetState);
    const missing = req.names.filter((n) => !this.units.has(n));
    if (missing.length > 0) {
      throw new FlotillaError(ErrorCode.UnitNotFound, `units not found: ${missing.join(', ')}`, {
        details: { unit: missing[0] },
      });
    }
    if (target !== 'inactive') req.names.forEach(refuseTemplate);
    for (const name of new Set(req.names)) {
      const u = this.units.get(name)!;
      if (u.target === target) continue;
      u.target = target;
      this.emit({ type: 'UnitTargetSet', unit: name });
      this.targetChanged(u);
    }
    return { index: this.index };
  }

  async destroyUnits(req: DestroyUnitsRequest): Promise<DestroyUnitsResponse> {
    this.enter('destroyUnits');
    const destroyed = [...new Set(req.names)].filter((n) => this.units.has(n));
    for (const n of destroyed) {
      this.units.delete(n);
      this.emit({ type: 'UnitDestroyed', unit: n });
    }
    return { destroyed, index: this.index };
  }

  async getUnit(req: GetUnitRequest): Promise<Unit> {
    this.enter('getUnit');
    return this.view(this.mustGet(req.name));
  }

  async listUnits(req: ListUnitsRequest): Promise<ListUnitsResponse> {
    this.enter('listUnits');
    const names = [...this.units.keys()].sort();
    const { page, next } = paginate('units', names, req.pageSize, req.pageToken, (n) => n);
    const basic = req.view === UnitView.UNIT_VIEW_BASIC;
    const units = page.map((n) => this.view(this.units.get(n)!));
    return {
      units: basic ? units.map((u) => ({ ...u, options: [] })) : units,
      nextPageToken: next,
    };
  }

  async listUnitStates(req: ListUnitStatesRequest): Promise<ListUnitStatesResponse> {
    this.enter('listUnitStates');
    const rows: UnitState[] = [];
    for (const name of [...this.units.keys()].sort()) {
      const u = this.units.get(name)!;
      for (const machineId of [...u.reported.keys()].sort()) {
        const r = u.reported.get(machineId)!;
        rows.push({
          name,
          machineId,
          machineIp: this.machines.find((m) => m.id === machineId)?.ip ?? '',
          loadState: r.load,
          activeState: r.active,
          subState: r.sub,
          hash: r.hash,
          starts: r.starts ?? 0,
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
    return { states: page, nextPageToken: next };
  }

  async listMachines(): Promise<ListMachinesResponse> {
    this.enter('listMachines');
    return {
      machines: this.machines.map((m) => ({
        id: m.id,
        ip: m.ip,
        metadata: { ...m.metadata },
        state: 'alive',
      })),
    };
  }

  async setMachineMetadata(req: SetMachineMetadataRequest): Promise<SetMachineMetadataResponse> {
    this.enter('setMachineMetadata');
    const m = this.machines.find((x) => x.id === req.machineId);
    if (!m)
      throw new FlotillaError(ErrorCode.MachineNotFound, `machine ${req.machineId} not found`);
    m.metadata = { ...req.metadata };
    this.emit({ type: 'MachineMetadataSet', machine: m.id });
    return { index: this.index };
  }

  async getClusterStatus(req: Partial<GetClusterStatusRequest> = {}): Promise<ClusterStatus> {
    this.enter('getClusterStatus');
    let resumed: boolean | undefined;
    if (req.resumeRescheduling) {
      resumed = this.held !== undefined;
      this.held = undefined;
    }
    return {
      ...(this.held !== undefined ? { reschedulingHeld: this.held } : {}),
      ...(resumed !== undefined ? { resumed } : {}),
      leaderMachineId: this.machines[0]?.id ?? '',
      leaderAddress: '10.0.0.1:7070',
      epoch: this.epoch,
      logIndex: this.index,
      units: this.units.size,
      machines: this.machines.length,
      snapshotIndex: 0,
    };
  }

  async *watch(req: WatchRequest, signal: AbortSignal): AsyncIterable<Event> {
    this.enter('watch');
    const types = new Set(req.types);
    yield* this.stream('watch', signal, (push) => {
      const l = (e: Event): void => {
        if (types.size === 0 || types.has(e.type)) push(e);
      };
      if (req.fromIndex > 0) for (const e of this.events) if (e.index >= req.fromIndex) l(e);
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  async unitStatus(req: UnitStatusRequest): Promise<UnitStatusResponse> {
    this.enter('unitStatus');
    const u = this.mustGet(req.name);
    const machine = this.machineOf(u, req.machineId);
    const r = u.reported.get(machine);
    const active = r ? `${r.active} (${r.sub})` : 'inactive (dead)';
    const text = [
      `● ${u.name}${u.description ? ` - ${u.description}` : ''}`,
      `   Loaded: loaded (/run/flotilla/units/${u.name}; static)`,
      `   Active: ${active}`,
      ...(r?.active === 'active' ? [' Main PID: 4242 (sleep)'] : []),
      '',
    ].join('\n');
    return { machineId: machine, text };
  }

  async *unitJournal(req: UnitJournalRequest, signal: AbortSignal): AsyncIterable<JournalChunk> {
    this.enter('unitJournal');
    const u = this.mustGet(req.name);
    this.machineOf(u, req.machineId);
    const lines = this.journalLines(u.name);
    const n = req.lines || 10;
    // As the engine's agents answer: lines joined, no newline after the last one.
    yield { text: lines.slice(-n).join('\n') };
    if (!req.follow) return;
    yield* this.stream<JournalChunk>('unitJournal', signal, (push) => {
      const l = (unit: string, line: string): void => {
        if (unit === u.name) push({ text: `\n${line}` });
      };
      this.journalListeners.add(l);
      return () => this.journalListeners.delete(l);
    });
  }

  // ------------------------------------------------------------------ internals

  get index(): number {
    return this.events.length;
  }

  private enter(method: keyof ClusterApi): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    const f = this.failures.get(method);
    if (f) {
      this.failures.delete(method);
      throw f;
    }
  }

  private async *stream<T>(
    method: string,
    signal: AbortSignal,
    subscribe: (push: (x: T) => void) => () => void,
  ): AsyncGenerator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = subscribe((x) => {
      queue.push(x);
      wake?.();
    });
    const onAbort = (): void => {
      this.aborted.set(method, (this.aborted.get(method) ?? 0) + 1);
      wake?.();
    };
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        while (queue.length > 0) yield queue.shift()!;
        if (signal.aborted) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private emit(e: { type: string; unit?: string; machine?: string }): void {
    const event: Event = {
      index: this.events.length + 1,
      epoch: this.epoch,
      timeMs: 1_780_000_000_000 + this.events.length * 1000,
      schemaVersion: 1,
      type: e.type,
      unit: e.unit ?? '',
      machine: e.machine ?? '',
      json: '',
    };
    event.json = JSON.stringify({
      index: event.index,
      epoch: event.epoch,
      time: event.timeMs,
      v: 1,
      type: e.type,
      ...(e.unit ? { unit: e.unit } : {}),
      ...(e.machine ? { machine: e.machine } : {}),
    });
    this.events.push(event);
    for (const l of this.listeners) l(event);
  }

  private newUnit(name: string, options: UnitOption[], target: Target): FakeUnit {
    return {
      name,
      options,
      hash: unitHash(options),
      target,
      global: unitRequirements(name, options).requirements.global,
      description: unitDescription(options),
      reported: new Map(),
    };
  }

  /** As the engine shows a unit (the same lifecycle machine, from the agents' reports). */
  private view(u: FakeUnit): Unit {
    const reports = u.machine
      ? [u.reported.get(u.machine)].filter((s) => s !== undefined)
      : [...u.reported.values()];
    const life = lifecycleFrom({
      name: u.name,
      target: u.target,
      global: u.global,
      placed: u.machine !== undefined && !u.global,
      lost: false,
      observed: observe(reports),
    });
    return unitMessage(u, statusOf(life));
  }

  private mustGet(name: string): FakeUnit {
    const u = this.units.get(name);
    if (!u)
      throw new FlotillaError(ErrorCode.UnitNotFound, `unit ${name} not found`, {
        details: { unit: name },
      });
    return u;
  }

  private machineOf(u: FakeUnit, requested: string): string {
    if (requested) return requested;
    if (u.machine) return u.machine;
    const on = [...u.reported.keys()].sort();
    if (on.length > 0) return on[0];
    throw new FlotillaError(ErrorCode.InvalidState, `unit ${u.name} does not run on any machine`);
  }

  private journalLines(unit: string): string[] {
    let l = this.journals.get(unit);
    if (!l) {
      l = Array.from(
        { length: 20 },
        (_, i) => `Nov 22 02:00:${String(i).padStart(2, '0')} host ${unit}[4242]: line ${i + 1}`,
      );
      this.journals.set(unit, l);
    }
    return l;
  }

  /** Places a non-global unit on the machine with the fewest units (ties: lowest ID). */
  private placeIfNeeded(u: FakeUnit): void {
    if (u.global) return;
    if (u.target === 'inactive') {
      if (u.machine) {
        const m = u.machine;
        u.machine = undefined;
        this.emit({ type: 'UnitUnscheduled', unit: u.name, machine: m });
      }
      return;
    }
    if (u.machine || this.machines.length === 0) return;
    const load = new Map(this.machines.map((m) => [m.id, 0]));
    for (const x of this.units.values())
      if (x.machine) load.set(x.machine, (load.get(x.machine) ?? 0) + 1);
    const best = [...this.machines].sort(
      (a, b) => load.get(a.id)! - load.get(b.id)! || (a.id < b.id ? -1 : 1),
    )[0];
    u.machine = best.id;
    this.emit({ type: 'UnitScheduled', unit: u.name, machine: best.id });
  }

  private targetChanged(u: FakeUnit): void {
    this.placeIfNeeded(u);
    if (this.agents !== 'auto') return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.units.get(u.name) === u) this.reportTarget(u);
    }, this.tickMs);
    this.timers.add(t);
  }

  /** What agents report once they did what the target says. */
  private reportTarget(u: FakeUnit): void {
    const machines = u.global ? this.machines.map((m) => m.id) : u.machine ? [u.machine] : [];
    for (const m of [...u.reported.keys()]) {
      if (!machines.includes(m) || u.target === 'inactive') {
        u.reported.delete(m);
        this.emit({ type: 'UnitStateReported', unit: u.name, machine: m });
      }
    }
    if (u.target === 'inactive') return;
    for (const m of machines) {
      u.reported.set(
        m,
        u.target === 'launched'
          ? { load: 'loaded', active: 'active', sub: 'running', hash: u.hash }
          : { load: 'loaded', active: 'inactive', sub: 'dead', hash: u.hash },
      );
      this.emit({ type: 'UnitStateReported', unit: u.name, machine: m });
    }
  }
}

function parseTarget(t: string): Target {
  if (TARGETS.includes(t)) return t as Target;
  throw new FlotillaError(
    ErrorCode.InvalidArgument,
    `invalid target state "${t}": use inactive, loaded or launched`,
  );
}

function refuseTemplate(name: string): void {
  if (splitUnitName(name)?.isTemplate) {
    throw new FlotillaError(ErrorCode.InvalidState, `cannot activate template "${name}"`, {
      details: { unit: name },
    });
  }
}

/** The engine's paging: its token encoding (src/engine/requests.ts), items after the cursor. */
function paginate<T>(
  kind: 'units' | 'states',
  items: T[],
  pageSize: number,
  token: string,
  key: (x: T) => string,
): { page: T[]; next: string } {
  const size = pageSize > 0 ? pageSize : 1000;
  const after = decodePageToken(kind, token);
  const lo = after ? items.findIndex((x) => key(x) > after) : 0;
  const start = lo === -1 ? items.length : lo;
  const page = items.slice(start, start + size);
  const next = start + size < items.length ? encodePageToken(kind, key(page[page.length - 1])) : '';
  return { page, next };
}
