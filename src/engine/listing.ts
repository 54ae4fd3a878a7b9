import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { preEncoded } from '../api/pre-encoded';
import { nextTurn } from '../turn';

/** Writes one repeated field-1 item made of already encoded parts (fields in any order). */
export function writeItem(w: BinaryWriter, ...parts: Uint8Array[]): void {
  let n = 0;
  for (const p of parts) n += p.length;
  w.uint32(10).uint32(n);
  for (const p of parts) w.raw(p);
}

/** How long one event-loop turn may spend writing a page before handing the loop back. */
export const LIST_TURN_MS = 15;
/** Items written between two looks at the clock. */
const CHECK_EVERY = 64;

/**
 * A listing page (`repeated <item> = 1; string next_page_token = 2;`, the shape of
 * ListUnitsResponse and ListUnitStatesResponse) written from already encoded items, about
 * `turnMs` per event-loop turn, so listing 20,000 units never holds the loop for long: writes,
 * agents' messages and the lease keepalive go in between. `item(i, w)` writes item i as field 1
 * (see `writeItem`), or nothing for an item that went away meanwhile (a unit destroyed while
 * the page is written).
 */
export async function encodePageInSlices<R extends object>(
  count: number,
  item: (i: number, w: BinaryWriter) => void,
  nextPageToken: string,
  decode: (bytes: Uint8Array) => R,
  turnMs = LIST_TURN_MS,
): Promise<R> {
  const w = new BinaryWriter();
  let deadline = performance.now() + turnMs;
  for (let i = 0; i < count; i++) {
    if (i % CHECK_EVERY === CHECK_EVERY - 1 && performance.now() >= deadline) {
      await nextTurn();
      deadline = performance.now() + turnMs;
    }
    item(i, w);
  }
  if (nextPageToken !== '') w.uint32(18).string(nextPageToken);
  return preEncoded(w.finish(), decode);
}
