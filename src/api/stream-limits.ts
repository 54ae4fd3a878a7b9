/**
 * Bounds on the server streams (Watch, a followed journal) open at once. A stream holds memory
 * and, for a Watch catching up from the store, reads: a caller that opens streams and never
 * reads them must not exhaust the daemon. Each caller (its certificate, or "no certificate" on
 * the unix socket and loopback) may hold `perCaller` streams, and the server `total`.
 *
 * A daemon that forwards its local users' streams to the leader (role agent or operator, with
 * the forwarded-by header) counts per machine it forwards for; a read-only caller cannot widen
 * its share by sending that header.
 */
import { ErrorCode, FlotillaError } from '../errors';
import type { CallContext } from './access';

export interface StreamLimitOptions {
  /** Streams one caller may hold open (default 256). */
  perCaller?: number;
  /** Streams the server holds open in all (default 4096). */
  total?: number;
}

export const DEFAULT_STREAMS_PER_CALLER = 256;
export const DEFAULT_STREAMS_TOTAL = 4096;

export class StreamLimits {
  private readonly open = new Map<string, number>();
  private count = 0;
  private readonly perCaller: number;
  private readonly total: number;

  constructor(opts: StreamLimitOptions = {}) {
    this.perCaller = opts.perCaller ?? DEFAULT_STREAMS_PER_CALLER;
    this.total = opts.total ?? DEFAULT_STREAMS_TOTAL;
  }

  /** Streams open now. */
  get size(): number {
    return this.count;
  }

  /**
   * Takes a slot for a stream of `ctx`; returns its release (call it once, when the stream
   * ends). RESOURCE_EXHAUSTED (retryable) when the caller or the server is at its bound.
   */
  acquire(ctx: CallContext, method: string): () => void {
    const key = keyOf(ctx);
    const mine = this.open.get(key) ?? 0;
    const refuse = (message: string): never => {
      throw new FlotillaError(ErrorCode.ResourceExhausted, message, {
        retryable: true,
        details: { method },
      });
    };
    if (mine >= this.perCaller)
      refuse(
        `${method}: ${key} already has ${mine} streams open, the most one caller may; close some (events -f, journal -f) and try again`,
      );
    if (this.count >= this.total)
      refuse(
        `${method}: this daemon already serves ${this.count} streams, its most; try again later`,
      );
    this.open.set(key, mine + 1);
    this.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
      const n = (this.open.get(key) ?? 1) - 1;
      if (n <= 0) this.open.delete(key);
      else this.open.set(key, n);
    };
  }
}

function keyOf(ctx: CallContext): string {
  if (ctx.forwardedBy !== undefined && ctx.role !== 'read-only')
    return `${ctx.who} (for machine ${ctx.forwardedBy.slice(0, 64)})`;
  return ctx.who;
}
