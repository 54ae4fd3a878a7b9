/**
 * An event's metadata read from its JSON bytes, without `JSON.parse`.
 *
 * Every durable event is written by `JSON.stringify` of an object whose last fields are
 * `index`, `epoch`, `time` and `v`, in that order (src/engine: `{...body, index, epoch, time, v}`),
 * so its JSON ends with `…,"index":I,"epoch":E,"time":T,"v":V}`. Reading these four numbers
 * backwards from the closing brace is enough to order, count and frame events that are copied
 * (`flotilla events export`) or skipped (`replay --unit`) without being parsed. A layout that
 * does not match is reported as such, and the caller parses that event whole.
 */

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** The metadata fields of an event, last first. */
const TAIL_FIELDS = [',"v":', ',"time":', ',"epoch":', '"index":'].map(bytes);

/** Slots of the array `readEventTail` fills. */
export const TAIL_V = 0;
export const TAIL_TIME = 1;
export const TAIL_EPOCH = 2;
export const TAIL_INDEX = 3;

/**
 * Reads the metadata of the event whose closing brace is at `close` (whole numbers of 1 to 15
 * digits), into `out` (TAIL_V, TAIL_TIME, TAIL_EPOCH, TAIL_INDEX). Returns where `"index":`
 * starts, which is after `floor` and preceded by a comma; 0 when the bytes are not in this
 * layout (nothing is read past `floor`).
 */
export function readEventTail(
  buf: Uint8Array,
  close: number,
  floor: number,
  out: Float64Array,
): number {
  if (close <= floor || buf[close] !== 125) return 0;
  let p = close;
  for (let f = 0; f < TAIL_FIELDS.length; f++) {
    const start = digitsStart(buf, p, floor);
    if (start < 0) return 0;
    out[f] = numberAt(buf, start, p);
    p = fieldBefore(buf, start, TAIL_FIELDS[f], floor);
    if (p === 0) return 0;
  }
  return buf[p - 1] === 44 ? p : 0;
}

/** Where the 1 to 15 digits that end just before `end` (and after `floor`) start, or -1. */
function digitsStart(buf: Uint8Array, end: number, floor: number): number {
  let i = end;
  while (i > floor && buf[i - 1] >= 48 && buf[i - 1] <= 57) i--;
  return i === end || end - i > 15 ? -1 : i;
}

function numberAt(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (buf[i] - 48);
  return n;
}

/** Where `lit` starts when it ends just before `end` (and after `floor`), else 0. */
function fieldBefore(buf: Uint8Array, end: number, lit: Uint8Array, floor: number): number {
  const start = end - lit.length;
  if (start <= floor) return 0;
  for (let i = 0; i < lit.length; i++) if (buf[start + i] !== lit[i]) return 0;
  return start;
}

/**
 * Where the JSON object that opens at `open` closes (the index of its `}`), or -1 when it does
 * not close within `end`. Strings are skipped with the native search (a quote preceded by an odd
 * number of backslashes is escaped); the bytes are not otherwise checked to be JSON.
 */
export function objectEnd(buf: Buffer, open: number, end: number = buf.length): number {
  let depth = 0;
  for (let i = open; i < end; i++) {
    const c = buf[i];
    if (c === 34) {
      let j = i;
      for (;;) {
        j = buf.indexOf(34, j + 1);
        if (j < 0 || j >= end) return -1;
        let backslashes = 0;
        while (buf[j - 1 - backslashes] === 92) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = j;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      if (--depth === 0) return c === 125 ? i : -1;
    }
  }
  return -1;
}
