/**
 * The agent actor over the in-process bus with the simulated driver and a fake leader: the
 * schedule protocol (seq gaps, epochs, resync, malformed messages), adoption, degraded mode,
 * reports, RPC and drain.
 */
import { LocalHub, type LocalBus } from '../../../src/bus/local';
import type { Bus, BusMessage, Subscription } from '../../../src/bus/types';
import { type AgentHandle, type AgentOptions, startAgent } from '../../../src/actors/agent';
import { SimulatedDriver, SimulatedSystem } from '../../../src/drivers/simulated';
import { ErrorCode } from '../../../src/errors';
import { ManualClock, MemoryLogger } from '../../helpers/manual-clock';
import {
  JOURNAL_FOLLOW_IDLE_MS,
  PROTOCOL_VERSION,
  decodeAgentRpcReply,
  decodeJournalLines,
  encode,
  subjects,
} from '../../../src/protocol';
import { FakeLeader, scheduled, unitFile, waitFor } from './fake-leader';

const CLUSTER = 'test';
const S = subjects(CLUSTER);

/** A bus whose connection status the test controls (LocalBus never disconnects). */
class ControlledBus implements Bus {
  private listeners = new Set<(s: 'connected' | 'disconnected') => void>();
  constructor(private readonly inner: LocalBus) {}
  get maxPayload(): number {
    return this.inner.maxPayload;
  }
  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
  }
  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription {
    return this.inner.subscribe(subject, handler);
  }
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.inner.request(subject, data, timeoutMs);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  onStatus(listener: (s: 'connected' | 'disconnected') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(s: 'connected' | 'disconnected'): void {
    for (const l of this.listeners) l(s);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Setup {
  hub: LocalHub;
  leader: FakeLeader;
  driver: SimulatedDriver;
  agent: AgentHandle;
  log: MemoryLogger;
}

const agents: AgentHandle[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.drain();
});

async function setup(
  over: Partial<AgentOptions> & {
    system?: SimulatedSystem;
    hub?: LocalHub;
    leader?: FakeLeader;
  } = {},
): Promise<Setup> {
  const hub = over.hub ?? new LocalHub();
  const leader = over.leader ?? new FakeLeader(hub.connect(), CLUSTER).start();
  const driver =
    (over.driver as SimulatedDriver | undefined) ??
    new SimulatedDriver({
      system: over.system,
      opLatencyMs: 0,
      reloadLatencyMs: 0,
      startDelayMs: 1,
    });
  const log = new MemoryLogger();
  const agent = await startAgent({
    cluster: CLUSTER,
    machineId: 'm1',
    ip: '10.0.0.1',
    metadata: { region: 'eu' },
    bus: hub.connect(),
    reportBatchMs: 5,
    log,
    ...over,
    driver,
  });
  agents.push(agent);
  return { hub, leader, driver, agent, log };
}

const ready = (a: AgentHandle) => waitFor(() => a.state() === 'ready', 'agent ready');

async function settled(a: AgentHandle, d: SimulatedDriver, units: Record<string, string>) {
  await waitFor(
    () =>
      Object.entries(units).every(([u, st]) => a.unitState(u) === st) &&
      Object.entries(units).every(
        ([u, st]) => st !== 'active' || d.system.units.get(u)?.active === 'active',
      ),
    `units ${JSON.stringify(units)} (have ${JSON.stringify(a.units().map((x) => [x.unit, x.state]))})`,
  );
  await a.whenIdle();
}

describe('agent start', () => {
  it('sends a heartbeat at once, a full report, requests its schedule and becomes ready', async () => {
    const { agent, leader } = await setup();
    await ready(agent);
    await waitFor(() => leader.heartbeats.length >= 1 && leader.reports.length >= 1, 'hb+report');
    expect(leader.heartbeats[0]).toMatchObject({
      epoch: 0,
      seq: 0,
      machine: 'm1',
      ip: '10.0.0.1',
      metadata: { region: 'eu' },
    });
    expect(leader.reports[0]).toMatchObject({ machine: 'm1', full: true, units: [] });
    expect(leader.requestsFor('m1')).toBe(1);
    expect(agent.stats.fullSchedules).toBe(1);
  });

  it('loads and starts scheduled units, one batch per tick, and reports them active', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service'), scheduled('b.service', 'loaded')]);
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'loaded' });
    expect(driver.counts).toMatchObject({ load: 2, start: 1, stop: 0, unload: 0 });
    // load a + load b in one batch, then start a.
    expect(driver.counts.batches).toBe(2);
    expect(agent.stats).toMatchObject({ scheduleMessages: 1, scheduleChanges: 2 });
    await waitFor(
      () => leader.reported('m1', 'a.service')?.active === 'active',
      'a reported active',
    );
    expect(leader.reported('m1', 'b.service')).toMatchObject({
      load: 'loaded',
      active: 'inactive',
    });
  });

  it("splits reports that would be larger than the bus's largest message", async () => {
    // Changes within 100 ms travel in one report: 60 units' worth would not fit 4,000 bytes.
    const { agent, leader, driver } = await setup({ hub: new LocalHub(4000), reportBatchMs: 100 });
    await ready(agent);
    const names = Array.from({ length: 60 }, (_, i) => `r${String(i).padStart(2, '0')}.service`);
    for (let i = 0; i < 60; i += 10)
      leader.change(
        'm1',
        names.slice(i, i + 10).map((n) => scheduled(n)),
      );
    await settled(agent, driver, Object.fromEntries(names.map((n) => [n, 'active'])));
    await waitFor(
      () => names.every((n) => leader.reported('m1', n)?.active === 'active'),
      'all reported active',
    );
    expect(agent.stats.oversizeMessages).toBe(0);
    const sizes = leader.reportSizes;
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4000);
    expect(sizes.some((n) => n > 2000)).toBe(true);
  });

  it('stops, unloads and reloads on a changed hash; unloaded units are reported gone', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service'), scheduled('b.service')]);
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    const pidBefore = driver.system.units.get('a.service')?.mainPid;
    const a2 = scheduled('a.service', 'launched', unitFile('a.service', '/bin/sleep 2000'));
    leader.change('m1', [a2], ['b.service']);
    await waitFor(() => agent.unitState('b.service') === undefined, 'b forgotten');
    await settled(agent, driver, { 'a.service': 'active' });
    expect(driver.system.units.get('a.service')?.hash).toBe(a2.hash);
    expect(driver.system.units.get('a.service')?.mainPid).not.toBe(pidBefore);
    expect(driver.system.units.has('b.service')).toBe(false);
    const ops = driver.opLog.slice(4).map((o) => `${o.kind} ${o.unit}`);
    expect(ops).toEqual([
      'unload b.service',
      'stop a.service',
      'load a.service',
      'start a.service',
    ]);
    await waitFor(() => leader.reported('m1', 'b.service') === null, 'b reported gone');
    leader.change('m1', [scheduled('a.service', 'loaded', a2.contents)]);
    await settled(agent, driver, { 'a.service': 'loaded' });
    expect(driver.system.units.get('a.service')?.active).toBe('inactive');
  });
});

