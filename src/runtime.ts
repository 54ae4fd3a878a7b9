/**
 * Time and logging as injected dependencies of the agent and its drivers. Machines never read
 * the clock: actors read it here and pass the time inside events, so tests can drive time with
 * a manual clock and a transition is a pure function of (snapshot, event).
 */
import { silentLogger, type LogSink } from './log';

export type TimerHandle = unknown;

/** Wall-clock time and timers. The default is the real clock; tests pass a manual one
 * (test/helpers/manual-clock.ts). */
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

/** The agent and drivers write to any log sink (the daemon's logger is one). */
export type Logger = LogSink;
export { silentLogger };
