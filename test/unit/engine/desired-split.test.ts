import { splitBySize } from '../../../src/engine/desired';
import { encode, PROTOCOL_VERSION, type ScheduledUnit } from '../../../src/protocol';

const unit = (i: number, bytes = 200): ScheduledUnit => ({
  unit: `u${i}.service`,
  hash: 'f'.repeat(40),
  contents: `[Service]\nExecStart=/bin/sleep ${'9'.repeat(bytes)}\n`,
  target: 'launched',
});
const size = (p: { put: ScheduledUnit[]; remove: string[] }): number =>
  encode({ v: PROTOCOL_VERSION, kind: 'delta', epoch: 2 ** 31, seq: 2 ** 31, ...p }).length;

describe('splitBySize', () => {
  it('keeps everything in one part when it fits', () => {
    const put = [unit(1), unit(2)];
    expect(splitBySize(put, ['gone.service'], 1 << 20)).toEqual([
      { put, remove: ['gone.service'] },
    ]);
    expect(splitBySize([], [], 1000)).toEqual([{ put: [], remove: [] }]);
  });

  it('cuts a large delta into parts below the limit, in order, removals first', () => {
    const put = Array.from({ length: 300 }, (_, i) => unit(i));
    const remove = Array.from({ length: 50 }, (_, i) => `old${i}.service`);
    const parts = splitBySize(put, remove, 10_000);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) expect(size(p)).toBeLessThanOrEqual(10_000);
    expect(parts.flatMap((p) => p.put)).toEqual(put);
    expect(parts.flatMap((p) => p.remove)).toEqual(remove);
    expect(parts[0].remove).toEqual(remove);
  });

  it('gives a unit larger than the limit a part of its own', () => {
    const parts = splitBySize([unit(1), unit(2, 5000), unit(3)], [], 2000);
    expect(parts.map((p) => p.put.map((u) => u.unit))).toEqual([
      ['u1.service'],
      ['u2.service'],
      ['u3.service'],
    ]);
  });
});
