import { ErrorCode, FlotillaError } from '../../errors';

interface Waiter {
  resolve: (result: string) => void;
  reject: (err: Error) => void;
}

/**
 * Matches systemd jobs (StartUnit/StopUnit reply with a job path) to their JobRemoved signal.
 *
 * systemd replies to StartUnit before the job runs, so JobRemoved normally arrives after the
 * reply. As a safety net, while a batch is being applied (`capture`), results of jobs nobody
 * waits for yet are kept until the batch ends, so a job that finished before its reply was
 * processed is not waited for forever.
 */
export class JobWaiter {
  private readonly waiters = new Map<string, Waiter>();
  private readonly finished = new Map<string, string>();
  private capturing = 0;

  /** Resolves with the job's result: "done", "canceled", "timeout", "failed", "dependency", "skipped". */
  wait(job: string): Promise<string> {
    const early = this.finished.get(job);
    if (early !== undefined) {
      this.finished.delete(job);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => this.waiters.set(job, { resolve, reject }));
  }

  /** A JobRemoved signal; true if somebody was waiting for it or it was kept. */
  settle(job: string, result: string): boolean {
    const w = this.waiters.get(job);
    if (w) {
      this.waiters.delete(job);
      w.resolve(result);
      return true;
    }
    if (this.capturing > 0) {
      this.finished.set(job, result);
      return true;
    }
    return false;
  }

  isWaiting(job: string): boolean {
    return this.waiters.has(job);
  }

  get capturingResults(): boolean {
    return this.capturing > 0;
  }

  /** Runs `fn` with early results kept; they are dropped when the last capture ends. */
  async capture<T>(fn: () => Promise<T>): Promise<T> {
    this.capturing++;
    try {
      return await fn();
    } finally {
      if (--this.capturing === 0) this.finished.clear();
    }
  }

  /** Rejects every waiter (the connection is gone: no JobRemoved will ever come). */
  failAll(cause: Error): void {
    for (const [job, w] of this.waiters) {
      w.reject(
        new FlotillaError(ErrorCode.DriverFailed, `job ${job}: ${cause.message}`, {
          cause,
          retryable: true,
        }),
      );
    }
    this.waiters.clear();
  }
}
