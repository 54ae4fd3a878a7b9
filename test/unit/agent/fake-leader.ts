/**
 * A stand-in leader for agent tests: the real leader's schedule projection (DesiredSchedule,
 * src/engine/desired.ts) numbers the deltas and builds the full schedules, so the agent is
 * tested against what the engine sends; this class only decides what runs where (the test says
 * so with `change`), publishes the deltas on `agent.<machine>.schedule`, answers
 * `engine.schedule.get`, and records reports and heartbeats. Works on any Bus.
 */
import type { Bus, Subscription } from '../../../src/bus/types';
import { DesiredSchedule } from '../../../src/engine/desired';
import type { UnitRecord } from '../../../src/engine/state';
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
import { parseUnitFile, serializeUnitFile, unitHash } from '../../../src/unit';

export function unitFile(name: string, exec = '/bin/sleep 1000', extra = ''): string {
  return `[Unit]\nDescription=${name}\n\n[Service]\nExecStart=${exec}\n${extra}`;
}

/** A unit as the leader schedules it: its file as the engine serializes it, and its hash. */
export function scheduled(
  unit: string,
  target: 'loaded' | 'launched' = 'launched',
  contents = unitFile(unit),
): ScheduledUnit {
  const options = parseUnitFile(contents);
  return { unit, target, contents: serializeUnitFile(options), hash: unitHash(options) };
}

export class FakeLeader {
  readonly requests: ScheduleRequest[] = [];
  readonly reports: StateReport[] = [];
  /** Encoded size of each report received, in bytes. */
  readonly reportSizes: number[] = [];
  readonly heartbeats: Heartbeat[] = [];
  /** Deltas published (or lost), per machine. */
  readonly published = new Map<string, ScheduleDelta[]>();
  private subs: Subscription[] = [];
  private getSub: Subscription | undefined;
  private readonly subj;
  /** The units' files, as the engine's fold holds them (DesiredSchedule reads name and options). */
  private readonly records = new Map<string, UnitRecord>();
  private desired: DesiredSchedule;
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
    this.subj = subjects(cluster);
    this.desired = new DesiredSchedule(epoch, (n) => this.records.get(n));
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
    return this.desired.full(machine);
  }

  /**
   * Changes `machine`'s schedule and publishes the delta the leader's projection makes of it
   * (unless `lose`: then the message is "lost" on the wire). A change that changes nothing still
   * gets the next number (an empty delta, as the leader's nudge).
   */
  change(
    machine: string,
    put: ScheduledUnit[],
    remove: string[] = [],
    lose = false,
  ): ScheduleDelta {
    for (const u of put) {
      // Contents as the engine serializes them: the test's file is parsed back to options.
      const options = parseUnitFile(u.contents);
      this.records.set(u.unit, { name: u.unit, options, hash: u.hash } as UnitRecord);
      const on = new Set(this.desired.machinesOf(u.unit)).add(machine);
      this.desired.set(u.unit, on, { hash: u.hash, target: u.target });
    }
    for (const unit of remove) {
      const on = new Set(this.desired.machinesOf(unit));
      on.delete(machine);
      const entry = this.entryOf(unit);
      this.desired.set(unit, on, on.size > 0 && entry ? entry : null);
    }
    const deltas = this.desired.flush().filter((d) => d.machine === machine);
    if (deltas.length > 1) throw new Error(`one change made ${deltas.length} deltas`);
    const delta = deltas[0]?.delta ?? this.desired.nudge(machine);
    let list = this.published.get(machine);
    if (!list) this.published.set(machine, (list = []));
    list.push(delta);
    if (!lose) this.bus.publish(this.scheduleSubject(machine), encode(delta));
    return delta;
  }

  /** The hash and target `unit` is scheduled with (on any machine). */
  private entryOf(unit: string): { hash: string; target: 'loaded' | 'launched' } | undefined {
    for (const m of this.desired.machinesOf(unit)) {
      const u = this.desired.full(m).units.find((x) => x.unit === unit);
      if (u) return { hash: u.hash, target: u.target };
    }
    return undefined;
  }

  /** The epoch of the deltas and full schedules sent. */
  get epoch(): number {
    return this.desired.epoch;
  }

  /** Speaks for another epoch from now on (the same placements, numbered as a new term's). */
  set epoch(epoch: number) {
    const placements = this.desired.units().map((u) => ({
      unit: u,
      machines: [...this.desired.machinesOf(u)],
      entry: this.entryOf(u)!,
    }));
    this.desired = new DesiredSchedule(epoch, (n) => this.records.get(n));
    for (const p of placements) this.desired.set(p.unit, p.machines, p.entry);
    this.desired.discard();
  }

  /**
   * A new term: epoch + 1 and a new projection of the same placements, numbered as the engine
   * numbers a new term's (its pending changes discarded: agents fetch their full schedule).
   */
  newTerm(publishResync = true): void {
    this.epoch = this.epoch + 1;
    if (publishResync)
      this.bus.publish(this.resyncSubject(), encode({ v: PROTOCOL_VERSION, epoch: this.epoch }));
  }

  /**
   * Takes `units` into `machine`'s schedule without a delta, as a new leader finds them in the
   * state it starts its term with.
   */
  adopt(machine: string, units: ScheduledUnit[]): void {
    for (const u of units) {
      this.records.set(u.unit, {
        name: u.unit,
        options: parseUnitFile(u.contents),
        hash: u.hash,
      } as UnitRecord);
      const on = new Set(this.desired.machinesOf(u.unit)).add(machine);
      this.desired.set(u.unit, on, { hash: u.hash, target: u.target });
    }
    this.desired.discard();
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
