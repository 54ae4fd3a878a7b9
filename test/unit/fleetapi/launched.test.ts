import { startedSinceRequest, type Before } from '../../../src/fleetapi/launched';
import type { Unit, UnitState } from '../../../src/gen/flotilla/v1/flotilla';

const unit: Unit = {
  name: 'a.service',
  options: [],
  hash: 'h1',
  targetState: 'launched',
  targetMachine: 'm1',
  global: false,
  description: '',
  currentState: 'loaded',
  phase: '',
  reason: '',
  lastFailure: undefined,
};
const row = (over: Partial<UnitState> = {}): UnitState => ({
  name: 'a.service',
  machineId: 'm1',
  machineIp: '',
  loadState: 'loaded',
  activeState: 'failed',
  subState: 'failed',
  hash: 'h1',
  starts: 0,
  ...over,
});
const key = (r: UnitState) =>
  [r.machineId, r.hash, r.loadState, r.activeState, r.subState].join('\u0000');
const before = (r?: UnitState): Before => ({ key: r ? key(r) : '', starts: r?.starts ?? 0 });
const exited = { activeState: 'inactive', subState: 'dead' };

describe('startedSinceRequest', () => {
  it('is true once the agent reports a start since the request, whatever the unit did next', () => {
    // A unit that exited 0 at once: systemd's state is where it was, the start count is not.
    expect(
      startedSinceRequest(unit, row({ ...exited, starts: 1 }), before(row({ ...exited }))),
    ).toBe(true);
    // One that failed again exactly as before.
    expect(startedSinceRequest(unit, row({ starts: 3 }), before(row({ starts: 2 })))).toBe(true);
    // Placed after the request (nothing reported then).
    expect(startedSinceRequest(unit, row({ starts: 1 }), before())).toBe(true);
  });

  it('without start counts (an older agent), is true for a failure new since the request', () => {
    expect(startedSinceRequest(unit, row(), before())).toBe(true);
    expect(startedSinceRequest(unit, row(), before(row({ ...exited })))).toBe(true);
  });

  it.each([
    ['no start since the request', unit, row({ ...exited, starts: 2 }), before(row({ starts: 2 }))],
    ['the same failure as before the request (no counts)', unit, row(), before(row())],
    ['no report', unit, undefined, before()],
    ['another machine', unit, row({ machineId: 'm2', starts: 1 }), before()],
    ['an older file', unit, row({ hash: 'h0', starts: 1 }), before()],
    ['a unit not failed and never started (loaded)', unit, row({ ...exited }), before()],
    [
      'a desired state other than launched',
      { ...unit, targetState: 'loaded' },
      row({ starts: 1 }),
      before(),
    ],
    [
      'a unit that reads launched already',
      { ...unit, currentState: 'launched' },
      row({ starts: 1 }),
      before(),
    ],
  ])('is false for %s', (_what, u, r, b) => {
    expect(startedSinceRequest(u, r, b)).toBe(false);
  });
});
