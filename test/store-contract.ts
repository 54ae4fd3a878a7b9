/**
 * The LogStore contract (src/store/types.ts) as one shared jest suite, run against every
 * implementation: MemoryLogStore and FileLogStore (test/unit/store/) and EtcdLogStore
 * (test/integration/store-etcd.test.ts). A behaviour the engine relies on is asserted here once,
 * so the three stores cannot drift apart.
 */
import { ErrorCode, isFlotillaError } from '../src/errors';
import { SCHEMA_VERSION, type FlotillaEvent } from '../src/events/types';
import type { LeaderInfo, LogStore, Snapshot, Term } from '../src/store/types';

/** What each implementation provides to the suite. */
export interface StoreFixture {
  /** A new client on the same backing store, as another daemon (process) would open. */
  open(): Promise<LogStore>;
  /**
   * True for a single-process store (FileLogStore) whose campaign wins at once and fences the
   * previous term, instead of waiting for it to end.
   */
  takesOverAtOnce?: boolean;
  /** The chunk size snapshots are cut to, when the implementation chunks them. */
  chunkBytes?: number;
  /**
   * Takes leadership from `term` from outside, the way the backend would (lease expired, key
   * deleted, another process took over). May be a no-op when a rival's campaign alone does it.
   */
  depose(term: Term): Promise<void>;
  /** Writes the chunks of a snapshot without its manifest: a leader that crashed in between. */
  writeChunksOnly(term: Term, snapshot: Snapshot): Promise<void>;
  /** Closes every store opened and removes the backing data. */
  close(): Promise<void>;
}

let nextUnit = 0;

/** A durable event with the given index. */
export function durableEvent(index: number, epoch = 1): FlotillaEvent {
  nextUnit++;
  return {
    index,
    epoch,
    time: 1_700_000_000_000 + index,
    v: SCHEMA_VERSION,
    type: 'UnitTargetSet',
    unit: `u${index}-${nextUnit % 7}.service`,
    target: index % 2 === 0 ? 'launched' : 'loaded',
  };
}

export function durableEvents(from: number, to: number, epoch = 1): FlotillaEvent[] {
  const out: FlotillaEvent[] = [];
  for (let i = from; i <= to; i++) out.push(durableEvent(i, epoch));
  return out;
}

/** Deterministic, partly compressible bytes (a seeded xorshift mixed with repeated text). */
export function pseudoRandomBytes(length: number, seed = 42): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (i >> 9) % 3 === 0 ? 97 + (i % 26) : x & 0xff;
  }
  return out;
}

export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 20000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const candidate = (name: string) => ({ machine: name, address: `${name}.test:7070` });

