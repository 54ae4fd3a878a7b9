/**
 * EtcdLogStore: the durable store of a Flotilla cluster — leader election, the event log and
 * snapshots in etcd v3. Layout, formats and failure behaviour: docs/store.md.
 *
 * Election: our own lease-backed key rather than etcd3's Election, because we need control
 * over what etcd3 hides: the epoch bumped in the same txn that takes the key, the exact lease
 * deadline (TermLease), and a campaign that never gives up while etcd is away.
 *
 *   campaign:  read /leader and /epoch
 *              if /leader is absent: grant a lease, then txn
 *                 if  create_revision(/leader) == 0  and  mod_revision(/epoch) == <read>
 *                 then put /leader = {machine,address,epoch+1} (with the lease), put /epoch = epoch+1
 *              else wait for the key to change (watch; poll as a fallback) and try again
 *
 * A stale key (a dead leader's lease still running, ~TTL after etcd comes back) simply keeps
 * candidates waiting until etcd expires it; any error makes the candidate back off and retry.
 */
import type { Etcd3, IKeyValue, ITxnResponse } from 'etcd3';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import { abortReason, corruptError, sleep } from './common';
import { createEtcdClient, toStoreError } from './etcd/client';
import { EtcdKeys } from './etcd/keys';
import { TermLease } from './etcd/lease';
import { LeaderWatch, leaderStateOf, type LeaderState } from './etcd/leader-watch';
import { resolveOptions, type EtcdLogStoreOptions, type ResolvedEtcdOptions } from './etcd/options';
import { readState, type ReadContext } from './etcd/reader';
import { EtcdTerm, type TermHost } from './etcd/term';
import { decodeRawPiece } from './etcd/batch';
import type { Candidate, LeaderInfo, LogStore, RawRestored, Restored, Term } from './types';

export type { EtcdLogStoreOptions } from './etcd/options';
export { EtcdTerm } from './etcd/term';
export { EtcdKeys } from './etcd/keys';

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2000;

export class EtcdLogStore implements LogStore {
  readonly keys: EtcdKeys;
  readonly options: ResolvedEtcdOptions;
  private readonly client: Etcd3;
  private readonly ctx: ReadContext;
  private readonly watch: LeaderWatch;
  private readonly terms = new Set<EtcdTerm>();
  private readonly revoking = new Set<Promise<void>>();
  private closed = false;
  private readonly closing = new AbortController();

  constructor(options: EtcdLogStoreOptions) {
    this.options = resolveOptions(options);
    this.keys = new EtcdKeys(this.options.cluster);
    this.client = createEtcdClient(this.options);
    this.ctx = {
      client: this.client,
      keys: this.keys,
      logger: this.options.logger,
      readTimeoutMs: this.options.callTimeoutMs * 4,
    };
    this.watch = new LeaderWatch(
      this.client,
      this.keys,
      this.options.pollMs,
      this.options.callTimeoutMs,
    );
  }

