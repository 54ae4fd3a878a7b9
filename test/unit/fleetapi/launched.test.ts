import { startedAndFailed } from '../../../src/fleetapi/launched';
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
  ...over,
});
const key = (r: UnitState) =>
  [r.machineId, r.hash, r.loadState, r.activeState, r.subState].join('\u0000');

describe('startedAndFailed', () => {
  it('is true for a failed report of the placed machine and current file, new since the launch request', () => {
    expect(startedAndFailed(unit, row(), '')).toBe(true);
    expect(
      startedAndFailed(unit, row(), key(row({ activeState: 'inactive', subState: 'dead' }))),
    ).toBe(true);
  });

  it.each([
    ['the same failure as before the request', unit, row(), key(row())],
    ['no report', unit, undefined, ''],
    ['another machine', unit, row({ machineId: 'm2' }), ''],
    ['an older file', unit, row({ hash: 'h0' }), ''],
    [
      'a unit not failed (loaded, not started yet)',
      unit,
      row({ activeState: 'inactive', subState: 'dead' }),
      '',
    ],
    ['a desired state other than launched', { ...unit, targetState: 'loaded' }, row(), ''],
  ])('is false for %s', (_what, u, r, before) => {
    expect(startedAndFailed(u, r, before)).toBe(false);
  });
});
