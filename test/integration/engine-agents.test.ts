import { startAgent, type AgentHandle } from '../../src/actors/agent';
import { SimulatedDriver, SimulatedSystem } from '../../src/drivers/simulated';
import { NatsBus } from '../../src/bus/nats';
import { EngineApi } from '../../src/engine/api';
import { Engine } from '../../src/engine/engine';
import { silentLogger } from '../../src/log';
import { EtcdLogStore } from '../../src/store/etcd';
import { startEtcd, startNats, type EtcdCluster, type NatsServer } from '../harness';
import { until } from '../helpers/until';

/**
 * The leader's engine on real etcd, five real agents (simulated driver) on real NATS: every
 * agent receives exactly the schedule changes placed on its machine and nothing else.
 */
jest.setTimeout(60_000);

const CLUSTER = 'ea';
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

/** A leader on the harness's etcd and the given NATS: a term, its engine and its API. */
async function startLeader(cluster: string, natsUrl: string) {
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
  const bus = await NatsBus.connect({ servers: [natsUrl] });
  const engine = await Engine.start({
    term,
    bus,
    cluster,
    machineId: 'leader',
    address: 'leader:7070',
  });
  const api = new EngineApi(engine, bus, cluster, { machineId: 'leader', address: 'leader:7070' });
  const stop = async (): Promise<void> => {
    await engine.stop();
    await term.resign();
    await store.close();
    await bus.close();
  };
  return { engine, api, bus, stop };
}

it('wakes only the target agent: schedule changes received equal units placed, per machine', async () => {
  const { engine, api, bus: engineBus, stop } = await startLeader(CLUSTER, nats.url);
  const agents: AgentHandle[] = [];
  const buses: NatsBus[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const bus = await NatsBus.connect({ servers: [nats.url] });
      buses.push(bus);
      agents.push(
        await startAgent({
          cluster: CLUSTER,
          machineId: `m${i}`,
          ip: `10.0.0.${i + 1}`,
          metadata: { rack: i < 2 ? 'a' : 'b' },
          bus,
          driver: new SimulatedDriver({}),
        }),
      );
    }
    await until(() => engine.state.machines.size === 5, 'five machines joined');
    const base = agents.map((a) => a.stats.scheduleChanges);

    const names = Array.from({ length: 47 }, (_, i) => `w${String(i).padStart(2, '0')}.service`);
    const units = names.map((name, i) => ({
      name,
      options: [
        { section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' },
        ...(i % 4 === 0 ? [{ section: 'X-Fleet', name: 'MachineMetadata', value: 'rack=a' }] : []),
      ],
      targetState: '',
    }));
    await api.createUnits({ units, replace: false });
    await api.setTargetStates({ names, targetState: 'launched' });
    await until(() => names.every((n) => engine.unitPhase(n) === 'launched'), 'all units launched');

    for (const [i, a] of agents.entries()) {
      const placed = [...engine.state.units.values()]
        .filter((u) => u.machine === `m${i}`)
        .map((u) => u.name);
      // One change per unit placed here, none for other machines' units.
      expect(a.stats.scheduleChanges - base[i]).toBe(placed.length);
      expect(
        a
          .units()
          .map((u) => u.unit)
          .sort(),
      ).toEqual(placed.sort());
    }
    // MachineMetadata=rack=a units only on m0 and m1.
    for (const name of names.filter((_, i) => i % 4 === 0)) {
      expect(['m0', 'm1']).toContain(engine.state.units.get(name)!.machine);
    }
    // A malformed message on an agent's subject is counted and dropped; the agent carries on.
    engineBus.publish(
      `flotilla.${CLUSTER}.agent.m0.schedule`,
      new TextEncoder().encode('{"v":1,"kind":"delta"'),
    );
    await engineBus.flush();
    await until(() => agents[0].stats.malformed === 1, 'malformed message counted');
    await api.setTargetStates({ names: [names[0]], targetState: 'loaded' });
    await until(() => engine.unitPhase(names[0]) === 'loaded', 'the agent still applies changes');
  } finally {
    for (const a of agents) await a.stop();
    for (const b of buses) await b.close();
    await stop();
  }
});

it('works below a small max_payload: deltas split, the full schedule read in pages', async () => {
  const small = await startNats({ maxPayload: '64KB' });
  const { engine, api, bus: engineBus, stop } = await startLeader(`${CLUSTER}-small`, small.url);
  const system = new SimulatedSystem();
  const agentBus = await NatsBus.connect({ servers: [small.url] });
  const agentOpts = {
    cluster: `${CLUSTER}-small`,
    machineId: 'm0',
    ip: '10.0.0.1',
    metadata: {},
    bus: agentBus,
  };
  let agent = await startAgent({ ...agentOpts, driver: new SimulatedDriver({ system }) });
  try {
    expect(engineBus.maxPayload).toBe(64 * 1024);
    await until(() => engine.state.machines.size === 1, 'machine joined');
    // 400 units of ~450 bytes each: 180 KB of schedule for one machine, 64 KB per message.
    const names = Array.from({ length: 400 }, (_, i) => `s${String(i).padStart(3, '0')}.service`);
    await api.createUnits({
      units: names.map((name) => ({
        name,
        options: [
          { section: 'Unit', name: 'Description', value: `${name} ${'x'.repeat(300)}` },
          { section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' },
        ],
        targetState: 'launched',
      })),
      replace: false,
    });
    await until(() => names.every((n) => engine.unitPhase(n) === 'launched'), 'all launched');
    expect(engine.stats.oversizeMessages).toBe(0);
    expect(agent.stats.scheduleMessages).toBeGreaterThan(2);

    // A restarted agent reads its whole schedule (in pages) and touches nothing.
    await agent.stop();
    const ops = system.units.size;
    const driver = new SimulatedDriver({ system });
    agent = await startAgent({ ...agentOpts, driver });
    await until(() => agent.state() === 'ready', 'restarted agent ready');
    await agent.whenIdle();
    expect(agent.units().length).toBe(400);
    expect(ops).toBe(400);
    expect(driver.counts).toMatchObject({ load: 0, start: 0, stop: 0, unload: 0 });
    expect(engine.stats.oversizeMessages).toBe(0);
    expect(agent.stats.oversizeMessages).toBe(0);
  } finally {
    await agent.stop();
    await agentBus.close();
    await stop();
    await small.dispose();
  }
});
