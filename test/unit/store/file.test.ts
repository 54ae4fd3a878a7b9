import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../../../src/errors';
import { FileLogStore, type FileTerm } from '../../../src/store/file';
import type { LogStore } from '../../../src/store/types';
import { describeLogStoreContract, durableEvents } from '../../store-contract';

const silent = { warn: () => undefined };

describeLogStoreContract('FileLogStore', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-filestore-'));
  const opened: LogStore[] = [];
  return {
    takesOverAtOnce: true,
    open: async () => {
      const s = new FileLogStore({ dir, logger: silent });
      opened.push(s);
      return s;
    },
    // A second FileLogStore's campaign takes over by itself.
    depose: async () => undefined,
    writeChunksOnly: async (term, snapshot) => {
      await (term as FileTerm).writeSnapshotChunks(snapshot);
    },
    close: async () => {
      for (const s of opened) await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('FileLogStore crash behaviour', () => {
  let dir: string;
  const signal = () => new AbortController().signal;
  const cand = { machine: 'dev', address: 'localhost:7070' };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-filestore-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ignores a torn last line with a warning, keeps every earlier batch, and appends cleanly after it', async () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => warnings.push(m) };
    const store = new FileLogStore({ dir, logger });
    const term = await store.campaign(cand, signal());
    await term.append(durableEvents(1, 3));
    await term.append(durableEvents(4, 5));
    // A crash in the middle of writing the third batch's line.
    const line = JSON.stringify({ epoch: term.epoch, events: durableEvents(6, 9) });
    fs.appendFileSync(path.join(dir, 'log.jsonl'), line.slice(0, line.length / 2));

    const reader = new FileLogStore({ dir, logger });
    expect((await reader.readAll()).tail.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/torn last line/);

    // The next leader truncates the torn bytes; its batches start on a clean line.
    const next = await new FileLogStore({ dir, logger }).campaign(cand, signal());
    expect(next.epoch).toBe(term.epoch + 1);
    expect((await next.restore()).tail.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    await next.append(durableEvents(6, 7, next.epoch));
    const all = await reader.readAll();
    expect(all.tail.map((e) => [e.index, e.epoch])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
      [6, 2],
      [7, 2],
    ]);
    expect(fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').endsWith('\n')).toBe(true);
  });

  it('refuses a damaged line that is not the last one with STORE_CORRUPT naming file and line', async () => {
    const store = new FileLogStore({ dir, logger: silent });
    const term = await store.campaign(cand, signal());
    await term.append(durableEvents(1, 1));
    await term.append(durableEvents(2, 2));
    const file = path.join(dir, 'log.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[0] = lines[0].slice(0, 10);
    fs.writeFileSync(file, lines.join('\n'));
    await expect(store.readAll()).rejects.toMatchObject({
      code: ErrorCode.StoreCorrupt,
      details: { key: `${file}:1` },
    });
  });

  it('detects a snapshot whose bytes do not match its sha256', async () => {
    const store = new FileLogStore({ dir, logger: silent });
    const term = await store.campaign(cand, signal());
    await term.writeSnapshot({ index: 0, epoch: term.epoch, data: new Uint8Array(100).fill(7) });
    const file = path.join(dir, 'snapshot.bin');
    const buf = fs.readFileSync(file);
    buf[buf.length - 1] ^= 0xff;
    fs.writeFileSync(file, buf);
    await expect(term.restore()).rejects.toMatchObject({ code: ErrorCode.StoreCorrupt });
  });

  it('continues the epoch sequence from the log when the election file is gone', async () => {
    const store = new FileLogStore({ dir, logger: silent });
    const t1 = await store.campaign(cand, signal());
    await t1.append(durableEvents(1, 1, t1.epoch));
    const t2 = await store.campaign(cand, signal());
    await t2.append(durableEvents(2, 2, t2.epoch));
    fs.rmSync(path.join(dir, 'election.json'));
    const t3 = await new FileLogStore({ dir, logger: silent }).campaign(cand, signal());
    expect(t3.epoch).toBe(t2.epoch + 1);
  });
});
