/**
 * The cluster API's page tokens: opaque to clients, produced by the server (ListUnits,
 * ListUnitStates) and read back by it. Here, with the API's contract, because both sides of the
 * API use them: the engine pages with them, and a client that resumes a listing at a unit
 * (src/api/unit-states.ts) makes the token the server would have sent.
 */
import { clip, ErrorCode, FlotillaError } from '../errors';

/** The longest page token accepted (a token holds one unit name and one machine ID). */
const TOKEN_MAX = 1024;

/**
 * A page token: the kind of listing and the sort key of the last item sent, base64url-encoded
 * so clients treat it as opaque. Only tokens this encoding produces are accepted back.
 */
export function encodePageToken(kind: 'units' | 'states', key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url');
}

/** The key in a token from {@link encodePageToken} for this listing; '' for no token. */
export function decodePageToken(kind: 'units' | 'states', token: string): string {
  if (token === '') return '';
  const refuse = (): never => {
    throw new FlotillaError(
      ErrorCode.InvalidArgument,
      `invalid page_token "${clip(token, 40)}": pass the next_page_token of the previous page`,
      { details: { field: 'page_token' } },
    );
  };
  if (token.length > TOKEN_MAX || !/^[A-Za-z0-9_-]+$/.test(token)) refuse();
  const text = Buffer.from(token, 'base64url').toString('utf8');
  // Canonical form only: what we would have written for this key.
  if (!text.startsWith(`${kind}:`) || encodePageToken(kind, text.slice(kind.length + 1)) !== token)
    refuse();
  return text.slice(kind.length + 1);
}
