import fc from 'fast-check';
import { applyEvent } from '../../../src/engine/fold';
import {
  lifecycleFromRecord,
  lifecycleOf,
  observe,
  phaseName,
  stateColumn,
  stepAll,
} from '../../../src/engine/lifecycle';
import { engineUnitMachine, type EngineUnitEvent } from '../../../src/machines/engine-unit';
import { pureStepper } from '../../../src/machines/pure';
import { decodeState, encodeState } from '../../../src/engine/snapshot';
import { emptyState, type ClusterState } from '../../../src/engine/state';
import type { EventBody, FlotillaEvent, UnitRuntimeState } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';

const UNITS = ['a.service', 'b.service', 'g.service'];
const MACHINES = ['m1', 'm2'];
const globalOptions = [
  { section: 'Service', name: 'ExecStart', value: '/bin/true' },
  { section: 'X-Fleet', name: 'Global', value: 'true' },
];
const plainOptions = [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }];

const runtime: fc.Arbitrary<UnitRuntimeState | null> = fc.oneof(
  fc.constant(null),
  fc.record({
    load: fc.constantFrom('loaded', 'not-found'),
    active: fc.constantFrom('active', 'inactive', 'failed', 'activating', 'deactivating'),
    sub: fc.constant('x'),
    hash: fc.constant('h'),
  }),
);

const unit = fc.constantFrom(...UNITS);
const machine = fc.constantFrom(...MACHINES);
const target = fc.constantFrom('inactive' as const, 'loaded' as const, 'launched' as const);

const body: fc.Arbitrary<EventBody> = fc.oneof(
  fc.record({ unit, target }).map(({ unit, target }): EventBody => ({
    type: 'UnitSubmitted',
    unit,
    options: unit === 'g.service' ? globalOptions : plainOptions,
    hash: 'h',
    target,
  })),
  fc
    .record({ unit, target })
    .map(({ unit, target }): EventBody => ({ type: 'UnitTargetSet', unit, target })),
  fc
    .record({ unit, machine })
    .map(({ unit, machine }): EventBody => ({ type: 'UnitScheduled', unit, machine, reason: 'r' })),
  fc.record({ unit, machine, lost: fc.boolean() }).map(({ unit, machine, lost }): EventBody => ({
    type: 'UnitUnscheduled',
    unit,
    machine,
    reason: lost ? 'machine lost' : 'target inactive',
  })),
  fc
    .record({ unit, machine, state: runtime, durable: fc.boolean() })
    .map(({ unit, machine, state, durable }): EventBody => ({
      type: durable ? 'UnitObserved' : 'UnitStateReported',
      unit,
      machine,
      state,
    })),
  unit.map((unit): EventBody => ({ type: 'UnitUnplaceable', unit, reason: 'no machines' })),
  unit.map((unit): EventBody => ({ type: 'UnitDestroyed', unit })),
  fc.record({ machine, durable: fc.boolean() }).map(({ machine, durable }): EventBody => ({
    type: durable ? 'MachineDown' : 'MachineLost',
    machine,
    reason: 'no heartbeat',
  })),
  fc.record({ machine, durable: fc.boolean() }).map(({ machine, durable }): EventBody => ({
    type: durable ? 'MachineUp' : 'MachineJoined',
    machine,
    ip: '10.0.0.1',
    metadata: {},
  })),
);

function events(bodies: EventBody[]): FlotillaEvent[] {
  return bodies.map((b, i) => ({
    ...b,
    index: i + 1,
    epoch: 1,
    time: 1000 + i,
    v: SCHEMA_VERSION,
  }));
}

