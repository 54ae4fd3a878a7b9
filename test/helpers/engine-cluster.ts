import { startAgent, type AgentHandle } from '../../src/actors/agent';
import { SimulatedDriver, SimulatedSystem } from '../../src/drivers/simulated';
import { startApiServer, type ApiServerHandle } from '../../src/api/server';
import type { ClusterApi } from '../../src/api/types';
import { LocalHub } from '../../src/bus/local';
import { EngineApi } from '../../src/engine/api';
import { Engine } from '../../src/engine/engine';
import type { UnitRecord } from '../../src/engine/state';
import type { UnitOption } from '../../src/gen/flotilla/v1/flotilla';
import { MemoryBackend, MemoryLogStore } from '../../src/store/memory';
import { parseUnitFile } from '../../src/unit';
import { countedApi, type CountedApi } from './counted-api';

/**
 * The real cluster in one process, for API, CLI and fleet-API tests: the leader's Engine and
 * EngineApi on the memory store, real agents (src/actors/agent.ts) on the in-process bus, each
 * on its own simulated systemd (src/agent/drivers/simulated.ts). Nothing answers a request but
 * the engine; `api` only counts calls and can inject one failure (counted-api.ts).
 *
 *   const c = await startEngineCluster();
 *   await c.api.createUnits({ units: [...], replace: false });
 *   await c.close();
 *
 * `serve()` puts the same API behind the gRPC server on a free port, as a daemon does.
 */

export interface ClusterMachine {
  id: string;
  ip: string;
  metadata: Record<string, string>;
}

/** Three machines with fleet-like 32-character IDs; the first one is the leader's. */
export const DEFAULT_MACHINES: readonly ClusterMachine[] = [
  {
    id: '32d3a898aa1bc3b5ec9e07a4e2a8c0f1',
    ip: '10.0.0.1',
    metadata: { region: 'us-east', disk: 'ssd' },
  },
  { id: '7b2c6f1e9d0a4b3c8e5f6a7b8c9d0e1f', ip: '10.0.0.2', metadata: {} },
  { id: 'c9f0e1d2c3b4a5968778695a4b3c2d1e', ip: '10.0.0.3', metadata: { region: 'eu-west' } },
];

export interface EngineClusterOptions {
  machines?: readonly ClusterMachine[];
  /** Agent TTL (default 30 s: no machine is lost during a test unless the test wants it). */
  agentTtlMs?: number;
  /** Largest unit file accepted (the daemon's max_unit_bytes). */
  maxUnitBytes?: number;
}

export type Target = 'inactive' | 'loaded' | 'launched';

const CLUSTER = 'test';

interface RunningAgent {
  machine: ClusterMachine;
  system: SimulatedSystem;
  handle?: AgentHandle;
}

export class EngineCluster {
  /** The API as clients see it (counted; see counted-api.ts). */
  readonly api: CountedApi;
  readonly leaderAddress: string;
  private readonly servers: ApiServerHandle[] = [];

  private constructor(
    readonly hub: LocalHub,
    readonly engine: Engine,
    /** The engine's API itself (not counted: for a test's own setup). */
    readonly engineApi: EngineApi,
    readonly machines: readonly ClusterMachine[],
    private readonly agents: Map<string, RunningAgent>,
    private readonly agentTtlMs: number | undefined,
  ) {
    this.api = countedApi(engineApi);
    this.leaderAddress = `${machines[0]?.ip ?? '127.0.0.1'}:7070`;
  }

  static async start(opts: EngineClusterOptions = {}): Promise<EngineCluster> {
    const machines = opts.machines ?? DEFAULT_MACHINES;
    const hub = new LocalHub();
    const store = new MemoryLogStore(new MemoryBackend());
    const leader = machines[0]?.id ?? 'leader';
    const address = `${machines[0]?.ip ?? '127.0.0.1'}:7070`;
    const term = await store.campaign({ machine: leader, address }, new AbortController().signal);
    const engine = await Engine.start({
      term,
      bus: hub.connect(),
      cluster: CLUSTER,
      machineId: leader,
      address,
      agentTtlMs: opts.agentTtlMs ?? 30_000,
    });
    const api = new EngineApi(
      engine,
      hub.connect(),
      CLUSTER,
      { machineId: leader, address },
      opts.maxUnitBytes !== undefined ? { maxUnitBytes: opts.maxUnitBytes } : undefined,
      () => store.readAll(),
    );
    const agents = new Map<string, RunningAgent>(
      machines.map((m) => [m.id, { machine: m, system: new SimulatedSystem() }]),
    );
    const c = new EngineCluster(hub, engine, api, machines, agents, opts.agentTtlMs);
    for (const id of agents.keys()) await c.startAgent(id);
    await c.until(
      () => machines.every((m) => engine.state.machines.get(m.id)?.presence === 'alive'),
      'every machine joined',
    );
    return c;
  }

