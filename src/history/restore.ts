/**
 * Writes a history file (src/history/export-format.ts) into an empty store, offline: a
 * dev-mode data directory (the file store) or an etcd cluster prefix. The restored store holds
 * the same snapshot and retained log, so the first leader elected on it folds the same units,
 * hashes and target states. Machine presence and unit states are transient and come back from
 * the agents, as after any failover.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, FlotillaError } from '../errors';
import { createEtcdClient } from '../store/etcd/client';
import { EtcdKeys } from '../store/etcd/keys';
import { resolveOptions, type EtcdLogStoreOptions } from '../store/etcd/options';
import { openLogStore } from '../store/open';
import type { StoreLogger } from '../store/common';
import type { LogStore } from '../store/types';
import type { HistoryFile } from './export-format';

export type RestoreTarget =
  { kind: 'file'; dataDir: string } | { kind: 'etcd'; options: EtcdLogStoreOptions };

export interface RestoreResult {
  events: number;
  snapshotIndex: number;
  /** Where it went, for the CLI's message. */
  where: string;
}

/** Events written per append (each append is one atomic store write). */
const APPEND_BATCH = 500;

const silent: StoreLogger = { warn: () => undefined };

function notEmpty(where: string, what: string): FlotillaError {
  return new FlotillaError(
    ErrorCode.InvalidState,
    `${where} is not empty (${what}); restore only writes into an empty store (--force replaces it)`,
    { details: { target: where } },
  );
}

/** The file store directory of a dev-mode data directory (as flotillad --dev uses it). */
export function fileStoreDir(dataDir: string): string {
  return path.join(dataDir, 'store');
}

/** Empties (with `force`) or checks the target; for etcd, seeds the epoch counter. */
async function prepare(target: RestoreTarget, h: HistoryFile, force: boolean): Promise<string> {
  if (target.kind === 'file') {
    const dir = fileStoreDir(target.dataDir);
    const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    if (entries.length > 0) {
      if (!force) throw notEmpty(dir, `${entries.length} files`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return dir;
  }
  const o = resolveOptions({ ...target.options, logger: silent });
  const keys = new EtcdKeys(o.cluster);
  const where = `etcd ${o.endpoints.join(',')} cluster ${o.cluster}`;
  const client = createEtcdClient(o);
  try {
    const leader = await client.get(keys.leader.toString()).string();
    if (leader !== null) {
      throw new FlotillaError(
        ErrorCode.InvalidState,
        `${where} has a live leader (${leader}); stop every flotillad of the cluster before restoring`,
        { details: { target: where } },
      );
    }
    const count = await client.getAll().prefix(keys.root).count();
    if (count > 0) {
      if (!force) throw notEmpty(where, `${count} keys under ${keys.root}`);
      await client.delete().prefix(keys.root);
    }
    // Every restored event and the snapshot keep their epochs; the next leader's must be
    // greater, as the file store ensures by itself. The restore's own term takes max + 1.
    const maxEpoch = Math.max(
      h.restored.snapshot?.epoch ?? 0,
      ...h.restored.tail.map((e) => e.epoch),
      0,
    );
    await client.put(keys.epoch.toString()).value(String(maxEpoch));
    return where;
  } catch (err) {
    if (err instanceof FlotillaError) throw err;
    throw new FlotillaError(ErrorCode.StoreUnavailable, `${where}: ${(err as Error).message}`, {
      cause: err,
      retryable: true,
    });
  } finally {
    client.close();
  }
}

/**
 * Restores `h` into `target`. Refuses a non-empty target unless `force` (which first deletes
 * what is there), and an etcd cluster with a live leader in any case.
 */
export async function restoreHistory(
  target: RestoreTarget,
  h: HistoryFile,
  force: boolean,
): Promise<RestoreResult> {
  const where = await prepare(target, h, force);
  const store: LogStore =
    target.kind === 'file'
      ? openLogStore({ kind: 'file', dir: fileStoreDir(target.dataDir), logger: silent })
      : openLogStore({ kind: 'etcd', ...target.options, logger: silent });
  try {
    const term = await store.campaign(
      { machine: 'flotilla-restore', address: '' },
      AbortSignal.timeout(30_000),
    );
    const events = h.restored.tail;
    for (let i = 0; i < events.length; i += APPEND_BATCH)
      await term.append(events.slice(i, i + APPEND_BATCH));
    if (h.restored.snapshot) await term.writeSnapshot(h.restored.snapshot);
    await term.resign();
    return { events: events.length, snapshotIndex: h.restored.snapshot?.index ?? 0, where };
  } finally {
    await store.close();
  }
}
