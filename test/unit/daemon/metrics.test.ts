import type { Engine } from '../../../src/engine/engine';
import { emptyState } from '../../../src/engine/state';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import type { FlotillaEvent } from '../../../src/events/types';
import { DaemonMetrics, type MetricsSources } from '../../../src/daemon/metrics';
import type { ClusterApi } from '../../../src/api/types';
import type { Term } from '../../../src/store/types';

/** Samples of an exposition, by `name{labels}` as written. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2]);
  return out;
}

function sources(over: Partial<MetricsSources> = {}): MetricsSources {
  return {
    engine: () => undefined,
    agent: () => undefined,
    leader: () => undefined,
    storeUp: async () => true,
    version: '9.9.9',
    ...over,
  };
}

function fakeEngine(stats: Partial<Engine['stats']> = {}): Engine {
  const state = emptyState();
  state.index = 42;
  return {
    epoch: 3,
    state,
    stats: { commits: 0, eventsCommitted: 0, ...stats },
    lastSnapshotTime: Date.now() - 5000,
    watch: () => ({ backlog: [], oldest: 1, close: () => undefined }),
  } as unknown as Engine;
}

const ev = (index: number, time: number, body: object): FlotillaEvent =>
  ({ index, epoch: 1, time, v: 1, ...body }) as FlotillaEvent;

describe('DaemonMetrics', () => {
  it('reports event-loop delay over the window since the previous scrape', async () => {
    const m = new DaemonMetrics(sources());
    await m.render();
    // Hold the loop for ~60 ms, then let the monitor's timer run a few times.
    const until = performance.now() + 60;
    while (performance.now() < until);
    await new Promise((r) => setTimeout(r, 50));
    const busy = samples(await m.render());
    expect(busy.get('flotilla_event_loop_delay_max_seconds')).toBeGreaterThan(0.03);
    expect(busy.get('flotilla_event_loop_delay_p50_seconds')).toBeLessThanOrEqual(
      busy.get('flotilla_event_loop_delay_max_seconds')!,
    );
    await new Promise((r) => setTimeout(r, 50));
    const calm = samples(await m.render());
    expect(calm.get('flotilla_event_loop_delay_max_seconds')).toBeLessThan(
      busy.get('flotilla_event_loop_delay_max_seconds')!,
    );
    expect(calm.get('flotilla_is_leader')).toBe(0);
    expect(calm.get('flotilla_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(calm.get('flotilla_build_info{version="9.9.9"}')).toBe(1);
  });

  it('names every counter _total and types it counter; gauges and histograms typed as such', async () => {
    const agent = { stats: { heartbeats: 4, ops: 2 } as Record<string, number> };
    const m = new DaemonMetrics(sources({ engine: () => fakeEngine(), agent: () => agent }));
    const text = await m.render();
    const t = types(text);
    for (const [name, type] of t) {
      // prom-client's default Node.js metrics name three gauges *_total (active handles…).
      if (name.startsWith('flotilla_nodejs_')) continue;
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (name.endsWith('_total')) expect(type).toBe('counter');
    }
    expect(t.get('flotilla_agent_heartbeats_total')).toBe('counter');
    expect(t.get('flotilla_engine_commits_total')).toBe('counter');
    expect(t.get('flotilla_engine_last_snapshot_index')).toBe('gauge');
    expect(t.get('flotilla_commit_duration_seconds')).toBe('histogram');
    expect(t.get('flotilla_unit_placement_seconds')).toBe('histogram');
    expect(t.get('flotilla_unit_activation_seconds')).toBe('histogram');
    expect(t.get('flotilla_api_request_duration_seconds')).toBe('histogram');
    expect(samples(text).get('flotilla_agent_heartbeats_total')).toBe(4);
  });

  it('keeps counters monotonic across scrapes and across a new term', async () => {
    let engine = fakeEngine({ commits: 5 });
    const m = new DaemonMetrics(sources({ engine: () => engine }));
    expect(samples(await m.render()).get('flotilla_engine_commits_total')).toBe(5);
    engine.stats.commits = 8;
    expect(samples(await m.render()).get('flotilla_engine_commits_total')).toBe(8);
    // A new term's engine counts from zero again: the counter keeps growing.
    engine = fakeEngine({ commits: 2 });
    expect(samples(await m.render()).get('flotilla_engine_commits_total')).toBe(10);
  });

  it('reports the leader, the log index, the snapshot age, units and machines from the state', async () => {
    const e = fakeEngine();
    e.state.units.set('a.service', { target: 'launched' } as never);
    e.state.units.set('b.service', { target: 'launched' } as never);
    e.state.units.set('c.service', { target: 'inactive' } as never);
    e.state.machines.set('m1', { presence: 'alive' } as never);
    e.state.machines.set('m2', { presence: 'lost' } as never);
    e.state.reported.set('a.service', new Map([['m1', { active: 'active' } as never]]));
    e.state.reported.set('b.service', new Map([['m1', { active: 'failed' } as never]]));
    const m = new DaemonMetrics(
      sources({
        engine: () => e,
        leader: () => ({ machine: 'm1', address: 'x', epoch: 3 }),
        storeUp: async () => false,
      }),
    );
    const s = samples(await m.render());
    expect(s.get('flotilla_is_leader')).toBe(1);
    expect(s.get('flotilla_leader_known')).toBe(1);
    expect(s.get('flotilla_leader_epoch')).toBe(3);
    expect(s.get('flotilla_log_index')).toBe(42);
    expect(s.get('flotilla_snapshot_age_seconds')).toBeGreaterThanOrEqual(5);
    expect(s.get('flotilla_units{target="launched"}')).toBe(2);
    expect(s.get('flotilla_units{target="inactive"}')).toBe(1);
    expect(s.get('flotilla_machines{presence="alive"}')).toBe(1);
    expect(s.get('flotilla_machines{presence="lost"}')).toBe(1);
    expect(s.get('flotilla_unit_states{active="active"}')).toBe(1);
    expect(s.get('flotilla_unit_states{active="failed"}')).toBe(1);
    expect(s.get('flotilla_store_up')).toBe(0);
    m.setBus('agent', true);
    m.setBus('engine', false);
    const s2 = samples(await m.render());
    expect(s2.get('flotilla_bus_up{connection="agent"}')).toBe(1);
    expect(s2.get('flotilla_bus_up{connection="engine"}')).toBe(0);
  });

  it('times request → placed and placed → active from committed events', async () => {
    const m = new DaemonMetrics(sources());
    m.onEvent(ev(1, 1000, { type: 'UnitSubmitted', unit: 'a', target: 'launched' }));
    m.onEvent(ev(2, 1250, { type: 'UnitScheduled', unit: 'a', machine: 'm1', reason: '' }));
    m.onEvent(
      ev(3, 1300, {
        type: 'UnitStateReported',
        unit: 'a',
        machine: 'm1',
        state: { active: 'activating' },
      }),
    );
    m.onEvent(
      ev(4, 3250, {
        type: 'UnitStateReported',
        unit: 'a',
        machine: 'm1',
        state: { active: 'active' },
      }),
    );
    // A unit submitted inactive is not waiting for a placement.
    m.onEvent(ev(5, 4000, { type: 'UnitSubmitted', unit: 'b', target: 'inactive' }));
    m.onEvent(ev(6, 9000, { type: 'UnitScheduled', unit: 'b', machine: 'm1', reason: '' }));
    const s = samples(await m.render());
    expect(s.get('flotilla_unit_placement_seconds_count')).toBe(1);
    expect(s.get('flotilla_unit_placement_seconds_sum')).toBeCloseTo(0.25);
    expect(s.get('flotilla_unit_activation_seconds_count')).toBe(1);
    expect(s.get('flotilla_unit_activation_seconds_sum')).toBeCloseTo(2);
  });

  it('times API calls by method and result code, and commits', async () => {
    const m = new DaemonMetrics(sources());
    const api = {
      getClusterStatus: async () => ({}),
      listUnits: async () => {
        throw new FlotillaError(ErrorCode.NoLeader, 'no leader');
      },
    } as unknown as ClusterApi;
    const timed = m.instrumentApi(api);
    await timed.getClusterStatus({} as never);
    await expect(timed.listUnits({} as never)).rejects.toThrow('no leader');
    const appended: number[] = [];
    const term = m.instrumentTerm({
      epoch: 7,
      append: async (events: FlotillaEvent[]) => void appended.push(events.length),
    } as unknown as Term);
    await term.append([ev(1, 1, { type: 'UnitDestroyed', unit: 'a' })]);
    expect(term.epoch).toBe(7);
    expect(appended).toEqual([1]);
    const s = samples(await m.render());
    expect(
      s.get('flotilla_api_request_duration_seconds_count{method="getClusterStatus",code="OK"}'),
    ).toBe(1);
    expect(
      s.get(
        `flotilla_api_request_duration_seconds_count{method="listUnits",code="${ErrorCode.NoLeader}"}`,
      ),
    ).toBe(1);
    expect(s.get('flotilla_commit_duration_seconds_count')).toBe(1);
  });
});
