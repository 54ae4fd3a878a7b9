/**
 * The agent unit machine through `initialTransition()`/`transition()`: pure, no actor system,
 * no I/O. Each step returns the driver ops the machine asks for (its `requestOp` actions).
 */
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { DriverOp } from '../../../src/drivers/driver';
import type { UnitRuntimeState } from '../../../src/events/types';
import {
  type AgentUnitEvent,
  type AgentUnitInput,
  type UnitDesire,
  agentUnitMachine,
} from '../../../src/machines/agent-unit';

type Snap = SnapshotFrom<typeof agentUnitMachine>;
interface Step {
  s: Snap;
  ops: DriverOp[];
  timers: number[];
}

function split(s: Snap, actions: { type: string; params: unknown }[]): Step {
  return {
    s,
    ops: actions.filter((a) => a.type === 'requestOp').map((a) => a.params as DriverOp),
    timers: actions
      .filter((a) => a.type === 'armRetryTimer')
      .map((a) => (a.params as { at: number }).at),
  };
}

const init = (input: AgentUnitInput): Step => {
  const [s, a] = initialTransition(agentUnitMachine, input);
  return split(s, a);
};
const step = (s: Snap, ev: AgentUnitEvent): Step => {
  const [n, a] = transition(agentUnitMachine, s, ev);
  return split(n, a);
};

const U = 'web.service';
const want = (
  target: 'loaded' | 'launched',
  hash = 'h1',
): Extract<UnitDesire, { hash: string }> => ({
  target,
  hash,
  contents: `[Service]\nExecStart=/bin/true # ${hash}`,
});
const desired = (d: UnitDesire): AgentUnitEvent => ({ type: 'DESIRED_CHANGED', desired: d });
const observed = (
  active: string,
  sub: string,
  extra: Partial<UnitRuntimeState> = {},
): AgentUnitEvent => ({
  type: 'STATE_OBSERVED',
  state: { load: 'loaded', active, sub, hash: 'h1', ...extra },
});
const ok = (op: DriverOp): AgentUnitEvent => ({ type: 'OP_SUCCEEDED', op });
const fail = (op: DriverOp, now = 1000): AgentUnitEvent => ({
  type: 'OP_FAILED',
  op,
  error: 'boom',
  now,
});
const kinds = (ops: DriverOp[]) => ops.map((o) => o.kind);

/** Drives a new unit to `active` (launched, hash h1). */
function toActive(): Snap {
  let r = init({ unit: U, desired: want('launched') });
  r = step(r.s, ok(r.ops[0]));
  r = step(r.s, ok(r.ops[0]));
  expect(r.s.value).toBe('active');
  return r.s;
}

describe('agent unit: load, start, stop, unload', () => {
  it('a new launched unit: absent → loading → loaded → starting → active', () => {
    const r0 = init({ unit: U, desired: want('launched') });
    expect(r0.s.value).toBe('loading');
    expect(r0.ops).toEqual([
      { kind: 'load', unit: U, hash: 'h1', contents: want('launched', 'h1').contents },
    ]);
    const r1 = step(r0.s, ok(r0.ops[0]));
    expect(r1.s.value).toBe('starting');
    expect(r1.s.context.loadedHash).toBe('h1');
    expect(r1.ops).toEqual([{ kind: 'start', unit: U }]);
    const r2 = step(r1.s, ok(r1.ops[0]));
    expect(r2.s.value).toBe('active');
    expect(r2.ops).toEqual([]);
  });

  it('a loaded-only unit stops at loaded', () => {
    const r0 = init({ unit: U, desired: want('loaded') });
    const r1 = step(r0.s, ok(r0.ops[0]));
    expect(r1.s.value).toBe('loaded');
    expect(r1.ops).toEqual([]);
  });

  it('launched → loaded stops; loaded → launched starts again', () => {
    const s = toActive();
    const r1 = step(s, desired(want('loaded')));
    expect(r1.s.value).toBe('stopping');
    expect(r1.ops).toEqual([{ kind: 'stop', unit: U }]);
    const r2 = step(r1.s, ok(r1.ops[0]));
    expect(r2.s.value).toBe('loaded');
    const r3 = step(r2.s, desired(want('launched')));
    expect(r3.s.value).toBe('starting');
    expect(kinds(r3.ops)).toEqual(['start']);
  });

  it('not scheduled → unloading → absent (from active, one unload op)', () => {
    const s = toActive();
    const r1 = step(s, desired({ target: 'not-scheduled' }));
    expect(r1.s.value).toBe('unloading');
    expect(r1.ops).toEqual([{ kind: 'unload', unit: U }]);
    const r2 = step(r1.s, ok(r1.ops[0]));
    expect(r2.s.value).toBe('absent');
    expect(r2.s.context.loadedHash).toBe('');
    expect(r2.ops).toEqual([]);
  });

  it('desired changes while an op is in flight are decided when the op completes', () => {
    const r0 = init({ unit: U, desired: want('launched') });
    const r1 = step(r0.s, desired({ target: 'not-scheduled' }));
    expect(r1.s.value).toBe('loading');
    expect(r1.ops).toEqual([]);
    const r2 = step(r1.s, ok(r0.ops[0]));
    expect(r2.s.value).toBe('unloading');
    expect(kinds(r2.ops)).toEqual(['unload']);
  });

  it('ignores a result for an op it did not ask for', () => {
    const r0 = init({ unit: U, desired: want('launched') });
    const r1 = step(r0.s, ok({ kind: 'stop', unit: U }));
    expect(r1.s.value).toBe('loading');
  });
});