  /** Starts (or restarts) the agent of machine `id`, on the machine's simulated systemd. */
  async startAgent(id: string): Promise<void> {
    const a = this.agents.get(id);
    if (!a) throw new Error(`no machine ${id}`);
    if (a.handle) return;
    a.handle = await startAgent({
      cluster: CLUSTER,
      machineId: id,
      ip: a.machine.ip,
      metadata: { ...a.machine.metadata },
      bus: this.hub.connect(),
      driver: new SimulatedDriver({
        system: a.system,
        opLatencyMs: 1,
        reloadLatencyMs: 0,
        startDelayMs: 1,
      }),
      ...(this.agentTtlMs !== undefined ? { agentTtlMs: this.agentTtlMs } : {}),
      reportBatchMs: 1,
    });
  }

  /** Stops machine `id`'s agent (its heartbeats end; the leader loses it after the TTL). */
  async stopAgent(id: string): Promise<void> {
    const a = this.agents.get(id);
    await a?.handle?.stop();
    if (a) a.handle = undefined;
  }

  /**
   * Stops every agent: the leader still counts the machines alive (until the TTL) and places
   * units on them, but nothing runs them or reports, as with agents that have not acted yet.
   */
  async pauseAgents(): Promise<void> {
    for (const id of this.agents.keys()) await this.stopAgent(id);
  }

  /** Starts the agents again: they fetch their schedules and do what they say. */
  async resumeAgents(): Promise<void> {
    for (const id of this.agents.keys()) await this.startAgent(id);
  }

  /** The engine's record of a unit (undefined: no such unit). */
  unitRecord(name: string): UnitRecord | undefined {
    return this.engine.state.units.get(name);
  }

  /** Changes machine `id`'s own metadata (its configuration); its agent announces it at once. */
  setAgentMetadata(id: string, metadata: Record<string, string>): void {
    const a = this.agents.get(id);
    if (!a?.handle) throw new Error(`no running agent on ${id}`);
    a.handle.setMetadata(metadata);
  }

  /** A machine's metadata as the API lists it. */
  async machineMetadata(id: string): Promise<Record<string, string> | undefined> {
    const { machines } = await this.engineApi.listMachines();
    return machines.find((m) => m.id === id)?.metadata;
  }

  /** Appends a line to a unit's journal on every machine that has it (seen by `journal -f`). */
  appendJournal(unit: string, line: string): void {
    let found = false;
    for (const { system } of this.agents.values()) {
      const u = system.units.get(unit);
      if (!u) continue;
      system.log(unit, u, line);
      found = true;
    }
    if (!found) throw new Error(`no machine has ${unit}`);
  }

  /** The journal lines a unit has on `machine` (what the agent will answer). */
  journal(unit: string, machine: string): string[] {
    return [...(this.agents.get(machine)?.system.units.get(unit)?.log ?? [])];
  }

  /**
   * Creates units (uncounted) with their target state and waits until the agents run them so.
   * `text` is a unit file (default: a service running /bin/true).
   */
  async seed(
    units: { name: string; text?: string; options?: UnitOption[]; target?: Target }[],
  ): Promise<void> {
    await this.engineApi.createUnits({
      units: units.map((u) => ({
        name: u.name,
        options: u.options ?? parseUnitFile(u.text ?? '[Service]\nExecStart=/bin/true\n'),
        targetState: u.target ?? 'inactive',
      })),
      replace: false,
    });
    await this.settle(units.map((u) => u.name));
  }

  /** Waits until every named unit (default: all) shows its target state. */
  async settle(names?: readonly string[]): Promise<void> {
    const wanted = names ?? this.engine.sortedUnitNames();
    await this.until(() => wanted.every((n) => this.isSettled(n)), `units settled: ${wanted}`);
  }

  private isSettled(name: string): boolean {
    const u = this.engine.state.units.get(name);
    if (!u) return true;
    const phase = this.engine.unitPhase(name);
    if (u.target === 'inactive') return phase === 'inactive' || phase === 'global';
    if (!u.requirements.global) return phase === u.target;
    // A global unit: every live machine reports it at its target.
    const active = u.target === 'launched' ? 'active' : 'inactive';
    const reported = this.engine.state.reported.get(name);
    return [...this.agents.values()]
      .filter((a) => a.handle)
      .every((a) => reported?.get(a.machine.id)?.active === active);
  }

  /** Serves `api` (default: the counted API) over gRPC on 127.0.0.1:0 and `extra` listeners. */
  async serve(opts: { api?: ClusterApi; listen?: string[] } = {}): Promise<ApiServerHandle> {
    const server = await startApiServer({
      api: opts.api ?? this.api,
      listen: ['127.0.0.1:0', ...(opts.listen ?? [])],
    });
    this.servers.push(server);
    return server;
  }

  /** Polls `cond` (a bound, not a timing assertion: a broken test fails instead of hanging). */
  async until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`never happened: ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    for (const s of this.servers.splice(0)) await s.close();
    for (const id of this.agents.keys()) await this.stopAgent(id);
    await this.engine.stop();
  }
}

export const startEngineCluster = (opts?: EngineClusterOptions): Promise<EngineCluster> =>
  EngineCluster.start(opts);