describe('schedule protocol', () => {
  it('a seq gap makes the agent request its full schedule and converge', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    leader.change('m1', [scheduled('b.service')], [], true); // lost
    await new Promise((r) => setTimeout(r, 10));
    expect(agent.unitState('b.service')).toBeUndefined();
    expect(leader.requestsFor('m1')).toBe(1);
    leader.change('m1', [scheduled('c.service')]); // seq 3: gap
    await settled(agent, driver, {
      'a.service': 'active',
      'b.service': 'active',
      'c.service': 'active',
    });
    expect(leader.requestsFor('m1')).toBe(2);
    expect(agent.position()).toEqual({ epoch: 1, seq: 3 });
    // Already running units were not touched by the resync.
    expect(driver.counts).toMatchObject({ load: 3, start: 3, stop: 0, unload: 0 });
  });

  it('reads its full schedule in pages when the leader pages it, and converges', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    const names = Array.from({ length: 30 }, (_, i) => `p${String(i).padStart(2, '0')}.service`);
    leader.change(
      'm1',
      names.slice(0, 10).map((n) => scheduled(n)),
    );
    await settled(agent, driver, Object.fromEntries(names.slice(0, 10).map((n) => [n, 'active'])));
    leader.pageUnits = 7;
    leader.change(
      'm1',
      names.slice(10).map((n) => scheduled(n)),
      [],
      true,
    ); // lost
    const before = leader.requests.length;
    leader.change('m1', [], [names[0]]); // seq gap: full schedule, 29 units in 5 pages
    await settled(agent, driver, Object.fromEntries(names.slice(1).map((n) => [n, 'active'])));
    await waitFor(() => agent.unitState(names[0]) === undefined, 'removed unit gone');
    const pages = leader.requests.slice(before);
    expect(pages.map((r) => r.after ?? '')).toEqual([
      '',
      'p07.service',
      'p14.service',
      'p21.service',
      'p28.service',
    ]);
    expect(pages.every((r) => r.paged === true)).toBe(true);
    expect(agent.position()).toEqual({ epoch: 1, seq: 3 });
    expect(driver.counts).toMatchObject({ load: 30, start: 30, unload: 1 });
  });

  it('a delta with a new epoch makes the agent request its full schedule', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    leader.newTerm(false);
    // Epoch 2 seq 2: a new term's projection numbers the schedule it starts with 1 (as the
    // engine does, src/engine/projections.ts), so the first delta of the term is 2.
    leader.change('m1', [scheduled('b.service')]);
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    expect(leader.requestsFor('m1')).toBe(2);
    expect(agent.position()).toEqual({ epoch: 2, seq: 2 });
    expect(driver.counts.stop + driver.counts.unload).toBe(0);
  });

  it('drops deltas from a deposed leader (older epoch) and duplicates', async () => {
    const { agent, leader, hub } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await waitFor(() => agent.position().seq === 1, 'seq 1');
    const bus = hub.connect();
    const old = {
      v: PROTOCOL_VERSION,
      kind: 'delta',
      epoch: 0,
      seq: 9,
      put: [scheduled('x.service')],
      remove: [],
    };
    bus.publish(S.schedule('m1'), encode(old));
    bus.publish(S.schedule('m1'), encode(leader.published.get('m1')![0]));
    await waitFor(() => agent.stats.droppedDeltas === 2, 'two drops');
    expect(agent.unitState('x.service')).toBeUndefined();
    expect(leader.requestsFor('m1')).toBe(1);
  });

  it('applies deltas that arrive while the full schedule is being fetched', async () => {
    const hub = new LocalHub();
    const leader = new FakeLeader(hub.connect(), CLUSTER).start();
    leader.answer(false);
    // Answer schedule.get late, after publishing another delta.
    const bus = hub.connect();
    let held: BusMessage | undefined;
    bus.subscribe(S.scheduleGetAll, (m) => (held = m));
    leader.change('m1', [scheduled('a.service')], [], true);
    const { agent, driver } = await setup({ hub, leader });
    await waitFor(() => held !== undefined, 'request');
    const full = leader.full('m1'); // seq 1
    leader.change('m1', [scheduled('b.service')]); // seq 2, arrives while syncing
    await new Promise((r) => setTimeout(r, 5));
    held!.respond!(encode(full));
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    expect(agent.position()).toEqual({ epoch: 1, seq: 2 });
  });

  it('counts and drops malformed messages without disturbing the agent', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    leader.publishRaw(S.schedule('m1'), 'not json');
    leader.publishRaw(
      S.schedule('m1'),
      JSON.stringify({ v: 1, kind: 'delta', epoch: 1, seq: 'x' }),
    );
    leader.publishRaw(
      S.schedule('m1'),
      JSON.stringify({ v: 99, kind: 'delta', epoch: 1, seq: 2, put: [], remove: [] }),
    );
    leader.publishRaw(S.resync, '{}');
    await waitFor(() => agent.stats.malformed === 4, 'four malformed');
    expect(agent.state()).toBe('ready');
    expect(agent.stats.scheduleMessages).toBe(1);
    leader.change('m1', [scheduled('b.service')]);
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    expect(leader.requestsFor('m1')).toBe(1);
  });

  it('resync from a new leader: full report and full schedule, no ops for units as desired', async () => {
    const { agent, leader, driver } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const fullReports = agent.stats.fullReports;
    const ops = driver.opLog.length;
    leader.newTerm();
    await waitFor(() => agent.position().epoch === 2 && agent.state() === 'ready', 'epoch 2');
    expect(agent.stats.fullReports).toBe(fullReports + 1);
    expect(leader.reportsFor('m1').at(-1)).toMatchObject({
      full: true,
      units: [{ unit: 'a.service', active: 'active' }],
    });
    expect(driver.opLog.length).toBe(ops);
  });
});