describe('agent unit: hash change', () => {
  it('an active unit with a new hash is stopped, reloaded and started again', () => {
    const s = toActive();
    const r1 = step(s, desired(want('launched', 'h2')));
    expect(r1.s.value).toBe('stopping');
    const r2 = step(r1.s, ok(r1.ops[0]));
    expect(r2.s.value).toBe('loading');
    expect(r2.ops).toMatchObject([{ kind: 'load', hash: 'h2' }]);
    const r3 = step(r2.s, ok(r2.ops[0]));
    expect(r3.s.value).toBe('starting');
    const r4 = step(r3.s, ok(r3.ops[0]));
    expect(r4.s.value).toBe('active');
    expect(r4.s.context.loadedHash).toBe('h2');
  });

  it('a loaded unit with a new hash is reloaded and not started', () => {
    let r = init({ unit: U, desired: want('loaded') });
    r = step(r.s, ok(r.ops[0]));
    r = step(r.s, desired(want('loaded', 'h2')));
    expect(r.s.value).toBe('loading');
    r = step(r.s, ok(r.ops[0]));
    expect(r.s.value).toBe('loaded');
    expect(r.ops).toEqual([]);
  });

  it('the same hash again does nothing', () => {
    const s = toActive();
    const r = step(s, desired(want('launched', 'h1')));
    expect(r.s.value).toBe('active');
    expect(r.ops).toEqual([]);
  });
});

describe('agent unit: failures of the unit itself', () => {
  it("an active unit whose process fails goes to failed with systemd's result, and is not restarted", () => {
    const s = toActive();
    const r1 = step(s, observed('failed', 'failed', { result: 'exit-code' }));
    expect(r1.s.value).toBe('failed');
    expect(r1.s.context.result).toBe('exit-code');
    expect(r1.ops).toEqual([]);
    // The same schedule again (e.g. a resync) does not restart it.
    const r2 = step(r1.s, desired(want('launched')));
    expect(r2.s.value).toBe('failed');
    expect(r2.ops).toEqual([]);
  });

  it('stop then start (fleetctl stop/start) restarts a failed unit', () => {
    const s = toActive();
    let r = step(s, observed('failed', 'failed', { result: 'exit-code' }));
    r = step(r.s, desired(want('loaded')));
    expect(r.s.value).toBe('loaded');
    expect(r.ops).toEqual([]);
    r = step(r.s, desired(want('launched')));
    expect(r.s.value).toBe('starting');
    expect(r.s.context.result).toBeNull();
  });

  it('a failed unit with a new hash is reloaded and started', () => {
    const s = toActive();
    let r = step(s, observed('failed', 'failed', { result: 'exit-code' }));
    r = step(r.s, desired(want('launched', 'h2')));
    expect(r.s.value).toBe('loading');
    r = step(r.s, ok(r.ops[0]));
    expect(r.s.value).toBe('starting');
  });

  it('a unit that exits cleanly goes to exited; systemd restarting it brings it back to active', () => {
    const s = toActive();
    const r1 = step(s, observed('inactive', 'dead', { result: 'success' }));
    expect(r1.s.value).toBe('exited');
    const r2 = step(r1.s, observed('active', 'running'));
    expect(r2.s.value).toBe('active');
  });

  it('a failure seen before the start op completes is not lost', () => {
    let r = init({ unit: U, desired: want('launched') });
    r = step(r.s, ok(r.ops[0]));
    expect(r.s.value).toBe('starting');
    const startOp = r.ops[0];
    r = step(r.s, observed('failed', 'failed', { result: 'exit-code' }));
    expect(r.s.value).toBe('starting');
    r = step(r.s, ok(startOp));
    expect(r.s.value).toBe('failed');
    expect(r.s.context.result).toBe('exit-code');
  });

  it('a stale failure from before a restart does not fail the new start', () => {
    const s = toActive();
    let r = step(s, observed('failed', 'failed', { result: 'exit-code' }));
    r = step(r.s, desired(want('loaded')));
    r = step(r.s, desired(want('launched')));
    const startOp = r.ops[0];
    r = step(r.s, observed('activating', 'start'));
    r = step(r.s, ok(startOp));
    expect(r.s.value).toBe('active');
  });
});

