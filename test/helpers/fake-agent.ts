import type { Bus } from '../../src/bus/types';
import {
  decodeScheduleDelta,
  decodeScheduleFull,
  encode,
  PROTOCOL_VERSION,
  subjects,
  type ScheduledUnit,
} from '../../src/protocol';

/**
 * A minimal agent for engine tests: heartbeats on demand, applies schedule deltas, asks for the
 * full schedule on a gap or a new epoch, and reports every scheduled unit as running (or loaded).
 * It counts what it receives, so tests can check that only the target machine wakes up.
 */
export class FakeAgent {
  readonly schedule = new Map<string, ScheduledUnit>();
  epoch = 0;
  seq = 0;
  messages = 0;
  changes = 0;
  fullRequests = 0;
  foreign = 0;
  /** Drop this many schedule messages on the floor (a message lost on the wire). */
  dropNext = 0;
  private subs: { unsubscribe(): void }[] = [];
  private readonly s;

  constructor(
    readonly bus: Bus,
    readonly cluster: string,
    readonly machine: string,
    readonly metadata: Record<string, string> = {},
    readonly ip = '10.0.0.1',
  ) {
    this.s = subjects(cluster);
  }

  start(): this {
    this.subs.push(
      this.bus.subscribe(this.s.schedule(this.machine), (m) => {
        const d = decodeScheduleDelta(m.data);
        if (this.dropNext > 0) {
          this.dropNext--;
          return;
        }
        this.messages++;
        this.changes += d.put.length + d.remove.length;
        if (m.subject !== this.s.schedule(this.machine)) this.foreign++;
        if (d.epoch !== this.epoch || d.seq !== this.seq + 1) {
          if (d.epoch === this.epoch && d.seq <= this.seq) return; // stale
          void this.fetchFull();
          return;
        }
        this.seq = d.seq;
        for (const u of d.put) this.schedule.set(u.unit, u);
        for (const u of d.remove) this.schedule.delete(u);
        this.report(
          d.put.map((u) => u.unit),
          d.remove,
        );
      }),
    );
    this.subs.push(this.bus.subscribe(this.s.resync, () => void this.resync()));
    return this;
  }

  heartbeat(): void {
    this.bus.publish(
      this.s.heartbeat(this.machine),
      encode({
        v: PROTOCOL_VERSION,
        machine: this.machine,
        ip: this.ip,
        metadata: this.metadata,
        epoch: this.epoch,
        seq: this.seq,
      }),
    );
  }

  async resync(): Promise<void> {
    this.heartbeat();
    await this.fetchFull();
  }

  async fetchFull(): Promise<void> {
    this.fullRequests++;
    const data = await this.bus.request(
      this.s.scheduleGet(this.machine),
      encode({ v: PROTOCOL_VERSION, machine: this.machine }),
      2000,
    );
    const full = decodeScheduleFull(data);
    this.epoch = full.epoch;
    this.seq = full.seq;
    const removed = [...this.schedule.keys()].filter((u) => !full.units.some((x) => x.unit === u));
    this.schedule.clear();
    for (const u of full.units) this.schedule.set(u.unit, u);
    this.report([...this.schedule.keys()], removed, true);
  }

  private report(units: string[], gone: string[], full = false): void {
    this.bus.publish(
      this.s.report(this.machine),
      encode({
        v: PROTOCOL_VERSION,
        machine: this.machine,
        full,
        gone,
        units: units
          .map((u) => this.schedule.get(u))
          .filter((u): u is ScheduledUnit => u !== undefined)
          .map((u) => ({
            unit: u.unit,
            load: 'loaded',
            active: u.target === 'launched' ? 'active' : 'inactive',
            sub: u.target === 'launched' ? 'running' : 'dead',
            hash: u.hash,
          })),
      }),
    );
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }
}
