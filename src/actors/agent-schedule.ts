/**
 * The agent's schedule intake: who may command it, which epochs it has heard of, and the full
 * schedule fetched from the leader in pages. What a delta or a full schedule then does to the
 * agent's position (sequence checks, buffering, drops) is the agent machine's to decide
 * (src/machines/agent.ts); this module turns messages into its events.
 *
 * With `leaderCheck` (docs/protocol.md, "Only the leader commands") a schedule, a resync, a
 * full schedule or a status/journal request is accepted only from the leader of the current
 * epoch, as the election names it (`setLeader`); the last token of the subject names the sender,
 * which the bus's permissions guarantee.
 */
import type { Bus } from '../bus/types';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import type { AgentEvent } from '../machines/agent';
import type { Clock, Logger } from '../runtime';
import {
  type ScheduleFull,
  type ScheduleRequest,
  type ScheduledUnit,
  type Subjects,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeResyncRequest,
  decodeScheduleDelta,
  decodeScheduleFull,
  encode,
} from '../protocol';
import { type AgentStats, type KnownLeader, errMsg } from './agent-types';

export interface ScheduleIntakeOptions {
  machineId: string;
  bus: Bus;
  subj: Subjects;
  leaderCheck: boolean;
  legacySubjects: boolean;
  /** Timeout of one full-schedule page request. */
  requestTimeoutMs: number;
  stats: AgentStats;
  log: Logger;
  clock: Clock;
  random: () => number;
  /** Sends an event to the agent machine. */
  send(event: AgentEvent): void;
  /** The epoch of the last change the agent machine applied. */
  appliedEpoch(): number;
}

export class ScheduleIntake {
  /** The leader of the current epoch, from the election (with `leaderCheck`). */
  private current: KnownLeader | undefined;
  /** Refusals already logged at warn level (sender@epoch), bounded. */
  private readonly refusalsLogged = new Set<string>();
  /** The highest leadership epoch heard of (deltas, resync requests, full schedules). */
  private highestEpoch = 0;

  constructor(private readonly opts: ScheduleIntakeOptions) {}

  /** Records the election's leader; false when it is the one already known. */
  setLeader(leader: KnownLeader | undefined): boolean {
    const prev = this.current;
    if (prev?.machine === leader?.machine && prev?.epoch === leader?.epoch) return false;
    this.current = leader === undefined ? undefined : { ...leader };
    return true;
  }

  noteEpoch(epoch: number): void {
    if (epoch > this.highestEpoch) this.highestEpoch = epoch;
  }

  /**
   * With `leaderCheck`: whether a message on `subject` (whose last token names its sender, as
   * the bus's permissions guarantee) of `epoch` comes from the leader of the current epoch.
   * A refusal is counted and logged (warn once per sender and epoch, then debug).
   */
  fromLeader(subject: string, epoch: number, what: string): boolean {
    if (!this.opts.leaderCheck) return true;
    const sender = subject.slice(subject.lastIndexOf('.') + 1);
    const l = this.current;
    if (l !== undefined && sender === l.machine && epoch === l.epoch) return true;
    this.opts.stats.notFromLeader++;
    const key = `${sender}@${epoch}`;
    const fields = {
      what,
      sender: sender.slice(0, 64),
      epoch,
      leader: l ? `${l.machine}@${l.epoch}` : 'none known',
    };
    // A new leader's first messages may beat the election's news: not worth a warning.
    const ahead = l === undefined || epoch > l.epoch;
    if (ahead || this.refusalsLogged.has(key) || this.refusalsLogged.size >= 100)
      this.opts.log.debug('refused: not from the leader of the current epoch', fields);
    else {
      this.refusalsLogged.add(key);
      this.opts.log.warn('refused: not from the leader of the current epoch', fields);
    }
    return false;
  }

  /** A delta on `agent.<machine>.schedule`. Throws ProtocolError when malformed. */
  onSchedule(data: Uint8Array, subject: string): void {
    const delta = decodeScheduleDelta(data);
    if (!this.fromLeader(subject, delta.epoch, 'schedule delta')) return;
    this.noteEpoch(delta.epoch);
    const { stats } = this.opts;
    stats.scheduleMessages++;
    stats.scheduleChanges += delta.put.length + delta.remove.length;
    this.opts.send({ type: 'SCHEDULE_RECEIVED', delta });
  }

  /** A request on `agents.resync`. Throws ProtocolError when malformed. */
  onResync(data: Uint8Array, subject: string): void {
    const r = decodeResyncRequest(data);
    if (!this.fromLeader(subject, r.epoch, 'resync')) return;
    this.noteEpoch(r.epoch);
    this.opts.stats.resyncs++;
    this.opts.send({ type: 'RESYNC_REQUESTED', epoch: r.epoch });
  }

