/**
 * Agents over a REAL nats-server (test harness), with the simulated driver and a fake leader
 * written in the test: per-machine subjects (no agent wakes for another machine's changes),
 * a NATS outage (degraded, nothing stopped, resync after the restart), malformed messages.
 */
import { type AgentHandle, startAgent } from '../../src/actors/agent';
import { SimulatedDriver } from '../../src/drivers/simulated';
import { NatsBus } from '../../src/bus/nats';
import { ErrorCode, isFlotillaError } from '../../src/errors';
import { subjects } from '../../src/protocol';
import { type NatsServer, startNats } from '../harness';
import { FakeLeader, scheduled, waitFor } from '../unit/agent/fake-leader';

const CLUSTER = 'it';
const S = subjects(CLUSTER);

interface Node {
  id: string;
  bus: NatsBus;
  driver: SimulatedDriver;
  agent: AgentHandle;
}

let nats: NatsServer;
let leaderBus: NatsBus;
let leader: FakeLeader;
const nodes: Node[] = [];

async function startNode(id: string): Promise<Node> {
  const bus = await NatsBus.connect({ servers: [nats.url], name: `agent ${id}` });
  const driver = new SimulatedDriver({ opLatencyMs: 1, reloadLatencyMs: 1, startDelayMs: 1 });
  const agent = await startAgent({
    cluster: CLUSTER,
    machineId: id,
    ip: '127.0.0.1',
    metadata: { node: id },
    bus,
    driver,
    reportBatchMs: 10,
    requestTimeoutMs: 1000,
    syncRetry: { baseMs: 100, maxMs: 1000 },
  });
  const node = { id, bus, driver, agent };
  nodes.push(node);
  return node;
}

/**
 * The node of machine `id`. `nodes` is in the order the agents finished starting, which varies
 * from run to run: a test that picked `nodes[1]` got m1 (one unit) in some runs and m2 (four)
 * in others (the CI flake of the "NATS restart" case).
 */
