import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { foldAll } from '../../../src/engine/fold';
import { encodeState, toSnapshotDoc } from '../../../src/engine/snapshot';
import { emptyState } from '../../../src/engine/state';
import type { EventBody, FlotillaEvent } from '../../../src/events/types';
import { offlineBackend } from '../../../src/viz/backend';
import { History } from '../../../src/viz/history';
import { VizServer } from '../../../src/viz/server';
import {
  countStates,
  foldedView,
  NO_FILTER,
  parseFilter,
  unitsIn,
  unitTimeline,
} from '../../../src/viz/views';

const M1 = 'a'.repeat(32);
const M2 = 'b'.repeat(32);
const T0 = Date.UTC(2026, 0, 1);

function log(bodies: EventBody[]): FlotillaEvent[] {
  return bodies.map(
    (b, i) => ({ ...b, index: i + 1, epoch: 1, time: T0 + i * 1000, v: 1 }) as FlotillaEvent,
  );
}

const submit = (unit: string): EventBody => ({
  type: 'UnitSubmitted',
  unit,
  options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }],
  hash: 'h',
  target: 'inactive',
});

/** A small cluster: two machines (one lost later), web units launched, a crash. */
function story(): FlotillaEvent[] {
  return log([
    { type: 'MachineJoined', machine: M1, ip: '10.0.0.1', metadata: { role: 'web' } },
    { type: 'MachineJoined', machine: M2, ip: '10.0.0.2', metadata: { role: 'db' } },
    submit('web1.service'),
    submit('web2.service'),
    submit('db.service'),
    { type: 'UnitTargetSet', unit: 'web1.service', target: 'launched' },
    { type: 'UnitScheduled', unit: 'web1.service', machine: M1, reason: 'least loaded' },
    {
      type: 'UnitStateReported',
      unit: 'web1.service',
      machine: M1,
      state: { load: 'loaded', active: 'active', sub: 'running', hash: 'h', mainPid: 42 },
    },
    { type: 'UnitTargetSet', unit: 'db.service', target: 'launched' },
    { type: 'UnitScheduled', unit: 'db.service', machine: M2, reason: 'least loaded' },
    {
      type: 'UnitStateReported',
      unit: 'db.service',
      machine: M2,
      state: { load: 'loaded', active: 'failed', sub: 'failed', hash: 'h', result: 'exit-code' },
    },
    { type: 'MachineLost', machine: M2, reason: 'no heartbeat' },
    { type: 'UnitUnscheduled', unit: 'db.service', machine: M2, reason: 'machine lost' },
  ]);
}

describe('History', () => {
  test('the state at any index is the fold of the log up to it, across checkpoints', () => {
    const bodies: EventBody[] = [submit('a.service'), submit('b.service')];
    for (let i = 0; i < 45_000; i++)
      bodies.push({
        type: 'UnitTargetSet',
        unit: i % 3 ? 'a.service' : 'b.service',
        target: i % 2 ? 'loaded' : 'inactive',
      });
    const events = log(bodies);
    const h = new History({ tail: events });
    expect(h.last).toBe(events.length);
    for (const at of [1, 2, 19_999, 20_001, 40_002, 44_321, events.length]) {
      const want = foldAll(events.slice(0, at), emptyState());
      expect(toSnapshotDoc(h.stateAt(at))).toEqual(toSnapshotDoc(want));
    }
  });

  test('from a snapshot: starts there, refuses earlier points, finds indexes by time', () => {
    const events = story();
    const snapState = foldAll(events.slice(0, 5), emptyState());
    const h = new History({
      snapshot: { index: 5, epoch: 1, data: encodeState(snapState) },
      tail: events.slice(5),
    });
    expect(h.first).toBe(5);
    expect(() => h.stateAt(3)).toThrow(/before the oldest retained point \(5\)/);
    expect(h.stateAt(7).units.get('web1.service')!.machine).toBe(M1);
    expect(h.indexAtTime(T0 + 7_500)).toBe(8);
    expect(h.indexAtTime(T0 - 1)).toBe(5);
    expect(h.timeAt(8)).toBe(T0 + 7000);
  });
});

