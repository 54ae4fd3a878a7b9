import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { preEncoded } from '../api/pre-encoded';
import { nextTurn } from './turn';

/** Items encoded per event-loop turn (about 3 ms for units on this project's benchmark machine). */
export const LIST_SLICE = 500;

/**
 * A listing page (`repeated <item> = 1; string next_page_token = 2;`, the shape of
 * ListUnitsResponse and ListUnitStatesResponse) encoded `slice` items per event-loop turn, so
 * listing 20,000 units never holds the loop for longer than a slice: writes, agents' messages
 * and the lease keepalive go in between. `item(i)` may return undefined for an item that went
 * away meanwhile (a unit destroyed while the page is written).
 */
export async function encodePageInSlices<M, R extends object>(
  itemFns: { encode(message: M, writer: BinaryWriter): BinaryWriter },
  count: number,
  item: (i: number) => M | undefined,
  nextPageToken: string,
  decode: (bytes: Uint8Array) => R,
  slice = LIST_SLICE,
): Promise<R> {
  const w = new BinaryWriter();
  for (let i = 0; i < count; i++) {
    if (i > 0 && i % slice === 0) await nextTurn();
    const m = item(i);
    if (m !== undefined) itemFns.encode(m, w.uint32(10).fork()).join();
  }
  if (nextPageToken !== '') w.uint32(18).string(nextPageToken);
  return preEncoded(w.finish(), decode);
}
