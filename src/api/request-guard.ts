/**
 * What the gRPC server checks of a request's bytes before (and while) decoding them.
 *
 * grpc-js decodes a request before any handler runs, so before the caller's role is checked,
 * and it answers a message that does not decode with `INTERNAL: Error deserializing request`,
 * as if the daemon had a bug. Two problems for a daemon any certificate holder (or, on
 * loopback, any local user) can send bytes to:
 *
 * - **Amplification.** A few bytes on the wire decode into a whole object: an empty
 *   `UnitOption` is 2 bytes, a decoded one some 200 bytes of heap. One 60 MB `CreateUnits` of
 *   12 million empty options took a daemon from 250 MB to 2.6 GB for a minute; a few at once
 *   exhaust its heap and kill it. So the fields of a request and of its sub-messages (units,
 *   options, names, metadata entries) are counted on the wire first, without decoding
 *   anything, and a request with more than {@link MAX_REQUEST_ELEMENTS} is refused.
 * - **Malformed bytes** are the client's fault, not the daemon's: `INVALID_ARGUMENT`
 *   naming the method, never `INTERNAL`, and not counted as an internal error.
 *
 * The refusal cannot be thrown from the deserializer (grpc-js would make it `INTERNAL`): the
 * deserializer returns a stand-in carrying the error, and the handler answers with it
 * ({@link refusalOf}).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { clip, ErrorCode, FlotillaError } from '../errors';

/**
 * Most fields a request and its sub-messages may hold together: e.g. 20,000 units of 20
 * options. Bounds a request's decoded size to about 100 MB in the worst case.
 */
export const MAX_REQUEST_ELEMENTS = 500_000;

const REFUSED = Symbol('flotilla.refusedRequest');

/** The error a request stands in for, when its bytes were refused; undefined for a request. */
export function refusalOf(req: unknown): FlotillaError | undefined {
  if (typeof req !== 'object' || req === null) return undefined;
  const e = (req as Record<symbol, unknown>)[REFUSED];
  return e instanceof FlotillaError ? e : undefined;
}

/** Reads a varint at `pos`; [value, next position], or undefined past the end or above 2^53. */
function varint(b: Uint8Array, pos: number, end: number): [number, number] | undefined {
  let value = 0;
  let mul = 1;
  for (let i = pos; i < end && i < pos + 10; i++) {
    value += (b[i] & 0x7f) * mul;
    if ((b[i] & 0x80) === 0) return value > Number.MAX_SAFE_INTEGER ? undefined : [value, i + 1];
    mul *= 128;
  }
  return undefined;
}

/**
 * The number of fields in `b[start, end)` read as a message, and, with `depth` > 0, in each of
 * its length-delimited fields that reads as a message too (a string that does not is one
 * field). Undefined when the range is not a well-formed message. Stops counting past `limit`.
 */
function countFields(
  b: Uint8Array,
  start: number,
  end: number,
  depth: number,
  limit: number,
): number | undefined {
  let n = 0;
  let pos = start;
  while (pos < end) {
    const tag = varint(b, pos, end);
    if (!tag || tag[0] >>> 3 === 0) return undefined;
    pos = tag[1];
    n++;
    switch (tag[0] & 7) {
      case 0: {
        const v = varint(b, pos, end);
        if (!v) return undefined;
        pos = v[1];
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = varint(b, pos, end);
        if (!len || len[1] + len[0] > end) return undefined;
        if (depth > 0 && len[0] > 0) {
          const inner = countFields(b, len[1], len[1] + len[0], depth - 1, limit - n);
          if (inner !== undefined) n += inner;
        }
        pos = len[1] + len[0];
        break;
      }
      default:
        return undefined; // groups are not proto3
    }
    if (pos > end) return undefined;
    if (n > limit) return n;
  }
  return n;
}

/**
 * The fields of a request and of its sub-messages down to `depth` levels (2: a CreateUnits
 * request's units and their options), stopping once above `limit`.
 */
export function requestElements(b: Uint8Array, depth = 2, limit = MAX_REQUEST_ELEMENTS): number {
  return countFields(b, 0, b.length, depth, limit) ?? 0;
}

/**
 * The service definition with every request deserializer guarded: a request with too many
 * elements, or bytes that do not decode, become a stand-in {@link refusalOf} reads.
 */
export function guardingRequests<S extends ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service)) {
    const name = method.path.split('/').pop() ?? key;
    const refuse = (message: string): unknown => ({
      [REFUSED]: new FlotillaError(ErrorCode.InvalidArgument, message, {
        details: { field: 'request' },
      }),
    });
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        // Each element takes at least one byte: a smaller request needs no counting.
        if (bytes.length > MAX_REQUEST_ELEMENTS) {
          const n = requestElements(bytes);
          if (n > MAX_REQUEST_ELEMENTS)
            return refuse(
              `${name} request of ${bytes.length} bytes holds more than ${MAX_REQUEST_ELEMENTS} fields (units, options, names); send it in smaller requests`,
            );
        }
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return refuse(
            `malformed ${name} request: its ${bytes.length} bytes are not a valid protobuf message (${clip((err as Error).message, 80)})`,
          );
        }
      },
    };
  }
  return out as S;
}
