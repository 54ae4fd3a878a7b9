/**
 * The agent machine through `initialTransition()`/`transition()`: the epoch/seq rules, syncing,
 * degraded and draining, as pure decisions (named actions, not effects).
 */
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import { type AgentEvent, agentMachine, planAfterFull } from '../../../src/machines/agent';
import type { ScheduleDelta, ScheduleFull } from '../../../src/protocol';

type Snap = SnapshotFrom<typeof agentMachine>;
interface Step {
  s: Snap;
  acts: string[];
  params: Record<string, unknown[]>;
}

function split(s: Snap, actions: { type: string; params: unknown }[]): Step {
  const params: Record<string, unknown[]> = {};
  const acts = actions
    .map((a) => a.type)
    .filter(
      (t) =>
        !t.startsWith('xstate.') &&
        ![
          'nextFetch',
          'holdDelta',
          'advanceSeq',
          'acceptFull',
          'scheduleFetchRetry',
          'markBusUp',
          'markBusDown',
        ].includes(t),
    );
  for (const a of actions) (params[a.type] ??= []).push(a.params);
  return { s, acts, params };
}
const step = (s: Snap, ev: AgentEvent): Step => {
  const [n, a] = transition(agentMachine, s, ev);
  return split(n, a);
};

const delta = (epoch: number, seq: number): ScheduleDelta => ({
  v: 1,
  kind: 'delta',
  epoch,
  seq,
  put: [],
  remove: [],
});
const full = (epoch: number, seq: number): ScheduleFull => ({
  v: 1,
  kind: 'full',
  epoch,
  seq,
  units: [],
});

function readyAt(epoch: number, seq: number): Snap {
  const [s0] = initialTransition(agentMachine, { machineId: 'm1' });
  const r1 = step(s0, { type: 'UNITS_ADOPTED', count: 0 });
  const r2 = step(r1.s, {
    type: 'FULL_SCHEDULE_RECEIVED',
    fetchId: r1.s.context.fetchId,
    schedule: full(epoch, seq),
  });
  expect(r2.s.value).toBe('ready');
  return r2.s;
}

describe('agent machine: start', () => {
  it('connecting → syncing sends a heartbeat and requests the full schedule; the full report goes with the reply', () => {
    const [s0, a0] = initialTransition(agentMachine, { machineId: 'm1' });
    expect(s0.value).toBe('connecting');
    expect(a0.filter((a) => a.type === 'requestFullSchedule')).toEqual([]);
    const r = step(s0, { type: 'UNITS_ADOPTED', count: 3 });
    expect(r.s.value).toBe('syncing');
    expect(r.acts).toEqual(['sendHeartbeat', 'requestFullSchedule']);
    expect(r.params.requestFullSchedule).toEqual([{ fetchId: 1 }]);
    expect(r.s.context.reportOwed).toBe(true);
    // The reply proves the leader listens: the owed report goes first, then the schedule applies.
    const r2 = step(r.s, { type: 'FULL_SCHEDULE_RECEIVED', fetchId: 1, schedule: full(1, 0) });
    expect(r2.acts).toEqual(['sendFullReport', 'applyFullSchedule', 'applyDeltas']);
    expect(r2.s.context.reportOwed).toBe(false);
    // A later sync without a reason to report (a seq gap) sends none.
    const r3 = step(r2.s, { type: 'SCHEDULE_RECEIVED', delta: delta(1, 5) });
    const r4 = step(r3.s, { type: 'FULL_SCHEDULE_RECEIVED', fetchId: 2, schedule: full(1, 5) });
    expect(r4.acts).toEqual(['applyFullSchedule', 'applyDeltas']);
  });

  it('a full schedule makes it ready at its epoch and seq', () => {
    const s = readyAt(3, 7);
    expect(s.context).toMatchObject({ epoch: 3, seq: 7, pending: [] });
  });
});

