import { LocalHub } from '../../../src/bus/local';
import { EngineApi } from '../../../src/engine/api';
import { Engine } from '../../../src/engine/engine';
import { encodeState } from '../../../src/engine/snapshot';
import { foldAll } from '../../../src/engine/fold';
import { MemoryBackend, MemoryLogStore } from '../../../src/store/memory';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import { FakeAgent } from '../../helpers/fake-agent';
import { decodeScheduleFull, encode, PROTOCOL_VERSION } from '../../../src/protocol';
import { UnitView, type Unit } from '../../../src/gen/flotilla/v1/flotilla';

const CLUSTER = 't';
const opt = (section: string, name: string, value: string) => ({ section, name, value });
const svc = (name: string, extra: { section: string; name: string; value: string }[] = []) => ({
  name,
  options: [opt('Service', 'ExecStart', '/bin/sleep 1000'), ...extra],
  targetState: '',
});

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function leader(backend: MemoryBackend, hub: LocalHub, machine = 'leader1', ttl = 60_000) {
  const store = new MemoryLogStore(backend);
  const term = await store.campaign(
    { machine, address: `${machine}:7070` },
    new AbortController().signal,
  );
  const engine = await Engine.start({
    term,
    bus: hub.connect(),
    cluster: CLUSTER,
    machineId: machine,
    address: `${machine}:7070`,
    agentTtlMs: ttl,
  });
  const api = new EngineApi(engine, hub.connect(), CLUSTER, {
    machineId: machine,
    address: `${machine}:7070`,
  });
  return { store, term, engine, api };
}

