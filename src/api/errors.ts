import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError, StatusObject } from '@grpc/grpc-js';
import { clip, ErrorCode, errorText, FlotillaError, isFlotillaError } from '../errors';

/**
 * How FlotillaError crosses gRPC. The status code says the class of failure (so plain gRPC
 * clients behave sensibly); Flotilla's stable code travels in the trailer
 * `flotilla-error-code` and is never parsed out of the message. `details` and the retryable
 * marker travel in two more trailers so a forwarding follower can hand them on unchanged.
 */
export const ERROR_CODE_TRAILER = 'flotilla-error-code';
export const ERROR_DETAILS_TRAILER = 'flotilla-error-details';
export const ERROR_RETRYABLE_TRAILER = 'flotilla-error-retryable';

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** The gRPC status code for a Flotilla error code. */
export function grpcStatusFor(code: ErrorCode): GrpcStatus {
  switch (code) {
    case ErrorCode.UnitNotFound:
    case ErrorCode.MachineNotFound:
      return GrpcStatus.NOT_FOUND;
    case ErrorCode.InvalidArgument:
    case ErrorCode.ProtocolViolation:
    case ErrorCode.UnitFileInvalid:
    case ErrorCode.UnitNameInvalid:
    case ErrorCode.UnitOptionsInvalid:
    case ErrorCode.ConfigInvalid:
      return GrpcStatus.INVALID_ARGUMENT;
    case ErrorCode.InvalidState:
    case ErrorCode.ForwardingLoop:
      return GrpcStatus.FAILED_PRECONDITION;
    case ErrorCode.PermissionDenied:
      return GrpcStatus.PERMISSION_DENIED;
    case ErrorCode.NotLeader:
    case ErrorCode.NoLeader:
    case ErrorCode.StoreUnavailable:
    case ErrorCode.Unavailable:
    case ErrorCode.AgentUnavailable:
      return GrpcStatus.UNAVAILABLE;
    case ErrorCode.Timeout:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case ErrorCode.UnitExists:
      return GrpcStatus.ALREADY_EXISTS;
    case ErrorCode.ResourceExhausted:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/** The Flotilla code to use when a peer sent a gRPC status without our trailer. */
function codeForBareStatus(status: number): ErrorCode {
  switch (status) {
    case GrpcStatus.NOT_FOUND:
      return ErrorCode.UnitNotFound;
    case GrpcStatus.INVALID_ARGUMENT:
      return ErrorCode.InvalidArgument;
    case GrpcStatus.FAILED_PRECONDITION:
      return ErrorCode.InvalidState;
    case GrpcStatus.UNAVAILABLE:
      return ErrorCode.Unavailable;
    case GrpcStatus.DEADLINE_EXCEEDED:
      return ErrorCode.Timeout;
    case GrpcStatus.ALREADY_EXISTS:
      return ErrorCode.UnitExists;
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return ErrorCode.ResourceExhausted;
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
      return ErrorCode.PermissionDenied;
    default:
      return ErrorCode.Internal;
  }
}

/** The longest status message sent; longer ones are cut (gRPC sends it as an HTTP/2 header). */
export const STATUS_MESSAGE_MAX = 4096;
/** The longest string value of the details trailer. */
const DETAIL_VALUE_MAX = 256;

/**
 * JSON with every character outside printable ASCII written as `\uXXXX`: a valid gRPC ASCII
 * metadata value whatever a client sent, and `JSON.parse` gives the original text back.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `s` with every lone surrogate replaced by U+FFFD (String.prototype.toWellFormed). */
function wellFormed(s: string): string {
  return s.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    '\ufffd',
  );
}

/**
 * Turns anything a ClusterApi implementation threw into a gRPC status with the Flotilla
 * trailers. Errors that are not FlotillaError become INTERNAL without leaking their stack.
 * Nothing a client sent reaches the trailers unescaped: the details go as ASCII-only JSON with
 * bounded values, the message is bounded (grpc-js percent-encodes it). Never throws.
 */
export function toGrpcStatus(err: unknown): Partial<StatusObject> & { code: GrpcStatus } {
  const fe = isFlotillaError(err)
    ? err
    : new FlotillaError(ErrorCode.Internal, `internal error: ${clip(errorText(err), 500)}`);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_TRAILER, KNOWN_CODES.has(fe.code) ? fe.code : ErrorCode.Internal);
  if (Object.keys(fe.details).length > 0) {
    const details: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(fe.details)) {
      details[clip(k, 64)] = typeof v === 'string' ? clip(v, DETAIL_VALUE_MAX) : v;
    }
    metadata.set(ERROR_DETAILS_TRAILER, asciiJson(details));
  }
  if (fe.retryable) metadata.set(ERROR_RETRYABLE_TRAILER, 'true');
  const message =
    fe.message.length > STATUS_MESSAGE_MAX
      ? `${fe.message.slice(0, STATUS_MESSAGE_MAX)}…`
      : fe.message;
  // encodeURI (grpc-js, on the message) throws on a lone surrogate.
  return { code: grpcStatusFor(fe.code), details: wellFormed(message), metadata };
}