describe('agent machine: deltas', () => {
  it('applies the next delta in sequence', () => {
    const r = step(readyAt(1, 4), { type: 'SCHEDULE_RECEIVED', delta: delta(1, 5) });
    expect(r.s.value).toBe('ready');
    expect(r.acts).toEqual(['applyDeltas']);
    expect(r.s.context.seq).toBe(5);
  });

  it('a gap goes to syncing and requests the full schedule', () => {
    const r = step(readyAt(1, 4), { type: 'SCHEDULE_RECEIVED', delta: delta(1, 6) });
    expect(r.s.value).toBe('syncing');
    expect(r.acts).toEqual(['requestFullSchedule']);
    expect(r.s.context.pending).toHaveLength(1);
  });

  it('a new epoch goes to syncing', () => {
    const r = step(readyAt(1, 4), { type: 'SCHEDULE_RECEIVED', delta: delta(2, 1) });
    expect(r.s.value).toBe('syncing');
  });

  it('drops older epochs and duplicates', () => {
    const s = readyAt(2, 4);
    const r1 = step(s, { type: 'SCHEDULE_RECEIVED', delta: delta(1, 5) });
    expect(r1.s.value).toBe('ready');
    expect(r1.acts).toEqual(['dropDelta']);
    expect(r1.params.dropDelta).toMatchObject([{ reason: 'stale-epoch' }]);
    const r2 = step(s, { type: 'SCHEDULE_RECEIVED', delta: delta(2, 4) });
    expect(r2.params.dropDelta).toMatchObject([{ reason: 'duplicate' }]);
  });

  it('deltas held while syncing are applied after the full schedule when they continue it', () => {
    const r1 = step(readyAt(1, 1), { type: 'SCHEDULE_RECEIVED', delta: delta(1, 3) });
    const r2 = step(r1.s, { type: 'SCHEDULE_RECEIVED', delta: delta(1, 4) });
    expect(r2.s.context.pending).toHaveLength(2);
    const r3 = step(r2.s, {
      type: 'FULL_SCHEDULE_RECEIVED',
      fetchId: r2.s.context.fetchId,
      schedule: full(1, 3),
    });
    expect(r3.s.value).toBe('ready');
    expect(r3.acts).toEqual(['applyFullSchedule', 'applyDeltas']);
    expect(r3.params.applyDeltas).toEqual([{ deltas: [delta(1, 4)] }]);
    expect(r3.s.context).toMatchObject({ seq: 4, pending: [] });
  });

  it('a held delta beyond a gap after the full schedule means another sync', () => {
    const r1 = step(readyAt(1, 1), { type: 'SCHEDULE_RECEIVED', delta: delta(1, 9) });
    const r2 = step(r1.s, {
      type: 'FULL_SCHEDULE_RECEIVED',
      fetchId: r1.s.context.fetchId,
      schedule: full(1, 3),
    });
    expect(r2.s.value).toBe('syncing');
    expect(r2.acts).toEqual(['applyFullSchedule', 'applyDeltas', 'requestFullSchedule']);
    expect(r2.s.context.fetchId).toBe(r1.s.context.fetchId + 1);
  });

  it('ignores the reply to a superseded request', () => {
    const r1 = step(readyAt(1, 1), { type: 'RESYNC_REQUESTED', epoch: 2 });
    const r2 = step(r1.s, { type: 'RESYNC_REQUESTED', epoch: 2 });
    const stale = step(r2.s, {
      type: 'FULL_SCHEDULE_RECEIVED',
      fetchId: r1.s.context.fetchId,
      schedule: full(2, 0),
    });
    expect(stale.s.value).toBe('syncing');
    expect(stale.acts).toEqual([]);
  });

  it('planAfterFull skips what the full schedule already covers', () => {
    expect(
      planAfterFull({ epoch: 2, seq: 5 }, [delta(1, 9), delta(2, 4), delta(2, 7), delta(2, 6)]),
    ).toEqual({
      apply: [delta(2, 6), delta(2, 7)],
      seq: 7,
      gap: false,
    });
    expect(planAfterFull({ epoch: 2, seq: 5 }, [delta(3, 1)]).gap).toBe(true);
  });
});

