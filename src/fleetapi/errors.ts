import { clip, ErrorCode, errorText, FlotillaError, isFlotillaError } from '../errors';

/**
 * How FlotillaError crosses fleet's HTTP API: the status says the class of failure (fleet's
 * client, Google's generated `googleapi`, treats any non-2xx as an error and 404 as "not
 * found"), the body is fleet's error entity `{"error":{"code":N,"message":"..."}}`. Flotilla's
 * stable code goes in the `X-Flotilla-Error-Code` header, never into the message.
 */
export const ERROR_CODE_HEADER = 'x-flotilla-error-code';

/** The HTTP status for a Flotilla error code (the same classes as src/api/errors.ts for gRPC). */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.UnitNotFound:
    case ErrorCode.MachineNotFound:
      return 404;
    case ErrorCode.InvalidArgument:
    case ErrorCode.ProtocolViolation:
    case ErrorCode.UnitFileInvalid:
    case ErrorCode.UnitNameInvalid:
    case ErrorCode.UnitOptionsInvalid:
    case ErrorCode.ConfigInvalid:
      return 400;
    case ErrorCode.InvalidState:
    case ErrorCode.UnitExists:
      return 409;
    case ErrorCode.PayloadTooLarge:
      return 413;
    case ErrorCode.PermissionDenied:
      return 403;
    case ErrorCode.NotLeader:
    case ErrorCode.NoLeader:
    case ErrorCode.StoreUnavailable:
    case ErrorCode.Unavailable:
    case ErrorCode.AgentUnavailable:
    case ErrorCode.Fenced:
      return 503;
    case ErrorCode.Timeout:
      return 504;
    default:
      return 500;
  }
}

/**
 * An error this adapter answers itself with a status fleet used for it (415 for a wrong
 * Content-Type, 405 for a method, 409 for fleet's conflicts…): a FlotillaError whose
 * `details.httpStatus` overrides the mapping by code.
 */
export function fleetError(
  status: number,
  code: ErrorCode,
  message: string,
  details: Record<string, string | number | boolean> = {},
): FlotillaError {
  return new FlotillaError(code, message, { details: { ...details, httpStatus: status } });
}

export interface HttpError {
  status: number;
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

/** Anything a handler threw, as the status and message to send. Non-Flotilla errors are 500. */
export function toHttpError(err: unknown): HttpError {
  if (!isFlotillaError(err)) {
    return {
      status: 500,
      code: ErrorCode.Internal,
      message: `internal error: ${clip(errorText(err), 500)}`,
      retryable: false,
    };
  }
  const override = err.details.httpStatus;
  return {
    status: typeof override === 'number' ? override : httpStatusFor(err.code),
    code: err.code,
    message: err.message,
    retryable: err.retryable,
  };
}

/** fleet's error entity (googleapi.Error: `code`, then `message`, always both). */
export function errorBody(status: number, message: string): string {
  return JSON.stringify({ error: { code: status, message } });
}
