import { ErrorCode, FlotillaError } from '../errors';
import type { Bus, BusMessage, Subscription } from './types';
import { checkPayload } from './types';

/** Matches a NATS-style subject pattern (`*` one token, `>` the rest) against a subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

interface Sub {
  pattern: string;
  handler: (msg: BusMessage) => void;
}

/**
 * An in-process bus with NATS semantics (subjects, wildcards, request/reply, fire-and-forget),
 * for dev mode and fast tests. Several `LocalBus` handles on one `LocalHub` behave like several
 * connections to one server. Delivery is asynchronous (a microtask later), as on a real bus.
 */
export class LocalHub {
  /** `maxPayload`: the largest message, as a NATS server's `max_payload` (default: no limit). */
  constructor(readonly maxPayload = Infinity) {}

  private subs = new Set<Sub>();
  private exact = new Map<string, Set<Sub>>();
  private wild = new Set<Sub>();

  add(sub: Sub): void {
    this.subs.add(sub);
    if (sub.pattern.includes('*') || sub.pattern.includes('>')) this.wild.add(sub);
    else {
      let set = this.exact.get(sub.pattern);
      if (!set) this.exact.set(sub.pattern, (set = new Set()));
      set.add(sub);
    }
  }

  remove(sub: Sub): void {
    this.subs.delete(sub);
    this.wild.delete(sub);
    this.exact.get(sub.pattern)?.delete(sub);
  }

  deliver(msg: BusMessage): number {
    const targets: Sub[] = [...(this.exact.get(msg.subject) ?? [])];
    for (const s of this.wild) if (subjectMatches(s.pattern, msg.subject)) targets.push(s);
    for (const t of targets) {
      queueMicrotask(() => {
        if (this.subs.has(t)) t.handler(msg);
      });
    }
    return targets.length;
  }

  connect(): LocalBus {
    return new LocalBus(this);
  }
}

export class LocalBus implements Bus {
  private mine = new Set<Sub>();
  private closed = false;

  constructor(private readonly hub: LocalHub) {}

  get maxPayload(): number {
    return this.hub.maxPayload;
  }

  publish(subject: string, data: Uint8Array): void {
    checkPayload(subject, data, this.maxPayload);
    if (this.closed) return;
    this.hub.deliver({ subject, data });
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription {
    const sub: Sub = { pattern: subject, handler };
    this.mine.add(sub);
    this.hub.add(sub);
    return {
      unsubscribe: () => {
        this.mine.delete(sub);
        this.hub.remove(sub);
      },
    };
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        reject(
          new FlotillaError(ErrorCode.Timeout, `no reply on ${subject} within ${timeoutMs} ms`, {
            retryable: true,
          }),
        );
      }, timeoutMs);
      checkPayload(subject, data, this.maxPayload);
      const n = this.hub.deliver({
        subject,
        data,
        respond: (reply) => {
          checkPayload(`${subject} (reply)`, reply, this.maxPayload);
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(reply);
        },
      });
      if (n === 0) {
        done = true;
        clearTimeout(timer);
        reject(
          new FlotillaError(ErrorCode.Unavailable, `no responders on ${subject}`, {
            retryable: true,
          }),
        );
      }
    });
  }

  async flush(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }

  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void {
    queueMicrotask(() => listener('connected'));
    return () => undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.mine) this.hub.remove(s);
    this.mine.clear();
  }
}
