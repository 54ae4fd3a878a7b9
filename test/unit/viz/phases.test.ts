import { applyEvent } from '../../../src/engine/fold';
import { lifecycleOf } from '../../../src/engine/lifecycle';
import { emptyState } from '../../../src/engine/state';
import type { EventBody, FlotillaEvent } from '../../../src/events/types';
import type { UnitRuntimeState } from '../../../src/events/types';
import { copyState, History } from '../../../src/viz/history';
import { foldedUnitPhase, phaseOfValue, settleLifecycles } from '../../../src/viz/phases';
import { countStates, foldedView, NO_FILTER } from '../../../src/viz/views';

const MACHINES = ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)];
const UNITS = ['u1.service', 'u2.service', 'u3.service', 'g.service'];

/** A deterministic pseudo-random log touching every lifecycle event the fold queues. */
function randomLog(seed: number, n: number): FlotillaEvent[] {
  let s = seed;
  const rnd = (k: number): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % k;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)];
  const states: (UnitRuntimeState | null)[] = [
    { load: 'loaded', active: 'active', sub: 'running', hash: 'h' },
    { load: 'loaded', active: 'inactive', sub: 'dead', hash: 'h' },
    { load: 'loaded', active: 'failed', sub: 'failed', hash: 'h', result: 'exit-code' },
    { load: 'not-found', active: 'inactive', sub: 'dead', hash: 'h' },
    null,
  ];
  const bodies: EventBody[] = MACHINES.map((machine, i) => ({
    type: 'MachineJoined',
    machine,
    ip: `10.0.0.${i}`,
    metadata: {},
  }));
  for (let i = 0; i < n; i++) {
    const unit = pick(UNITS);
    const machine = pick(MACHINES);
    switch (rnd(9)) {
      case 0:
        bodies.push({
          type: 'UnitSubmitted',
          unit,
          options: [
            { section: 'Service', name: 'ExecStart', value: '/bin/true' },
            ...(unit === 'g.service'
              ? [{ section: 'X-Fleet', name: 'Global', value: 'true' }]
              : []),
          ],
          hash: 'h',
          target: pick(['inactive', 'loaded', 'launched'] as const),
        });
        break;
      case 1:
        bodies.push({
          type: 'UnitTargetSet',
          unit,
          target: pick(['inactive', 'loaded', 'launched'] as const),
        });
        break;
      case 2:
        bodies.push({ type: 'UnitScheduled', unit, machine, reason: 'least loaded' });
        break;
      case 3:
        bodies.push({
          type: 'UnitUnscheduled',
          unit,
          machine,
          reason: pick(['machine lost', 'target inactive']),
        });
        break;
      case 4:
      case 5:
        bodies.push({ type: 'UnitStateReported', unit, machine, state: pick(states) });
        break;
      case 6:
        bodies.push(
          rnd(2)
            ? { type: 'MachineLost', machine, reason: 'no heartbeat' }
            : { type: 'MachineJoined', machine, ip: '10.0.0.9', metadata: {} },
        );
        break;
      case 7:
        bodies.push({ type: 'UnitUnplaceable', unit, reason: 'no machine' });
        break;
      default:
        if (rnd(4) === 0) bodies.push({ type: 'UnitDestroyed', unit });
        else bodies.push({ type: 'UnitObserved', unit, machine, state: pick(states) });
    }
  }
  return bodies.map((b, i) => ({ ...b, index: i + 1, epoch: 1, time: i, v: 2 }) as FlotillaEvent);
}

describe('foldedUnitPhase', () => {
  test.each([1, 2, 3, 4, 5])(
    'is the engine-unit machine stepped by XState, at every point of a random log (seed %i)',
    (seed) => {
      const log = randomLog(seed, 600);
      // A: the fold and XState, as the leader steps them. B: the visualizer's memoised
      // stepping, its lifecycles settled (and the state copied) now and then as checkpoints do.
      const a = emptyState();
      let b = emptyState();
      const seen = new Set<string>();
      for (const e of log) {
        applyEvent(a, e);
        applyEvent(b, e);
        if (e.index % 37 === 0) {
          settleLifecycles(b);
          b = copyState(b);
        }
        for (const u of a.units.values()) {
          const want = phaseOfValue(lifecycleOf(a, u).value);
          seen.add(want);
          expect([e.index, u.name, foldedUnitPhase(b, b.units.get(u.name)!)]).toEqual([
            e.index,
            u.name,
            want,
          ]);
        }
        expect([...b.units.keys()].sort()).toEqual([...a.units.keys()].sort());
      }
      // The log is varied enough to be a test of the memo, not of one state.
      expect(seen.size).toBeGreaterThanOrEqual(5);
    },
  );

  test('a history read at any index gives the phases of folding the log up to it', () => {
    const log = randomLog(11, 30_000);
    const h = new History({ tail: log });
    for (const at of [1, 5_000, 10_001, 19_999, 20_000, 25_432, log.length]) {
      const want = emptyState();
      for (const e of log.slice(0, at)) applyEvent(want, e);
      const got = h.stateAt(at);
      const phases = (s: typeof want, f: (u: never) => string) =>
        [...s.units.values()].map((u) => [u.name, f(u as never)]).sort();
      expect(phases(got, (u) => foldedUnitPhase(got, u))).toEqual(
        phases(want, (u) => phaseOfValue(lifecycleOf(want, u).value)),
      );
    }
  });

  test("a machine lost: its units' states change in the counts at that very event", () => {
    const M = MACHINES[0];
    const log = [
      { type: 'MachineJoined', machine: M, ip: '10.0.0.1', metadata: {} },
      { type: 'UnitSubmitted', unit: 'u.service', options: [], hash: 'h', target: 'launched' },
      { type: 'UnitScheduled', unit: 'u.service', machine: M, reason: 'least loaded' },
      {
        type: 'UnitStateReported',
        unit: 'u.service',
        machine: M,
        state: { load: 'loaded', active: 'active', sub: 'running', hash: 'h' },
      },
      { type: 'MachineLost', machine: M, reason: 'no heartbeat' },
    ].map((b, i) => ({ ...b, index: i + 1, epoch: 1, time: i, v: 1 }) as FlotillaEvent);
    const h = new History({ tail: log });
    expect(h.countsAt(4)).toEqual({
      'engine-unit': { launched: 1 },
      'engine-machine': { alive: 1 },
    });
    expect(h.countsAt(5)).toEqual({
      'engine-unit': { scheduled: 1 },
      'engine-machine': { lost: 1 },
    });
  });

  test("the counts written down while folding are the folded state's, at every point", () => {
    const log = randomLog(12, 5_000);
    const h = new History({ tail: log });
    for (let at = 0; at <= log.length; at += at < 60 ? 1 : 97) {
      const s = h.stateAt(at);
      expect([at, h.countsAt(at)]).toEqual([at, countStates(foldedView(s, 0), NO_FILTER)]);
    }
  });
});
