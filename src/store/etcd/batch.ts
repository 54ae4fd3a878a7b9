/**
 * Log batches in etcd: one append = one batch = one key (or a few, for big batches).
 *
 * Value of every log key (JSON):
 *   {"batch":<first index>,"part":<i>,"parts":<n>,"events":[<FlotillaEvent>...]}
 * A batch whose JSON exceeds the chunk size is cut, between events, into parts 0..n-1 stored
 * under /log/<first> and /log/<first>.<i>. A reader accepts a batch only when all its parts are
 * present; an incomplete batch can only be the last one (a leader that died between the txns of
 * a multi-txn append, or a fenced one), is dropped with a warning, and is deleted by the next
 * append (see EtcdTerm.append).
 */
import { objectEnd, readEventTail, TAIL_INDEX } from '../../events/bytes';
import type { FlotillaEvent } from '../../events/types';
import type { RawEvent } from '../types';
import { corruptError, invalidAppend, type StoreLogger } from '../common';
import type { EtcdKeys } from './keys';

export interface Piece {
  key: Buffer;
  value: Buffer;
}

/** One log piece, decoded: its place in its batch and its events (parsed, or raw). */
export interface StoredPiece<E extends { index: number } = FlotillaEvent> {
  batch: number;
  part: number;
  parts: number;
  events: E[];
}

/** Decodes one log key/value into a piece (`decodePiece`, or `decodeRawPiece`). */
export type PieceDecoder<E extends { index: number }> = (
  keys: EtcdKeys,
  key: Buffer,
  value: Buffer,
) => StoredPiece<E>;

/** Room for the {"batch":…,"part":…,"parts":…,"events":[…]} wrapper. */
const WRAPPER_BYTES = 96;

function pieceValue(batch: number, part: number, parts: number, events: string[]): Buffer {
  return Buffer.from(
    `{"batch":${batch},"part":${part},"parts":${parts},"events":[${events.join(',')}]}`,
  );
}

/** Encodes one append into log pieces of at most `chunkBytes` each. */
export function encodeBatch(
  keys: EtcdKeys,
  events: readonly FlotillaEvent[],
  chunkBytes: number,
  maxAppendBytes: number,
): Piece[] {
  const first = events[0].index;
  const json = events.map((e) => JSON.stringify(e));
  const total = json.reduce((n, s) => n + Buffer.byteLength(s) + 1, WRAPPER_BYTES);
  if (total > maxAppendBytes) {
    throw invalidAppend(`batch of ${total} bytes exceeds maxAppendBytes (${maxAppendBytes})`, {
      bytes: total,
    });
  }
  if (total <= chunkBytes) return [{ key: keys.log(first), value: pieceValue(first, 0, 1, json) }];

  const budget = chunkBytes - WRAPPER_BYTES;
  const groups: string[][] = [];
  let current: string[] = [];
  let size = 0;
  json.forEach((s, i) => {
    const n = Buffer.byteLength(s) + 1;
    if (n > budget) {
      throw invalidAppend(`event ${events[i].index} is ${n} bytes, over the chunk size`, {
        index: events[i].index,
        bytes: n,
      });
    }
    if (size + n > budget && current.length > 0) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(s);
    size += n;
  });
  if (current.length > 0) groups.push(current);
  return groups.map((g, part) => ({
    key: keys.log(first, part),
    value: pieceValue(first, part, groups.length, g),
  }));
}

/** Packs pieces into txns of at most `maxBytes` of keys+values and `maxOps` puts, in order. */
export function packTxns<T extends Piece>(pieces: T[], maxBytes: number, maxOps: number): T[][] {
  const txns: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const p of pieces) {
    const n = p.key.length + p.value.length;
    if (cur.length > 0 && (bytes + n > maxBytes || cur.length >= maxOps)) {
      txns.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += n;
  }
  if (cur.length > 0) txns.push(cur);
  return txns;
}

export function decodePiece(keys: EtcdKeys, key: Buffer, value: Buffer): StoredPiece {
  const name = key.toString();
  const parts = keys.parseLog(key);
  if (!parts) throw corruptError(name, 'not a log key');
  let v: StoredPiece;
  try {
    v = JSON.parse(value.toString()) as StoredPiece;
  } catch (err) {
    throw corruptError(name, 'value is not JSON', err);
  }
  if (
    v.batch !== parts.batch ||
    v.part !== parts.part ||
    !Number.isInteger(v.parts) ||
    v.parts < 1 ||
    !Array.isArray(v.events)
  ) {
    throw corruptError(name, 'value does not match its key');
  }
  return v;
}

/**
 * Folds log key/values (in key order) into events. Stateful, so paged reads can feed it page by
 * page. Checks that indexes strictly increase across the whole log.
 */
