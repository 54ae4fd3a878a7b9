/**
 * EtcdLogStore under failure, on real etcd: leaders killed with SIGKILL (in their own process),
 * leases revoked underneath a leader, etcd members killed and restarted. No assertion here is
 * about wall-clock time; durations are only bounded by generous timeouts.
 */
import { Etcd3 } from 'etcd3';
import { ErrorCode, isFlotillaError } from '../../src/errors';
import type { FlotillaEvent } from '../../src/events/types';
import { EtcdLogStore, type EtcdLogStoreOptions, type EtcdTerm } from '../../src/store/etcd';
import type { LeaderInfo, LogStore, Term } from '../../src/store/types';
import { spawnLeader, type LeaderProcess } from '../fixtures/store-spawn';
import { startEtcd, startEtcdCluster, type EtcdCluster } from '../harness';
import { durableEvents, waitFor } from '../store-contract';

const silent = { warn: () => undefined };
const TTL = 2;

let clusterSeq = 0;
const freshCluster = () => `failures${process.pid}x${++clusterSeq}`;

const stores: LogStore[] = [];
const children: LeaderProcess[] = [];
const etcds: EtcdCluster[] = [];

function open(
  endpoints: string[],
  cluster: string,
  extra: Partial<EtcdLogStoreOptions> = {},
): EtcdLogStore {
  const s = new EtcdLogStore({
    endpoints,
    cluster,
    leaseTtlSeconds: TTL,
    logger: silent,
    ...extra,
  });
  stores.push(s);
  return s;
}

const cand = (m: string) => ({ machine: m, address: `${m}:7070` });
const never = () => new AbortController().signal;

afterEach(async () => {
  for (const c of children.splice(0)) await c.kill();
  for (const s of stores.splice(0)) await s.close();
  for (const e of etcds.splice(0)) await e.dispose();
});

async function etcd1(): Promise<EtcdCluster> {
  const e = await startEtcd();
  etcds.push(e);
  return e;
}

/** Appends, retrying while the store is unavailable (never when fenced). */
async function appendEventually(term: Term, events: FlotillaEvent[]): Promise<void> {
  await waitFor(
    async () => {
      try {
        await term.append(events);
        return true;
      } catch (err) {
        if (isFlotillaError(err, ErrorCode.StoreUnavailable)) return undefined;
        throw err;
      }
    },
    `append of ${events[0].index}..${events[events.length - 1].index}`,
  );
}

