/**
 * Flotilla's stable error codes. A code never changes meaning once released;
 * add new codes at the end. Codes cross gRPC in the "flotilla-error-code"
 * trailer and are never parsed out of messages.
 */
export const ErrorCode = {
  UnitFileInvalid: 'UNIT_FILE_INVALID',
  UnitNameInvalid: 'UNIT_NAME_INVALID',
  UnitOptionsInvalid: 'UNIT_OPTIONS_INVALID',
  UnitNotFound: 'UNIT_NOT_FOUND',
  UnitExists: 'UNIT_EXISTS',
  InvalidArgument: 'INVALID_ARGUMENT',
  InvalidState: 'INVALID_STATE',
  MachineNotFound: 'MACHINE_NOT_FOUND',
  NotLeader: 'NOT_LEADER',
  NoLeader: 'NO_LEADER',
  Fenced: 'FENCED',
  StoreUnavailable: 'STORE_UNAVAILABLE',
  StoreCorrupt: 'STORE_CORRUPT',
  AgentUnavailable: 'AGENT_UNAVAILABLE',
  Timeout: 'TIMEOUT',
  ConfigInvalid: 'CONFIG_INVALID',
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
  DriverFailed: 'DRIVER_FAILED',
  /** A message above the bus's largest payload (NATS `max_payload`). */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** The caller's role (from its client certificate) does not allow the call. */
  PermissionDenied: 'PERMISSION_DENIED',
  /** A call forwarded to the leader came back to a daemon that is not the leader. */
  ForwardingLoop: 'FORWARDING_LOOP',
  /** A history source (file, data directory, etcd cluster) that does not exist or holds nothing. */
  HistoryNotFound: 'HISTORY_NOT_FOUND',
  /** An event of a type or schema version this version does not know (src/history/schema.ts). */
  UnknownEventSchema: 'UNKNOWN_EVENT_SCHEMA',
  /** Folding the same history twice, or against a stored snapshot, gave different states. */
  HistoryDiverged: 'HISTORY_DIVERGED',
  /**
   * A bus message that breaks the protocol (not JSON, another version, a missing or mistyped
   * field, a machine speaking for another): its receiver logs it, counts it and drops it.
   */
  ProtocolViolation: 'PROTOCOL_VIOLATION',
  /** A bound on what one caller or the daemon holds at once (open streams) was reached. */
  ResourceExhausted: 'RESOURCE_EXHAUSTED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface FlotillaErrorOptions {
  cause?: unknown;
  /** True when the same call may succeed if tried again later (a marker, not a subclass). */
  retryable?: boolean;
  /** Structured details (file, line, field, unit…) for callers and logs. */
  details?: Record<string, string | number | boolean>;
}

/** The one error class that crosses module boundaries: a stable code, a message, details. */
export class FlotillaError extends Error {
  override name = 'FlotillaError';
  readonly retryable: boolean;
  readonly details: Record<string, string | number | boolean>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: FlotillaErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

export function isFlotillaError(err: unknown, code?: ErrorCode): err is FlotillaError {
  return err instanceof FlotillaError && (code === undefined || err.code === code);
}

/** Exhaustiveness guard for discriminated unions. */
export function assertNever(x: never, what = 'value'): never {
  throw new FlotillaError(ErrorCode.Internal, `unexpected ${what}: ${JSON.stringify(x)}`);
}

/** How many characters of a client's input an error message quotes at most. */
export const ECHO_MAX = 120;

/**
 * `s` made safe to quote in an error message or a log line: at most `max` characters (the rest
 * is counted, never echoed), control characters and lone surrogates escaped as `\uXXXX`. Every
 * message that repeats what a client sent goes through this: a 120 KB unit name must not come
 * back in a gRPC trailer, and a newline must not start a new log line.
 */
export function clip(s: string, max = ECHO_MAX): string {
  const str = String(s);
  let head = str.length > max ? str.slice(0, max) : str;
  // Do not cut a surrogate pair in two.
  if (head.length < str.length && /[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  const safe = head.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  const rest = str.length - head.length;
  return rest > 0 ? `${safe}…(${rest} more characters)` : safe;
}

/** The message of anything thrown, never throwing itself (a thrown object's toString may). */
export function errorText(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return 'an error that cannot be printed';
  }
}
