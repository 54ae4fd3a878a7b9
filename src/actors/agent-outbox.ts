/**
 * What the agent sends the leader of its own accord: heartbeats every ttl/3 (jittered) and
 * state reports (batched by src/actors/agent-reporter.ts), on the machine's own subjects, or on
 * protocol v1's shared ones with `legacySubjects`.
 */
import type { Bus } from '../bus/types';
import { ErrorCode, isFlotillaError } from '../errors';
import {
  type Heartbeat,
  type StateReport,
  type Subjects,
  PROTOCOL_VERSION,
  encode,
} from '../protocol';
import type { Clock, Logger, TimerHandle } from '../runtime';
import type { AgentStats } from './agent-types';

export interface OutboxOptions {
  machineId: string;
  /** The machine's public IP, sent in heartbeats. */
  ip: string;
  bus: Bus;
  subj: Subjects;
  legacySubjects: boolean;
  /** The leader's TTL of this machine; heartbeats go every ttl/3, with jitter. */
  ttlMs: number;
  random: () => number;
  clock: Clock;
  log: Logger;
  stats: AgentStats;
  /** The machine's metadata, read at every heartbeat. */
  metadata(): Record<string, string>;
  /** The schedule position (epoch and seq of the last applied change). */
  position(): { epoch: number; seq: number };
}

export class Outbox {
  private heartbeatTimer: TimerHandle | undefined;

  constructor(private readonly opts: OutboxOptions) {}

  heartbeat(): void {
    const { epoch, seq } = this.opts.position();
    const hb: Heartbeat = {
      v: PROTOCOL_VERSION,
      machine: this.opts.machineId,
      ip: this.opts.ip,
      metadata: this.opts.metadata(),
      epoch,
      seq,
    };
    this.opts.stats.heartbeats++;
    this.opts.bus.publish(
      this.opts.legacySubjects
        ? this.opts.subj.legacy.heartbeat
        : this.opts.subj.heartbeat(this.opts.machineId),
      encode(hb),
    );
  }

  /** Heartbeats every ttl/3, shortened by up to 20 % of jitter so agents do not beat in step. */
  startHeartbeats(): void {
    const period = (this.opts.ttlMs / 3) * (0.8 + 0.2 * this.opts.random());
    this.heartbeatTimer = this.opts.clock.setTimeout(() => {
      this.heartbeat();
      this.startHeartbeats();
    }, period);
  }

  stopHeartbeats(): void {
    if (this.heartbeatTimer !== undefined) this.opts.clock.clearTimeout(this.heartbeatTimer);
  }

  /**
   * Sends a report, cut in two (recursively) while it is larger than the bus's largest message;
   * an incremental report can be split freely. A full report is one message by protocol: one
   * above NATS's max_payload is logged with what to do, and counted.
   */
  report(r: StateReport): void {
    const { bus, stats } = this.opts;
    const data = encode(r);
    const n = r.units.length + r.gone.length;
    if (data.length > bus.maxPayload && !r.full && n > 1) {
      const half = Math.ceil(r.units.length / 2);
      const halfGone = Math.ceil(r.gone.length / 2);
      this.report({ ...r, units: r.units.slice(0, half), gone: r.gone.slice(0, halfGone) });
      this.report({ ...r, units: r.units.slice(half), gone: r.gone.slice(halfGone) });
      return;
    }
    if (r.full) stats.fullReports++;
    else stats.reports++;
    try {
      bus.publish(
        this.opts.legacySubjects
          ? this.opts.subj.legacy.report
          : this.opts.subj.report(this.opts.machineId),
        data,
      );
    } catch (err) {
      if (!isFlotillaError(err, ErrorCode.PayloadTooLarge)) throw err;
      stats.oversizeMessages++;
      this.opts.log.error('report too large for the bus', { error: err.message });
    }
  }
}
