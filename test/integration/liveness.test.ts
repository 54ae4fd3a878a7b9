import { startAgent, type AgentHandle } from '../../src/actors/agent';
import { SimulatedDriver, SimulatedSystem } from '../../src/drivers/simulated';
import { NatsBus } from '../../src/bus/nats';
import { EngineApi } from '../../src/engine/api';
import { Engine, type EngineOptions } from '../../src/engine/engine';
import { silentLogger } from '../../src/log';
import { EtcdLogStore } from '../../src/store/etcd';
import { startEtcd, startNats, type EtcdCluster, type NatsServer } from '../harness';
import { until } from '../helpers/until';

/**
 * How the leader judges liveness (docs/reliability.md), on real etcd and a real nats-server:
 * a leader that cannot hear (its own NATS connection down) declares no machine lost, so a NATS
 * outage of three agent TTLs moves and restarts nothing; a machine that really goes silent
 * while the leader hears is still lost after its TTL.
 */
jest.setTimeout(90_000);

const TTL = 2000;
let etcd: EtcdCluster;
let nats: NatsServer;

beforeAll(async () => {
  etcd = await startEtcd();
  nats = await startNats();
});
afterAll(async () => {
  await nats?.dispose();
  await etcd?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node {
  id: string;
  bus: NatsBus;
  system: SimulatedSystem;
  driver: SimulatedDriver;
  agent: AgentHandle;
}

/** A leader on real etcd and NATS, three agents with the simulated driver, `n` launched units. */
async function startCluster(
  cluster: string,
  n: number,
  engineOpts: Partial<EngineOptions> = {},
  extra: { name: string; options: { section: string; name: string; value: string }[] }[] = [],
) {
  const store = new EtcdLogStore({
    endpoints: etcd.endpoints,
    cluster,
    leaseTtlSeconds: 5,
    logger: silentLogger,
  });
  const term = await store.campaign(
    { machine: 'leader', address: 'leader:7070' },
    new AbortController().signal,
  );
  const bus = await NatsBus.connect({ servers: [nats.url], name: 'engine' });
  const engine = await Engine.start({
    term,
    bus,
    cluster,
    machineId: 'leader',
    address: 'leader:7070',
    agentTtlMs: TTL,
    ...engineOpts,
  });
  const api = new EngineApi(engine, bus, cluster, { machineId: 'leader', address: 'leader:7070' });
  const nodes: Node[] = [];
  for (let i = 0; i < 3; i++) {
    const abus = await NatsBus.connect({ servers: [nats.url], name: `agent m${i}` });
    const system = new SimulatedSystem();
    const driver = new SimulatedDriver({ system });
    const agent = await startAgent({
      cluster,
      machineId: `m${i}`,
      ip: '127.0.0.1',
      metadata: {},
      bus: abus,
      driver,
      agentTtlMs: TTL,
      requestTimeoutMs: 1000,
      syncRetry: { baseMs: 100, maxMs: 1000 },
    });
    nodes.push({ id: `m${i}`, bus: abus, system, driver, agent });
  }
  await until(() => engine.state.machines.size === 3, 'three machines joined');
  const names = [
    ...Array.from({ length: n }, (_, i) => `u${String(i).padStart(2, '0')}.service`),
    ...extra.map((u) => u.name),
  ];
  const exec = { section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' };
  await api.createUnits({
    units: names.map((name) => ({
      name,
      options: [exec, ...(extra.find((u) => u.name === name)?.options ?? [])],
      targetState: 'launched',
    })),
    replace: false,
  });
  const running = () =>
    names.every((u) => nodes.some((nd) => nd.system.units.get(u)?.active === 'active'));
  await until(running, 'every unit active');
  const stop = async (): Promise<void> => {
    for (const nd of nodes) {
      await nd.agent.stop();
      await nd.bus.close().catch(() => undefined);
    }
    await engine.stop();
    await term.resign().catch(() => undefined);
    await store.close();
    await bus.close();
  };
  /** Starts m<i>'s agent again on the same (simulated) system: its units are still there. */
  const restartAgent = async (i: number): Promise<Node> => {
    const old = nodes[i];
    const abus = await NatsBus.connect({ servers: [nats.url], name: `agent m${i}` });
    const driver = new SimulatedDriver({ system: old.system });
    const agent = await startAgent({
      cluster,
      machineId: old.id,
      ip: '127.0.0.1',
      metadata: {},
      bus: abus,
      driver,
      agentTtlMs: TTL,
      requestTimeoutMs: 1000,
      syncRetry: { baseMs: 100, maxMs: 1000 },
    });
    nodes[i] = { id: old.id, bus: abus, system: old.system, driver, agent };
    return nodes[i];
  };
  return { engine, api, nodes, names, stop, restartAgent };
}

/** Stops m<i>'s agent (its units keep running) and closes its bus: the machine goes silent. */
async function silence(nd: Node): Promise<void> {
  await nd.agent.stop();
  await nd.bus.close();
}

/** unit → "machine:pid" for every unit active on some node. */
function pids(nodes: Node[], names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const u of names)
    for (const nd of nodes) {
      const s = nd.system.units.get(u);
      if (s?.active === 'active') out[u] = `${nd.id}:${s.mainPid}`;
    }
  return out;
}

function placement(engine: Engine, names: string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((u) => [u, engine.state.units.get(u)?.machine]));
}

it('NATS down for 3× the agent TTL: placement unchanged, no unit stopped or restarted', async () => {
  const c = await startCluster('live-nats', 50);
  try {
    const placed = placement(c.engine, c.names);
    const before = pids(c.nodes, c.names);
    expect(Object.keys(before)).toHaveLength(50);
    const ops = () =>
      c.nodes.map(({ driver: { counts: k } }) => [k.load, k.unload, k.start, k.stop]);
    const counts = ops();

    await nats.stop(true);
    await sleep(3 * TTL + 500);
    await nats.start();
    await until(() => c.nodes.every((nd) => nd.agent.state() === 'ready'), 'agents ready again');
    // Past another TTL and grace: a leader that still meant to declare someone lost has done so.
    await sleep(2 * TTL);
    await until(() => c.nodes.every((nd) => nd.agent.state() === 'ready'), 'agents ready');

    expect(placement(c.engine, c.names)).toEqual(placed);
    expect(pids(c.nodes, c.names)).toEqual(before);
    expect(ops()).toEqual(counts);
    expect([...c.engine.state.machines.values()].map((m) => m.presence)).toEqual([
      'alive',
      'alive',
      'alive',
    ]);
    expect(c.engine.stats.busReconnects).toBeGreaterThanOrEqual(1);
  } finally {
    await c.stop();
  }
});

it('a machine lost and back: its units that fit nowhere else are placed on it again and never stopped', async () => {
  const c = await startCluster('live-rejoin', 12, {}, [
    { name: 'pinned.service', options: [{ section: 'X-Fleet', name: 'MachineID', value: 'm2' }] },
    { name: 'every.service', options: [{ section: 'X-Fleet', name: 'Global', value: 'true' }] },
  ]);
  try {
    const m2 = c.nodes[2];
    const mine = [...m2.system.units.keys()].sort();
    expect(mine).toEqual(expect.arrayContaining(['pinned.service', 'every.service']));
    const before = pids([m2], mine);
    await silence(m2);
    await until(() => c.engine.state.machines.get('m2')?.presence === 'lost', 'm2 lost', 5 * TTL);
    // A single loss reschedules: m2's movable units go to m0 and m1; the pinned one waits.
    const movable = mine.filter((u) => u.startsWith('u'));
    await until(
      () => movable.every((u) => ['m0', 'm1'].includes(c.engine.state.units.get(u)?.machine ?? '')),
      'movable units rescheduled',
    );
    expect(c.engine.state.units.get('pinned.service')?.machine).toBeUndefined();
    expect(c.engine.stats.reschedulingHolds).toBe(0);

    const back = await c.restartAgent(2);
    await until(() => back.agent.state() === 'ready', 'm2 ready again');
    await until(
      () => c.engine.state.units.get('pinned.service')?.machine === 'm2',
      'pinned unit placed on m2 again',
    );
    await back.agent.whenIdle();
    await until(() => movable.every((u) => !m2.system.units.has(u)), 'stale copies gone');
    // The pinned and global units were adopted and kept: never stopped, never started again.
    expect(pids([back], ['pinned.service', 'every.service'])).toEqual({
      'pinned.service': before['pinned.service'],
      'every.service': before['every.service'],
    });
    expect([back.driver.counts.start, back.driver.counts.unload]).toEqual([0, movable.length]);
  } finally {
    await c.stop();
  }
});

it('mass loss: two of three machines silent at once hold rescheduling until an operator resumes', async () => {
  const c = await startCluster('live-mass', 30);
  try {
    const placed = placement(c.engine, c.names);
    const events: string[] = [];
    const w = c.engine.watch(0, (e) => events.push(e.type));
    await Promise.all([silence(c.nodes[1]), silence(c.nodes[2])]);
    await until(() => c.engine.stats.reschedulingHolds === 1, 'rescheduling held', 5 * TTL);
    expect(c.engine.reschedulingHold?.machines.length).toBeGreaterThanOrEqual(1);
    // Held for another two TTLs: nothing moves, nothing is declared lost.
    await sleep(2 * TTL);
    expect(placement(c.engine, c.names)).toEqual(placed);
    expect(c.engine.stats.machinesLost).toBe(0);
    expect(c.engine.stats.reschedulingHeld).toBe(1);
    expect(events).toContain('ReschedulingHeld');
    expect(events).not.toContain('MachineLost');

    const status = await c.api.getClusterStatus({});
    expect(status.reschedulingHeld?.split(',').every((m) => ['m1', 'm2'].includes(m))).toBe(true);
    // The operator's word, through the API (`flotilla cluster --resume`).
    expect((await c.api.getClusterStatus({ resumeRescheduling: true })).resumed).toBe(true);
    await until(
      () => c.names.every((u) => c.engine.state.units.get(u)?.machine === 'm0'),
      'every unit on m0',
    );
    expect(c.engine.stats.machinesLost).toBe(2);
    expect(c.engine.stats.reschedulingHeld).toBe(0);
    expect(events).toContain('ReschedulingResumed');
    expect((await c.api.getClusterStatus({})).reschedulingHeld).toBeUndefined();
    w.close();
  } finally {
    await c.stop();
  }
});