  /**
   * Asks the leader for the machine's full schedule (the machine's `requestFullSchedule`);
   * the answer comes back as FULL_SCHEDULE_RECEIVED or FULL_SCHEDULE_FAILED.
   */
  requestFull(fetchId: number): void {
    const { stats, log, machineId } = this.opts;
    stats.scheduleRequests++;
    const failed = (error: string, quiet = false) => {
      stats.scheduleRequestFailures++;
      log[quiet ? 'info' : 'warn']('full schedule request failed', { machine: machineId, error });
      this.opts.send({
        type: 'FULL_SCHEDULE_FAILED',
        fetchId,
        error,
        now: this.opts.clock.now(),
        jitter: this.opts.random(),
      });
    };
    // With leaderCheck the request goes to the leader's own subject, which only that engine may
    // read (so only it can answer), and its reply must be of the leader's epoch.
    const leader = this.current;
    if (this.opts.leaderCheck && leader === undefined) {
      stats.notFromLeader++;
      failed('no leader is known yet', true); // at start, and while an election runs
      return;
    }
    fetchFullSchedule({
      bus: this.opts.bus,
      subject:
        leader !== undefined && this.opts.leaderCheck
          ? this.opts.subj.scheduleGetOf(leader.machine, machineId)
          : this.opts.legacySubjects
            ? this.opts.subj.legacy.scheduleGet
            : this.opts.subj.scheduleGet(machineId),
      machineId,
      timeoutMs: this.opts.requestTimeoutMs,
    }).then(
      (schedule) => {
        // No stop without a decision of the current epoch (docs/protocol.md): the schedule of a
        // leader older than one already heard from (a deposed leader that has not noticed yet)
        // may lack units placed since; it is refused like a failed request, and asked again.
        const heard = Math.max(this.highestEpoch, this.opts.appliedEpoch());
        if (this.opts.leaderCheck && schedule.epoch !== leader?.epoch) {
          stats.notFromLeader++;
          failed(
            `full schedule of epoch ${schedule.epoch} from ${leader?.machine ?? '?'}, whose epoch is ${leader?.epoch ?? '?'}`,
          );
          return;
        }
        if (schedule.epoch < heard) {
          stats.staleSchedules++;
          failed(`full schedule of epoch ${schedule.epoch} is older than epoch ${heard}`);
          return;
        }
        this.noteEpoch(schedule.epoch);
        this.opts.send({ type: 'FULL_SCHEDULE_RECEIVED', fetchId, schedule });
      },
      (err: unknown) => {
        if (err instanceof ProtocolError) stats.malformed++;
        failed(isFlotillaError(err) ? `${err.code}: ${err.message}` : errMsg(err));
      },
    );
  }
}

export interface FetchFullScheduleOptions {
  bus: Bus;
  /** Where the request goes (the leader's own subject with `leaderCheck`). */
  subject: string;
  machineId: string;
  timeoutMs: number;
}

/**
 * The machine's whole schedule, in pages below the bus's largest message (a leader that
 * does not page answers with everything in the first reply). The pages together are the
 * schedule as of the first page's sequence number or later, unit by unit; the deltas the
 * agent applies after that number bring every unit up to date.
 */
export async function fetchFullSchedule(opts: FetchFullScheduleOptions): Promise<ScheduleFull> {
  let first: ScheduleFull | undefined;
  const units: ScheduledUnit[] = [];
  let after: string | undefined;
  for (let page = 0; ; page++) {
    const req: ScheduleRequest = { v: PROTOCOL_VERSION, machine: opts.machineId, paged: true };
    if (after !== undefined) req.after = after;
    const data = await opts.bus.request(opts.subject, encode(req), opts.timeoutMs);
    const part = decodeScheduleFull(data);
    first ??= part;
    if (part.epoch !== first.epoch)
      throw new FlotillaError(
        ErrorCode.InvalidState,
        `the leader changed while the full schedule was read (epoch ${first.epoch} → ${part.epoch})`,
        { retryable: true },
      );
    units.push(...part.units);
    if (part.next === undefined) break;
    if (part.units.length === 0 || (after !== undefined && part.next <= after))
      throw new FlotillaError(
        ErrorCode.InvalidState,
        `full schedule page ${page + 1} made no progress`,
        { retryable: true },
      );
    after = part.next;
  }
  const { next: _last, ...schedule } = first;
  return { ...schedule, units };
}
