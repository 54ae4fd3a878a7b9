/**
 * One leadership term on etcd.
 *
 * Fencing: every write is a txn whose first compare is
 *     mod_revision(/leader) == fenceRevision
 * where fenceRevision starts as the revision of the winning campaign txn. The leader key is
 * attached to the term's lease, so a lost lease, a deleted key or a rival's key all fail the
 * compare; the txn then writes nothing, the term is marked lost and the caller gets FENCED.
 *
 * Ambiguous failures: a write that fails with STORE_UNAVAILABLE may still land later (a
 * timed-out request can sit in a member's queue). Before the next operation the term *settles*:
 * it re-puts its own leader key (compare create_revision == the term's, same value, same lease),
 * which moves the key's mod revision. Any older write still in flight compares the old revision
 * and can no longer land, so what restore() reads afterwards is final.
 *
 * Appends run one at a time in call order. The first txn of every append also deletes every log
 * key after the ones it writes: leftovers of a failed multi-txn append (or of a failed append
 * retried with other indexes) disappear in the same atomic step.
 */
import type { IRequestOp, ICompare, ITxnResponse } from 'etcd3';
import { ErrorCode } from '../../errors';
import type { FlotillaEvent } from '../../events/types';
import { assertAppendable, fencedError, LostSignal } from '../common';
import type { LeaderInfo, Restored, Snapshot, SnapshotStats, Term } from '../types';
import { encodeBatch, lastIndexIn, packTxns } from './batch';
import { toStoreError } from './client';
import type { TermLease } from './lease';
import type { LeaderState, LeaderWatch } from './leader-watch';
import { MAX_TXN_OPS, type ResolvedEtcdOptions } from './options';
import { rangePages, readState, type ReadContext } from './reader';
import { RwLock } from './rwlock';
import { chunkSnapshot, parseManifest } from './snapshot';

/** What a term needs from the store that created it. */
export interface TermHost {
  ctx: ReadContext;
  opts: ResolvedEtcdOptions;
  watch: LeaderWatch;
  /** Called when the term ends (lost or resigned): forget it, revoke its lease in the background. */
  ended(term: EtcdTerm, lease: TermLease, revoke: boolean): void;
}

