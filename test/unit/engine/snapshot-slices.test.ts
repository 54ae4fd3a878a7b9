import { foldAll } from '../../../src/engine/fold';
import { encodeState, encodeStateInSlices } from '../../../src/engine/snapshot';
import type { FlotillaEvent } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';

function events(units: number): FlotillaEvent[] {
  const out: FlotillaEvent[] = [];
  const push = (b: object): void =>
    void out.push({
      ...b,
      index: out.length + 1,
      epoch: 1,
      time: 1000 + out.length,
      v: SCHEMA_VERSION,
    } as FlotillaEvent);
  push({ type: 'LeaderElected', machine: 'm0', address: '10.0.0.1:7070' });
  push({ type: 'MachineJoined', machine: 'm1', ip: '10.0.0.2', metadata: { zone: 'b', az: 'a' } });
  for (let i = 0; i < units; i++) {
    const unit = `u${String(i).padStart(5, '0')}.service`;
    const options = [
      { section: 'Service', name: 'ExecStart', value: `/bin/sleep ${i} "quoted\\n"` },
    ];
    push({ type: 'UnitSubmitted', unit, options, hash: `h${i}`, target: 'launched' });
    if (i % 3 !== 0) push({ type: 'UnitScheduled', unit, machine: 'm1', reason: 'r' });
    if (i % 2 === 0)
      push({
        type: 'UnitStateReported',
        unit,
        machine: 'm1',
        state: { load: 'loaded', active: 'active', sub: 'running', hash: `h${i}`, mainPid: i },
      });
  }
  return out;
}

describe('encodeStateInSlices', () => {
  it.each([0, 1, 7, 25])(
    'writes the same bytes as encodeState (%i units, slices of 3)',
    async (n) => {
      const state = foldAll(events(n));
      let pauses = 0;
      const sliced = await encodeStateInSlices(state, async () => void pauses++, 3);
      expect(Buffer.from(sliced).toString()).toBe(Buffer.from(encodeState(state)).toString());
      expect(pauses).toBe(n === 0 ? 0 : Math.ceil(n / 3) - 1 + Math.ceil(Math.ceil(n / 2) / 3) - 1);
    },
  );

  it('captures the state when called: later changes are not in the bytes', async () => {
    const state = foldAll(events(10));
    const before = Buffer.from(encodeState(state)).toString();
    const encoding = encodeStateInSlices(state, () => new Promise((r) => setImmediate(r)), 2);
    state.units.get('u00001.service')!.machine = 'elsewhere';
    state.units.delete('u00002.service');
    expect(Buffer.from(await encoding).toString()).toBe(before);
  });
});