describe('agent unit: driver op failures retry with backoff', () => {
  it('unscheduled while waiting to retry, it is removed at once, not after the backoff', () => {
    // A unit loaded, then its start fails: retrying from `loaded`.
    const r0 = init({
      unit: U,
      desired: want('launched'),
      retry: { baseMs: 60_000, maxMs: 60_000 },
    });
    const r1 = step(r0.s, ok(r0.ops[0]));
    expect(kinds(r1.ops)).toEqual(['start']);
    const r2 = step(r1.s, fail(r1.ops[0], 10_000));
    expect(r2.s.value).toBe('retrying');
    // Still scheduled, another desire: keeps waiting.
    const same = step(r2.s, desired(want('loaded')));
    expect(same.s.value).toBe('retrying');
    expect(same.ops).toEqual([]);
    // Destroyed (not scheduled here any more): unloads now.
    const r3 = step(r2.s, desired({ target: 'not-scheduled' }));
    expect(r3.s.value).toBe('unloading');
    expect(kinds(r3.ops)).toEqual(['unload']);
    expect(r3.s.context.retryAt).toBeNull();
  });

  it('unscheduled while a failed first load waits to retry, it has nothing to remove', () => {
    const r0 = init({ unit: U, desired: want('launched') });
    const r1 = step(r0.s, fail(r0.ops[0], 10_000));
    expect(r1.s.value).toBe('retrying');
    const r2 = step(r1.s, desired({ target: 'not-scheduled' }));
    expect(r2.s.value).toBe('absent');
    expect(r2.ops).toEqual([]);
  });

  it('a failed load waits in retrying with a deadline, then tries again', () => {
    const r0 = init({ unit: U, desired: want('launched'), retry: { baseMs: 1000, maxMs: 8000 } });
    const r1 = step(r0.s, fail(r0.ops[0], 10_000));
    expect(r1.s.value).toBe('retrying');
    expect(r1.s.context.attempt).toBe(1);
    expect(r1.s.context.lastError).toBe('boom');
    const at1 = r1.s.context.retryAt!;
    expect(at1 - 10_000).toBeGreaterThanOrEqual(1000);
    expect(at1 - 10_000).toBeLessThan(1250);
    expect(r1.timers).toEqual([at1]);
    // Too early: nothing.
    const early = step(r1.s, { type: 'TICK', now: at1 - 1 });
    expect(early.s.value).toBe('retrying');
    expect(early.ops).toEqual([]);
    // Due: back to absent (nothing was loaded), which loads again.
    const r2 = step(r1.s, { type: 'TICK', now: at1 });
    expect(r2.s.value).toBe('loading');
    expect(kinds(r2.ops)).toEqual(['load']);
    // Second failure doubles the delay.
    const r3 = step(r2.s, fail(r2.ops[0], at1));
    expect(r3.s.context.attempt).toBe(2);
    expect(r3.s.context.retryAt! - at1).toBeGreaterThanOrEqual(2000);
    // Success resets the attempt counter.
    const r4 = step(step(r3.s, { type: 'TICK', now: r3.s.context.retryAt! }).s, ok(r2.ops[0]));
    expect(r4.s.context.attempt).toBe(0);
    expect(r4.s.context.retryAt).toBeNull();
  });

  it('the backoff is capped at maxMs', () => {
    let r = init({ unit: U, desired: want('loaded'), retry: { baseMs: 1000, maxMs: 4000 } });
    let now = 0;
    const op = r.ops[0];
    for (let i = 0; i < 6; i++) {
      r = step(r.s, fail(op, now));
      now = r.s.context.retryAt!;
      r = step(r.s, { type: 'TICK', now });
    }
    r = step(r.s, fail(op, now));
    expect(r.s.context.retryAt! - now).toBeLessThanOrEqual(5000);
    expect(r.s.context.retryAt! - now).toBeGreaterThanOrEqual(4000);
  });

  it('a failed start resumes from loaded; a failed stop resumes from active', () => {
    let r = init({ unit: U, desired: want('launched') });
    r = step(r.s, ok(r.ops[0]));
    r = step(r.s, fail(r.ops[0], 0));
    expect(r.s.context.retryReturn).toBe('loaded');
    r = step(r.s, { type: 'TICK', now: r.s.context.retryAt! });
    expect(r.s.value).toBe('starting');

    const s = toActive();
    let q = step(s, desired(want('loaded')));
    q = step(q.s, fail(q.ops[0], 0));
    expect(q.s.context.retryReturn).toBe('active');
    q = step(q.s, { type: 'TICK', now: q.s.context.retryAt! });
    expect(q.s.value).toBe('stopping');
  });

  it('a start job that fails because the unit failed is failed, not retried', () => {
    let r = init({ unit: U, desired: want('launched') });
    r = step(r.s, ok(r.ops[0]));
    const startOp = r.ops[0];
    r = step(r.s, observed('failed', 'failed', { result: 'exit-code' }));
    r = step(r.s, fail(startOp));
    expect(r.s.value).toBe('failed');
    expect(r.s.context).toMatchObject({ result: 'exit-code', retryAt: null, lastError: 'boom' });
    expect(r.timers).toEqual([]);
  });

  it('a retried start stops retrying when the unit is then seen failed', () => {
    let r = init({ unit: U, desired: want('launched') });
    r = step(r.s, ok(r.ops[0]));
    r = step(r.s, fail(r.ops[0]));
    expect(r.s.value).toBe('retrying');
    r = step(r.s, observed('failed', 'failed', { result: 'timeout' }));
    expect(r.s.value).toBe('failed');
    expect(r.s.context).toMatchObject({ result: 'timeout', retryAt: null });
    // A late TICK from the cancelled timer does nothing.
    expect(step(r.s, { type: 'TICK', now: Number.MAX_SAFE_INTEGER }).s.value).toBe('failed');
  });

  it('a desired change during the backoff is honoured when it ends (unscheduling: at once)', () => {
    let r = init({ unit: U, desired: want('launched') });
    r = step(r.s, fail(r.ops[0], 0));
    r = step(r.s, desired(want('loaded', 'h2')));
    expect(r.s.value).toBe('retrying');
    r = step(r.s, { type: 'TICK', now: r.s.context.retryAt! });
    expect(r.s.value).toBe('loading');
    expect(r.ops).toEqual([expect.objectContaining({ kind: 'load', hash: 'h2' })]);
  });
});

