/**
 * The agent's answers on `agent.<machine>.rpc`: a unit's status, its journal, and `journal
 * --follow` streams on the requester's inbox (src/actors/agent-journal.ts). With `leaderCheck`
 * only the leader of the current epoch is answered; another sender gets no reply at all.
 */
import type { Bus } from '../bus/types';
import type { Driver } from '../drivers/driver';
import type { Clock, Logger } from '../runtime';
import {
  type AgentRpcReply,
  JOURNAL_FOLLOW_IDLE_MS,
  PROTOCOL_VERSION,
  decodeAgentRpcRequest,
  encode,
} from '../protocol';
import { type JournalFollow, followJournal } from './agent-journal';
import { type AgentStats, errMsg } from './agent-types';

export interface AgentRpcOptions {
  machineId: string;
  bus: Bus;
  driver: Driver;
  clock: Clock;
  log: Logger;
  stats: AgentStats;
  /** The leader check of the schedule intake (true without `leaderCheck`). */
  fromLeader(subject: string, epoch: number, what: string): boolean;
  /** Whether the agent is draining (no new follow is started then). */
  draining(): boolean;
}

/** At most 10,000 lines per request, whatever is asked. */
export const clampLines = (n: number): number => Math.max(0, Math.min(10_000, Math.floor(n)));

export class AgentRpc {
  /** `journal --follow` streams in progress (stopped on drain). */
  private readonly follows = new Set<JournalFollow>();

  constructor(private readonly opts: AgentRpcOptions) {}

  /**
   * One request. A malformed one is answered with its error, then the ProtocolError is
   * rethrown for the caller to count.
   */
  handle(data: Uint8Array, respond: ((d: Uint8Array) => void) | undefined, subject: string): void {
    const reply = (r: Omit<AgentRpcReply, 'v'>) =>
      respond?.(encode({ v: PROTOCOL_VERSION, ...r } satisfies AgentRpcReply));
    let req;
    try {
      req = decodeAgentRpcRequest(data);
    } catch (err) {
      reply({ ok: false, text: '', error: errMsg(err) });
      throw err;
    }
    // Another engine's request gets no answer: a unit's status and journal are the leader's to
    // ask for (an old engine's request has no epoch and is refused as well).
    if (!this.opts.fromLeader(subject, req.epoch ?? -1, `${req.kind} request`)) return;
    this.opts.stats.rpcRequests++;
    const { driver } = this.opts;
    if (req.kind === 'journal' && req.follow === true && req.inbox !== undefined) {
      if (this.opts.draining()) {
        reply({ ok: false, text: '', error: `agent ${this.opts.machineId} is shutting down` });
        return;
      }
      // Answer at once; the lines follow on the requester's inbox.
      reply({ ok: true, text: '' });
      const f = followJournal({
        bus: this.opts.bus,
        driver,
        clock: this.opts.clock,
        log: this.opts.log,
        unit: req.unit,
        lines: clampLines(req.lines),
        inbox: req.inbox,
        idleMs: JOURNAL_FOLLOW_IDLE_MS,
      });
      this.follows.add(f);
      void f.done.then(() => this.follows.delete(f));
      return;
    }
    const run = async (): Promise<string> => {
      if (req.kind === 'status') return driver.status(req.unit);
      const lines: string[] = [];
      for await (const l of driver.journal(req.unit, clampLines(req.lines), false)) lines.push(l);
      return lines.join('\n');
    };
    run().then(
      (text) => reply({ ok: true, text }),
      (err: unknown) => reply({ ok: false, text: '', error: errMsg(err) }),
    );
  }

  /** Stops every follow stream and resolves once they have ended. */
  async stop(): Promise<void> {
    for (const f of this.follows) f.stop();
    await Promise.all([...this.follows].map((f) => f.done));
  }
}
