import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { authorizedApi, contextOfCertificate, withCall, type CallContext } from '../api/access';
import type { ClusterApi } from '../api/types';
import { clip, ErrorCode } from '../errors';
import type { LogSink } from '../log';
import { DISCOVERY_JSON } from './discovery';
import { ERROR_CODE_HEADER, errorBody, fleetError, toHttpError } from './errors';
import { LaunchRequests } from './launched';
import { listMachines, patchMachines } from './machines';
import { DEFAULT_TOKEN_LIMIT, pageTokenParam } from './pagination';
import { decodeMetadataOps, decodeUnitBody, readBody, requireJson } from './request';
import { getState, listStates } from './state';
import type { Reply } from './units';
import { destroyUnit, getUnit, listUnits, setUnit } from './units';

export const PREFIX = '/fleet/v1';

export interface FleetApiOptions {
  /** Items per page of every collection (fleet's `token_limit`, default 100). */
  tokenLimit?: number;
  log?: LogSink;
  /** Told about every failure that is a bug rather than a refusal (the daemon logs and counts it). */
  onInternalError?: (what: string, err: unknown) => void;
}

export type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function methodNotAllowed(allowed: string): Error {
  return fleetError(
    405,
    ErrorCode.InvalidArgument,
    `only ${allowed} supported against this resource`,
  );
}

/** fleet's mux answered unknown paths 404 and `/`, `/fleet/v1` 405, both without a message. */
const bare = (status: number): Error => fleetError(status, ErrorCode.InvalidArgument, '');

/**
 * Routes one request as fleet's ServeMux and resources did: the collection paths exactly, an
 * item path is one more segment (percent-decoded, no trailing slash), anything else 404.
 */
async function route(
  api: ClusterApi,
  launches: LaunchRequests,
  limit: number,
  req: http.IncomingMessage,
  url: URL,
  path: string,
): Promise<Reply> {
  const method = req.method ?? 'GET';
  const query = url.searchParams;
  if (path === '/' || path === PREFIX) throw bare(405);
  if (!path.startsWith(PREFIX + '/')) throw bare(404);
  const rest = path.slice(PREFIX.length + 1);
  const slash = rest.indexOf('/');
  const resource = slash < 0 ? rest : rest.slice(0, slash);
  const item = slash < 0 ? undefined : rest.slice(slash + 1);
  const isItem = item !== undefined && item !== '' && !item.includes('/');

  if (resource === 'units' && item === undefined) {
    if (method !== 'GET') throw methodNotAllowed('GET');
    return listUnits(api, launches, limit, pageTokenParam(query));
  }
  if (resource === 'units' && isItem) {
    if (method === 'GET') return getUnit(api, launches, item);
    if (method === 'DELETE') return destroyUnit(api, launches, item);
    if (method === 'PUT') {
      requireJson(req);
      return setUnit(api, launches, item, decodeUnitBody(await readBody(req)));
    }
    throw methodNotAllowed('GET, PUT and DELETE');
  }
  if (resource === 'state' && item === undefined) {
    if (method !== 'GET') throw methodNotAllowed('GET');
    return listStates(api, limit, pageTokenParam(query), {
      machineID: query.get('machineID') ?? '',
      unitName: query.get('unitName') ?? '',
    });
  }
  if (resource === 'state' && isItem) {
    if (method !== 'GET') throw methodNotAllowed('GET');
    return getState(api, item);
  }
  if (resource === 'machines' && item === undefined) {
    if (method === 'GET') return listMachines(api, limit, pageTokenParam(query));
    if (method === 'PATCH') return patchMachines(api, decodeMetadataOps(await readBody(req)));
    throw methodNotAllowed('GET and PATCH');
  }
  if ((resource === 'discovery' || resource === 'discovery.json') && item === undefined) {
    // fleet answered 400 here, not 405.
    if (method !== 'GET') {
      throw fleetError(
        400,
        ErrorCode.InvalidArgument,
        'only HTTP GET supported against this resource',
      );
    }
    return { status: 200, body: DISCOVERY_JSON };
  }
  throw bare(404);
}

/**
 * The request's URL. A path is read as a path even when it starts with `//` (which the URL
 * parser would take for a host); anything unparsable is a 400 naming it.
 */
function requestUrl(raw: string): URL {
  try {
    return raw.startsWith('/') ? new URL(`http://fleet${raw}`) : new URL(raw, 'http://fleet');
  } catch {
    throw fleetError(400, ErrorCode.InvalidArgument, `invalid request URL ${clip(raw)}`);
  }
}

function send(res: http.ServerResponse, status: number, body: string | undefined): void {
  res.setHeader('Server', 'flotillad');
  if (body === undefined || status === 204) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * fleet's HTTP API v1 (`/fleet/v1/...`) over a ClusterApi, as a Node `http` request listener:
 * what the original fleetctl speaks. Errors are fleet's error entity with the status of their
 * Flotilla code (errors.ts).
 */
export function fleetApiHandler(served: ClusterApi, opts: FleetApiOptions = {}): RequestListener {
  // Every call checked against the request's role, as on gRPC (docs/security.md).
  const api = authorizedApi(served);
  const limit = opts.tokenLimit ?? DEFAULT_TOKEN_LIMIT;
  const launches = new LaunchRequests();
  const report = (err: unknown, req: http.IncomingMessage): void => {
    try {
      opts.onInternalError?.(`${req.method ?? '?'} ${clip(req.url ?? '', 200)}`, err);
    } catch {
      // The reporter must not turn an answer into a crash.
    }
  };
  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let reply: Reply;
    try {
      const url = requestUrl(req.url ?? '/');
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        throw fleetError(
          400,
          ErrorCode.InvalidArgument,
          `invalid escape in path ${clip(url.pathname)}`,
        );
      }
      reply = await route(api, launches, limit, req, url, path);
    } catch (err) {
      const e = toHttpError(err);
      if (e.status >= 500 && e.code === ErrorCode.Internal) report(err, req);
      opts.log?.[e.status >= 500 ? 'warn' : 'debug']('fleet API request failed', {
        method: req.method,
        url: clip(req.url ?? '', 200),
        status: e.status,
        code: e.code,
        error: clip(e.message, 500),
      });
      if (!res.headersSent) {
        // An error the client may get past by retrying (a leader election, the store).
        if (e.retryable || e.status === 503) res.setHeader('Retry-After', '1');
        res.setHeader(ERROR_CODE_HEADER, e.code);
        send(res, e.status, errorBody(e.status, e.message));
      }
      req.resume();
      return;
    }
    const body =
      reply.body === undefined
        ? undefined
        : typeof reply.body === 'string'
          ? reply.body
          : JSON.stringify(reply.body);
    send(res, reply.status, body);
    req.resume();
  };
  return (req, res) => {
    // Whatever a handler does wrong ends this request with a 500, never the daemon.
    withCall(callContext(req), () => answer(req, res)).catch((err: unknown) => {
      report(err, req);
      try {
        if (!res.headersSent) send(res, 500, errorBody(500, 'internal error'));
        else res.destroy();
      } catch {
        res.destroy();
      }
    });
  };
}

/**
 * The caller's role: from its client certificate over TLS (mTLS), as on gRPC; a request without
 * one came through a listener that needs none (the unix socket, a loopback or insecure TCP
 * listener): operator.
 */
function callContext(req: http.IncomingMessage): CallContext {
  const socket = req.socket as Partial<TLSSocket>;
  const cert =
    socket.encrypted === true && typeof socket.getPeerCertificate === 'function'
      ? socket.getPeerCertificate()
      : undefined;
  return contextOfCertificate(cert);
}