describe('agent unit: adoption', () => {
  const running = { load: 'loaded', active: 'active', sub: 'running', hash: 'h1', mainPid: 42 };

  it('a running unit is adopted as active with no op, and stays so when the schedule agrees', () => {
    const r0 = init({ unit: U, observed: running });
    expect(r0.s.value).toBe('active');
    expect(r0.ops).toEqual([]);
    const r1 = step(r0.s, desired(want('launched', 'h1')));
    expect(r1.s.value).toBe('active');
    expect(r1.ops).toEqual([]);
  });

  it('a loaded unit is adopted as loaded; a failed one as failed; nothing as absent', () => {
    expect(
      init({ unit: U, observed: { ...running, active: 'inactive', sub: 'dead' } }).s.value,
    ).toBe('loaded');
    const f = init({
      unit: U,
      observed: { ...running, active: 'failed', sub: 'failed', result: 'signal' },
    });
    expect(f.s.value).toBe('failed');
    expect(f.s.context.result).toBe('signal');
    expect(init({ unit: U, observed: null }).s.value).toBe('absent');
    // A file systemd does not know: loaded with an unknown hash (reloaded if scheduled, unloaded if not).
    const orphan = init({
      unit: U,
      observed: { ...running, active: 'inactive', load: 'not-found' },
    });
    expect(orphan.s.value).toBe('loaded');
    expect(orphan.s.context.loadedHash).toBe('');
    expect(orphan.ops).toEqual([]);
    expect(kinds(step(orphan.s, desired(want('launched'))).ops)).toEqual(['load']);
    expect(kinds(step(orphan.s, desired({ target: 'not-scheduled' })).ops)).toEqual(['unload']);
  });

  it('nothing happens to an adopted unit until the schedule is known', () => {
    const r0 = init({ unit: U, observed: running });
    const r1 = step(r0.s, observed('inactive', 'dead'));
    expect(r1.s.value).toBe('exited');
    expect(r1.ops).toEqual([]);
  });

  it('an adopted unit that is not in the schedule is unloaded; one with an old hash is restarted', () => {
    expect(
      kinds(step(init({ unit: U, observed: running }).s, desired({ target: 'not-scheduled' })).ops),
    ).toEqual(['unload']);
    const r = step(init({ unit: U, observed: running }).s, desired(want('launched', 'h2')));
    expect(r.s.value).toBe('stopping');
  });

  it('an adopted running unit that should only be loaded is stopped', () => {
    const r = step(init({ unit: U, observed: running }).s, desired(want('loaded', 'h1')));
    expect(kinds(r.ops)).toEqual(['stop']);
  });
});
