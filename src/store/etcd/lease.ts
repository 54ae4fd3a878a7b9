/**
 * The leader's lease, kept alive by this store rather than by etcd3's Lease class, because the
 * term must know *when the lease may have expired*, not just when etcd said so:
 *
 * - etcd3's Lease reports "lost" only 2 × TTL after the last keepalive; by then another
 *   candidate may have led for a whole TTL.
 * - Here, every keepalive records when it was *sent*; the server renews at or after that
 *   moment, so `sentAt + TTL` is a lower bound of the server-side expiry. The term declares
 *   itself lost at that bound minus a margin, before any rival can win.
 * - etcd3's keepalive loop also stops for good after an error; this one retries every
 *   `retryMs` until the bound passes.
 */
import type { Etcd3 } from 'etcd3';
import { castGrpcError } from 'etcd3';

export interface TermLeaseOptions {
  ttlSeconds: number;
  callTimeoutMs: number;
}

export class TermLease {
  /** performance.now() bound before which the lease cannot have expired in etcd. */
  private validUntil: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lostHandler: ((reason: string) => void) | undefined;
  private readonly ttlMs: number;
  private readonly marginMs: number;

  constructor(
    private readonly client: Etcd3,
    readonly id: string,
    private readonly opts: TermLeaseOptions,
    /** performance.now() when the grant request was sent. */
    grantSentAt: number,
  ) {
    this.ttlMs = opts.ttlSeconds * 1000;
    this.marginMs = Math.min(1000, this.ttlMs / 5);
    this.validUntil = grantSentAt + this.ttlMs;
  }

  /** Starts keepalives; `onLost` runs once when the lease is, or may be, gone. */
  start(onLost: (reason: string) => void): void {
    this.lostHandler = onLost;
    this.schedule(this.ttlMs / 3);
  }

  /** Milliseconds the lease is certainly still valid for (may be negative). */
  remainingMs(): number {
    return this.validUntil - this.marginMs - performance.now();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Revokes the lease (deleting the leader key with it). One attempt, bounded by the deadline. */
  async revoke(): Promise<void> {
    this.stop();
    try {
      await this.client.leaseClient.leaseRevoke(
        { ID: this.id },
        { deadline: Date.now() + this.opts.callTimeoutMs },
      );
    } catch (err) {
      // Already gone is what we wanted.
      if (/lease not found/i.test((err as Error).message)) return;
      throw err;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, ms));
  }

  private lose(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.lostHandler?.(reason);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    if (this.remainingMs() <= 0) {
      return this.lose(
        `no lease keepalive for ${Math.round(this.ttlMs)} ms: the lease may have expired`,
      );
    }
    const sentAt = performance.now();
    try {
      // A keepalive stuck on a member without a raft leader is abandoned after a quarter of
      // the TTL and retried (possibly on another member), rather than eating the whole budget.
      const ttl = await this.keepaliveOnce(
        Math.min(this.opts.callTimeoutMs, this.ttlMs / 4, Math.max(1, this.remainingMs())),
      );
      if (this.stopped) return;
      if (ttl <= 0) return this.lose('the lease expired in etcd');
      this.validUntil = Math.max(this.validUntil, sentAt + ttl * 1000);
      this.schedule(this.ttlMs / 3);
    } catch {
      if (this.stopped) return;
      // Retry soon, but never sleep past the moment the lease may expire.
      this.schedule(Math.min(100, Math.max(0, this.remainingMs())));
    }
  }

  /** One keepalive round trip on a fresh stream; resolves with the TTL etcd granted. */
  private async keepaliveOnce(timeoutMs: number): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive({
      deadline: Date.now() + Math.max(1, timeoutMs),
    });
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const finish = (cancel: boolean): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        try {
          if (cancel) stream.cancel();
          else stream.end();
        } catch {
          // the stream may already be closed
        }
        return true;
      };
      const timer = setTimeout(() => {
        if (finish(true)) reject(new Error('lease keepalive timed out'));
      }, timeoutMs);
      stream.on('data', (res) => {
        if (finish(false)) resolve(Number(res.TTL));
      });
      stream.on('error', (err) => {
        if (finish(true)) reject(castGrpcError(err));
      });
      stream.write({ ID: this.id });
    });
  }
}
