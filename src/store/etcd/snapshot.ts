/**
 * Snapshot format in etcd: the bytes cut into chunks under /snapshot/<set>/chunk/<n>, then the
 * manifest at /snapshot/manifest, written LAST, in its own fenced txn. The manifest is the commit
 * point: a reader only follows the manifest, so chunks without one (a leader that died while
 * writing) are never read, and the previous snapshot stays current.
 *
 * Manifest (JSON): {"index","epoch","set","chunks","bytes","sha256","chunkSha256":[…]}. Each
 * chunk is checked against its own sha256 (a mismatch names the chunk's key), the whole against
 * `sha256`.
 */
import { corruptError, sha256Hex } from '../common';
import type { Snapshot } from '../types';
import type { Piece } from './batch';
import type { EtcdKeys } from './keys';

export interface Manifest {
  index: number;
  epoch: number;
  /** Chunk set name: /snapshot/<set>/chunk/<n>. */
  set: string;
  chunks: number;
  bytes: number;
  sha256: string;
  chunkSha256: string[];
}

export function chunkSnapshot(
  keys: EtcdKeys,
  snapshot: Snapshot,
  set: string,
  chunkBytes: number,
): { pieces: Piece[]; manifest: Manifest } {
  const data = Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.length);
  const pieces: Piece[] = [];
  const chunkSha256: string[] = [];
  for (let at = 0, n = 0; at < data.length || n === 0; at += chunkBytes, n++) {
    const value = data.subarray(at, at + chunkBytes);
    pieces.push({ key: keys.chunk(set, n), value });
    chunkSha256.push(sha256Hex(value));
  }
  const manifest: Manifest = {
    index: snapshot.index,
    epoch: snapshot.epoch,
    set,
    chunks: pieces.length,
    bytes: data.length,
    sha256: sha256Hex(data),
    chunkSha256,
  };
  return { pieces, manifest };
}

export function parseManifest(keys: EtcdKeys, value: Buffer): Manifest {
  const name = keys.manifest.toString();
  let m: Manifest;
  try {
    m = JSON.parse(value.toString()) as Manifest;
  } catch (err) {
    throw corruptError(name, 'manifest is not JSON', err);
  }
  if (
    !Number.isInteger(m.index) ||
    !Number.isInteger(m.chunks) ||
    typeof m.set !== 'string' ||
    !Array.isArray(m.chunkSha256) ||
    m.chunkSha256.length !== m.chunks
  ) {
    throw corruptError(name, 'manifest is missing fields');
  }
  return m;
}

/** Joins chunks (in order) and checks every checksum; `undefined` chunks are missing keys. */
export function assembleSnapshot(
  keys: EtcdKeys,
  m: Manifest,
  chunks: (Buffer | undefined)[],
): Snapshot {
  const data = new Uint8Array(m.bytes);
  let at = 0;
  chunks.forEach((c, n) => {
    const key = keys.chunk(m.set, n).toString();
    if (!c) throw corruptError(key, 'snapshot chunk missing');
    if (sha256Hex(c) !== m.chunkSha256[n]) throw corruptError(key, 'sha256 mismatch');
    if (at + c.length > m.bytes) throw corruptError(key, 'snapshot longer than its manifest');
    data.set(c, at);
    at += c.length;
  });
  if (at !== m.bytes || sha256Hex(data) !== m.sha256) {
    throw corruptError(keys.manifest.toString(), 'snapshot bytes do not match the manifest');
  }
  return { index: m.index, epoch: m.epoch, data };
}