  async campaign(candidate: Candidate, signal: AbortSignal): Promise<Term> {
    let backoff = BACKOFF_MIN_MS;
    while (true) {
      if (signal.aborted) throw abortReason(signal);
      this.checkOpen();
      try {
        const { leader, epoch } = await this.readElection();
        if (leader.createRevision === undefined) {
          const term = await this.tryAcquire(candidate, epoch);
          if (term) {
            if (signal.aborted) {
              await term.resign();
              throw abortReason(signal);
            }
            return term;
          }
          backoff = BACKOFF_MIN_MS;
          continue; // lost the race: read again at once
        }
        await this.waitForChange(leader, signal);
        backoff = BACKOFF_MIN_MS;
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        const e = toStoreError(err, 'campaign');
        if (!e.retryable) throw e;
        if (backoff === BACKOFF_MIN_MS) {
          this.options.logger.warn('campaign: etcd unavailable, retrying', { error: e.message });
        }
        // etcd away: keep trying, with a capped, jittered backoff.
        await sleep(backoff * (0.5 + Math.random() / 2), signal);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  async leader(): Promise<LeaderInfo | undefined> {
    this.checkOpen();
    try {
      return (await this.watch.poll()).info;
    } catch (err) {
      throw toStoreError(err, 'leader');
    }
  }

  watchLeader(listener: (leader: LeaderInfo | undefined) => void): () => void {
    let last: string | undefined;
    const deliver = (s: LeaderState): void => {
      const key = JSON.stringify(s.info ?? null);
      if (key === last) return;
      last = key;
      listener(s.info);
    };
    const unsubscribe = this.watch.subscribe(deliver);
    // A watch already running knows the current leader; a new one polls at once.
    const current = this.watch.current;
    if (current.revision > 0) queueMicrotask(() => deliver(this.watch.current));
    return unsubscribe;
  }

  async readAll(): Promise<Restored> {
    return this.readAt('readAll', (kv, revision) => readState(this.ctx, kv, revision, true));
  }

  /**
   * `readAll` with the events as the store holds them, unparsed: for a copy of the history
   * (`flotilla events export`, `flotilla backup`), which writes them out as they are.
   */
  async readAllRaw(): Promise<RawRestored> {
    return this.readAt('readAllRaw', (kv, revision) =>
      readState(this.ctx, kv, revision, true, decodeRawPiece),
    );
  }

  /** Reads the manifest, then `read`s the state at that revision (one consistent moment). */
  private async readAt<T>(
    what: string,
    read: (manifest: IKeyValue | undefined, revision: string) => Promise<T>,
  ): Promise<T> {
    this.checkOpen();
    try {
      const res = await this.client.kv.range(
        { key: this.keys.manifest },
        { deadline: Date.now() + this.options.callTimeoutMs },
      );
      return await read(res.kvs[0], res.header.revision);
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  /**
   * Resigns every term this store holds (revoking its lease, so a successor need not wait for
   * the TTL), stops watching and closes the client.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of [...this.terms]) await t.resign();
    // Give the revocations one call's time; a lease we cannot revoke expires by itself.
    const waited = new AbortController();
    await Promise.race([
      Promise.allSettled([...this.revoking]).then(() => waited.abort()),
      sleep(this.options.callTimeoutMs, waited.signal),
    ]);
    this.closed = true;
    this.closing.abort();
    this.watch.stop();
    this.client.close();
  }

  // ---------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) {
      throw new FlotillaError(ErrorCode.StoreUnavailable, 'the etcd store is closed');
    }
  }

  private async readElection(): Promise<{ leader: LeaderState; epoch: EpochRead }> {
    const res = await this.client.kv.txn(
      {
        success: [
          { request_range: { key: this.keys.leader } },
          { request_range: { key: this.keys.epoch } },
        ],
      },
      { deadline: Date.now() + this.options.callTimeoutMs },
    );
    const leader = leaderStateOf(
      res.responses[0].response_range.kvs[0],
      Number(res.header.revision),
    );
    this.watch.observe(leader);
    const epochKv = res.responses[1].response_range.kvs[0];
    let value = 0;
    if (epochKv) {
      value = Number(epochKv.value.toString());
      if (!Number.isSafeInteger(value) || value < 0) {
        throw corruptError(this.keys.epoch.toString(), 'not a non-negative integer');
      }
    }
    return { leader, epoch: { value, modRevision: epochKv?.mod_revision ?? '0' } };
  }

  private async tryAcquire(candidate: Candidate, epoch: EpochRead): Promise<EtcdTerm | undefined> {
    const { callTimeoutMs, leaseTtlSeconds } = this.options;
    const sentAt = performance.now();
    const grant = await this.client.leaseClient.leaseGrant(
      { TTL: leaseTtlSeconds },
      { deadline: Date.now() + callTimeoutMs },
    );
    const lease = new TermLease(
      this.client,
      grant.ID,
      { ttlSeconds: Number(grant.TTL) || leaseTtlSeconds, callTimeoutMs },
      sentAt,
    );
    const info: LeaderInfo = {
      machine: candidate.machine,
      address: candidate.address,
      epoch: epoch.value + 1,
    };
    let res: ITxnResponse;
    try {
      res = await this.client.kv.txn(
        {
          compare: [
            { key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: 0 },
            {
              key: this.keys.epoch,
              target: 'Mod',
              result: 'Equal',
              mod_revision: epoch.modRevision,
            },
          ],
          success: [
            {
              request_put: {
                key: this.keys.leader,
                value: Buffer.from(JSON.stringify(info)),
                lease: grant.ID,
              },
            },
            { request_put: { key: this.keys.epoch, value: Buffer.from(String(info.epoch)) } },
          ],
        },
        { deadline: Date.now() + callTimeoutMs },
      );
    } catch (err) {
      // It may have landed: revoking the lease removes the key with it.
      this.revokeInBackground(lease);
      throw err;
    }
    if (!res.succeeded) {
      this.revokeInBackground(lease);
      return undefined;
    }
    const term = new EtcdTerm(this.termHost, lease, info, res.header.revision);
    this.terms.add(term);
    this.watch.observe({
      revision: Number(res.header.revision),
      info,
      createRevision: Number(res.header.revision),
    });
    term.start();
    return term;
  }

  /** Waits until the leader key changes after `seen`, at most pollMs, or until aborted. */
  private waitForChange(seen: LeaderState, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener('abort', done);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, this.options.pollMs);
      const unsubscribe = this.watch.subscribe((s) => {
        if (s.revision > seen.revision && s.createRevision !== seen.createRevision) done();
      });
      signal.addEventListener('abort', done, { once: true });
      this.closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  private get termHost(): TermHost {
    return {
      ctx: this.ctx,
      opts: this.options,
      watch: this.watch,
      ended: (term, lease, revoke) => {
        this.terms.delete(term);
        if (revoke) this.revokeInBackground(lease);
      },
    };
  }

  /**
   * Revokes a lease we no longer use, retrying while etcd is away (up to 3 × TTL; after that
   * etcd has expired it anyway). Deleting a dead term's key at once spares the next candidate
   * the wait for the TTL.
   */
  private revokeInBackground(lease: TermLease): void {
    const deadline = performance.now() + 3 * this.options.leaseTtlSeconds * 1000;
    const p = (async () => {
      while (!this.closed && performance.now() < deadline) {
        try {
          await lease.revoke();
          return;
        } catch (err) {
          if (isFlotillaError(err) && !err.retryable) return;
          await sleep(250, this.closing.signal);
        }
      }
    })();
    this.revoking.add(p);
    void p.finally(() => this.revoking.delete(p));
  }
}

interface EpochRead {
  value: number;
  modRevision: string;
}