describe('only the leader of the current epoch commands (leaderCheck)', () => {
  /** Two engines on one bus: L1 leads epoch 1; L2 may publish schedules under its own name. */
  async function checked(): Promise<Setup & { other: FakeLeader }> {
    const hub = new LocalHub();
    const leader = new FakeLeader(hub.connect(), CLUSTER);
    leader.name = 'L1';
    leader.start();
    const other = new FakeLeader(hub.connect(), CLUSTER);
    other.name = 'L2';
    other.start();
    const s = await setup({ hub, leader, leaderCheck: true, syncRetry: { baseMs: 10, maxMs: 50 } });
    return { ...s, other };
  }

  it('accepts no schedule until the election names a leader, then syncs with that leader only', async () => {
    const { agent, leader, other, driver } = await checked();
    leader.change('m1', [scheduled('a.service')]);
    await waitFor(() => agent.stats.scheduleRequestFailures >= 1, 'a refused request');
    expect(agent.state()).not.toBe('ready');
    expect(agent.unitState('a.service')).toBeUndefined();
    agent.setLeader({ machine: 'L1', epoch: 1 });
    await settled(agent, driver, { 'a.service': 'active' });
    expect(agent.state()).toBe('ready');
    // The request went to L1's own subject: L2 was never asked.
    expect(leader.requestsFor('m1')).toBeGreaterThanOrEqual(1);
    expect(other.requestsFor('m1')).toBe(0);
  });

  it("refuses another engine's schedule and resync for the current epoch; its sequence does not move", async () => {
    const { agent, leader, other, driver } = await checked();
    agent.setLeader({ machine: 'L1', epoch: 1 });
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const requests = leader.requestsFor('m1');
    const before = agent.stats.notFromLeader;
    // L2 forges the next deltas of the current epoch: remove a.service, run x.service.
    for (let seq = 2; seq <= 4; seq++) {
      const forged = {
        v: PROTOCOL_VERSION,
        kind: 'delta',
        epoch: 1,
        seq,
        put: [scheduled('x.service')],
        remove: ['a.service'],
      };
      other.publishRaw(other.scheduleSubject('m1'), encode(forged));
    }
    other.newTerm(); // a resync under L2's name (epoch 2): refused too
    await waitFor(() => agent.stats.notFromLeader === before + 4, 'four refusals');
    expect(agent.position()).toEqual({ epoch: 1, seq: 1 });
    expect(agent.unitState('x.service')).toBeUndefined();
    expect(agent.unitState('a.service')).toBe('active');
    expect(leader.requestsFor('m1')).toBe(requests);
    // The leader's next delta (seq 2) applies: the forgeries did not take its number.
    leader.change('m1', [scheduled('b.service')]);
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    expect(agent.position()).toEqual({ epoch: 1, seq: 2 });
  });

  it("refuses a deposed leader's schedule and resync once the election names a new one", async () => {
    const { agent, leader, other, driver, log } = await checked();
    agent.setLeader({ machine: 'L1', epoch: 1 });
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    // L2 wins epoch 2; its schedule is L1's plus b.service.
    other.epoch = 2;
    other.adopt('m1', leader.full('m1').units);
    other.change('m1', [scheduled('b.service')]);
    agent.setLeader({ machine: 'L2', epoch: 2 });
    await settled(agent, driver, { 'a.service': 'active', 'b.service': 'active' });
    // Seq 2: the schedule L2 starts its term with is 1 (as the engine numbers it).
    expect(agent.position()).toEqual({ epoch: 2, seq: 2 });
    const before = agent.stats.notFromLeader;
    // L1, deposed, still publishes: with its old epoch, and claiming the new one.
    leader.change('m1', [], ['a.service']);
    leader.epoch = 2;
    leader.change('m1', [], ['a.service']);
    leader.newTerm();
    await waitFor(() => agent.stats.notFromLeader === before + 3, 'three refusals');
    expect(agent.unitState('a.service')).toBe('active');
    expect(agent.position()).toEqual({ epoch: 2, seq: 2 });
    expect(log.lines.some((e) => e.level === 'warn' && e.msg.includes('not from the leader'))).toBe(
      true,
    );
  });

  it('answers status and journal requests only from the leader of the current epoch', async () => {
    const { agent, leader, driver, hub } = await checked();
    agent.setLeader({ machine: 'L1', epoch: 1 });
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const bus = hub.connect();
    const ask = (subject: string, epoch: number | undefined, kind: 'status' | 'journal') =>
      bus.request(subject, encode({ v: 1, kind, unit: 'a.service', lines: 1, epoch }), 100).then(
        (d) => decodeAgentRpcReply(d).ok,
        (err: { code?: string }) => err.code,
      );
    expect(await ask(S.agentRpcFrom('m1', 'L1'), 1, 'status')).toBe(true);
    expect(await ask(S.agentRpcFrom('m1', 'L1'), 1, 'journal')).toBe(true);
    const before = agent.stats.notFromLeader;
    // Another engine, the leader's name with another epoch or none, the unnamed subject.
    expect(await ask(S.agentRpcFrom('m1', 'L2'), 1, 'status')).toBe(ErrorCode.Timeout);
    expect(await ask(S.agentRpcFrom('m1', 'L2'), 1, 'journal')).toBe(ErrorCode.Timeout);
    expect(await ask(S.agentRpcFrom('m1', 'L1'), 2, 'status')).toBe(ErrorCode.Timeout);
    expect(await ask(S.agentRpcFrom('m1', 'L1'), undefined, 'journal')).toBe(ErrorCode.Timeout);
    expect(await ask(S.agentRpc('m1'), 1, 'status')).toBe(ErrorCode.Unavailable);
    expect(agent.stats.notFromLeader).toBe(before + 4);
  });

  it('does not listen on the unnamed subjects', async () => {
    const { agent, leader, driver, hub } = await checked();
    agent.setLeader({ machine: 'L1', epoch: 1 });
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const bus = hub.connect();
    const forged = {
      v: PROTOCOL_VERSION,
      kind: 'delta',
      epoch: 1,
      seq: 2,
      put: [],
      remove: ['a.service'],
    };
    bus.publish(S.schedule('m1'), encode(forged));
    bus.publish(S.resync, encode({ v: PROTOCOL_VERSION, epoch: 1 }));
    await bus.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(agent.stats.scheduleMessages).toBe(1);
    expect(agent.stats.resyncs).toBe(0);
    expect(agent.position()).toEqual({ epoch: 1, seq: 1 });
  });
});