function firstString(md: Metadata | undefined, key: string): string | undefined {
  const v = md?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

function parseDetails(raw: string | undefined): Record<string, string | number | boolean> {
  if (raw === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    const out: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

/** TLS failures as OpenSSL/Node word them, and what they mean to someone running a command. */
const TLS_REASONS: [RegExp, string][] = [
  [
    /unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate|certificate signature failure/i,
    "TLS: the server's certificate is not signed by a trusted CA (check --ca-file)",
  ],
  [
    /certificate has expired|certificate is not yet valid/i,
    "TLS: the server's certificate has expired or is not valid yet",
  ],
  [
    /hostname\/ip does not match|ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i,
    "TLS: the server's certificate does not name this endpoint (its subjectAltName)",
  ],
  [
    /wrong version number|packet length too long|http_request|unknown protocol/i,
    'TLS: the server does not speak TLS (drop --ca-file/--cert-file for a plaintext endpoint)',
  ],
  [
    /certificate required|alert handshake failure|bad certificate|unknown ca/i,
    'TLS: the server refused our client certificate (it requires one its CA signed: --cert-file, --key-file)',
  ],
];

/** A short human reason for a transport failure, from grpc-js' details text, on one line. */
export function transportReason(details: string): string {
  // grpc-js: "No connection established. Last error: Error: <reason>. Resolution note: …"
  const last =
    /Last error: (?:Error: )?(.*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note:.*)?$/s.exec(
      details,
    );
  const reason = (last ? last[1] : details).replace(/\s+/g, ' ').trim();
  for (const [re, what] of TLS_REASONS) if (re.test(reason)) return `${what}: ${reason}`;
  if (/^Failed to connect$/i.test(reason))
    return 'connection failed during setup (a TLS server needs --ca-file)';
  const d = reason.toLowerCase();
  if (d.includes('econnrefused')) return 'connection refused';
  if (d.includes('enoent')) return 'no such socket';
  if (d.includes('eacces')) return 'permission denied';
  if (d.includes('enotfound') || d.includes('name resolution failed')) return 'unknown host';
  if (d.includes('etimedout')) return 'connection timed out';
  if (d.includes('econnreset')) return 'connection reset';
  return reason;
}

/**
 * Turns a grpc-js ServiceError back into the FlotillaError the server threw. Without our
 * trailer the failure came from the transport (nothing listening, TLS, a proxy) or from a
 * server that is not Flotilla; UNAVAILABLE then becomes "cannot reach flotilla at <endpoint>".
 */
export function fromServiceError(err: ServiceError, endpoint: string): FlotillaError {
  const md = err.metadata instanceof Metadata ? err.metadata : undefined;
  const trailerCode = firstString(md, ERROR_CODE_TRAILER);
  const details = parseDetails(firstString(md, ERROR_DETAILS_TRAILER));
  const retryable = firstString(md, ERROR_RETRYABLE_TRAILER) === 'true';
  const message = err.details || err.message;
  if (trailerCode !== undefined && KNOWN_CODES.has(trailerCode)) {
    return new FlotillaError(trailerCode as ErrorCode, message, { cause: err, details, retryable });
  }
  if (trailerCode !== undefined) {
    // A newer server may send a code this client does not know yet: keep the class of
    // failure from the status, and the unknown code in the details.
    return new FlotillaError(codeForBareStatus(err.code), message, {
      cause: err,
      details: { ...details, code: trailerCode },
      retryable,
    });
  }
  if (err.code === GrpcStatus.UNAVAILABLE) {
    return new FlotillaError(
      ErrorCode.Unavailable,
      `cannot reach flotilla at ${endpoint}: ${transportReason(message)}`,
      { cause: err, details: { endpoint }, retryable: true },
    );
  }
  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return new FlotillaError(ErrorCode.Timeout, `request to flotilla at ${endpoint} timed out`, {
      cause: err,
      details: { endpoint },
      retryable: true,
    });
  }
  if (err.code === GrpcStatus.UNIMPLEMENTED) {
    return new FlotillaError(
      ErrorCode.Unavailable,
      `flotilla at ${endpoint} does not implement this call: ${message}`,
      { cause: err, details: { endpoint } },
    );
  }
  return new FlotillaError(codeForBareStatus(err.code), message, { cause: err, details });
}

/** True when `err` looks like a grpc-js ServiceError (a status code and details). */
export function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === 'number' &&
    'details' in err &&
    'metadata' in err
  );
}
