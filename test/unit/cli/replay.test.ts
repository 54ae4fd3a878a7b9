import { replayState } from '../../../src/cli/commands/replay';
import { foldAll } from '../../../src/engine/fold';
import { encodeState } from '../../../src/engine/snapshot';
import type { EventBody, FlotillaEvent } from '../../../src/events/types';

const opts = [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }];
const bodies: EventBody[] = [
  { type: 'UnitSubmitted', unit: 'a.service', options: opts, hash: 'h1', target: 'inactive' },
  { type: 'UnitTargetSet', unit: 'a.service', target: 'launched' },
  { type: 'UnitScheduled', unit: 'a.service', machine: 'm1', reason: 'least loaded' },
  { type: 'UnitSubmitted', unit: 'b.service', options: opts, hash: 'h2', target: 'loaded' },
  { type: 'UnitUnscheduled', unit: 'a.service', machine: 'm1', reason: 'machine lost' },
  { type: 'UnitDestroyed', unit: 'b.service' },
];
const log: FlotillaEvent[] = bodies.map(
  (b, i) => ({ ...b, index: i + 1, epoch: 1, time: 1000 + i, v: 1 }) as FlotillaEvent,
);

describe('replayState', () => {
  it('folds the whole log from the start up to --until', () => {
    const at3 = replayState({ tail: log }, 3).state;
    expect(at3.units.get('a.service')).toMatchObject({ target: 'launched', machine: 'm1' });
    expect(at3.units.has('b.service')).toBe(false);
    const all = replayState({ tail: log }, 0).state;
    expect(all.units.get('a.service')!.machine).toBeUndefined();
    expect(all.units.has('b.service')).toBe(false);
  });

  it('starts from the snapshot when the log before it is compacted, and gives the same state', () => {
    const snap = { index: 4, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
    const fromSnap = replayState({ snapshot: snap, tail: log.slice(4) }, 0).state;
    expect(encodeState(fromSnap)).toEqual(encodeState(foldAll(log)));
  });

  it('refuses an index that was compacted away, saying how to keep more', () => {
    const snap = { index: 4, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
    expect(() => replayState({ snapshot: snap, tail: log.slice(4) }, 2)).toThrow(
      "events before index 4 were compacted behind the snapshot at 4 (raise flotillad's log_retention to keep more history)",
    );
  });
});
