/**
 * Checks of the cluster API's request fields that are not unit files (those are src/unit's):
 * enum values, machine metadata, event types (page tokens: src/api/page-token.ts). Each refusal is INVALID_ARGUMENT
 * naming the field, and quotes at most a short prefix of what the client sent.
 */
import { clip, ErrorCode, FlotillaError } from '../errors';
import { EVENT_TYPES } from '../events/types';
import { UnitView } from '../gen/flotilla/v1/flotilla';

function bad(field: string, message: string): FlotillaError {
  return new FlotillaError(ErrorCode.InvalidArgument, message, { details: { field } });
}

/** ListUnits' `view`: UNSPECIFIED (= FULL), BASIC or FULL; anything else is refused. */
export function checkView(view: number): void {
  if (
    view !== UnitView.UNIT_VIEW_UNSPECIFIED &&
    view !== UnitView.UNIT_VIEW_BASIC &&
    view !== UnitView.UNIT_VIEW_FULL
  ) {
    throw bad('view', `invalid view ${clip(String(view))}: use UNIT_VIEW_BASIC or UNIT_VIEW_FULL`);
  }
}

/** Watch's `types`: each an event type Flotilla knows. */
export function checkEventTypes(types: readonly string[]): void {
  for (const t of types) {
    if (!(EVENT_TYPES as readonly string[]).includes(t)) {
      throw bad('types', `unknown event type "${clip(t)}"; known: ${EVENT_TYPES.join(', ')}`);
    }
  }
}

/** Bounds of a machine's metadata set through the API. */
export const METADATA_MAX_KEYS = 64;
export const METADATA_KEY_MAX = 63;
export const METADATA_VALUE_MAX = 255;
const METADATA_KEY = /^[A-Za-z0-9_.-]+$/;
// Printable, no separator of fleet's metadata syntax (`k=v,k2=v2`), no space at either end.
// eslint-disable-next-line no-control-regex
const METADATA_VALUE_BAD = /[\u0000-\u001f\u007f-\u009f,=]/;

/** Machine metadata: at most 64 keys of [A-Za-z0-9_.-]{1,63}, values of 1–255 printable characters. */
export function checkMetadata(metadata: Record<string, string>): void {
  const keys = Object.keys(metadata);
  if (keys.length > METADATA_MAX_KEYS) {
    throw bad('metadata', `${keys.length} metadata keys; the limit is ${METADATA_MAX_KEYS}`);
  }
  for (const k of keys) {
    if (!METADATA_KEY.test(k) || k.length > METADATA_KEY_MAX) {
      throw bad(
        'metadata',
        `invalid metadata key "${clip(k, 40)}": use 1 to ${METADATA_KEY_MAX} letters, digits, '_', '.', '-'`,
      );
    }
    const v = metadata[k];
    if (v === '' || v.length > METADATA_VALUE_MAX || METADATA_VALUE_BAD.test(v) || v.trim() !== v) {
      throw bad(
        'metadata',
        `invalid metadata value for "${k}": "${clip(v, 40)}" (1 to ${METADATA_VALUE_MAX} printable characters, no ',' or '=', no space at either end)`,
      );
    }
  }
}