export class EtcdTerm implements Term {
  private readonly signal = new LostSignal();
  private fenceRevision: string;
  private unsettled = false;
  private lastIndex: number | undefined;
  private appendChain: Promise<unknown> = Promise.resolve();
  private snapshotChain: Promise<unknown> = Promise.resolve();
  private readonly lock = new RwLock();
  private snapshotSeq = 0;
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly host: TermHost,
    private readonly lease: TermLease,
    readonly info: LeaderInfo,
    /** Revision of the winning campaign txn: the leader key's create revision. */
    readonly createRevision: string,
  ) {
    this.fenceRevision = createRevision;
  }

  get epoch(): number {
    return this.info.epoch;
  }

  get lost(): boolean {
    return this.signal.lost;
  }

  remainingMs(): number {
    return this.signal.lost ? 0 : this.lease.remainingMs();
  }

  get leaseId(): string {
    return this.lease.id;
  }

  onLost(listener: (reason: string) => void): () => void {
    return this.signal.on(listener);
  }

  /** Starts the lease keepalive and the watch on the leader key. */
  start(): void {
    this.lease.start((reason) => this.lose(reason));
    const created = Number(this.createRevision);
    this.unwatch = this.host.watch.subscribe((s: LeaderState) => {
      if (s.revision <= created || s.createRevision === created) return;
      this.lose(
        s.info
          ? `${s.info.machine} leads with epoch ${s.info.epoch}`
          : 'the leader key was deleted (lease revoked or expired, or removed by hand)',
      );
    });
  }

  restore(): Promise<Restored> {
    return this.op('restore', async () => {
      const res = await this.txn('restore', [
        { request_range: { key: this.host.ctx.keys.manifest } },
      ]);
      const manifestKv = res.responses[0].response_range.kvs[0];
      const r = await readState(this.host.ctx, manifestKv, res.header.revision, false);
      const last = r.tail.length > 0 ? r.tail[r.tail.length - 1].index : (r.snapshot?.index ?? 0);
      this.lastIndex = Math.max(this.lastIndex ?? 0, last);
      return r;
    });
  }

  append(events: FlotillaEvent[]): Promise<void> {
    return this.serial('append', async () => {
      this.checkLive();
      if (this.lastIndex === undefined) this.lastIndex = await this.readLastIndex();
      assertAppendable(events, this.lastIndex);
      if (events.length === 0) return;
      const { keys } = this.host.ctx;
      const { snapshotChunkBytes, maxTxnBytes, maxAppendBytes } = this.host.opts;
      const pieces = encodeBatch(keys, events, snapshotChunkBytes, maxAppendBytes);
      const txns = packTxns(pieces, maxTxnBytes, MAX_TXN_OPS - 1);
      await this.op('append', async () => {
        for (let i = 0; i < txns.length; i++) {
          const ops: IRequestOp[] = txns[i].map((p) => ({
            request_put: { key: p.key, value: p.value },
          }));
          if (i === 0) {
            // etcd refuses a txn whose delete range overlaps its own puts: delete from just
            // after the last key this txn puts (the puts overwrite anything at their keys).
            const lastKey = txns[0][txns[0].length - 1].key;
            ops.push({
              request_delete_range: {
                key: Buffer.concat([lastKey, Buffer.from([0])]),
                range_end: keys.logEnd,
              },
            });
          }
          await this.txn('append', ops, true);
        }
      });
      this.lastIndex = events[events.length - 1].index;
    });
  }

  writeSnapshot(snapshot: Snapshot): Promise<SnapshotStats> {
    return this.snapshotSerial(() => this.writeSnapshotInner(snapshot, true));
  }

  /**
   * Writes the chunks of `snapshot` but not its manifest: what a leader dying in between leaves
   * behind. For tests of manifest-last; writeSnapshot() is this plus the manifest.
   */
  writeSnapshotChunks(snapshot: Snapshot): Promise<SnapshotStats> {
    return this.snapshotSerial(() => this.writeSnapshotInner(snapshot, false));
  }

  compact(throughIndex: number): Promise<void> {
    return this.snapshotSerial(() =>
      this.op('compact', async () => {
        const { keys } = this.host.ctx;
        const res = await this.txn('compact', [{ request_range: { key: keys.manifest } }]);
        const manifestKv = res.responses[0].response_range.kvs[0];
        if (!manifestKv) return;
        const revision = res.header.revision;
        const manifest = parseManifest(keys, manifestKv.value);
        const limit = Math.min(throughIndex, manifest.index);
        const ops: IRequestOp[] = [];
        if (limit > 0) {
          const through = await this.lastBatchEndingBy(limit, revision);
          if (through !== undefined) {
            ops.push({
              request_delete_range: { key: keys.logPrefix, range_end: keys.log(through + 1) },
            });
          }
        }
        // Chunk sets sort by snapshot index: every set before the current one is garbage.
        ops.push({
          request_delete_range: {
            key: keys.snapshotPrefix,
            range_end: keys.chunkSetStart(manifest.set),
          },
        });
        // Only if the manifest is still the one we planned against.
        await this.txn('compact', ops, true, [
          {
            key: keys.manifest,
            target: 'Mod',
            result: 'Equal',
            mod_revision: manifestKv.mod_revision,
          },
        ]);
      }),
    );
  }

  async resign(): Promise<void> {
    if (this.signal.ended) return;
    this.signal.end();
    this.finish(true);
  }

  /** Ends the term as lost (fires onLost once). */
  lose(reason: string): void {
    if (this.signal.ended) return;
    this.signal.fire(reason);
    this.finish(true);
  }

  // ---------------------------------------------------------------------------------------

  private finish(revoke: boolean): void {
    this.lease.stop();
    this.unwatch?.();
    this.unwatch = undefined;
    this.host.ended(this, this.lease, revoke);
  }

  private checkLive(): void {
    if (this.signal.ended) {
      throw fencedError(this.epoch, this.signal.reason ?? 'the term was resigned');
    }
    if (this.lease.remainingMs() <= 0) {
      this.lose('no lease keepalive within the TTL: the lease may have expired');
      throw fencedError(this.epoch, this.signal.reason!);
    }
  }

  /** Runs one operation: live check, settle if a write was ambiguous, then under the lock. */
  private async op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.checkLive();
    try {
      if (this.unsettled) await this.lock.exclusive(() => this.settle());
      return await this.lock.shared(async () => {
        this.checkLive();
        return fn();
      });
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  private serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = this.appendChain.then(fn);
    // Only the order is chained: the caller gets `run`'s error itself.
    this.appendChain = run.catch(() => undefined);
    return run;
  }

  private snapshotSerial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.snapshotChain.then(fn);
    this.snapshotChain = run.catch(() => undefined);
    return run;
  }

  /**
   * A fenced txn. `write`: a failure to reach etcd leaves the term unsettled. `extra` compares
   * are the caller's own: when only they fail, the response is returned (succeeded false).
   */
  private async txn(
    what: string,
    ops: IRequestOp[],
    write = false,
    extra: ICompare[] = [],
  ): Promise<ITxnResponse> {
    const { keys } = this.host.ctx;
    const compare: ICompare[] = [
      { key: keys.leader, target: 'Mod', result: 'Equal', mod_revision: this.fenceRevision },
      ...extra,
    ];
    let res: ITxnResponse;
    try {
      res = await this.host.ctx.client.kv.txn(
        { compare, success: ops, failure: [{ request_range: { key: keys.leader } }] },
        { deadline: Date.now() + this.host.opts.callTimeoutMs },
      );
    } catch (err) {
      const e = toStoreError(err, what);
      if (write && e.code === ErrorCode.StoreUnavailable) this.unsettled = true;
      throw e;
    }
    if (res.succeeded) return res;
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (
      extra.length > 0 &&
      kv?.create_revision === this.createRevision &&
      kv.mod_revision === this.fenceRevision
    ) {
      return res;
    }
    throw this.fence(kv?.value.toString(), kv?.create_revision);
  }

  private fence(value: string | undefined, createRevision: string | undefined): Error {
    let reason: string;
    if (value === undefined) reason = 'the leader key is gone (lease expired or key deleted)';
    else if (createRevision === this.createRevision) reason = 'the leader key was rewritten';
    else reason = `another leader holds the election key: ${value}`;
    this.lose(reason);
    return fencedError(this.epoch, reason);
  }

  /** Re-fences after an ambiguous write (see the file comment). Runs under the exclusive lock. */
  private async settle(): Promise<void> {
    if (!this.unsettled) return;
    const { keys, client } = this.host.ctx;
    let res: ITxnResponse;
    try {
      res = await client.kv.txn(
        {
          compare: [
            {
              key: keys.leader,
              target: 'Create',
              result: 'Equal',
              create_revision: this.createRevision,
            },
          ],
          success: [
            {
              request_put: {
                key: keys.leader,
                value: Buffer.from(JSON.stringify(this.info)),
                lease: this.lease.id,
              },
            },
          ],
          failure: [{ request_range: { key: keys.leader } }],
        },
        { deadline: Date.now() + this.host.opts.callTimeoutMs },
      );
    } catch (err) {
      throw toStoreError(err, 'settle');
    }
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range?.kvs[0];
      throw this.fence(kv?.value.toString(), kv?.create_revision);
    }
    this.fenceRevision = res.header.revision;
    this.unsettled = false;
  }

  private async writeSnapshotInner(snapshot: Snapshot, commit: boolean): Promise<SnapshotStats> {
    const { keys } = this.host.ctx;
    const set = keys.chunkSet(snapshot.index, this.epoch, this.snapshotSeq++ % 10000);
    const { pieces, manifest } = chunkSnapshot(
      keys,
      snapshot,
      set,
      this.host.opts.snapshotChunkBytes,
    );
    await this.op('writeSnapshot', async () => {
      for (const group of packTxns(pieces, this.host.opts.maxTxnBytes, MAX_TXN_OPS)) {
        const ops = group.map((p) => ({ request_put: { key: p.key, value: p.value } }));
        await this.txn('writeSnapshot', ops, true);
      }
      if (!commit) return;
      // The manifest last, alone: the commit point of the snapshot.
      const value = Buffer.from(JSON.stringify(manifest));
      await this.txn('writeSnapshot', [{ request_put: { key: keys.manifest, value } }], true);
    });
    return { bytes: manifest.bytes, chunks: manifest.chunks };
  }

  /** Highest event index stored (log or snapshot), for an append before any restore(). */
  private async readLastIndex(): Promise<number> {
    return this.op('append', async () => {
      const { keys, client } = this.host.ctx;
      const res = await client.kv.txn(
        {
          success: [
            { request_range: { key: keys.manifest } },
            {
              request_range: {
                key: keys.logPrefix,
                range_end: keys.logEnd,
                limit: 1,
                sort_order: 'Descend',
                sort_target: 'Key',
              },
            },
          ],
        },
        { deadline: Date.now() + this.host.opts.callTimeoutMs },
      );
      const manifestKv = res.responses[0].response_range.kvs[0];
      const lastKv = res.responses[1].response_range.kvs[0];
      const snap = manifestKv ? parseManifest(keys, manifestKv.value).index : 0;
      return Math.max(snap, lastKv ? lastIndexIn(keys, lastKv.key, lastKv.value) : 0);
    });
  }

  /**
   * The first index of the last batch that lies entirely at or below `limit` (all batches
   * before it do too), or undefined if none does. Multi-part batches are kept or deleted whole.
   */
  private async lastBatchEndingBy(limit: number, revision: string): Promise<number | undefined> {
    const { keys } = this.host.ctx;
    let prevBatch: number | undefined;
    let lastBatch: number | undefined;
    let lastKey: Buffer | undefined;
    await rangePages(
      this.host.ctx,
      keys.logPrefix,
      keys.log(limit + 1),
      revision,
      1000,
      (kvs) => {
        for (const kv of kvs) {
          const p = keys.parseLog(kv.key);
          if (!p) continue;
          if (p.batch !== lastBatch) {
            prevBatch = lastBatch;
            lastBatch = p.batch;
          }
          lastKey = kv.key;
        }
      },
      true,
    );
    if (lastBatch === undefined || !lastKey) return undefined;
    const res = await this.host.ctx.client.kv.range(
      { key: lastKey, revision },
      { deadline: Date.now() + this.host.opts.callTimeoutMs },
    );
    const kv = res.kvs[0];
    if (kv && lastIndexIn(keys, kv.key, kv.value) <= limit) return lastBatch;
    return prevBatch;
  }
}
