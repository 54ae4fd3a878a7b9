import { ErrorCode, isFlotillaError } from '../../../src/errors';
import { MemoryBackend, MemoryLogStore, type MemoryTerm } from '../../../src/store/memory';
import type { LogStore } from '../../../src/store/types';
import { describeLogStoreContract, durableEvents } from '../../store-contract';

const CHUNK = 256 * 1024;

describeLogStoreContract('MemoryLogStore', async () => {
  const backend = new MemoryBackend({ snapshotChunkBytes: CHUNK });
  const opened: LogStore[] = [];
  return {
    chunkBytes: CHUNK,
    open: async () => {
      const s = backend.store();
      opened.push(s);
      return s;
    },
    depose: async () => {
      backend.depose('deposed by the test');
    },
    writeChunksOnly: async (term, snapshot) => {
      await (term as MemoryTerm).writeSnapshotChunks(snapshot);
    },
    close: async () => {
      for (const s of opened) await s.close();
    },
  };
});

describe('MemoryBackend', () => {
  const signal = () => new AbortController().signal;
  const cand = (m: string) => ({ machine: m, address: `${m}:1` });

  it('depose() ends the term at once and hands the election to a waiting candidate', async () => {
    const backend = new MemoryBackend();
    const a = await backend.store().campaign(cand('a'), signal());
    const reasons: string[] = [];
    a.onLost((r) => reasons.push(r));
    const b = backend.store().campaign(cand('b'), signal());
    expect(backend.depose('lease expired')).toBe(true);
    expect(a.lost).toBe(true);
    expect(reasons).toEqual(['lease expired']);
    const tb = await b;
    expect(tb.epoch).toBe(a.epoch + 1);
    expect(backend.currentLeader).toEqual({ machine: 'b', address: 'b:1', epoch: tb.epoch });
  });

  it('fails every call with retryable STORE_UNAVAILABLE while unavailable, without losing the term', async () => {
    const backend = new MemoryBackend();
    const store = new MemoryLogStore(backend);
    const term = await store.campaign(cand('a'), signal());
    await term.append(durableEvents(1, 2));
    backend.setUnavailable(true);
    const err = await term.append(durableEvents(3, 3)).catch((e: unknown) => e);
    expect(isFlotillaError(err, ErrorCode.StoreUnavailable)).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect(term.lost).toBe(false);
    await expect(store.readAll()).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable });
    backend.setUnavailable(false);
    await term.append(durableEvents(3, 3));
    expect((await term.restore()).tail.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('lets nobody win while unavailable and elects as soon as it is back', async () => {
    const backend = new MemoryBackend();
    backend.setUnavailable(true);
    const p = backend.store().campaign(cand('a'), signal());
    let won = false;
    void p.then(() => (won = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(won).toBe(false);
    backend.setUnavailable(false);
    expect((await p).epoch).toBe(1);
  });

  it('close() resigns the terms a client holds', async () => {
    const backend = new MemoryBackend();
    const store = backend.store();
    const term = await store.campaign(cand('a'), signal());
    await store.close();
    expect(backend.currentLeader).toBeUndefined();
    expect(term.lost).toBe(false);
    await expect(term.append(durableEvents(1, 1))).rejects.toMatchObject({
      code: ErrorCode.Fenced,
    });
  });
});