function indexes(events: FlotillaEvent[]): number[] {
  return events.map((e) => e.index);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('EtcdLogStore failures', () => {
  it('keeps an acknowledged append after kill -9 of the leader process', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const leader = spawnLeader({
      endpoints: etcd.endpoints,
      cluster,
      machine: 'victim',
      leaseTtlSeconds: TTL,
      appends: 1000,
      batch: 3,
    });
    children.push(leader);
    await leader.waitFor(/^acked 30$/, 40000);
    // Killed while appends are in flight; whatever was acknowledged before must survive.
    await leader.kill();
    const acked = Math.max(
      ...leader.lines.map((l) => /^acked (\d+)$/.exec(l)).map((m) => (m ? Number(m[1]) : 0)),
    );
    expect(acked).toBeGreaterThanOrEqual(30);

    const term = await open(etcd.endpoints, cluster).campaign(cand('heir'), never());
    const r = await term.restore();
    const got = indexes(r.tail);
    // Every acknowledged event, in order, no gap; at most the one in-flight batch beyond it.
    expect(got.slice(0, acked)).toEqual(range(1, acked));
    expect(got.length - acked).toBeLessThanOrEqual(3);
    expect(got).toEqual(range(1, got.length));
  });

  it('fences a leader whose lease is revoked underneath it: the write fails FENCED, the term is lost', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const store = open(etcd.endpoints, cluster);
    const term = (await store.campaign(cand('a'), never())) as EtcdTerm;
    await term.append(durableEvents(1, 3, term.epoch));
    const reasons: string[] = [];
    term.onLost((r) => reasons.push(r));

    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await admin.leaseClient.leaseRevoke({ ID: term.leaseId });
    } finally {
      admin.close();
    }
    // Straight away, before the term may have noticed: the txn's compare must refuse it.
    const err = await term.append(durableEvents(4, 6, term.epoch)).catch((e: unknown) => e);
    expect(isFlotillaError(err, ErrorCode.Fenced)).toBe(true);
    expect(term.lost).toBe(true);
    await waitFor(() => reasons.length > 0 || undefined, 'onLost');
    expect(reasons).toHaveLength(1);

    const all = await open(etcd.endpoints, cluster).readAll();
    expect(indexes(all.tail)).toEqual([1, 2, 3]);
    expect(await store.leader()).toBeUndefined();
  });

  it('notices on its own that its key was deleted, without writing', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const term = await open(etcd.endpoints, cluster).campaign(cand('a'), never());
    const lost = new Promise<string>((resolve) => term.onLost(resolve));
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await admin.delete().key(`/flotilla/${cluster}/leader`);
    } finally {
      admin.close();
    }
    expect(await lost).toMatch(/leader key was deleted/);
    expect(term.lost).toBe(true);
  });

  it('fails appends fast with STORE_UNAVAILABLE while etcd is down, then resumes; nothing acknowledged is lost', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const store = open(etcd.endpoints, cluster, { leaseTtlSeconds: 5 });
    let term = await store.campaign(cand('a'), never());
    await term.append(durableEvents(1, 10, term.epoch));

    await etcd.members[0].stop(true);
    const err = await term.append(durableEvents(11, 12, term.epoch)).catch((e: unknown) => e);
    expect(isFlotillaError(err, ErrorCode.StoreUnavailable)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    // It failed before the lease could have run out: "fast" without a wall-clock assertion.
    expect(term.lost).toBe(false);

    await etcd.members[0].start();
    // Same term if its lease survived the outage, else a new term (after the old lease expires).
    let next = 11;
    await waitFor(async () => {
      if (term.lost) {
        term = await store.campaign(cand('a'), never());
        const r = await term.restore();
        next = (r.tail.at(-1)?.index ?? 0) + 1;
      }
      try {
        await term.append(durableEvents(next, next + 1, term.epoch));
        return true;
      } catch (e) {
        if (
          isFlotillaError(e, ErrorCode.StoreUnavailable) ||
          isFlotillaError(e, ErrorCode.Fenced)
        ) {
          return undefined;
        }
        throw e;
      }
    }, 'writes to resume after etcd restarts');

    const all = await open(etcd.endpoints, cluster).readAll();
    const got = indexes(all.tail);
    expect(got.slice(0, 10)).toEqual(range(1, 10));
    expect(got.slice(-2)).toEqual([next, next + 1]);
    expect(got).toEqual(range(1, got.length));
  });

  it('elects after etcd returns even though the dead leader key lingers, and followers see it', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const leader = spawnLeader({
      endpoints: etcd.endpoints,
      cluster,
      machine: 'old',
      leaseTtlSeconds: TTL,
      appends: 2,
      batch: 1,
    });
    children.push(leader);
    await leader.waitFor(/^idle$/);
    const follower = open(etcd.endpoints, cluster);
    const seen: (LeaderInfo | undefined)[] = [];
    follower.watchLeader((l) => seen.push(l));
    await waitFor(() => seen.some((l) => l?.machine === 'old') || undefined, 'follower sees old');

    // etcd and the leader die together; a candidate starts while etcd is away.
    await etcd.members[0].stop(true);
    await leader.kill();
    const heir = open(etcd.endpoints, cluster).campaign(cand('heir'), never());
    await new Promise((r) => setTimeout(r, 500));
    await etcd.members[0].start();

    const term = await heir;
    const old = seen.find((l) => l?.machine === 'old')!;
    expect(term.epoch).toBeGreaterThan(old.epoch);
    expect(indexes((await term.restore()).tail)).toEqual([1, 2]);
    await waitFor(
      () => seen.some((l) => l?.machine === 'heir' && l.epoch === term.epoch) || undefined,
      'the follower to see the new leader after the outage',
    );
  });

  it('fails over when the leader process is killed: a waiting candidate wins once the lease expires', async () => {
    const etcd = await etcd1();
    const cluster = freshCluster();
    const leader = spawnLeader({
      endpoints: etcd.endpoints,
      cluster,
      machine: 'a',
      leaseTtlSeconds: TTL,
      appends: 0,
      batch: 1,
    });
    children.push(leader);
    const [, epochA] = await leader.waitFor(/^elected (\d+) /);
    const b = open(etcd.endpoints, cluster);
    let won = false;
    const pending = b.campaign(cand('b'), never()).then((t) => {
      won = true;
      return t;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(won).toBe(false); // A is alive: B waits

    await leader.kill();
    const term = await pending;
    expect(term.epoch).toBeGreaterThan(Number(epochA));
    expect(await b.leader()).toEqual({ machine: 'b', address: 'b:7070', epoch: term.epoch });
  });

  it('keeps appending and electing on a 3-member cluster when its raft leader is killed', async () => {
    const etcd = await startEtcdCluster(3);
    etcds.push(etcd);
    const cluster = freshCluster();
    // The default TTL (5 s): a raft election (election timeout 500 ms here) must not cost the term.
    const a = open(etcd.endpoints, cluster, { leaseTtlSeconds: 5 });
    const termA = await a.campaign(cand('a'), never());
    await termA.append(durableEvents(1, 5, termA.epoch));

    // Kill the member that leads the raft group: the hardest member to lose.
    const victim = await raftLeader(etcd);
    await etcd.members[victim].stop(true);
    for (let i = 6; i <= 30; i += 5) {
      await appendEventually(termA, durableEvents(i, i + 4, termA.epoch));
    }
    expect(termA.lost).toBe(false);

    const b = open(etcd.endpoints, cluster, { leaseTtlSeconds: 5 });
    const waiting = b.campaign(cand('b'), never());
    await termA.resign();
    const termB = await waiting;
    expect(termB.epoch).toBeGreaterThan(termA.epoch);
    await appendEventually(termB, durableEvents(31, 35, termB.epoch));
    expect(indexes((await termB.restore()).tail)).toEqual(range(1, 35));
  });
});

/** Index of the member that is the raft leader. */
async function raftLeader(etcd: EtcdCluster): Promise<number> {
  for (let i = 0; i < etcd.members.length; i++) {
    const c = new Etcd3({ hosts: etcd.members[i].clientUrl });
    try {
      const s = await c.maintenance.status();
      if (s.leader === s.header.member_id) return i;
    } finally {
      c.close();
    }
  }
  throw new Error('no raft leader found');
}
