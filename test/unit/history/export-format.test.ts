import { ErrorCode, FlotillaError } from '../../../src/errors';
import type { FlotillaEvent } from '../../../src/events/types';
import { historyIndex, historyText, parseHistory } from '../../../src/history/export-format';
import type { Restored } from '../../../src/store/types';

const ev = (index: number, epoch = 1): FlotillaEvent =>
  ({
    index,
    epoch,
    time: 1000 + index,
    v: 1,
    type: 'UnitDestroyed',
    unit: `u${index}`,
  }) as FlotillaEvent;

const restored: Restored = {
  snapshot: { index: 5, epoch: 2, data: new Uint8Array([1, 2, 3, 250]) },
  tail: [ev(3), ev(4), ev(6, 2), ev(9, 3)],
};

const text = (r: Restored = restored): string =>
  historyText(r, { cluster: 'prod', flotilla: '0.1.0', created: new Date(0) });

function refusal(t: string): FlotillaError {
  try {
    parseHistory(t, 'b.hist');
  } catch (e) {
    expect(e).toBeInstanceOf(FlotillaError);
    expect((e as FlotillaError).code).toBe(ErrorCode.InvalidArgument);
    return e as FlotillaError;
  }
  throw new Error('expected a refusal');
}

describe('history file format', () => {
  it('round-trips a snapshot and events, with a self-describing header', () => {
    const h = parseHistory(text(), 'b.hist');
    expect(h.header).toMatchObject({
      format: 'flotilla-history',
      version: 1,
      cluster: 'prod',
      first: 3,
      last: 9,
      events: 4,
      snapshot: { index: 5, epoch: 2, bytes: 4 },
    });
    expect(h.restored.tail).toEqual(restored.tail);
    expect([...h.restored.snapshot!.data]).toEqual([1, 2, 3, 250]);
    expect(historyIndex(h.header)).toBe(9);
    const noSnap = parseHistory(text({ tail: [ev(1)] }), 'x');
    expect(noSnap.restored.snapshot).toBeUndefined();
  });

  it('refuses damaged or foreign files, naming the line', () => {
    const lines = text().trimEnd().split('\n');
    expect(refusal('').message).toMatch(/b\.hist:1: empty file/);
    expect(refusal('{"format":"other"}\n').message).toMatch(/:1: not a flotilla history file/);
    expect(refusal(lines[0].replace('"version":1', '"version":2') + '\n').message).toMatch(
      /newer flotilla \(format version 2; this one reads up to 1\)/,
    );
    expect(refusal(lines.slice(0, -1).join('\n')).message).toMatch(
      /:6: no end line: the file is truncated/,
    );
    expect(
      refusal([lines[0], '{"snapshot":"AAAA"}', ...lines.slice(2)].join('\n')).message,
    ).toMatch(/:2: the snapshot does not match its size and sha256/);
    const swapped = [...lines];
    [swapped[3], swapped[4]] = [swapped[4], swapped[3]];
    expect(refusal(swapped.join('\n')).message).toMatch(/:5: event index 4 does not follow 6/);
    expect(refusal([...lines.slice(0, 3), 'nope', ...lines.slice(3)].join('\n')).message).toMatch(
      /:4: not JSON/,
    );
    expect(refusal([...lines, '{"event":{}}'].join('\n')).message).toMatch(
      /:8: data after the end line/,
    );
    const dropped = [...lines.slice(0, 3), ...lines.slice(4)];
    expect(refusal(dropped.join('\n')).message).toMatch(/end line counts 4 events; the file has 3/);
  });
});