describe('agent machine: degraded', () => {
  it('no leader: degraded with a jittered exponential retry deadline; TICK retries when due', () => {
    const [s0] = initialTransition(agentMachine, {
      machineId: 'm1',
      retry: { baseMs: 100, maxMs: 1000 },
    });
    const r1 = step(s0, { type: 'UNITS_ADOPTED', count: 0 });
    const r2 = step(r1.s, {
      type: 'FULL_SCHEDULE_FAILED',
      fetchId: 1,
      error: 'no responders',
      now: 1000,
      jitter: 0,
    });
    expect(r2.s.value).toBe('degraded');
    expect(r2.s.context.retryAt).toBe(1100);
    expect(r2.params.armRetryTimer).toEqual([{ at: 1100 }]);
    expect(step(r2.s, { type: 'TICK', now: 1099 }).s.value).toBe('degraded');
    const r3 = step(r2.s, { type: 'TICK', now: 1100 });
    expect(r3.s.value).toBe('syncing');
    const r4 = step(r3.s, {
      type: 'FULL_SCHEDULE_FAILED',
      fetchId: 2,
      error: 'timeout',
      now: 2000,
      jitter: 0.5,
    });
    expect(r4.s.context.retryAt).toBe(2000 + Math.round(200 * 1.125));
  });

  it('bus down: degraded without any unit action; reconnect → heartbeat, schedule request, report owed', () => {
    const r1 = step(readyAt(1, 1), { type: 'BUS_DISCONNECTED' });
    expect(r1.s.value).toBe('degraded');
    expect(r1.acts).toEqual([]);
    // Not while the bus is down, even if the retry deadline passes.
    expect(step(r1.s, { type: 'TICK', now: Number.MAX_SAFE_INTEGER }).s.value).toBe('degraded');
    const r2 = step(r1.s, { type: 'BUS_CONNECTED' });
    expect(r2.s.value).toBe('syncing');
    expect(r2.acts).toEqual(['sendHeartbeat', 'requestFullSchedule']);
    expect(r2.s.context.reportOwed).toBe(true);
  });

  it('a full report is owed from the moment the bus drops, however the reconnect is noticed', () => {
    // The reconnect's status event may come after the first message of the new connection: a
    // delta published while the bus was down moves the machine on before BUS_CONNECTED does.
    const r1 = step(readyAt(1, 1), { type: 'BUS_DISCONNECTED' });
    expect(r1.s.context.reportOwed).toBe(true);
    const r2 = step(r1.s, { type: 'SCHEDULE_RECEIVED', delta: delta(1, 3) });
    expect(r2.s.value).toBe('syncing');
    const r3 = step(r2.s, {
      type: 'FULL_SCHEDULE_RECEIVED',
      fetchId: r2.s.context.fetchId,
      schedule: full(1, 3),
    });
    expect(r3.s.value).toBe('ready');
    expect(r3.acts).toEqual(['sendFullReport', 'applyFullSchedule', 'applyDeltas']);
    expect(r3.s.context.reportOwed).toBe(false);
    // The late BUS_CONNECTED changes nothing (the delta already showed the bus up).
    const r4 = step(r3.s, { type: 'BUS_CONNECTED' });
    expect(r4.s.value).toBe('ready');
    expect(r4.acts).toEqual([]);
    // Dropped while a fetch is in flight: owed as well.
    const s1 = step(readyAt(1, 1), { type: 'RESYNC_REQUESTED', epoch: 1 });
    const s2 = step(
      step(s1.s, {
        type: 'FULL_SCHEDULE_RECEIVED',
        fetchId: s1.s.context.fetchId,
        schedule: full(1, 1),
      }).s,
      { type: 'RESYNC_REQUESTED', epoch: 1 },
    );
    expect(s2.s.context.reportOwed).toBe(true);
    const s3 = step(s2.s, { type: 'BUS_DISCONNECTED' });
    expect([s3.s.value, s3.s.context.reportOwed]).toEqual(['degraded', true]);
  });

  it('a resync or a delta while degraded brings it back to syncing', () => {
    const [s0] = initialTransition(agentMachine, { machineId: 'm1' });
    const r1 = step(step(s0, { type: 'UNITS_ADOPTED', count: 0 }).s, {
      type: 'FULL_SCHEDULE_FAILED',
      fetchId: 1,
      error: 'x',
      now: 0,
      jitter: 0,
    });
    const r2 = step(r1.s, { type: 'RESYNC_REQUESTED', epoch: 2 });
    // A new leader learns of machines from heartbeats: the agent announces itself at once.
    expect(r2.acts).toEqual(['sendHeartbeat', 'requestFullSchedule']);
    expect(r2.s.context.reportOwed).toBe(true);
    expect(step(r1.s, { type: 'SCHEDULE_RECEIVED', delta: delta(2, 1) }).s.value).toBe('syncing');
  });

  it('a resync from an older term than the schedule held is ignored', () => {
    const r = step(readyAt(3, 1), { type: 'RESYNC_REQUESTED', epoch: 2 });
    expect(r.s.value).toBe('ready');
    expect(r.acts).toEqual([]);
  });
});

describe('agent machine: draining', () => {
  it('drains from any state and then stops', () => {
    for (const s of [readyAt(1, 1), step(readyAt(1, 1), { type: 'BUS_DISCONNECTED' }).s]) {
      const r1 = step(s, { type: 'DRAIN' });
      expect(r1.s.value).toBe('draining');
      expect(step(r1.s, { type: 'SCHEDULE_RECEIVED', delta: delta(1, 2) }).acts).toEqual([]);
      const r2 = step(r1.s, { type: 'DRAINED' });
      expect(r2.s.value).toBe('stopped');
      expect(r2.s.status).toBe('done');
    }
  });
});
