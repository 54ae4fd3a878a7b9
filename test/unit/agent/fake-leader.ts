/**
 * A fake leader for agent tests: keeps a schedule per machine, publishes deltas with the
 * per-machine seq on `agent.<machine>.schedule`, answers `engine.schedule.get`, and records
 * reports and heartbeats. Works on any Bus (LocalBus or NatsBus).
 */
import { createHash } from 'node:crypto';
import type { Bus, Subscription } from '../../../src/bus/types';
import {
  type Heartbeat,
  type ScheduleDelta,
  type ScheduleFull,
  type ScheduleRequest,
  type ScheduledUnit,
  type StateReport,
  PROTOCOL_VERSION,
  decodeHeartbeat,
  decodeScheduleRequest,
  decodeStateReport,
  encode,
  subjects,
} from '../../../src/protocol';

export function unitFile(name: string, exec = '/bin/sleep 1000', extra = ''): string {
  return `[Unit]\nDescription=${name}\n\n[Service]\nExecStart=${exec}\n${extra}`;
}

export function scheduled(
  unit: string,
  target: 'loaded' | 'launched' = 'launched',
  contents = unitFile(unit),
): ScheduledUnit {
  return { unit, target, contents, hash: createHash('sha1').update(contents).digest('hex') };
}

export class FakeLeader {
  epoch: number;
  readonly schedules = new Map<string, Map<string, ScheduledUnit>>();
  readonly seqs = new Map<string, number>();
  readonly requests: ScheduleRequest[] = [];
  readonly reports: StateReport[] = [];
  /** Encoded size of each report received, in bytes. */
  readonly reportSizes: number[] = [];
  readonly heartbeats: Heartbeat[] = [];
  /** Deltas published, per machine. */
  readonly published = new Map<string, ScheduleDelta[]>();
  /** When false, schedule.get is not subscribed (no responders). */
  private subs: Subscription[] = [];
  private getSub: Subscription | undefined;
  private readonly subj;
  /**
   * The engine's machine ID, when it speaks on the subjects that name their sender (as a
   * daemon's engine does: `agent.<m>.schedule.<name>`, `agents.resync.<name>`, requests on
   * `leader.<name>.schedule.get.<m>`); undefined: protocol v1's unnamed subjects.
   */
  name: string | undefined;

  constructor(
    private readonly bus: Bus,
    readonly cluster: string,
    epoch = 1,
  ) {
    this.epoch = epoch;
    this.subj = subjects(cluster);
  }

  /**
   * Like a real leader, publish `agents.resync` when its own NATS connection comes back: reports
   * agents sent while the leader was still reconnecting are lost (core NATS).
   */
  private offStatus: (() => void) | undefined;
  resyncOnReconnect = true;

  start(): this {
    let first = true;
    this.offStatus = this.bus.onStatus((s) => {
      if (s !== 'connected') return;
      if (!first && this.resyncOnReconnect)
        this.bus.publish(this.resyncSubject(), encode({ v: PROTOCOL_VERSION, epoch: this.epoch }));
      first = false;
    });
    this.subs.push(
      this.bus.subscribe(this.subj.reportAll, (m) => {
        this.reportSizes.push(m.data.length);
        this.reports.push(decodeStateReport(m.data));
      }),
      this.bus.subscribe(this.subj.heartbeatAll, (m) =>
        this.heartbeats.push(decodeHeartbeat(m.data)),
      ),
    );
    this.answer(true);
    return this;
  }

  /** Answer `engine.schedule.get` (true) or leave it without responders (false). */
  answer(on: boolean): void {
    if (on && !this.getSub) {
      const subject =
        this.name === undefined ? this.subj.scheduleGetAll : this.subj.scheduleGetOfAll(this.name);
      this.getSub = this.bus.subscribe(subject, (m) => {
        const req = decodeScheduleRequest(m.data);
        this.requests.push(req);
        m.respond?.(encode(this.page(req)));
      });
    } else if (!on && this.getSub) {
      this.getSub.unsubscribe();
      this.getSub = undefined;
    }
  }

