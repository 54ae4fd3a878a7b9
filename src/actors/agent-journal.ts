/**
 * `journal --follow` on the agent side (protocol: AgentRpcRequest `follow`/`inbox`). The agent
 * has already answered the request (an empty reply); it then streams the unit's last `lines`
 * lines and every new one as JournalLines on the requester's private `inbox`, until a message on
 * `<inbox>.stop`, or until no keep-alive on `<inbox>.alive` for `idleMs` (the requester went
 * away without saying so), or until the agent drains. Lines read in the same tick travel in one
 * message; every chunk ends with a newline. A follow the agent ends by itself (draining, the
 * journal failed) ends with a message marked `end`, so that the requester does not wait on.
 */
import type { Driver } from '../drivers/driver';
import type { Clock, Logger, TimerHandle } from '../runtime';
import type { Bus, Subscription } from '../bus/types';
import { type JournalLines, PROTOCOL_VERSION, encode } from '../protocol';

export interface JournalFollowOptions {
  bus: Bus;
  driver: Driver;
  clock: Clock;
  log: Logger;
  unit: string;
  lines: number;
  inbox: string;
  idleMs: number;
}

export interface JournalFollow {
  /** Stops following (idempotent). */
  stop(): void;
  /** Resolves when the stream has ended and everything is unsubscribed. */
  readonly done: Promise<void>;
}

export function followJournal(o: JournalFollowOptions): JournalFollow {
  const ac = new AbortController();
  const subs: Subscription[] = [];
  let idle: TimerHandle | undefined;
  let buffer: string[] = [];
  let flushScheduled = false;

  const flush = () => {
    flushScheduled = false;
    if (buffer.length === 0) return;
    const text = buffer.map((l) => `${l}\n`).join('');
    buffer = [];
    // A burst of output goes in several messages below the bus's largest one.
    const max = Math.max(1024, Math.floor(o.bus.maxPayload / 8));
    for (let at = 0; at < text.length; at += max) {
      const msg: JournalLines = { v: PROTOCOL_VERSION, text: text.slice(at, at + max) };
      o.bus.publish(o.inbox, encode(msg));
    }
  };
  /** Ended by the requester (`<inbox>.stop`) or its silence: it needs no last word. */
  let requesterGone = false;
  const stop = () => {
    if (ac.signal.aborted) return;
    ac.abort();
  };
  const armIdle = () => {
    if (idle !== undefined) o.clock.clearTimeout(idle);
    idle = o.clock.setTimeout(() => {
      o.log.info('journal follow: requester silent, stopping', { unit: o.unit });
      requesterGone = true;
      stop();
    }, o.idleMs);
  };

  subs.push(
    o.bus.subscribe(`${o.inbox}.stop`, () => {
      requesterGone = true;
      stop();
    }),
    o.bus.subscribe(`${o.inbox}.alive`, () => armIdle()),
  );
  armIdle();

  const done = (async () => {
    try {
      for await (const line of o.driver.journal(o.unit, o.lines, true, ac.signal)) {
        if (ac.signal.aborted) break;
        buffer.push(line);
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      }
    } catch (err) {
      buffer.push(
        `-- journal of ${o.unit} stopped: ${err instanceof Error ? err.message : String(err)}`,
      );
      o.log.warn('journal follow failed', { unit: o.unit, error: String(err) });
    } finally {
      flush();
      if (!requesterGone) {
        // Draining, or the journal ended: say so, or the requester would wait for more.
        const last: JournalLines = { v: PROTOCOL_VERSION, text: '', end: true };
        o.bus.publish(o.inbox, encode(last));
      }
      if (idle !== undefined) o.clock.clearTimeout(idle);
      for (const s of subs) s.unsubscribe();
      stop();
    }
  })();
  return { stop, done };
}