describe('degraded', () => {
  it('no leader: degraded, units untouched, retries with backoff until a leader answers', async () => {
    const clock = new ManualClock();
    const system = new SimulatedSystem();
    const seedDriver = new SimulatedDriver({
      system,
      opLatencyMs: 0,
      reloadLatencyMs: 0,
      startDelayMs: 0,
    });
    await seedDriver.open();
    const u = scheduled('a.service');
    await seedDriver.apply([
      { kind: 'load', unit: u.unit, contents: u.contents, hash: u.hash },
      { kind: 'start', unit: u.unit },
    ]);
    await waitFor(() => system.units.get('a.service')?.active === 'active', 'seeded');
    await seedDriver.close();

    const hub = new LocalHub();
    const leader = new FakeLeader(hub.connect(), CLUSTER).start();
    leader.answer(false);
    const { agent, driver } = await setup({
      hub,
      leader,
      system,
      clock,
      random: () => 0,
      syncRetry: { baseMs: 100, maxMs: 1000 },
    });
    await waitFor(() => agent.state() === 'degraded', 'degraded');
    expect(agent.unitState('a.service')).toBe('active');
    clock.advance(100);
    // Wait for each failure to be handled (its retry is timed from then), not only sent.
    await waitFor(
      () => agent.stats.scheduleRequestFailures === 2 && agent.state() === 'degraded',
      'retry 1',
    );
    clock.advance(199);
    await new Promise((r) => setTimeout(r, 5));
    expect(agent.stats.scheduleRequests).toBe(2); // next one after 200 ms
    clock.advance(1);
    await waitFor(() => agent.stats.scheduleRequestFailures === 3, 'retry 2');
    leader.change('m1', [u], [], true);
    leader.answer(true);
    clock.advance(400);
    await ready(agent);
    await agent.whenIdle();
    expect(driver.opLog).toEqual([]);
    expect(agent.unitState('a.service')).toBe('active');
  });

  it('retries even when its timer fires a millisecond early by the wall clock (regression: stuck degraded)', async () => {
    // Node timers run on the monotonic clock; Date.now() inside one can read 1 ms before the
    // deadline. A TICK whose time was before retryAt was refused and never re-armed.
    class EarlyClock extends ManualClock {
      private firing = false;
      override now(): number {
        return super.now() - (this.firing ? 1 : 0);
      }
      override setTimeout(fn: () => void, ms: number) {
        return super.setTimeout(() => {
          this.firing = true;
          try {
            fn();
          } finally {
            this.firing = false;
          }
        }, ms);
      }
    }
    const clock = new EarlyClock();
    const hub = new LocalHub();
    const leader = new FakeLeader(hub.connect(), CLUSTER).start();
    leader.answer(false);
    const { agent } = await setup({
      hub,
      leader,
      clock,
      random: () => 0,
      syncRetry: { baseMs: 100, maxMs: 1000 },
    });
    await waitFor(() => agent.state() === 'degraded', 'degraded');
    const requests = agent.stats.scheduleRequests;
    leader.answer(true);
    clock.advance(100);
    await ready(agent);
    expect(agent.stats.scheduleRequests).toBe(requests + 1);
  });

  it('bus disconnected: degraded with no ops; on reconnect a full report and a full schedule request', async () => {
    const hub = new LocalHub();
    const bus = new ControlledBus(hub.connect());
    const { agent, leader, driver } = await setup({ hub, bus });
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const ops = driver.opLog.length;
    const fullReports = agent.stats.fullReports;
    bus.emit('disconnected');
    expect(agent.state()).toBe('degraded');
    leader.change('m1', [], ['a.service'], true); // lost while disconnected
    bus.emit('connected');
    await waitFor(() => agent.unitState('a.service') === undefined, 'a unloaded after resync');
    expect(agent.stats.fullReports).toBe(fullReports + 1);
    expect(leader.requestsFor('m1')).toBe(2);
    expect(driver.opLog.slice(ops).map((o) => o.kind)).toEqual(['unload']);
  });
});

