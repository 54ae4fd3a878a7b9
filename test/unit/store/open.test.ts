import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../../../src/errors';
import { FileLogStore, MemoryLogStore, openLogStore } from '../../../src/store';

describe('openLogStore', () => {
  it('opens a memory store and a file store', async () => {
    expect(openLogStore({ kind: 'memory' })).toBeInstanceOf(MemoryLogStore);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-open-'));
    try {
      const s = openLogStore({ kind: 'file', dir });
      expect(s).toBeInstanceOf(FileLogStore);
      await s.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [{ endpoints: [], cluster: 'c' }, 'endpoints'],
    [{ endpoints: ['http://127.0.0.1:1'], cluster: 'a/b' }, 'cluster'],
    [{ endpoints: ['http://127.0.0.1:1'], cluster: 'c', leaseTtlSeconds: 1 }, 'leaseTtlSeconds'],
    [
      { endpoints: ['http://127.0.0.1:1'], cluster: 'c', snapshotChunkBytes: 1.5 * 1024 * 1024 },
      'snapshotChunkBytes',
    ],
    [
      { endpoints: ['http://127.0.0.1:1'], cluster: 'c', maxTxnBytes: 2 * 1024 * 1024 },
      'maxTxnBytes',
    ],
  ])('refuses etcd options that break a limit (%j)', (options, field) => {
    expect(() => openLogStore({ kind: 'etcd', ...options })).toThrow(
      expect.objectContaining({ code: ErrorCode.ConfigInvalid, details: { field } }),
    );
  });
});
