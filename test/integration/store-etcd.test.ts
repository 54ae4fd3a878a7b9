import { Etcd3 } from 'etcd3';
import { ErrorCode, FlotillaError, isFlotillaError } from '../../src/errors';
import { EtcdLogStore, type EtcdLogStoreOptions, type EtcdTerm } from '../../src/store/etcd';
import { encodeBatch } from '../../src/store/etcd/batch';
import { EtcdKeys } from '../../src/store/etcd/keys';
import type { FlotillaEvent } from '../../src/events/types';
import type { LogStore } from '../../src/store/types';
import { startEtcd, type EtcdCluster } from '../harness';
import { describeLogStoreContract, durableEvents, pseudoRandomBytes } from '../store-contract';

const CHUNK = 64 * 1024;
const silent = { warn: () => undefined };

describe('EtcdLogStore on a real etcd', () => {
  let etcd: EtcdCluster;
  let admin: Etcd3;
  let clusters = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    admin = new Etcd3({ hosts: etcd.endpoints });
  });
  afterAll(async () => {
    admin.close();
    await etcd.dispose();
  });

  describeLogStoreContract('EtcdLogStore', async () => {
    const cluster = `contract${++clusters}`;
    const opened: LogStore[] = [];
    return {
      chunkBytes: CHUNK,
      open: async () => {
        const s = new EtcdLogStore({
          endpoints: etcd.endpoints,
          cluster,
          snapshotChunkBytes: CHUNK,
          logger: silent,
        });
        opened.push(s);
        return s;
      },
      // What an operator (or an expired lease) does: the key goes, the term must notice.
      depose: async () => {
        await admin.delete().key(`/flotilla/${cluster}/leader`);
      },
      writeChunksOnly: async (term, snapshot) => {
        await (term as EtcdTerm).writeSnapshotChunks(snapshot);
      },
      close: async () => {
        for (const s of opened) await s.close();
      },
    };
  });

  describe('etcd specifics', () => {
    const stores: EtcdLogStore[] = [];
    const never = () => new AbortController().signal;
    const cand = (m: string) => ({ machine: m, address: `${m}:7070` });
    afterEach(async () => {
      for (const st of stores.splice(0)) await st.close();
    });
    function open(cluster: string, extra: Partial<EtcdLogStoreOptions> = {}): EtcdLogStore {
      const st = new EtcdLogStore({ endpoints: etcd.endpoints, cluster, logger: silent, ...extra });
      stores.push(st);
      return st;
    }
    async function logKeys(cluster: string): Promise<string[]> {
      return admin.getAll().prefix(`/flotilla/${cluster}/log/`).keys();
    }

    it('splits an append bigger than a txn over several txns and restores it whole', async () => {
      const cluster = `big${++clusters}`;
      const store = open(cluster, { snapshotChunkBytes: 16 * 1024, maxTxnBytes: 64 * 1024 });
      const term = await store.campaign(cand('a'), never());
      const events = durableEvents(1, 3000, term.epoch);
      await term.append(events.slice(0, 1));
      await term.append(events.slice(1));
      expect((await logKeys(cluster)).length).toBeGreaterThan(20);
      expect((await term.restore()).tail).toEqual(events);
      expect((await open(cluster).readAll()).tail).toEqual(events);
    });

    it('reads the log unparsed for a copy (readAllRaw): the same events, each as stored', async () => {
      const cluster = `raw${++clusters}`;
      const store = open(cluster, { snapshotChunkBytes: 16 * 1024, maxTxnBytes: 64 * 1024 });
      const term = await store.campaign(cand('a'), never());
      // As the engine writes them (metadata last), and in another layout (metadata first).
      const engine = durableEvents(1, 2000, term.epoch).map(({ index, epoch, time, v, ...b }) => ({
        ...b,
        unit: `${b.type === 'UnitTargetSet' ? b.unit : ''} "quoted" {x}`,
        index,
        epoch,
        time,
        v,
      }));
      await term.append(engine as unknown as FlotillaEvent[]);
      await term.append(durableEvents(2001, 2010, term.epoch));
      await term.writeSnapshot({ index: 2005, epoch: term.epoch, data: pseudoRandomBytes(40_000) });
      const parsed = await open(cluster).readAll();
      const raw = await open(cluster).readAllRaw();
      expect(raw.snapshot).toEqual(parsed.snapshot);
      expect(raw.tail.map((e) => e.index)).toEqual(parsed.tail.map((e) => e.index));
      expect(raw.tail.map((e) => JSON.parse(Buffer.from(e.json).toString()) as unknown)).toEqual(
        parsed.tail,
      );
      expect(Buffer.from(raw.tail[0].json).toString()).toBe(JSON.stringify(engine[0]));
    });

    it('ignores a half-written multi-txn append, and the next append removes its leftovers', async () => {
      const cluster = `half${++clusters}`;
      const keys = new EtcdKeys(cluster);
      const store = open(cluster);
      const old = await store.campaign(cand('a'), never());
      await old.append(durableEvents(1, 3, old.epoch));
      // The first two of the parts of a big append landed, then the leader died.
      const parts = encodeBatch(keys, durableEvents(4, 2000, old.epoch), 8 * 1024, 1 << 30);
      for (const p of parts.slice(0, 2)) await admin.put(p.key).value(p.value);
      await old.resign();

      const term = await open(cluster).campaign(cand('b'), never());
      expect((await term.restore()).tail.map((e) => e.index)).toEqual([1, 2, 3]);
      await term.append(durableEvents(4, 5, term.epoch));
      expect((await open(cluster).readAll()).tail.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
      expect(await logKeys(cluster)).toEqual([keys.log(1).toString(), keys.log(4).toString()]);
    });

    it('names the damaged chunk key when a snapshot chunk fails its checksum', async () => {
      const cluster = `corrupt${++clusters}`;
      const keys = new EtcdKeys(cluster);
      const store = open(cluster, { snapshotChunkBytes: 4096 });
      const term = await store.campaign(cand('a'), never());
      await term.writeSnapshot({ index: 0, epoch: term.epoch, data: pseudoRandomBytes(20_000) });
      const manifest = JSON.parse((await admin.get(keys.manifest.toString()).string())!) as {
        set: string;
      };
      const victim = keys.chunk(manifest.set, 2).toString();
      await admin.put(victim).value(Buffer.from('not the bytes you wrote'));
      const err = await term.restore().catch((e: unknown) => e);
      expect(isFlotillaError(err, ErrorCode.StoreCorrupt)).toBe(true);
      expect((err as { details: { key: string } }).details.key).toBe(victim);
    });

    it('settles an ambiguous write: after a timed-out append, the next operation re-fences first', async () => {
      const cluster = `ambiguous${++clusters}`;
      const keys = new EtcdKeys(cluster);
      const store = open(cluster, { callTimeoutMs: 300 });
      const term = (await store.campaign(cand('a'), never())) as EtcdTerm;
      await term.append(durableEvents(1, 3, term.epoch));
      // etcd frozen: the txn is sent, the deadline passes, then etcd wakes up and may apply it.
      etcd.members[0].server.signal('SIGSTOP');
      let err: unknown;
      try {
        err = await term.append(durableEvents(4, 6, term.epoch)).catch((e: unknown) => e);
      } finally {
        etcd.members[0].server.signal('SIGCONT');
      }
      expect(isFlotillaError(err, ErrorCode.StoreUnavailable)).toBe(true);

      // Right after etcd wakes, the circuit breaker may still be open for a moment: a caller
      // retries retryable errors, and so does this test.
      const first = await retryable(() => term.restore());
      const leaderKv = await admin.get(keys.leader.toString()).exec();
      const kv = leaderKv.kvs[0];
      // The settle re-put the leader key: any write still in flight compares a stale revision.
      expect(Number(kv.mod_revision)).toBeGreaterThan(Number(kv.create_revision));
      expect([
        [1, 2, 3],
        [1, 2, 3, 4, 5, 6],
      ]).toContainEqual(first.tail.map((e) => e.index));
      await new Promise((r) => setTimeout(r, 300));
      expect((await term.restore()).tail).toEqual(first.tail);
      const next = (first.tail.at(-1)?.index ?? 0) + 1;
      await term.append(durableEvents(next, next + 1, term.epoch));
      expect(term.lost).toBe(false);
    });
  });
});

/** Runs `fn` again while it fails with a retryable FlotillaError, for up to 5 s. */
async function retryable<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 5000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof FlotillaError) || !err.retryable || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