describe('adoption', () => {
  it('a restarted agent adopts running units with no ops; units not scheduled are unloaded', async () => {
    const system = new SimulatedSystem();
    const first = await setup({ system });
    await ready(first.agent);
    first.leader.change('m1', [
      scheduled('a.service'),
      scheduled('b.service', 'loaded'),
      scheduled('c.service'),
    ]);
    await settled(first.agent, first.driver, {
      'a.service': 'active',
      'b.service': 'loaded',
      'c.service': 'active',
    });
    const pid = system.units.get('a.service')?.mainPid;
    await first.agent.drain();
    expect(system.units.get('a.service')?.active).toBe('active');

    first.leader.change('m1', [], ['c.service'], true); // scheduled away while the agent was down
    const second = await setup({ system, hub: first.hub, leader: first.leader });
    expect(second.agent.unitState('a.service')).toBe('active');
    expect(second.agent.unitState('b.service')).toBe('loaded');
    await ready(second.agent);
    await waitFor(() => second.agent.unitState('c.service') === undefined, 'c unloaded');
    await second.agent.whenIdle();
    expect(second.driver.opLog.map((o) => `${o.kind} ${o.unit}`)).toEqual(['unload c.service']);
    expect(system.units.get('a.service')?.mainPid).toBe(pid);
  });
});