export class LogAssembler<E extends { index: number } = FlotillaEvent> {
  readonly events: E[] = [];
  private group:
    { batch: number; parts: number; next: number; key: string; events: E[] } | undefined;
  private lastIndex = 0;

  constructor(
    private readonly keys: EtcdKeys,
    private readonly logger: StoreLogger,
    private readonly decode: PieceDecoder<E> = decodePiece as unknown as PieceDecoder<E>,
  ) {}

  add(key: Buffer, value: Buffer): void {
    const p = this.decode(this.keys, key, value);
    const name = key.toString();
    if (this.group && this.group.batch !== p.batch) {
      throw corruptError(
        this.group.key,
        `batch has ${this.group.next} of ${this.group.parts} parts`,
      );
    }
    if (!this.group) {
      if (p.part !== 0) throw corruptError(name, `part ${p.part} without part 0`);
      this.group = { batch: p.batch, parts: p.parts, next: 0, key: name, events: [] };
    }
    const g = this.group;
    if (p.part !== g.next || p.parts !== g.parts) throw corruptError(name, 'parts out of order');
    g.events.push(...p.events);
    g.next++;
    if (g.next === g.parts) {
      for (const e of g.events) {
        if (!(e.index > this.lastIndex)) {
          throw corruptError(g.key, `event index ${e.index} after ${this.lastIndex}`);
        }
        this.lastIndex = e.index;
        this.events.push(e);
      }
      this.group = undefined;
    }
  }

  /** Ends the log: an incomplete last batch was never acknowledged and is left out. */
  finish(): E[] {
    if (this.group) {
      this.logger.warn('ignoring an incomplete last batch (its append never completed)', {
        key: this.group.key,
        parts: this.group.parts,
        present: this.group.next,
      });
      this.group = undefined;
    }
    return this.events;
  }
}

/** Highest event index in a log value (for the last key of the log). */
export function lastIndexIn(keys: EtcdKeys, key: Buffer, value: Buffer): number {
  const p = decodePiece(keys, key, value);
  return p.events.length > 0 ? p.events[p.events.length - 1].index : p.batch;
}

/**
 * Decodes a log piece without parsing its events: each event is kept as its JSON bytes, with its
 * index read from them (src/events/bytes.ts), for a copy of the log (`flotilla events export`,
 * `flotilla backup`) that writes them out again as they are. A piece that is not exactly in the
 * layout `encodeBatch` writes, or an event whose metadata is not where the engine puts it, is
 * decoded by `decodePiece` (parsed, checked) and its events written again.
 */
export function decodeRawPiece(keys: EtcdKeys, key: Buffer, value: Buffer): StoredPiece<RawEvent> {
  const parts = keys.parseLog(key);
  const fast = parts && splitPiece(value);
  if (fast && fast.batch === parts.batch && fast.part === parts.part) return fast;
  const p = decodePiece(keys, key, value);
  return {
    ...p,
    events: p.events.map((e) => ({ index: e.index, json: Buffer.from(JSON.stringify(e)) })),
  };
}

const PIECE_FIELDS = ['{"batch":', ',"part":', ',"parts":', ',"events":['].map((s) =>
  Buffer.from(s, 'latin1'),
);
const tail = new Float64Array(4);

/** `{"batch":B,"part":P,"parts":N,"events":[E,…]}` split into its events' bytes, or undefined. */
function splitPiece(v: Buffer): StoredPiece<RawEvent> | undefined {
  const nums = [0, 0, 0];
  let at = 0;
  for (let f = 0; f < PIECE_FIELDS.length; f++) {
    const lit = PIECE_FIELDS[f];
    if (v.compare(lit, 0, lit.length, at, at + lit.length) !== 0) return undefined;
    at += lit.length;
    if (f === PIECE_FIELDS.length - 1) break;
    const start = at;
    let n = 0;
    while (at < v.length && v[at] >= 48 && v[at] <= 57 && at - start < 15)
      n = n * 10 + v[at++] - 48;
    if (at === start) return undefined;
    nums[f] = n;
  }
  const events: RawEvent[] = [];
  if (v[at] === 93) at++;
  else {
    for (;;) {
      if (v[at] !== 123) return undefined;
      const close = objectEnd(v, at);
      if (close < 0 || readEventTail(v, close, at, tail) === 0) return undefined;
      events.push({ index: tail[TAIL_INDEX], json: v.subarray(at, close + 1) });
      at = close + 1;
      if (v[at] === 44) at++;
      else if (v[at] === 93) {
        at++;
        break;
      } else return undefined;
    }
  }
  if (at !== v.length - 1 || v[at] !== 125 || nums[2] < 1) return undefined;
  return { batch: nums[0], part: nums[1], parts: nums[2], events };
}