describe('Engine', () => {
  let hub: LocalHub;
  let backend: MemoryBackend;
  const cleanups: (() => Promise<void> | void)[] = [];
  beforeEach(() => {
    hub = new LocalHub();
    backend = new MemoryBackend();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function cluster(machines: { id: string; md?: Record<string, string> }[]) {
    const l = await leader(backend, hub);
    cleanups.push(() => l.engine.stop());
    const agents = machines.map((m) =>
      new FakeAgent(hub.connect(), CLUSTER, m.id, m.md ?? {}).start(),
    );
    cleanups.push(() => agents.forEach((a) => a.stop()));
    for (const a of agents) await a.resync();
    return { ...l, agents };
  }

  it('places launched units on the least-loaded machines and only wakes the target agent', async () => {
    const { api, engine, agents } = await cluster([{ id: 'm1' }, { id: 'm2' }, { id: 'm3' }]);
    const names = Array.from({ length: 30 }, (_, i) => `u${String(i).padStart(2, '0')}.service`);
    await api.createUnits({ units: names.map((n) => svc(n)), replace: false });
    await api.setTargetStates({ names, targetState: 'launched' });
    await until(
      () => agents.reduce((n, a) => n + a.schedule.size, 0) === 30,
      'all units scheduled',
    );
    // Least loaded, ties by machine ID: 10 each.
    expect(agents.map((a) => a.schedule.size)).toEqual([10, 10, 10]);
    for (const a of agents) {
      const placedHere = [...engine.state.units.values()].filter(
        (u) => u.machine === a.machine,
      ).length;
      expect(a.changes).toBe(placedHere);
      expect(a.foreign).toBe(0);
    }
    await until(() => names.every((n) => engine.unitPhase(n) === 'launched'), 'units launched');
    const states = await api.listUnitStates({ pageSize: 0, pageToken: '' });
    expect(states.states).toHaveLength(30);
    expect(states.states.every((s) => s.activeState === 'active')).toBe(true);
  });

  it('commits events that arrive together in one store transaction', async () => {
    const { api, term } = await cluster([]);
    const spy = jest.spyOn(term, 'append');
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api.createUnits({ units: [svc(`g${i}.service`)], replace: false }),
      ),
    );
    const appends = spy.mock.calls.length;
    expect(appends).toBeLessThan(50);
    expect(appends).toBeGreaterThanOrEqual(1);
  });

  it('watch with types streams only those events, backlog included', async () => {
    const { api, engine, agents } = await cluster([{ id: 'm1' }]);
    await api.createUnits({ units: [svc('a.service')], replace: false });
    const from = engine.state.index;
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of api.watch(
        { fromIndex: from, types: ['UnitScheduled', 'UnitStateReported'] },
        ac.signal,
      ))
        seen.push(`${e.type} ${e.unit}`);
    })();
    await api.setTargetStates({ names: ['a.service'], targetState: 'launched' });
    await until(() => agents[0].schedule.size === 1, 'scheduled');
    await until(() => seen.includes('UnitStateReported a.service'), 'reported');
    ac.abort();
    await done;
    expect(seen[0]).toBe('UnitScheduled a.service');
    expect(seen.every((l) => /^(UnitScheduled|UnitStateReported) /.test(l))).toBe(true);
  });

  it("commits a user's small write before a large one queued ahead of it", async () => {
    const { api, term } = await cluster([]);
    const order: string[] = [];
    const append = term.append.bind(term);
    let first = true;
    jest.spyOn(term, 'append').mockImplementation(async (events) => {
      // Hold the first transaction so both writes below queue up behind it.
      if (first) {
        first = false;
        await new Promise((r) => setTimeout(r, 50));
      }
      order.push(events.length > 100 ? 'bulk' : `small:${events.length}`);
      return append(events);
    });
    const hold = api.createUnits({ units: [svc('first.service')], replace: false });
    await new Promise((r) => setImmediate(r));
    const bulk = api.createUnits({
      // 1,000 events: it does not fit in one transaction with the small write.
      units: Array.from({ length: 1000 }, (_, i) => svc(`b${i}.service`)),
      replace: false,
    });
    const small = api.createUnits({ units: [svc('small.service')], replace: false });
    await Promise.all([hold, bulk, small]);
    expect(order).toEqual(['small:1', 'small:1', 'bulk']);
  });

  it('applies the effects of a large write in several turns, answering reads in between', async () => {
    const { api, engine, agents } = await cluster([{ id: 'm1' }, { id: 'm2' }]);
    const names = Array.from({ length: 3000 }, (_, i) => `e${i}.service`);
    const turns: number[] = [];
    let ticking = true;
    const tick = (): void => {
      turns.push(engine.state.units.size);
      if (ticking) setImmediate(tick);
    };
    tick();
    await api.createUnits({
      units: names.map((n) => ({ ...svc(n), targetState: 'launched' })),
      replace: false,
    });
    await until(() => agents.reduce((n, a) => n + a.schedule.size, 0) === 3000, 'all placed');
    ticking = false;
    // The loop kept turning while 3,000 units were placed (many turns, not one long one).
    expect(turns.filter((n) => n === 3000).length).toBeGreaterThan(3);
    expect(engine.unitPhase('e0.service')).not.toBe('waiting');
  });

  it('lists units in pages, with or without their options', async () => {
    const { api } = await cluster([]);
    const names = Array.from({ length: 25 }, (_, i) => `l${String(i).padStart(2, '0')}.service`);
    await api.createUnits({ units: names.map((n) => svc(n)), replace: false });
    const all = async (view: UnitView) => {
      const out: Unit[] = [];
      let pageToken = '';
      do {
        const r = await api.listUnits({ pageSize: 10, pageToken, view });
        out.push(...r.units);
        pageToken = r.nextPageToken;
      } while (pageToken !== '');
      return out;
    };
    const full = await all(UnitView.UNIT_VIEW_UNSPECIFIED);
    const basic = await all(UnitView.UNIT_VIEW_BASIC);
    expect(full.map((u) => u.name)).toEqual(names);
    expect(full[0].options).toEqual(svc(names[0]).options);
    expect(full[0]).toEqual(await api.getUnit({ name: names[0] }));
    expect(basic.map((u) => u.name)).toEqual(names);
    expect(basic.every((u) => u.options.length === 0 && u.hash === full[0].hash)).toBe(true);
    // A change shows in the next listing (the encoded view of the unit is renewed).
    await api.setTargetStates({ names: [names[3]], targetState: 'loaded' });
    expect((await all(UnitView.UNIT_VIEW_BASIC))[3].targetState).toBe('loaded');
    // A replaced file shows too (its options, hash and description are encoded again).
    const replaced = svc(names[4], [opt('Unit', 'Description', 'replaced')]);
    await api.createUnits({ units: [replaced], replace: true });
    const after = (await all(UnitView.UNIT_VIEW_FULL))[4];
    expect(after.description).toBe('replaced');
    expect(after.options).toEqual(replaced.options);
    expect(after.hash).not.toBe(full[4].hash);
  });

  it("cuts schedule deltas below the bus's largest message; a full schedule above it is logged, not sent", async () => {
    hub = new LocalHub(16_000);
    const { api, engine, agents } = await cluster([{ id: 'm1' }]);
    const fullBefore = agents[0].fullRequests;
    const big = (i: number) =>
      svc(`big${i}.service`, [opt('Unit', 'Description', 'x'.repeat(300))]);
    const names = Array.from({ length: 100 }, (_, i) => `big${i}.service`);
    await api.createUnits({
      units: names.map((_, i) => ({ ...big(i), targetState: 'launched' })),
      replace: false,
    });
    await until(() => agents[0].schedule.size === 100, 'all 100 units on m1');
    // Several deltas in a row, none missed (no full schedule needed), none above the limit.
    expect(agents[0].messages).toBeGreaterThan(2);
    expect(agents[0].fullRequests).toBe(fullBefore);
    expect(engine.stats.oversizeMessages).toBe(0);
    // The whole schedule (100 × ~450 bytes) no longer fits one message…
    await agents[0].fetchFull().catch(() => undefined);
    expect(engine.stats.oversizeMessages).toBe(1);
    expect(agents[0].schedule.size).toBe(100);
    // …but it does in pages, for an agent that asks for pages.
    const bus = hub.connect();
    const got: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const data = await bus.request(
        `flotilla.${CLUSTER}.engine.schedule.get.m1`,
        encode({ v: PROTOCOL_VERSION, machine: 'm1', paged: true, ...(after ? { after } : {}) }),
        2000,
      );
      expect(data.length).toBeLessThanOrEqual(16_000);
      const page = decodeScheduleFull(data);
      got.push(...page.units.map((u) => u.unit));
      after = page.next;
      pages++;
    } while (after !== undefined);
    expect(pages).toBeGreaterThan(2);
    expect(got).toEqual([...names].sort());
    expect(engine.stats.oversizeMessages).toBe(1);
  });

  it('restores the same state in a new term (snapshot + tail) and keeps placements', async () => {
    const first = await cluster([{ id: 'm1' }, { id: 'm2' }]);
    const names = Array.from({ length: 10 }, (_, i) => `r${i}.service`);
    await first.api.createUnits({ units: names.map((n) => svc(n)), replace: false });
    await first.api.setTargetStates({ names: names.slice(0, 5), targetState: 'launched' });
    await first.engine.snapshot();
    const snapshotAt = first.engine.stats.lastSnapshotIndex;
    expect(snapshotAt).toBeGreaterThan(0);
    await first.api.setTargetStates({ names: names.slice(5), targetState: 'loaded' });
    await until(
      () => names.every((n) => first.engine.state.units.get(n)!.machine !== undefined),
      'placed',
    );
    const live = first.engine.state;
    const liveDurable = [...live.units.values()].map((u) => [u.name, u.target, u.machine, u.hash]);
    await first.engine.stop('test');
    await first.term.resign();

    const second = await leader(backend, hub, 'leader2');
    cleanups.push(() => second.engine.stop());
    expect(second.engine.epoch).toBeGreaterThan(first.engine.epoch);
    // `flotilla cluster` shows the snapshot the new term restored from, not 0.
    expect((await second.api.getClusterStatus({})).snapshotIndex).toBe(snapshotAt);
    expect(
      [...second.engine.state.units.values()].map((u) => [u.name, u.target, u.machine, u.hash]),
    ).toEqual(liveDurable);
    // The whole durable log folded from scratch gives the same units too.
    const all = await second.store.readAll();
    const refolded = foldAll(all.tail);
    expect([...refolded.units.keys()].sort()).toEqual([...live.units.keys()].sort());
  });

  it('sends no changes for running units after a failover', async () => {
    const first = await cluster([{ id: 'm1' }, { id: 'm2' }]);
    const names = Array.from({ length: 6 }, (_, i) => `f${i}.service`);
    await first.api.createUnits({ units: names.map((n) => svc(n)), replace: false });
    await first.api.setTargetStates({ names, targetState: 'launched' });
    await until(() => first.agents.reduce((n, a) => n + a.schedule.size, 0) === 6, 'scheduled');
    const before = first.agents.map((a) =>
      [...a.schedule.values()].map((u) => `${u.unit}:${u.hash}:${u.target}`).sort(),
    );
    await first.engine.stop('killed');
    await first.term.resign();

    const second = await leader(backend, hub, 'leader2');
    cleanups.push(() => second.engine.stop());
    await until(
      () => first.agents.every((a) => a.epoch === second.engine.epoch),
      'agents resynced with the new leader',
    );
    const after = first.agents.map((a) =>
      [...a.schedule.values()].map((u) => `${u.unit}:${u.hash}:${u.target}`).sort(),
    );
    expect(after).toEqual(before);
    // No unit moved: every placement is where it was.
    for (const n of names)
      expect(second.engine.state.units.get(n)!.machine).toBe(
        first.engine.state.units.get(n)!.machine,
      );
  });

  it('nudges an agent whose heartbeats show it missed a delta, and it catches up', async () => {
    const { api, engine, agents } = await cluster([{ id: 'm1' }]);
    const [a] = agents;
    await api.createUnits({ units: [svc('n1.service')], replace: false });
    a.dropNext = 1; // the delta placing n1 is lost on the wire
    await api.setTargetStates({ names: ['n1.service'], targetState: 'launched' });
    await until(() => engine.state.units.get('n1.service')!.machine === 'm1', 'placed');
    await new Promise((r) => setTimeout(r, 20));
    expect(a.schedule.has('n1.service')).toBe(false);
    a.heartbeat(); // behind, but the delta may still be in flight: no nudge yet
    await new Promise((r) => setTimeout(r, 20));
    expect(engine.stats.nudges).toBe(0);
    a.heartbeat(); // still behind a delta published before the previous heartbeat
    await new Promise((r) => setTimeout(r, 50));
    await until(() => a.schedule.has('n1.service'), 'the agent caught up through a full schedule');
    expect(engine.stats.nudges).toBe(1);
    a.heartbeat(); // up to date now: no more nudges
    await new Promise((r) => setTimeout(r, 20));
    a.heartbeat();
    await new Promise((r) => setTimeout(r, 20));
    expect(engine.stats.nudges).toBe(1);
  });

  it('after a failover, waits for agents to answer before placing (regression: all units on the first machine)', async () => {
    // Units wait for a machine under the first leader (no agent yet); the machines that come
    // are known to no snapshot, so the next leader learns of them only from their heartbeats.
    const first = await leader(backend, hub, 'leader1');
    const names = Array.from({ length: 10 }, (_, i) => `p${i}.service`);
    await first.api.createUnits({
      units: names.map((n) => ({ ...svc(n), targetState: 'launched' })),
      replace: false,
    });
    await first.engine.stop('killed');
    await first.term.resign();
    const agents = [
      new FakeAgent(hub.connect(), CLUSTER, 'm1').start(),
      new FakeAgent(hub.connect(), CLUSTER, 'm2').start(),
    ];
    cleanups.push(() => agents.forEach((a) => a.stop()));
    const second = await leader(backend, hub, 'leader2');
    cleanups.push(() => second.engine.stop());
    await until(
      () => names.every((n) => second.engine.state.units.get(n)!.machine !== undefined),
      'all placed',
    );
    const on = (m: string) =>
      names.filter((n) => second.engine.state.units.get(n)!.machine === m).length;
    expect([on('m1'), on('m2')]).toEqual([5, 5]);
  });

  it('reschedules the units of a lost machine', async () => {
    const l = await leader(backend, hub, 'leader1', 1500);
    cleanups.push(() => l.engine.stop());
    const a1 = new FakeAgent(hub.connect(), CLUSTER, 'm1').start();
    const a2 = new FakeAgent(hub.connect(), CLUSTER, 'm2').start();
    cleanups.push(() => (a1.stop(), a2.stop()));
    await a1.resync();
    await a2.resync();
    const beat = setInterval(() => a2.heartbeat(), 100);
    cleanups.push(() => clearInterval(beat));
    const beat1 = setInterval(() => a1.heartbeat(), 100);
    await l.api.createUnits({ units: [svc('x.service'), svc('y.service')], replace: false });
    await l.api.setTargetStates({ names: ['x.service', 'y.service'], targetState: 'launched' });
    await until(() => a1.schedule.size === 1 && a2.schedule.size === 1, 'spread');
    clearInterval(beat1);
    a1.stop(); // m1 goes silent: no heartbeats, no reports
    await until(() => a2.schedule.size === 2, 'rescheduled to m2');
    expect(l.engine.state.machines.get('m1')!.presence).toBe('lost');
  });

  it('refuses writes it could not store, keeps serving reads, and recovers', async () => {
    const { api } = await cluster([]);
    await api.createUnits({ units: [svc('keep.service')], replace: false });
    backend.setUnavailable(true);
    const err = await api
      .createUnits({ units: [svc('lost.service')], replace: false })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe(ErrorCode.StoreUnavailable);
    expect((await api.getUnit({ name: 'keep.service' })).name).toBe('keep.service');
    await expect(api.getUnit({ name: 'lost.service' })).rejects.toMatchObject({
      code: ErrorCode.UnitNotFound,
    });
    backend.setUnavailable(false);
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await api.createUnits({ units: [svc('after.service')], replace: false }).then(
        () => true,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ok).toBe(true);
    expect((await api.getUnit({ name: 'after.service' })).name).toBe('after.service');
  });

  it('steps down when deposed: its writes fail and it stops', async () => {
    const { api, engine } = await cluster([]);
    backend.depose();
    await expect(
      api.createUnits({ units: [svc('d.service')], replace: false }),
    ).rejects.toBeInstanceOf(FlotillaError);
    await until(() => engine.isStopped, 'engine stopped');
  });

  it('folds deterministically: the same events give the same snapshot bytes', async () => {
    const { api, store } = await cluster([{ id: 'm1' }]);
    await api.createUnits({ units: [svc('a.service'), svc('b.service')], replace: false });
    await api.setTargetStates({ names: ['a.service'], targetState: 'launched' });
    const all = await store.readAll();
    expect(Buffer.from(encodeState(foldAll(all.tail))).toString()).toBe(
      Buffer.from(encodeState(foldAll(all.tail))).toString(),
    );
  });
});