describe('failures', () => {
  it('a unit that fails is reported failed with its result', async () => {
    const { agent, leader, driver } = await setup({
      driver: new SimulatedDriver({
        opLatencyMs: 0,
        reloadLatencyMs: 0,
        startDelayMs: 1,
        failOnStart: (u) => (u === 'bad.service' ? 'exit-code' : undefined),
      }),
    });
    await ready(agent);
    leader.change('m1', [scheduled('bad.service')]);
    await waitFor(() => agent.unitState('bad.service') === 'failed', 'failed');
    await waitFor(() => leader.reported('m1', 'bad.service')?.active === 'failed', 'reported');
    expect(leader.reported('m1', 'bad.service')).toMatchObject({
      sub: 'failed',
      result: 'exit-code',
    });
    expect(driver.counts.start).toBe(1); // not restarted by the agent
  });

  it('retries a failed driver op with backoff', async () => {
    const clock = new ManualClock();
    let failures = 2;
    const driver = new SimulatedDriver({
      opLatencyMs: 0,
      reloadLatencyMs: 0,
      startDelayMs: 0,
      failOp: (op) => (op.kind === 'load' && failures-- > 0 ? 'disk full' : undefined),
    });
    const { agent, leader } = await setup({
      driver,
      clock,
      unitRetry: { baseMs: 1000, maxMs: 10_000 },
    });
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await waitFor(() => agent.unitState('a.service') === 'retrying', 'retrying');
    const [view] = agent.units();
    expect(view.lastError).toMatch(/disk full/);
    expect(view.retryAt! - clock.now()).toBeGreaterThanOrEqual(1000);
    expect(view.retryAt! - clock.now()).toBeLessThan(1250);
    clock.advance(view.retryAt! - clock.now());
    await waitFor(
      () => driver.counts.load === 2 && agent.unitState('a.service') === 'retrying',
      'second failure',
    );
    const second = agent.units()[0].retryAt! - clock.now();
    expect(second).toBeGreaterThanOrEqual(2000);
    clock.advance(second);
    await waitFor(() => agent.unitState('a.service') === 'active', 'active');
    expect(driver.counts).toMatchObject({ load: 3, start: 1 });
  });
});

