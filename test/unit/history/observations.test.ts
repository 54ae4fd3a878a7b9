import { applyEvent } from '../../../src/engine/fold';
import { emptyState } from '../../../src/engine/state';
import type { EventBody, UnitRuntimeState } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';
import {
  isMilestone,
  unplaceableEvents,
  withObservations,
} from '../../../src/history/observations';

const st = (active: string, extra: Partial<UnitRuntimeState> = {}): UnitRuntimeState => ({
  load: 'loaded',
  active,
  sub: '',
  hash: 'h',
  ...extra,
});

describe('durable observations', () => {
  /** The durable records a sequence of reports of one unit leaves, for a unit with `target`. */
  function recorded(reports: UnitRuntimeState[], target: 'launched' | 'loaded'): string[] {
    let prev: UnitRuntimeState | undefined;
    const durable: EventBody[] = [];
    for (const s of reports) {
      const out = withObservations(
        [{ type: 'UnitStateReported', unit: 'u', machine: 'm', state: s }],
        () => prev,
        () => target,
      );
      durable.push(...out.filter((b) => b.type === 'UnitObserved'));
      prev = s;
    }
    return durable.map((b) => (b.type === 'UnitObserved' ? (b.state?.active ?? 'gone') : ''));
  }

  it('a unit started by a burst leaves one durable record: active (its first load is a step)', () => {
    const start = [st('inactive'), st('activating'), st('active', { mainPid: 10 })];
    expect(recorded(start, 'launched')).toEqual(['active']);
    // Stopped later (loaded, not running) and started again: both recorded.
    expect(recorded([...start, st('inactive'), st('active', { mainPid: 11 })], 'launched')).toEqual(
      ['active', 'inactive', 'active'],
    );
    // Failing to start, or to load, is recorded.
    expect(recorded([st('inactive'), st('failed', { result: 'exit-code' })], 'launched')).toEqual([
      'failed',
    ]);
    expect(recorded([st('inactive', { load: 'not-found' })], 'launched')).toEqual(['inactive']);
  });

  it('a unit meant to stay loaded has its load recorded', () => {
    expect(recorded([st('inactive')], 'loaded')).toEqual(['inactive']);
    expect(isMilestone(undefined, st('inactive'))).toBe(true);
    expect(isMilestone(undefined, st('inactive'), 'launched')).toBe(false);
  });

  it("keeps the agent's start count out of the log: a new count alone is no milestone", () => {
    const report: EventBody = {
      type: 'UnitStateReported',
      unit: 'a.service',
      machine: 'm1',
      state: st('failed', { result: 'exit-code', starts: 2 }),
    };
    const out = withObservations([report], () => st('inactive', { starts: 1 }));
    expect(out).toEqual([
      report,
      {
        type: 'UnitObserved',
        unit: 'a.service',
        machine: 'm1',
        state: st('failed', { result: 'exit-code' }),
      },
    ]);
    expect(isMilestone(st('inactive', { starts: 1 }), st('inactive', { starts: 2 }))).toBe(false);
    // Folded live, the record keeps the count its report brought.
    const state = emptyState();
    for (const body of out)
      applyEvent(state, { ...body, index: 1, epoch: 1, time: 0, v: SCHEMA_VERSION });
    expect(state.reported.get('a.service')?.get('m1')?.starts).toBe(2);
  });

  it('records a restart (new main PID), a failure, a different failure, and the unit going away', () => {
    expect(isMilestone(st('active', { mainPid: 1 }), st('active', { mainPid: 2 }))).toBe(true);
    expect(isMilestone(st('active', { mainPid: 1 }), st('active', { mainPid: 1 }))).toBe(false);
    expect(isMilestone(st('active'), st('failed', { result: 'exit-code', exitStatus: 1 }))).toBe(
      true,
    );
    expect(
      isMilestone(
        st('failed', { result: 'exit-code', exitStatus: 1 }),
        st('failed', { result: 'exit-code', exitStatus: 2 }),
      ),
    ).toBe(true);
    expect(isMilestone(st('active'), st('deactivating'))).toBe(false);
    expect(isMilestone(st('active'), null)).toBe(true);
    expect(isMilestone(undefined, null)).toBe(false);
  });

  it("records the scheduler's reason once, and not for a unit that was placed meanwhile", () => {
    const state = emptyState();
    const events: EventBody[] = [
      { type: 'UnitSubmitted', unit: 'a', options: [], hash: 'h', target: 'launched' },
      { type: 'UnitSubmitted', unit: 'b', options: [], hash: 'h', target: 'launched' },
      { type: 'UnitScheduled', unit: 'b', machine: 'm1', reason: 'least loaded' },
      { type: 'UnitUnplaceable', unit: 'a', reason: 'no machines' },
    ];
    events.forEach((b, i) =>
      applyEvent(state, { ...b, index: i + 1, epoch: 1, time: i, v: SCHEMA_VERSION }),
    );
    expect(
      unplaceableEvents(state, [
        { unit: 'a', reason: 'no machines' },
        { unit: 'b', reason: 'no machines' },
        { unit: 'a', reason: 'conflicts with x' },
      ]),
    ).toEqual([{ type: 'UnitUnplaceable', unit: 'a', reason: 'conflicts with x' }]);
  });
});
