/**
 * How much of the log is kept behind the latest snapshot (for `flotilla replay` and `flotilla
 * events`): at most `count` events, and, when `ageMs` is set, none older than that. Compaction
 * happens right after a snapshot is written, so whatever is compacted is in the snapshot.
 *
 * Event times are known here by marks — (index, time) pairs taken at most once a second at
 * commit — so cutting by age costs nothing per event; the cut lands on a mark (at most a second
 * of events more are kept than the age says).
 */
export class Retention {
  private marks: { index: number; time: number }[] = [];

  constructor(
    private readonly count: number,
    private readonly ageMs = 0,
  ) {}

  /** The log reached `index` at `time` (ms). */
  mark(index: number, time: number): void {
    if (this.ageMs <= 0) return;
    const last = this.marks[this.marks.length - 1];
    if (last && (time - last.time < 1000 || index <= last.index)) return;
    this.marks.push({ index, time });
  }

  /**
   * The index up to which (inclusive) the log may be compacted after a snapshot at
   * `snapshotIndex`; 0 when nothing is to go.
   */
  cut(snapshotIndex: number, now: number): number {
    let cut = Math.max(0, snapshotIndex - this.count);
    if (this.ageMs > 0) {
      const before = now - this.ageMs;
      let byAge = 0;
      for (const m of this.marks) {
        if (m.time >= before) break;
        byAge = m.index;
      }
      cut = Math.max(cut, Math.min(byAge, snapshotIndex));
      this.marks = this.marks.filter((m) => m.index > cut);
    }
    return cut;
  }
}