describe('rpc, heartbeats and drain', () => {
  it('answers status and journal on agent.<machine>.rpc', async () => {
    const { agent, leader, driver, hub } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const bus = hub.connect();
    const status = decodeAgentRpcReply(
      await bus.request(
        S.agentRpc('m1'),
        encode({ v: 1, kind: 'status', unit: 'a.service' }),
        1000,
      ),
    );
    expect(status.ok).toBe(true);
    expect(status.text).toMatch(/^● a\.service - a\.service/);
    expect(status.text).toMatch(/Active: active \(running\)/);
    const journal = decodeAgentRpcReply(
      await bus.request(
        S.agentRpc('m1'),
        encode({ v: 1, kind: 'journal', unit: 'a.service', lines: 1 }),
        1000,
      ),
    );
    expect(journal.text.split('\n')).toHaveLength(1);
    const bad = decodeAgentRpcReply(
      await bus.request(S.agentRpc('m1'), encode({ v: 1, kind: 'nope' }), 1000),
    );
    expect(bad.ok).toBe(false);
    expect(agent.stats.malformed).toBe(1);
  });

  it('journal --follow streams lines to the inbox until told to stop', async () => {
    const { agent, leader, driver, hub } = await setup();
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await settled(agent, driver, { 'a.service': 'active' });
    const bus = hub.connect();
    const inbox = `flotilla.${CLUSTER}.journal.t1`;
    const chunks: string[] = [];
    bus.subscribe(inbox, (m) => chunks.push(decodeJournalLines(m.data).text));
    const reply = decodeAgentRpcReply(
      await bus.request(
        S.agentRpc('m1'),
        encode({ v: 1, kind: 'journal', unit: 'a.service', lines: 2, follow: true, inbox }),
        1000,
      ),
    );
    expect(reply).toEqual({ v: 1, ok: true, text: '' });
    await waitFor(() => chunks.length === 1, 'tail chunk');
    expect(chunks[0].split('\n')).toHaveLength(3); // two lines, each ending with a newline
    driver.system.exit('a.service', 'exit-code');
    await waitFor(() => chunks.length === 2, 'followed line');
    expect(chunks[1]).toMatch(/a\.service: failed \(failed\) result=exit-code\n$/);
    bus.publish(`${inbox}.stop`, encode({ v: 1 }));
    await waitFor(() => !driver.system.logFollowers.has('a.service'), 'follower gone');
  });

  it('journal --follow stops when the requester stops sending keep-alives; drain stops it too', async () => {
    const clock = new ManualClock();
    const { agent, leader, driver, hub } = await setup({ clock });
    await ready(agent);
    leader.change('m1', [scheduled('a.service'), scheduled('b.service')]);
    await waitFor(
      () => agent.unitState('a.service') === 'active' && agent.unitState('b.service') === 'active',
      'active',
    );
    const bus = hub.connect();
    const follow = (unit: string, inbox: string) =>
      bus.request(
        S.agentRpc('m1'),
        encode({ v: 1, kind: 'journal', unit, lines: 1, follow: true, inbox }),
        1000,
      );
    await follow('a.service', 'flotilla.test.journal.a');
    await follow('b.service', 'flotilla.test.journal.b');
    await waitFor(() => driver.system.logFollowers.size === 2, 'following');
    clock.advance(JOURNAL_FOLLOW_IDLE_MS - 1);
    bus.publish('flotilla.test.journal.a.alive', encode({ v: 1 }));
    await new Promise((r) => setTimeout(r, 5));
    clock.advance(1);
    await waitFor(() => !driver.system.logFollowers.has('b.service'), 'silent requester dropped');
    expect(driver.system.logFollowers.has('a.service')).toBe(true);
    await agent.drain();
    expect(driver.system.logFollowers.size).toBe(0);
  });

  it('setMetadata announces new metadata with a heartbeat at once', async () => {
    const { agent, leader } = await setup();
    await ready(agent);
    await waitFor(() => leader.heartbeats.length === 1, 'first heartbeat');
    agent.setMetadata({ region: 'us', disk: 'ssd' });
    await waitFor(() => leader.heartbeats.length === 2, 'second heartbeat');
    expect(leader.heartbeats[1].metadata).toEqual({ region: 'us', disk: 'ssd' });
  });

  it('heartbeats every ttl/3 with jitter; drain stops them and leaves units running', async () => {
    const clock = new ManualClock();
    const { agent, leader, driver } = await setup({ clock, agentTtlMs: 3000, random: () => 0.5 });
    await ready(agent);
    leader.change('m1', [scheduled('a.service')]);
    await waitFor(() => driver.system.units.get('a.service')?.active === 'active', 'running');
    await waitFor(() => agent.unitState('a.service') === 'active', 'active');
    expect(agent.stats.heartbeats).toBe(1);
    clock.advance(900); // period = 1000 · (0.8 + 0.2·0.5) = 900
    expect(agent.stats.heartbeats).toBe(2);
    // Heartbeats carry the schedule position (the leader can see a missed last delta).
    await waitFor(() => leader.heartbeats.length === 2, 'heartbeat delivered');
    expect(leader.heartbeats[1]).toMatchObject({ epoch: 1, seq: 1 });
    clock.advance(900);
    expect(agent.stats.heartbeats).toBe(3);
    await agent.drain();
    expect(agent.state()).toBe('stopped');
    clock.advance(10_000);
    expect(agent.stats.heartbeats).toBe(3);
    expect(driver.system.units.get('a.service')?.active).toBe('active');
    expect(driver.counts.stop + driver.counts.unload).toBe(0);
    // After drain the agent no longer listens.
    leader.change('m1', [], ['a.service']);
    await new Promise((r) => setTimeout(r, 10));
    expect(driver.system.units.has('a.service')).toBe(true);
  });
});