  /** Pages of this many units for agents that ask for pages (0: always the whole schedule, as a leader from before paging). */
  pageUnits = 0;

  private page(req: ScheduleRequest): ScheduleFull {
    const full = this.full(req.machine);
    if (!req.paged || this.pageUnits === 0) return full;
    const sorted = [...full.units].sort((a, b) => (a.unit < b.unit ? -1 : 1));
    const rest = sorted.filter((u) => req.after === undefined || u.unit > req.after);
    const units = rest.slice(0, this.pageUnits);
    return units.length < rest.length
      ? { ...full, units, next: units[units.length - 1].unit }
      : { ...full, units };
  }

  full(machine: string): ScheduleFull {
    const units = [...(this.schedules.get(machine)?.values() ?? [])];
    return {
      v: PROTOCOL_VERSION,
      kind: 'full',
      epoch: this.epoch,
      seq: this.seqs.get(machine) ?? 0,
      units,
    };
  }

  private sched(machine: string): Map<string, ScheduledUnit> {
    let s = this.schedules.get(machine);
    if (!s) this.schedules.set(machine, (s = new Map()));
    return s;
  }

  /** Changes the schedule and publishes the delta (unless `lose`: then the message is "lost"). */
  change(
    machine: string,
    put: ScheduledUnit[],
    remove: string[] = [],
    lose = false,
  ): ScheduleDelta {
    const s = this.sched(machine);
    for (const u of put) s.set(u.unit, u);
    for (const r of remove) s.delete(r);
    const seq = (this.seqs.get(machine) ?? 0) + 1;
    this.seqs.set(machine, seq);
    const delta: ScheduleDelta = {
      v: PROTOCOL_VERSION,
      kind: 'delta',
      epoch: this.epoch,
      seq,
      put,
      remove,
    };
    let list = this.published.get(machine);
    if (!list) this.published.set(machine, (list = []));
    list.push(delta);
    if (!lose) this.bus.publish(this.scheduleSubject(machine), encode(delta));
    return delta;
  }

  /** A new term: epoch + 1, seqs restart, `agents.resync` published. */
  newTerm(publishResync = true): void {
    this.epoch++;
    this.seqs.clear();
    if (publishResync)
      this.bus.publish(this.resyncSubject(), encode({ v: PROTOCOL_VERSION, epoch: this.epoch }));
  }

  scheduleSubject(machine: string): string {
    return this.name === undefined
      ? this.subj.schedule(machine)
      : this.subj.scheduleFrom(machine, this.name);
  }

  resyncSubject(): string {
    return this.name === undefined ? this.subj.resync : this.subj.resyncFrom(this.name);
  }

  publishRaw(subject: string, data: Uint8Array | string): void {
    this.bus.publish(subject, typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  reportsFor(machine: string): StateReport[] {
    return this.reports.filter((r) => r.machine === machine);
  }

  requestsFor(machine: string): number {
    return this.requests.filter((r) => r.machine === machine).length;
  }

  /** The latest reported state of `unit` on `machine` (folding full and incremental reports). */
  reported(machine: string, unit: string): StateReport['units'][number] | null | undefined {
    let state: StateReport['units'][number] | null | undefined;
    for (const r of this.reportsFor(machine)) {
      if (r.full) state = r.units.find((u) => u.unit === unit) ?? null;
      const u = r.units.find((x) => x.unit === unit);
      if (u) state = u;
      if (r.gone.includes(unit)) state = null;
    }
    return state;
  }

  stop(): void {
    this.offStatus?.();
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.answer(false);
  }
}

/**
 * Polls `cond` (every `everyMs`) until it holds; throws after `timeoutMs` with `what` (a function
 * is called then, so the message can show the state that did not converge).
 */
export async function waitFor(
  cond: () => boolean,
  what: string | (() => string),
  timeoutMs = 10_000,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
