/**
 * Reads of the durable state: the snapshot a manifest names and the log, page by page, all at one
 * etcd revision so a reader sees one consistent moment even while the leader keeps writing or
 * compacting.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { FlotillaEvent } from '../../events/types';
import type { StoreLogger } from '../common';
import type { RawEvent, RawRestored, Restored, Snapshot } from '../types';
import { LogAssembler, type PieceDecoder } from './batch';
import type { EtcdKeys } from './keys';
import { assembleSnapshot, parseManifest, type Manifest } from './snapshot';

/** Log keys per page: small batches are ~1 KiB; a page of huge ones stays well under 256 MiB. */
const LOG_PAGE = 64;
const CHUNK_PAGE = 16;

export interface ReadContext {
  client: Etcd3;
  keys: EtcdKeys;
  logger: StoreLogger;
  /** Deadline per page read. */
  readTimeoutMs: number;
}

/** Calls `onPage` with every key/value of [key, end) in key order, `limit` keys per call. */
export async function rangePages(
  ctx: ReadContext,
  key: Buffer,
  end: Buffer,
  revision: string,
  limit: number,
  onPage: (kvs: IKeyValue[]) => void,
  keysOnly = false,
): Promise<void> {
  let from = key;
  while (true) {
    const res = await ctx.client.kv.range(
      { key: from, range_end: end, limit, revision, keys_only: keysOnly },
      { deadline: Date.now() + ctx.readTimeoutMs },
    );
    if (res.kvs.length > 0) onPage(res.kvs);
    if (!res.more || res.kvs.length === 0) return;
    from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
  }
}

export async function readSnapshot(
  ctx: ReadContext,
  manifestValue: Buffer,
  revision: string,
): Promise<{ snapshot: Snapshot; manifest: Manifest }> {
  const manifest = parseManifest(ctx.keys, manifestValue);
  const chunks: (Buffer | undefined)[] = new Array<Buffer | undefined>(manifest.chunks);
  const first = ctx.keys.chunk(manifest.set, 0);
  const end = ctx.keys.chunk(manifest.set, manifest.chunks);
  const prefix = ctx.keys
    .chunk(manifest.set, 0)
    .subarray(0, first.length - 6)
    .toString();
  await rangePages(ctx, first, end, revision, CHUNK_PAGE, (kvs) => {
    for (const kv of kvs) {
      const n = Number(kv.key.toString().slice(prefix.length));
      if (Number.isInteger(n) && n < manifest.chunks) chunks[n] = kv.value;
    }
  });
  return { snapshot: assembleSnapshot(ctx.keys, manifest, chunks), manifest };
}

/**
 * The first log key worth reading to get every event after `index`: the head of the batch that
 * holds index + 1 (a batch may straddle a snapshot), found with one keys-only range.
 */
export async function logStartAfter(
  ctx: ReadContext,
  index: number,
  revision: string,
): Promise<Buffer> {
  if (index <= 0) return ctx.keys.logPrefix;
  const res = await ctx.client.kv.range(
    {
      key: ctx.keys.logPrefix,
      range_end: ctx.keys.log(index + 1),
      limit: 1,
      revision,
      keys_only: true,
      sort_order: 'Descend',
      sort_target: 'Key',
    },
    { deadline: Date.now() + ctx.readTimeoutMs },
  );
  const last = res.kvs[0];
  const parts = last && ctx.keys.parseLog(last.key);
  return parts ? ctx.keys.log(parts.batch) : ctx.keys.logPrefix;
}

export async function readLog<E extends { index: number } = FlotillaEvent>(
  ctx: ReadContext,
  from: Buffer,
  revision: string,
  decode?: PieceDecoder<E>,
): Promise<E[]> {
  const asm = new LogAssembler<E>(ctx.keys, ctx.logger, decode);
  await rangePages(ctx, from, ctx.keys.logEnd, revision, LOG_PAGE, (kvs) => {
    for (const kv of kvs) asm.add(kv.key, kv.value);
  });
  return asm.finish();
}

/**
 * Reads the state at `revision` (the revision at which `manifestKv` was read). `all`: every
 * event still in the log (for replay); otherwise only those after the snapshot (for a leader).
 * With `decodeRawPiece`, the events are kept unparsed (a copy of the history).
 */
export async function readState(
  ctx: ReadContext,
  manifestKv: IKeyValue | undefined,
  revision: string,
  all: boolean,
): Promise<Restored>;
export async function readState(
  ctx: ReadContext,
  manifestKv: IKeyValue | undefined,
  revision: string,
  all: boolean,
  decode: PieceDecoder<RawEvent>,
): Promise<RawRestored>;
export async function readState<E extends { index: number }>(
  ctx: ReadContext,
  manifestKv: IKeyValue | undefined,
  revision: string,
  all: boolean,
  decode?: PieceDecoder<E>,
): Promise<{ snapshot?: Snapshot; tail: E[] }> {
  const snap = manifestKv ? await readSnapshot(ctx, manifestKv.value, revision) : undefined;
  const after = snap?.snapshot.index ?? 0;
  const from = all ? ctx.keys.logPrefix : await logStartAfter(ctx, after, revision);
  const events = await readLog<E>(ctx, from, revision, decode);
  const tail = all ? events : events.filter((e) => e.index > after);
  return snap ? { snapshot: snap.snapshot, tail } : { tail };
}
