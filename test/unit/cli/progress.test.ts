import { Progress, PROGRESS_MIN_UNITS } from '../../../src/cli/progress';

function recorder(isTTY: boolean, total: number) {
  const writes: string[] = [];
  let t = 0;
  const p = new Progress({
    write: (s) => writes.push(s),
    isTTY,
    total,
    what: 'launched',
    now: () => t,
  });
  return { p, writes, tick: (ms: number) => (t += ms) };
}

describe('progress line while waiting', () => {
  test('quiet for a few units when stderr is not a terminal', () => {
    const { p, writes, tick } = recorder(false, PROGRESS_MIN_UNITS);
    p.update(1);
    tick(5000);
    p.update(2);
    p.clear();
    expect(writes).toEqual([]);
  });

  test('plain lines for many units off a terminal, at most one per interval, only on change', () => {
    const { p, writes, tick } = recorder(false, 3000);
    p.update(0);
    p.update(10); // within the interval: not shown
    tick(2000);
    p.update(1234);
    tick(2000);
    p.update(1234); // unchanged: not shown
    p.clear(); // nothing to clear off a terminal
    expect(writes).toEqual(['waiting: 0/3000 launched\n', 'waiting: 1234/3000 launched\n']);
  });

  test('redrawn in place on a terminal and cleared at the end', () => {
    const { p, writes, tick } = recorder(true, 2);
    p.update(0);
    tick(100);
    p.update(1);
    p.clear();
    expect(writes).toEqual([
      '\r\x1b[2Kwaiting: 0/2 launched',
      '\r\x1b[2Kwaiting: 1/2 launched',
      '\r\x1b[2K',
    ]);
  });
});
