import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, FlotillaError } from '../errors';
import type { EtcdLogStore as EtcdLogStoreClass } from '../store/etcd';
import type { EtcdLogStoreOptions } from '../store/etcd/options';
import { FileLogStore } from '../store/file';
import type { LogStore, RawRestored, Restored } from '../store/types';
import { readHistoryFile } from './export';

/** Where a history is read from: a history file, a dev-mode data directory, or etcd. */
export type HistorySource =
  | { kind: 'file'; file: string }
  | { kind: 'data-dir'; dir: string }
  | {
      kind: 'etcd';
      options: EtcdLogStoreOptions;
      /** Added to the error when etcd cannot be reached (the CLI's: no etcd was named). */
      unreachableHint?: string;
    };

const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Reads a retained history (latest snapshot and durable log) without campaigning or writing
 * anything, and without creating anything: a source that does not exist, or holds no cluster,
 * is a HISTORY_NOT_FOUND error naming it.
 */
export async function readHistory(
  src: HistorySource,
): Promise<{ restored: Restored; cluster: string }> {
  return readSource(src, (store) => store.readAll());
}

/**
 * `readHistory` for a copy of the history (`flotilla events export`, `flotilla backup`): from
 * etcd, the events come unparsed, as stored (EtcdLogStore.readAllRaw), to be written out again
 * as they are; the other sources give them parsed.
 */
export async function readHistoryToCopy(
  src: HistorySource,
): Promise<{ restored: Restored | RawRestored; cluster: string }> {
  return readSource<Restored | RawRestored>(src, readToCopy);
}

/** A store's retained history to be copied: from etcd unparsed (readAllRaw), else parsed. */
export function readToCopy(store: LogStore): Promise<Restored | RawRestored> {
  return 'readAllRaw' in store ? (store as EtcdLogStoreClass).readAllRaw() : store.readAll();
}

async function readSource<R extends Restored | RawRestored>(
  src: HistorySource,
  read: (store: LogStore) => Promise<R>,
): Promise<{ restored: R | Restored; cluster: string }> {
  if (src.kind === 'file') {
    const { header, restored } = readHistoryFile(src.file);
    return { restored, cluster: header.cluster };
  }
  let store: LogStore;
  let where: string;
  if (src.kind === 'data-dir') {
    const dir = path.join(src.dir, 'store');
    where = `data directory ${src.dir}`;
    if (!fs.existsSync(src.dir))
      throw new FlotillaError(ErrorCode.HistoryNotFound, `${where} does not exist`, {
        details: { dir: src.dir },
      });
    if (!fs.existsSync(dir))
      throw new FlotillaError(
        ErrorCode.HistoryNotFound,
        `${where} holds no cluster (no ${dir}; is it flotillad --dev's --data-dir?)`,
        { details: { dir: src.dir } },
      );
    store = new FileLogStore({ dir, logger: silent });
  } else {
    where = `cluster "${src.options.cluster}" at ${src.options.endpoints.join(',')}`;
    // Loaded only for etcd: the client takes most of a second to load (a file needs none of it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { EtcdLogStore } = require('../store/etcd') as { EtcdLogStore: typeof EtcdLogStoreClass };
    store = new EtcdLogStore({ ...src.options, logger: silent });
  }
  let restored: R;
  try {
    restored = await read(store);
  } catch (err) {
    if (
      src.kind === 'etcd' &&
      err instanceof FlotillaError &&
      err.code === ErrorCode.StoreUnavailable
    )
      throw new FlotillaError(
        ErrorCode.StoreUnavailable,
        `cannot read ${where}: ${err.message}${src.unreachableHint ? `; ${src.unreachableHint}` : ''}`,
        { cause: err, retryable: true, details: { endpoints: src.options.endpoints.join(',') } },
      );
    throw err;
  } finally {
    await store.close();
  }
  if (!restored.snapshot && restored.tail.length === 0)
    throw new FlotillaError(
      ErrorCode.HistoryNotFound,
      `${where} holds no cluster (no events, no snapshot)`,
    );
  return { restored, cluster: src.kind === 'etcd' ? src.options.cluster : 'dev' };
}
