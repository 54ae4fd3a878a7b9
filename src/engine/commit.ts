import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import type { EventBody, FlotillaEvent } from '../events/types';
import { isDurable, SCHEMA_VERSION } from '../events/types';
import type { Term } from '../store/types';
import { takeBatch, type Queued } from './batching';
import { foldAll } from './fold';
import { decodeState } from './snapshot';
import type { ClusterState } from './state';
import { emptyState } from './state';
import type { AppendOptions, EngineContext } from './types';

interface Pending extends Queued {
  bodies: EventBody[];
  resolve: (lastIndex: number) => void;
  reject: (err: Error) => void;
}

/** What the commit pipeline asks of the engine. */
export interface CommitHooks {
  /**
   * Folds committed events (in commit order) and queues their effects. `stored`: the batch
   * went to the store (false: only its transient events, after the store refused the rest).
   */
  committed(events: FlotillaEvent[], stored: boolean): void;
  /** Whether a client's bulk write may be committed now (the effects backlog is below `max`). */
  admitBulk(max: number): boolean;
  /** Makes the durable state re-read after a failed write current. */
  recovered(fresh: ClusterState): void;
  stop(reason: string): void;
}

/** The durable state: the latest snapshot with the log's tail folded into it. */
export async function readDurable(
  term: Term,
): Promise<{ state: ClusterState; tail: FlotillaEvent[]; snapshotIndex?: number }> {
  const r = await term.restore();
  const state = r.snapshot ? decodeState(r.snapshot.data) : emptyState();
  foldAll(r.tail, state);
  return { state, tail: r.tail, snapshotIndex: r.snapshot?.index };
}

/**
 * The write path: every change is queued here, numbered, committed to the store in group
 * commits (events that arrive together go in one transaction; see batching.ts) and handed to
 * the engine once durable. A failed write makes the engine re-read the durable state before the
 * next one (recovery).
 */
export class CommitPipeline {
  private readonly queue: Pending[] = [];
  private committing = false;
  private nextIndex = 1;
  /** A write failed: memory may differ from the store until the durable state is re-read. */
  needsRecovery = false;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private recoveryDelay = 100;

  constructor(
    private readonly ctx: EngineContext,
    private readonly hooks: CommitHooks,
  ) {}

  /** Writes queued and not committed yet. */
  get queued(): number {
    return this.queue.length;
  }

  /** The next event's index is above every index of `state`. */
  follow(state: ClusterState): void {
    this.nextIndex = Math.max(this.nextIndex, state.index + 1);
  }

  /**
   * Commits events and resolves with the index of the last one once they are durable (durable
   * types) and folded. Rejects with STORE_UNAVAILABLE (retryable) or FENCED; a rejected write
   * was not acknowledged and is not in this leader's state.
   */
  append(bodies: EventBody[], opts: AppendOptions = {}): Promise<number> {
    if (this.ctx.stopped) {
      return Promise.reject(
        new FlotillaError(ErrorCode.NotLeader, 'this engine is no longer the leader', {
          retryable: true,
        }),
      );
    }
    if (bodies.length === 0) return Promise.resolve(this.ctx.state.index);
    return new Promise((resolve, reject) => {
      this.queue.push({
        bodies,
        resolve,
        reject,
        events: bodies.length,
        bulk: opts.bulk ?? false,
        skipped: 0,
      });
      void this.pump();
    });
  }

