/**
 * Time and logging as injected dependencies of the agent and its drivers. Machines never read
 * the clock: actors read it here and pass the time inside events, so tests can drive time with
 * a manual clock and a transition is a pure function of (snapshot, event).
 */
import { silentLogger, type LogSink } from './log';

export type TimerHandle = unknown;

/** Wall-clock time and timers. The default is the real clock; tests pass `ManualClock`. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending heartbeat or retry must never keep a process alive on its own.
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface ManualTimer {
  at: number;
  fn: () => void;
  seq: number;
}

/**
 * A clock that only moves when told to (`advance`), for deterministic tests of heartbeats,
 * retries and report batching. Timers fire in deadline order, ties in creation order.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, ManualTimer>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, seq: id });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** Number of timers waiting. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      let nextId = 0;
      for (const [id, tm] of this.timers) {
        if (tm.at > end) continue;
        if (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq)) {
          next = tm;
          nextId = id;
        }
      }
      if (!next) break;
      this.timers.delete(nextId);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
}

/** The agent and drivers write to any log sink (the daemon's logger is one). */
export type Logger = LogSink;
export { silentLogger };

/** A logger that keeps every line in memory (tests assert on what was logged). */
export class MemoryLogger implements Logger {
  readonly lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'debug', msg, fields });
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', msg, fields });
  }
}

/**
 * Exponential backoff: `base · 2^(attempt-1)`, capped at `max`, stretched by `jitter` ∈ [0,1)
 * up to +25 %. Pure: the caller supplies the jitter (random in actors, fixed in tests).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  jitter: number,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.round(exp * (1 + 0.25 * Math.min(Math.max(jitter, 0), 0.999)));
}

/** A stable fraction in [0,1) from a string (FNV-1a), so a unit's jitter is deterministic. */
export function stableFraction(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}
