import { ErrorCode } from '../errors';
import { fleetError } from './errors';

/** fleet's default `token_limit`: items per page of every collection. */
export const DEFAULT_TOKEN_LIMIT = 100;

/**
 * fleet's `nextPageToken`. fleet encoded (limit, page number) and sliced the whole collection
 * for every page; here the token carries the page size and the Flotilla cursor of the last item
 * sent (an opaque string to clients either way), so each page costs one page of the cluster
 * API and units created or destroyed between two pages neither repeat nor vanish.
 */
interface Token {
  limit: number;
  after: string;
}

export function encodePageToken(limit: number, after: string): string {
  return Buffer.from(JSON.stringify({ limit, after } satisfies Token)).toString('base64url');
}

function badToken(why: string): Error {
  return fleetError(400, ErrorCode.InvalidArgument, `invalid value of nextPageToken: ${why}`, {
    field: 'nextPageToken',
  });
}

/** The cursor in a token from this server with this page size; 400 otherwise, as fleet did. */
export function decodePageToken(raw: string, limit: number): string {
  let tok: unknown;
  try {
    tok = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw badToken('not a token this server issued');
  }
  const t = tok as Partial<Token> | null;
  if (t === null || typeof t !== 'object' || typeof t.after !== 'string' || t.after === '') {
    throw badToken('not a token this server issued');
  }
  if (t.limit !== limit) throw badToken(`token limit must be ${limit}`);
  return t.after;
}

/** The `nextPageToken` query parameter: at most one (fleet: "too many values for page token"). */
export function pageTokenParam(query: URLSearchParams): string {
  const values = query.getAll('nextPageToken');
  if (values.length > 1) throw badToken('too many values for page token');
  return values[0] ?? '';
}

/** One page of a sorted source: at most `pageSize` items after the cursor `after` ('' = start). */
export type PageSource<T> = (
  pageSize: number,
  after: string,
) => Promise<{ items: T[]; next: string }>;

/**
 * One fleet page of `source`, keeping only the items `keep` accepts. A page is never empty
 * while more items follow: pages the filter emptied are skipped (fleet's clients stop at the
 * first page without a token, never at an empty one, but an empty page with a token is odd).
 */
export async function fleetPageOf<T>(
  source: PageSource<T>,
  limit: number,
  token: string,
  keep: (x: T) => boolean = () => true,
): Promise<{ items: T[]; next: string }> {
  let after = token ? decodePageToken(token, limit) : '';
  for (;;) {
    const page = await source(limit, after);
    const items = page.items.filter(keep);
    if (items.length > 0 || !page.next) {
      return { items, next: page.next ? encodePageToken(limit, page.next) : '' };
    }
    after = page.next;
  }
}

/** A PageSource over a list sorted by `key` held in memory (machines have no paged call). */
export function sliceSource<T>(all: T[], key: (x: T) => string): PageSource<T> {
  return async (pageSize, after) => {
    const rest = after ? all.filter((x) => key(x) > after) : all;
    const items = rest.slice(0, pageSize);
    const next = rest.length > pageSize ? key(items[items.length - 1]) : '';
    return { items, next };
  };
}