function expectCode(err: unknown, code: ErrorCode): void {
  if (!isFlotillaError(err, code)) {
    throw new Error(`expected FlotillaError ${code}, got ${String((err as Error)?.stack ?? err)}`);
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

export function describeLogStoreContract(name: string, setup: () => Promise<StoreFixture>): void {
  describe(`LogStore contract: ${name}`, () => {
    let fx: StoreFixture;
    const signal = () => new AbortController().signal;

    beforeEach(async () => {
      fx = await setup();
    });
    afterEach(async () => {
      await fx.close();
    });

    async function lead(machine = 'a'): Promise<{ store: LogStore; term: Term }> {
      const store = await fx.open();
      const term = await store.campaign(candidate(machine), signal());
      return { store, term };
    }

    it('appends batches and restores them in order in the next term', async () => {
      const { term } = await lead('a');
      expect(await term.restore()).toEqual({ tail: [] });
      const events = durableEvents(1, 10, term.epoch);
      await term.append(events.slice(0, 3));
      await term.append(events.slice(3, 4));
      await term.append([]);
      await term.append(events.slice(4));
      await term.resign();

      const { term: next } = await lead('b');
      const r = await next.restore();
      expect(r.snapshot).toBeUndefined();
      expect(r.tail).toEqual(events);
    });

    it('restores a snapshot plus the tail after it, equal to the full log', async () => {
      const { term } = await lead('a');
      const all = durableEvents(1, 25, term.epoch);
      await term.append(all.slice(0, 8));
      await term.append(all.slice(8, 12));
      // The "state" is the JSON of the events folded so far: easy to check against the log.
      const data = new TextEncoder().encode(JSON.stringify(all.slice(0, 10)));
      const stats = await term.writeSnapshot({ index: 10, epoch: term.epoch, data });
      expect(stats.bytes).toBe(data.length);
      await term.append(all.slice(12));
      await term.resign();

      const { term: next } = await lead('b');
      const r = await next.restore();
      expect(r.snapshot?.index).toBe(10);
      expect(r.snapshot?.epoch).toBe(term.epoch);
      expect(Buffer.from(r.snapshot!.data).equals(Buffer.from(data))).toBe(true);
      expect(r.tail.map((e) => e.index)).toEqual(all.slice(10).map((e) => e.index));
      const folded = [
        ...(JSON.parse(new TextDecoder().decode(r.snapshot!.data)) as FlotillaEvent[]),
        ...r.tail,
      ];
      expect(folded).toEqual(all);
    });

    it('chunks a snapshot several times the chunk size and reads it back byte for byte', async () => {
      const { term } = await lead('a');
      await term.append(durableEvents(1, 3, term.epoch));
      const data = pseudoRandomBytes(3 * 1024 * 1024 + 12345);
      const stats = await term.writeSnapshot({ index: 3, epoch: term.epoch, data });
      expect(stats.bytes).toBe(data.length);
      if (fx.chunkBytes !== undefined) {
        expect(stats.chunks).toBe(Math.ceil(data.length / fx.chunkBytes));
        expect(stats.chunks).toBeGreaterThan(3);
      } else {
        expect(stats.chunks).toBeGreaterThanOrEqual(1);
      }
      const r = await term.restore();
      expect(r.snapshot?.index).toBe(3);
      expect(Buffer.from(r.snapshot!.data).equals(Buffer.from(data))).toBe(true);
      expect(r.tail).toEqual([]);
    });

    it('never reads a half-written snapshot: after a crash before the manifest, the previous one stays current', async () => {
      const { term } = await lead('a');
      const all = durableEvents(1, 12, term.epoch);
      await term.append(all.slice(0, 5));
      const first = pseudoRandomBytes(50_000, 1);
      await term.writeSnapshot({ index: 5, epoch: term.epoch, data: first });
      await term.append(all.slice(5));
      await fx.writeChunksOnly(term, {
        index: 8,
        epoch: term.epoch,
        data: pseudoRandomBytes(200_000, 2),
      });
      await fx.depose(term);

      const { term: next } = await lead('b');
      const r = await next.restore();
      expect(r.snapshot?.index).toBe(5);
      expect(Buffer.from(r.snapshot!.data).equals(Buffer.from(first))).toBe(true);
      expect(r.tail).toEqual(all.slice(5));
    });

    it('compacts only what the latest snapshot covers and keeps everything after it', async () => {
      const { store, term } = await lead('a');
      const all = durableEvents(1, 30, term.epoch);
      // Batches 1-3, 4-6, … so that index 20 falls inside batch 19-21.
      for (let i = 0; i < all.length; i += 3) await term.append(all.slice(i, i + 3));
      await term.compact(15); // no snapshot yet: nothing may go
      expect((await store.readAll()).tail).toEqual(all);

      await term.writeSnapshot({ index: 20, epoch: term.epoch, data: new Uint8Array([1, 2]) });
      await term.compact(25); // capped at the snapshot index (20)
      const after = await store.readAll();
      expect(after.snapshot?.index).toBe(20);
      // Batches ending at or before 20 are gone; batch 19-21 straddles the snapshot and stays.
      expect(after.tail[0].index).toBe(19);
      expect(after.tail).toEqual(all.slice(18));

      const r = await term.restore();
      expect(r.snapshot?.index).toBe(20);
      expect(r.tail).toEqual(all.slice(20));

      // A newer snapshot makes the older chunk set and the covered batches go.
      await term.writeSnapshot({ index: 30, epoch: term.epoch, data: pseudoRandomBytes(9000) });
      await term.compact(30);
      const final = await store.readAll();
      expect(final.snapshot?.index).toBe(30);
      expect(final.tail).toEqual([]);
      await term.append(durableEvents(31, 32, term.epoch));
      expect((await term.restore()).tail.map((e) => e.index)).toEqual([31, 32]);
    });

    it('gives every term a strictly greater epoch', async () => {
      const epochs: number[] = [];
      for (const m of ['a', 'b', 'a', 'c']) {
        const { store, term } = await lead(m);
        epochs.push(term.epoch);
        const info = await waitFor(
          async () => ((await store.leader())?.epoch === term.epoch ? store.leader() : undefined),
          'leader() to report the new term',
        );
        expect(info).toEqual({ machine: m, address: `${m}.test:7070`, epoch: term.epoch });
        await term.resign();
      }
      for (let i = 1; i < epochs.length; i++) expect(epochs[i]).toBeGreaterThan(epochs[i - 1]);
    });

    it('fences a deposed term: its append fails with FENCED, it reports lost, nothing lands', async () => {
      const { term: old } = await lead('a');
      await old.append(durableEvents(1, 2, old.epoch));
      const reasons: string[] = [];
      old.onLost((r) => reasons.push(r));

      await fx.depose(old);
      const { term: rival } = await lead('b');
      expect(rival.epoch).toBeGreaterThan(old.epoch);

      const err = await rejection(old.append(durableEvents(3, 4, old.epoch)));
      expectCode(err, ErrorCode.Fenced);
      expect(old.lost).toBe(true);
      await waitFor(() => reasons.length === 1 || undefined, 'onLost to fire once');
      expectCode(
        await rejection(old.writeSnapshot({ index: 2, epoch: old.epoch, data: new Uint8Array(3) })),
        ErrorCode.Fenced,
      );

      await rival.append(durableEvents(3, 5, rival.epoch));
      const r = await rival.restore();
      expect(r.tail.map((e) => [e.index, e.epoch])).toEqual([
        [1, old.epoch],
        [2, old.epoch],
        [3, rival.epoch],
        [4, rival.epoch],
        [5, rival.epoch],
      ]);
      expect(reasons).toHaveLength(1);
    });

    it('resign frees the election for the next candidate and fences later writes', async () => {
      const { term } = await lead('a');
      const lost: string[] = [];
      term.onLost((r) => lost.push(r));
      await term.resign();
      expectCode(await rejection(term.append(durableEvents(1, 1))), ErrorCode.Fenced);
      const { term: next } = await lead('b');
      expect(next.epoch).toBeGreaterThan(term.epoch);
      expect(lost).toEqual([]); // resigning is not losing
    });

    it('refuses transient events and indexes that do not increase, writing nothing', async () => {
      const { term } = await lead('a');
      await term.append(durableEvents(1, 2));
      const transient = {
        ...durableEvent(3),
        type: 'MachineLost',
        machine: 'm1',
        reason: 'x',
      } as unknown as FlotillaEvent;
      expectCode(await rejection(term.append([transient])), ErrorCode.InvalidArgument);
      expectCode(
        await rejection(term.append([durableEvent(4), durableEvent(3)])),
        ErrorCode.InvalidArgument,
      );
      expectCode(await rejection(term.append([durableEvent(2)])), ErrorCode.InvalidArgument);
      expect(term.lost).toBe(false);
      expect((await term.restore()).tail.map((e) => e.index)).toEqual([1, 2]);
    });

    it('keeps a candidate waiting while another leads (or, single-process, takes over), and honours abort', async () => {
      const { term } = await lead('a');
      const other = await fx.open();
      const aborted = new AbortController();
      aborted.abort();
      await expect(other.campaign(candidate('b'), aborted.signal)).rejects.toBeDefined();

      if (fx.takesOverAtOnce) {
        const t2 = await other.campaign(candidate('b'), signal());
        expect(t2.epoch).toBeGreaterThan(term.epoch);
        expectCode(await rejection(term.append(durableEvents(1, 1))), ErrorCode.Fenced);
        expect(term.lost).toBe(true);
        return;
      }
      const ac = new AbortController();
      const waiting = other.campaign(candidate('b'), ac.signal);
      let settled = false;
      waiting.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false);
      ac.abort();
      await expect(waiting).rejects.toBeDefined();

      const next = other.campaign(candidate('b'), signal());
      await term.resign();
      const t2 = await next;
      expect(t2.epoch).toBeGreaterThan(term.epoch);
    });

    it('reports the leader to watchers: the current one first, then every change', async () => {
      const watcherStore = await fx.open();
      const seen: (LeaderInfo | undefined)[] = [];
      const stop = watcherStore.watchLeader((l) => seen.push(l));
      await waitFor(() => seen.length >= 1 || undefined, 'the first leader callback');
      expect(seen[0]).toBeUndefined();

      const { term } = await lead('a');
      await waitFor(
        () => seen.some((l) => l?.epoch === term.epoch) || undefined,
        'the watcher to see the new leader',
      );
      expect(seen.find((l) => l?.epoch === term.epoch)).toEqual({
        machine: 'a',
        address: 'a.test:7070',
        epoch: term.epoch,
      });
      expect(await watcherStore.leader()).toEqual({
        machine: 'a',
        address: 'a.test:7070',
        epoch: term.epoch,
      });
      await term.resign();
      await waitFor(
        () => (seen.length >= 3 && seen[seen.length - 1] === undefined) || undefined,
        'the watcher to see no leader',
      );
      stop();
      expect(await watcherStore.leader()).toBeUndefined();
    });

    it('readAll returns every durable event and the latest snapshot without campaigning', async () => {
      const { term } = await lead('a');
      const all = durableEvents(1, 6, term.epoch);
      await term.append(all.slice(0, 4));
      await term.writeSnapshot({ index: 4, epoch: term.epoch, data: new Uint8Array([7]) });
      await term.append(all.slice(4));
      const reader = await fx.open();
      const r = await reader.readAll();
      expect(r.snapshot?.index).toBe(4);
      expect(r.tail).toEqual(all);
      expect(term.lost).toBe(false);
      expect((await reader.leader())?.epoch).toBe(term.epoch);
    });
  });
}