describe('views', () => {
  const events = story();
  const h = new History({ tail: events });

  test('counts per state, filtered by name, machine and metadata', () => {
    const at8 = foldedView(h.stateAt(8), 0);
    expect(countStates(at8, NO_FILTER)['engine-unit']).toEqual({ launched: 1, inactive: 2 });
    const now = foldedView(h.current, 0);
    expect(countStates(now, NO_FILTER)).toEqual({
      'engine-unit': { launched: 1, inactive: 1, rescheduling: 1 },
      'engine-machine': { alive: 1, lost: 1 },
    });
    const web = parseFilter(new URLSearchParams('meta=role=web'));
    expect(countStates(now, web)).toEqual({
      'engine-unit': { launched: 1 },
      'engine-machine': { alive: 1 },
    });
    expect(countStates(now, parseFilter(new URLSearchParams('name=db*')))['engine-unit']).toEqual({
      rescheduling: 1,
    });
    expect(() => parseFilter(new URLSearchParams('meta=role'))).toThrow(/not key=value/);
  });

  test('units in a state, paged and searched', () => {
    const now = foldedView(h.current, 0);
    const all = unitsIn(now, NO_FILTER, { state: '', search: '', offset: 1, limit: 1 });
    expect(all.total).toBe(3);
    expect(all.units.map((u) => u.name)).toEqual(['web1.service']);
    expect(
      unitsIn(now, NO_FILTER, { state: 'launched', search: 'web', offset: 0, limit: 10 }).units,
    ).toEqual([
      {
        name: 'web1.service',
        state: 'launched',
        target: 'launched',
        machine: M1,
        active: 'active',
        sub: 'running',
      },
    ]);
  });

  test("a unit's timeline: its events, its machine's loss, the states it moved between", () => {
    const t = unitTimeline(h, 'db.service');
    expect(t.map((e) => [e.type, e.from, e.to])).toEqual([
      ['UnitSubmitted', '', 'inactive'],
      ['UnitTargetSet', 'inactive', 'waiting'],
      ['UnitScheduled', 'waiting', 'scheduled'],
      ['UnitStateReported', 'scheduled', 'failed'],
      // a lost machine's report no longer counts, and the unit leaves it to be placed again
      ['MachineLost', 'failed', 'scheduled'],
      ['UnitUnscheduled', 'scheduled', 'rescheduling'],
    ]);
    // The same state the whole cluster's fold gives it.
    expect(foldedView(h.current, 0).unitPhase('db.service')).toBe('rescheduling');
    expect(t[3].details).toMatchObject({
      machine: M2,
      state: { active: 'failed', result: 'exit-code' },
    });
    expect(t[5].details).toMatchObject({ reason: 'machine lost' });
    expect(unitTimeline(h, 'db.service', 9).map((e) => e.index)).toEqual([5, 9]);
  });
});

describe('VizServer over an offline history', () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    const viz = new VizServer(offlineBackend({ tail: story() }));
    server = http.createServer((req, res) => {
      if (!viz.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));
  const get = async (p: string) => {
    const res = await fetch(base + p);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  test('counts now, at an index, at a time, and compared', async () => {
    expect((await get('/ui/api/counts')).body).toMatchObject({ index: 13, live: false });
    const at = await get('/ui/api/counts?at=8&compare=13');
    expect(at.body).toMatchObject({
      index: 8,
      counts: { 'engine-unit': { launched: 1, inactive: 2 } },
      compare: { index: 13, counts: { 'engine-unit': { rescheduling: 1 } } },
      range: { first: 0, last: 13 },
    });
    const byTime = await get('/ui/api/counts?at=' + new Date(T0 + 4_500).toISOString());
    expect(byTime.body.index).toBe(5);
  });

  test('a unit, a missing unit, bad input', async () => {
    const u = await get('/ui/api/units/web1.service?at=7');
    expect(u.body).toMatchObject({ exists: true, state: 'scheduled', index: 7 });
    expect((u.body.timeline as unknown[]).length).toBe(3);
    expect((await get('/ui/api/units/nope.service')).status).toBe(404);
    expect((await get('/ui/api/counts?at=yesterday')).body).toMatchObject({
      error: { code: 'INVALID_ARGUMENT' },
    });
    expect((await get('/ui/api/units?limit=-1')).status).toBe(400);
  });

  test('the API lists the machines (a lost one as lost) and the graphs', async () => {
    const m = await get('/ui/api/machines');
    expect((m.body.machines as { presence: string }[]).map((x) => x.presence)).toEqual([
      'alive',
      'lost',
    ]);
    const g = await get('/ui/api/graphs');
    expect((g.body.machines as { name: string }[]).map((x) => x.name)).toContain('agent-unit');
  });
});
