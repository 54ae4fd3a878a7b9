/**
 * Collects the driver ops unit actors request during one tick and applies them as one batch
 * (`driver.apply`), so a schedule change touching 1,000 units costs one daemon-reload, not 1,000.
 * Batches never overlap: ops requested while a batch is in flight go into the next one.
 * Results go back to the unit actors through `deliver`.
 */
import type { DriverOp, DriverOpResult } from '../drivers/driver';

export interface OpBatcherOptions {
  apply(ops: DriverOp[]): Promise<DriverOpResult[]>;
  deliver(results: DriverOpResult[]): void;
  /** Defers a flush to the end of the current tick (default: setImmediate). */
  defer?: (fn: () => void) => void;
}

export class OpBatcher {
  private queue: DriverOp[] = [];
  private running = false;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly defer: (fn: () => void) => void;

  constructor(private readonly opts: OpBatcherOptions) {
    this.defer = opts.defer ?? ((fn) => setImmediate(fn));
  }

  /** Queues one op for the next batch. */
  push(op: DriverOp): void {
    if (this.closed) return;
    this.queue.push(op);
    this.schedule();
  }

  get pendingOps(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return !this.running && !this.scheduled && this.queue.length === 0;
  }

  /** Resolves once nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops taking ops; waits for the batch in flight. Queued ops are dropped (units stay as they are). */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    if (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.wakeIdle();
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.queue.length === 0 || this.closed) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || this.queue.length === 0 || this.closed) {
      this.wakeIdle();
      return;
    }
    this.running = true;
    const ops = this.queue;
    this.queue = [];
    let results: DriverOpResult[];
    try {
      results = await this.opts.apply(ops);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      results = ops.map((op) => ({ op, ok: false, error }));
    }
    this.running = false;
    if (!this.closed) this.opts.deliver(results);
    this.schedule();
    this.wakeIdle();
  }

  private wakeIdle(): void {
    if (!this.idle && !this.closed) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}