  async pump(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      while (this.queue.length > 0 && !this.ctx.stopped) {
        if (this.needsRecovery) {
          await this.recover();
          if (this.needsRecovery) break;
        }
        const max = this.ctx.opts.maxBatchEvents ?? 1000;
        const batch = takeBatch(this.queue, max, { admitBulk: this.hooks.admitBulk(max) });
        // Only held-back bulk writes left: the effects pump again once the backlog is down.
        if (batch.length === 0) break;
        await this.commit(batch);
      }
    } finally {
      this.committing = false;
    }
    if (this.queue.some((p) => !p.bulk) && !this.ctx.stopped && !this.needsRecovery)
      void this.pump();
  }

  private async commit(batch: Pending[]): Promise<void> {
    const { ctx } = this;
    const time = ctx.clock();
    const events: FlotillaEvent[] = [];
    const lastOf: number[] = [];
    for (const p of batch) {
      for (const b of p.bodies) {
        events.push({
          ...b,
          index: this.nextIndex++,
          epoch: ctx.epoch,
          time,
          v: SCHEMA_VERSION,
        } as FlotillaEvent);
      }
      lastOf.push(this.nextIndex - 1);
    }
    const durable = events.filter((e) => isDurable(e));
    if (durable.length > 0) {
      try {
        await ctx.opts.term.append(durable);
      } catch (err) {
        ctx.stats.appendFailures++;
        const e = toStoreError(err);
        ctx.log.warn('append failed', { code: e.code, events: durable.length, error: e.message });
        // Transient events do not need the store: fold them anyway, keep their order.
        const transient = events.filter((ev) => !isDurable(ev));
        if (transient.length > 0) this.hooks.committed(transient, false);
        for (const p of batch) {
          if (p.bodies.some((b) => isDurable(b))) p.reject(e);
          else p.resolve(ctx.state.index);
        }
        if (e.code === ErrorCode.Fenced) {
          this.hooks.stop('fenced: another leader holds the election key');
        } else {
          // The write may or may not have landed: reload the durable state before the next one.
          this.needsRecovery = true;
          this.scheduleRecovery();
        }
        return;
      }
    }
    ctx.stats.commits++;
    ctx.stats.eventsCommitted += events.length;
    this.hooks.committed(events, true);
    batch.forEach((p, i) => p.resolve(lastOf[i]));
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.ctx.stopped) return;
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      void (async () => {
        if (this.committing) return this.scheduleRecovery();
        this.committing = true;
        try {
          await this.recover();
        } finally {
          this.committing = false;
        }
        if (this.needsRecovery) this.scheduleRecovery();
        else void this.pump();
      })();
    }, this.recoveryDelay);
    this.recoveryDelay = Math.min(this.recoveryDelay * 2, 2000);
  }

  /**
   * After a failed write: re-read the durable state so memory equals the store again, keep the
   * transient knowledge (machines, reported states) and carry on. Queued writes are refused while
   * the store is unreachable; reads keep being served from memory.
   */
  private async recover(): Promise<void> {
    const { ctx } = this;
    let restored;
    try {
      restored = await readDurable(ctx.opts.term);
    } catch (err) {
      const e = toStoreError(err);
      this.rejectAll(e);
      if (e.code === ErrorCode.Fenced) this.hooks.stop('fenced during recovery');
      return;
    }
    const fresh = restored.state;
    if (restored.snapshotIndex !== undefined) ctx.stats.lastSnapshotIndex = restored.snapshotIndex;
    const old = ctx.state;
    for (const [id, m] of old.machines) {
      const f = fresh.machines.get(id);
      fresh.machines.set(id, { ...m, overrides: f ? f.overrides : m.overrides });
    }
    fresh.reported = old.reported;
    fresh.index = Math.max(fresh.index, old.index);
    this.needsRecovery = false;
    this.recoveryDelay = 100;
    this.hooks.recovered(fresh);
  }

  /** Refuses every queued write (the engine stopped, or the store cannot be read). */
  rejectAll(err: Error): void {
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  /** Stops the recovery timer (the engine stopped). */
  stop(): void {
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
  }
}

function toStoreError(err: unknown): FlotillaError {
  if (isFlotillaError(err)) return err;
  return new FlotillaError(
    ErrorCode.StoreUnavailable,
    `store write failed: ${(err as Error).message}`,
    { cause: err, retryable: true },
  );
}
