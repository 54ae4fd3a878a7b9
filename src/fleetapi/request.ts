import type http from 'node:http';
import { clip, ErrorCode } from '../errors';
import type { UnitOption } from '../gen/flotilla/v1/flotilla';
import { fleetError } from './errors';
import { jsonNestsDeeper, MAX_JSON_DEPTH } from '../json-depth';

/**
 * The largest request body read. A body holds one unit (at most `max_unit_bytes`, itself at most
 * 100 KiB, written out) or a metadata patch; its JSON is at most some ten times the unit file
 * even with one-character options, so 4 MiB refuses nothing valid, and bounds what one request
 * costs (a 50 MB body took seconds and hundreds of MB to read and parse before its unit was
 * refused as too large).
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Reads the whole body; 413 beyond `max` bytes. */
export async function readBody(req: http.IncomingMessage, max = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      throw fleetError(
        413,
        ErrorCode.PayloadTooLarge,
        `request body is larger than ${max} bytes (a unit file may be at most max_unit_bytes)`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fleet's validateContentType: exactly one Content-Type, application/json (parameters allowed). */
export function requireJson(req: http.IncomingMessage): void {
  const values = req.headersDistinct['content-type'] ?? [];
  if (values.length !== 1) {
    throw fleetError(
      415,
      ErrorCode.InvalidArgument,
      `expected 1 Content-Type, got ${values.length}`,
      { field: 'Content-Type' },
    );
  }
  if (values[0].split(';')[0].trim() !== 'application/json') {
    throw fleetError(
      415,
      ErrorCode.InvalidArgument,
      'only acceptable Content-Type is application/json',
      {
        field: 'Content-Type',
      },
    );
  }
}

function undecodable(why: string): Error {
  return fleetError(400, ErrorCode.InvalidArgument, `unable to decode body: ${clip(why, 300)}`);
}

function parseJson(text: string): unknown {
  if (jsonNestsDeeper(text)) throw undecodable(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw undecodable((err as Error).message);
  }
}

/** A string field of a decoded object: absent or null is '', anything else but a string is refused. */
function stringField(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw undecodable(`${where}${key} must be a string, got ${typeof v}`);
  return v;
}

/**
 * Go's encoding/json matched object keys to struct fields case-insensitively; fleet's structs
 * relied on it (its metadata op has an untagged `Path`). Keys here are lower-cased the same way.
 */
function lowerKeys(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw undecodable(`${what} must be a JSON object`);
  }
  // No prototype: a key "__proto__" is a key like any other (ignored), not the object's
  // prototype, from which `options` would otherwise be read.
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k.toLowerCase()] = x;
  return out;
}

/** The fields of a fleet Unit a PUT uses; currentState and machineID are read-only and ignored. */
export interface UnitBody {
  name: string;
  desiredState: string;
  options: UnitOption[];
}

export function decodeUnitBody(text: string): UnitBody {
  const parsed = parseJson(text);
  // `null` decodes into Go's zero value, as fleet's json.Decoder did.
  const o = parsed === null ? {} : lowerKeys(parsed, 'the body');
  const rawOptions = o.options ?? [];
  if (!Array.isArray(rawOptions)) throw undecodable('options must be a list of unit options');
  const options = rawOptions.map((raw: unknown, i): UnitOption => {
    const opt = lowerKeys(raw, `options[${i}]`);
    const where = `options[${i}].`;
    return {
      section: stringField(opt, 'section', where),
      name: stringField(opt, 'name', where),
      value: stringField(opt, 'value', where),
    };
  });
  return {
    name: stringField(o, 'name', ''),
    desiredState: stringField(o, 'desiredstate', ''),
    options,
  };
}

/** One JSON Patch operation of PATCH /machines. */
export interface MetadataOp {
  op: string;
  path: string;
  value: string;
}

export function decodeMetadataOps(text: string): MetadataOp[] {
  const parsed = parseJson(text);
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) throw undecodable('the body must be a JSON Patch list of operations');
  return parsed.map((raw: unknown, i) => {
    const o = lowerKeys(raw, `operation ${i}`);
    const where = `operation ${i}: `;
    return {
      op: stringField(o, 'op', where),
      path: stringField(o, 'path', where),
      value: stringField(o, 'value', where),
    };
  });
}
