import { Retention } from '../../../src/history/retention';

describe('log retention', () => {
  it('keeps at most `count` events behind the snapshot', () => {
    expect(new Retention(100).cut(250, 0)).toBe(150);
    expect(new Retention(100).cut(50, 0)).toBe(0);
  });

  it('with an age, also compacts what is older, never past the snapshot', () => {
    const r = new Retention(1_000_000, 60_000);
    for (let i = 1; i <= 10; i++) r.mark(i * 100, i * 10_000);
    // now = 150 s: events marked before 90 s go (index 800 at 80 s)
    expect(r.cut(1000, 150_000)).toBe(800);
    expect(new Retention(1_000_000, 1).cut(0, 1e9)).toBe(0);
    const r2 = new Retention(1_000_000, 1000);
    r2.mark(500, 0);
    expect(r2.cut(300, 10_000)).toBe(300);
  });
});