describe('unit lifecycle in the fold', () => {
  it('a lifecycle stepped by the events is the one made from the folded record (restore = replay)', () => {
    fc.assert(
      fc.property(fc.array(body, { maxLength: 60 }), (bodies) => {
        const state = emptyState();
        for (const e of events(bodies)) {
          applyEvent(state, e);
          for (const u of state.units.values()) {
            const stepped = lifecycleOf(state, u);
            const made = lifecycleFromRecord(state, u);
            expect(stepped.value).toEqual(made.value);
            expect(stepped.context).toEqual(made.context);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('reading late, or after a restore from a snapshot, gives the same lifecycles', () => {
    const phases = (s: ClusterState) =>
      [...s.units.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((u) => [u.name, lifecycleOf(s, u).value, lifecycleOf(s, u).context]);
    fc.assert(
      fc.property(fc.array(body, { maxLength: 60 }), fc.nat(60), (bodies, cut) => {
        const evs = events(bodies);
        const eager = emptyState();
        for (const e of evs) {
          applyEvent(eager, e);
          phases(eager);
        }
        const late = emptyState();
        for (const e of evs) applyEvent(late, e);
        const restored = emptyState();
        for (const e of evs.slice(0, cut)) applyEvent(restored, e);
        const again = decodeState(encodeState(restored));
        for (const e of evs.slice(cut)) applyEvent(again, e);
        expect(phases(late)).toEqual(phases(eager));
        expect(phases(again)).toEqual(phases(eager));
      }),
      { numRuns: 500 },
    );
  });

  it('records the last failure of the machine that counts, and the scheduler reason until placed', () => {
    const state = emptyState();
    const failed = {
      load: 'loaded',
      active: 'failed',
      sub: 'failed',
      hash: 'h',
      result: 'exit-code',
      exitStatus: 3,
    };
    for (const e of events([
      {
        type: 'UnitSubmitted',
        unit: 'a.service',
        options: plainOptions,
        hash: 'h',
        target: 'launched',
      },
      { type: 'UnitUnplaceable', unit: 'a.service', reason: 'no machines' },
      { type: 'UnitScheduled', unit: 'a.service', machine: 'm1', reason: 'least loaded' },
      { type: 'UnitObserved', unit: 'a.service', machine: 'm2', state: failed },
      { type: 'UnitObserved', unit: 'a.service', machine: 'm1', state: failed },
    ]))
      applyEvent(state, e);
    const u = state.units.get('a.service')!;
    expect(u.why).toBeUndefined();
    expect(u.lastFailure).toEqual({
      machine: 'm1',
      result: 'exit-code',
      exitStatus: 3,
      time: 1004,
    });
    expect(phaseName(lifecycleOf(state, u))).toBe('failed');
    // fleet's rule: launched once its agent started it, even when it failed afterwards
    expect(stateColumn(lifecycleOf(state, u), 'launched')).toBe('launched');
    expect(stateColumn(lifecycleOf(state, u), 'loaded')).toBe('loaded');
  });

  it('observes: stopping counts as running, starting as loaded', () => {
    const s = (active: string, load = 'loaded') => ({ load, active, sub: '', hash: '' });
    expect(observe([])).toBe('none');
    expect(observe([s('deactivating')])).toBe('running');
    expect(observe([s('activating')])).toBe('loaded');
    expect(observe([s('active'), s('failed')])).toBe('failed');
    expect(observe([s('inactive', 'not-found')])).toBe('unloaded');
  });
});

describe('stepAll (steps taken once, then looked up)', () => {
  const observed = fc.constantFrom(
    'none' as const,
    'unloaded' as const,
    'loaded' as const,
    'running' as const,
    'failed' as const,
  );
  const event: fc.Arbitrary<EngineUnitEvent> = fc.oneof(
    target.map((t): EngineUnitEvent => ({ type: 'TARGET_SET', target: t })),
    observed.map((o): EngineUnitEvent => ({ type: 'SCHEDULED', observed: o })),
    fc
      .record({ lost: fc.boolean(), observed })
      .map((r): EngineUnitEvent => ({ type: 'UNSCHEDULED', ...r })),
    observed.map((o): EngineUnitEvent => ({ type: 'OBSERVED', observed: o })),
    fc.constant<EngineUnitEvent>({ type: 'UNPLACEABLE' }),
    fc.constant<EngineUnitEvent>({ type: 'DESTROYED' }),
  );
  const input = fc.record({
    name: unit,
    target,
    global: fc.boolean(),
    placed: fc.boolean(),
    lost: fc.boolean(),
    observed,
  });
  const plain = pureStepper(engineUnitMachine, {
    name: '',
    target: 'inactive',
    global: false,
    placed: false,
    lost: false,
    observed: 'none',
  });
  const view = (l: ReturnType<typeof plain.initial>) => ({
    value: l.value,
    status: l.status,
    context: l.context,
  });

  it('gives, for every unit, what stepping XState event by event gives', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(input, fc.array(event, { maxLength: 30 })), { maxLength: 8 }),
        (runs) => {
          // Several units in a row: later ones reuse the steps earlier ones took (another name).
          for (const [i, events] of runs) {
            let want = plain.initial(i);
            for (const e of events) want = plain.step(want, e);
            const got = stepAll(plain.initial(i), events);
            expect(view(got)).toEqual(view(want));
            // Still a snapshot XState steps on from.
            const more: EngineUnitEvent = { type: 'OBSERVED', observed: 'running' };
            expect(view(plain.step(got, more))).toEqual(view(plain.step(want, more)));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
