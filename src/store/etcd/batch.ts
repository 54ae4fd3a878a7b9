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
import type { FlotillaEvent } from '../../events/types';
import { corruptError, invalidAppend, type StoreLogger } from '../common';
import type { EtcdKeys } from './keys';

export interface Piece {
  key: Buffer;
  value: Buffer;
}

interface StoredPiece {
  batch: number;
  part: number;
  parts: number;
  events: FlotillaEvent[];
}

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

function decodePiece(keys: EtcdKeys, key: Buffer, value: Buffer): StoredPiece {
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
export class LogAssembler {
  readonly events: FlotillaEvent[] = [];
  private group:
    | { batch: number; parts: number; next: number; key: string; events: FlotillaEvent[] }
    | undefined;
  private lastIndex = 0;

  constructor(
    private readonly keys: EtcdKeys,
    private readonly logger: StoreLogger,
  ) {}

  add(key: Buffer, value: Buffer): void {
    const p = decodePiece(this.keys, key, value);
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
  finish(): FlotillaEvent[] {
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
