/**
 * Batches observed unit state changes into StateReports on `engine.report`, leading edge first:
 * after a quiet `batchMs` a change goes out on the next timer tick (changes from the same tick
 * travel together), and changes that follow within `batchMs` of a report wait for the next one.
 * A lone start is reported without delay; a burst still costs one report per `batchMs`. Only a
 * unit's latest state is sent. A full report
 * (`full: true`) replaces everything the leader knows of the machine and supersedes whatever
 * incremental changes were pending.
 */
import type { Clock, TimerHandle } from '../runtime';
import type { ReportedUnit, StateReport } from '../protocol/messages';
import { PROTOCOL_VERSION } from '../protocol/messages';

export interface ReporterOptions {
  machineId: string;
  batchMs: number;
  clock: Clock;
  publish(report: StateReport): void;
}

export class Reporter {
  /** unit → its latest state, or null when the unit is gone. */
  private pending = new Map<string, ReportedUnit | null>();
  private timer: TimerHandle | undefined;
  private lastSent = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ReporterOptions) {}

  changed(state: ReportedUnit): void {
    this.pending.set(state.unit, state);
    this.arm();
  }

  gone(unit: string): void {
    this.pending.set(unit, null);
    this.arm();
  }

  /** Publishes a full report of `units` at once (pending changes are included in it). */
  full(units: ReportedUnit[]): void {
    this.cancel();
    this.pending.clear();
    this.opts.publish({
      v: PROTOCOL_VERSION,
      machine: this.opts.machineId,
      full: true,
      units: [...units].sort((a, b) => cmp(a.unit, b.unit)),
      gone: [],
    });
  }

  /** Publishes pending changes now, if any. */
  flush(): void {
    this.cancel();
    if (this.pending.size === 0) return;
    this.lastSent = this.opts.clock.now();
    const units: ReportedUnit[] = [];
    const gone: string[] = [];
    for (const [unit, s] of [...this.pending].sort(([a], [b]) => cmp(a, b))) {
      if (s === null) gone.push(unit);
      else units.push(s);
    }
    this.pending.clear();
    this.opts.publish({
      v: PROTOCOL_VERSION,
      machine: this.opts.machineId,
      full: false,
      units,
      gone,
    });
  }

  cancel(): void {
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, this.lastSent + this.opts.batchMs - this.opts.clock.now());
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