function node(id: string): Node {
  const n = nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id} (started: ${nodes.map((x) => x.id).join(' ')})`);
  return n;
}

beforeAll(async () => {
  nats = await startNats();
  leaderBus = await NatsBus.connect({ servers: [nats.url], name: 'fake leader' });
  leader = new FakeLeader(leaderBus, CLUSTER).start();
  await leaderBus.flush();
});

afterAll(async () => {
  for (const n of nodes.splice(0)) {
    await n.agent.drain();
    await n.bus.close();
  }
  leader?.stop();
  await leaderBus?.close();
  await nats?.dispose();
});

/** Each agent's state, position, last error and units not active: for timeout messages. */
const describe_ = (ns: Node[]) => () =>
  JSON.stringify(
    ns.map((n) => ({
      id: n.id,
      state: n.agent.state(),
      pos: n.agent.position(),
      stats: n.agent.stats,
      notActive: n.agent
        .units()
        .filter((u) => u.state !== 'active')
        .map((u) => [u.unit, u.state]),
    })),
  );

const allActive = (n: Node, units: string[]) =>
  units.every(
    (u) => n.agent.unitState(u) === 'active' && n.driver.system.units.get(u)?.active === 'active',
  );

describe('agents on real NATS', () => {
  it('each of five agents receives exactly the changes placed on it, and none for other machines', async () => {
    const ids = ['m1', 'm2', 'm3', 'm4', 'm5'];
    const five = await Promise.all(ids.map((id) => startNode(id)));
    await waitFor(() => five.every((n) => n.agent.state() === 'ready'), describe_(five));
    const placed = new Map<string, string[]>();
    // Machine i gets i deltas of i units each (m1: 1×1, … m5: 5×5), interleaved across machines.
    for (let round = 1; round <= 5; round++) {
      for (const [i, id] of ids.entries()) {
        if (round > i + 1) continue;
        const units = Array.from({ length: i + 1 }, (_, k) => `${id}-r${round}-u${k}.service`);
        leader.change(
          id,
          units.map((u) => scheduled(u)),
        );
        placed.set(id, [...(placed.get(id) ?? []), ...units]);
      }
    }
    await waitFor(
      () => five.every((n) => allActive(n, placed.get(n.id)!)),
      describe_(five),
      20_000,
    );
    for (const [i, n] of five.entries()) {
      const mine = placed.get(n.id)!;
      expect(n.agent.stats.scheduleMessages).toBe(i + 1);
      expect(n.agent.stats.scheduleChanges).toBe((i + 1) * (i + 1));
      expect(n.agent.stats.scheduleChanges).toBe(mine.length);
      expect(n.agent.units().map((u) => u.unit)).toEqual([...mine].sort());
      expect([...n.driver.system.units.keys()].sort()).toEqual([...mine].sort());
      expect(n.agent.stats.malformed).toBe(0);
      expect(n.agent.stats.scheduleRequests).toBe(1); // no gap, no resync
      expect(n.agent.position()).toEqual({ epoch: 1, seq: i + 1 });
    }
    await waitFor(
      () =>
        five.every((n) =>
          placed.get(n.id)!.every((u) => leader.reported(n.id, u)?.active === 'active'),
        ),
      'reports reached the leader',
    );
  });

  it('a malformed message on the agent subject is counted and does not disturb it', async () => {
    const n = node('m1');
    const before = { ...n.agent.stats };
    leader.publishRaw(S.schedule(n.id), '{"v":1,"kind":"delta","epoch":1,"seq":"two"');
    leader.publishRaw(S.schedule(n.id), new Uint8Array([0xff, 0xfe, 0x00]));
    await leaderBus.flush();
    await waitFor(() => n.agent.stats.malformed === before.malformed + 2, 'malformed counted');
    expect(n.agent.state()).toBe('ready');
    leader.change(n.id, [scheduled('after-malformed.service')]);
    await waitFor(() => allActive(n, ['after-malformed.service']), 'next delta applied');
    expect(n.agent.stats.scheduleRequests).toBe(before.scheduleRequests);
    expect(nodes.filter((o) => o !== n).every((o) => o.agent.stats.malformed === 0)).toBe(true);
  });

  it("knows the server's max_payload and refuses a larger message, naming subject and sizes", () => {
    // The harness's nats-server runs with max_payload 8MB.
    expect(leaderBus.maxPayload).toBe(8 * 1024 * 1024);
    const subject = S.schedule('m1');
    let err: unknown;
    try {
      leaderBus.publish(subject, new Uint8Array(leaderBus.maxPayload + 1));
    } catch (e) {
      err = e;
    }
    expect(isFlotillaError(err, ErrorCode.PayloadTooLarge)).toBe(true);
    expect((err as Error).message).toContain(subject);
    expect((err as Error).message).toContain(`${leaderBus.maxPayload + 1} bytes`);
    expect(node('m1').agent.state()).toBe('ready');
  });

  it('NATS restart: degraded, units keep running, then a full report and a full schedule request', async () => {
    // m2 runs two deltas of two units (first case): one is removed while NATS is down, three
    // must keep running untouched.
    const n = node('m2');
    const units = n.agent.units().map((u) => u.unit);
    expect(units).toHaveLength(4);
    const ops = n.driver.opLog.length;
    const heard = leader.reportsFor(n.id).length;
    const before = { ...n.agent.stats };
    const pids = units.map((u) => n.driver.system.units.get(u)?.mainPid);

    // The agent alone must recover: no help from a leader-side resync after the restart.
    leader.resyncOnReconnect = false;
    await nats.stop();
    await waitFor(() => nodes.every((x) => x.agent.state() === 'degraded'), describe_(nodes));
    // While NATS is down the schedule changes: the delta is lost on the wire.
    leader.change(n.id, [scheduled('while-down.service')], [units[0]], true);
    expect(n.driver.opLog.length).toBe(ops);
    expect(units.every((u) => n.driver.system.units.get(u)?.active === 'active')).toBe(true);

    await nats.start();
    await waitFor(() => nodes.every((x) => x.agent.state() === 'ready'), describe_(nodes), 20_000);
    await waitFor(
      () => allActive(n, ['while-down.service']) && n.agent.unitState(units[0]) === undefined,
      'converged',
    );
    expect(n.agent.stats.fullReports).toBeGreaterThanOrEqual(before.fullReports + 1);
    expect(n.agent.stats.scheduleRequests).toBeGreaterThanOrEqual(before.scheduleRequests + 1);
    // Only the lost change was applied; the rest was never stopped or restarted.
    expect(n.driver.opLog.slice(ops).map((o) => `${o.kind} ${o.unit}`)).toEqual([
      `unload ${units[0]}`,
      'load while-down.service',
      'start while-down.service',
    ]);
    expect(units.slice(1).map((u) => n.driver.system.units.get(u)?.mainPid)).toEqual(pids.slice(1));
    // The leader got a full report after the restart, showing what the agent found: every unit
    // it ran through the outage (it is sent just before the full schedule is applied).
    const afterRestart = () => leader.reportsFor(n.id).slice(heard);
    const seen = () =>
      `agent ${JSON.stringify(n.agent.stats)}; leader got ${JSON.stringify(
        afterRestart().map((r) => [r.full, r.units.map((u) => u.unit), r.gone]),
      )}`;
    await waitFor(() => afterRestart().some((r) => r.full), seen);
    const full = afterRestart().find((r) => r.full)!;
    expect(full.units.map((u) => [u.unit, u.active])).toEqual(
      [...units].sort().map((u) => [u, 'active']),
    );
    // And the leader's record of the machine, folding the full report and the changes after
    // it, is the agent's: the removed unit gone, the others active.
    await waitFor(
      () =>
        leader.reported(n.id, units[0]) === null &&
        ['while-down.service', ...units.slice(1)].every(
          (u) => leader.reported(n.id, u)?.active === 'active',
        ),
      seen,
    );
  });
});
