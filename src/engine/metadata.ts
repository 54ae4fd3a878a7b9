/**
 * A machine's metadata is what its agent reports (its configuration) overlaid, key by key, by
 * what the API set: the overlay is durable (MachineMetadataSet holds the whole of it) and
 * replayed with the log. An overlay key whose value is the empty string hides the agent's key
 * of that name: a removal the operator asked for, kept until the key is set again (fleet v1.0
 * recorded a removal the same way, as an empty dynamic value, registry/machine.go
 * `DeleteMachineMetadata` and `mergeMetadata`).
 */
import { checkMetadata, METADATA_MAX_KEYS } from './requests';
import { ErrorCode, FlotillaError } from '../errors';

/** The value of an overlay key that hides the agent's key of that name. */
export const HIDDEN = '';

/** Effective metadata: the agent's, overridden key by key by the overlay, hidden keys left out. */
export function effectiveMetadata(
  reported: Record<string, string>,
  overlay: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = { ...reported, ...overlay };
  for (const [k, v] of Object.entries(overlay)) if (v === HIDDEN) delete out[k];
  return out;
}

/**
 * The overlay after per-key `changes` (the API's patch): a key with a value is set; a key with
 * the empty value is removed from the overlay and, when the agent reports it, hidden. Keys not
 * named keep their overlay value, and the agent's own keys are never copied into the overlay
 * (so a later change of the agent's configuration shows). Refuses (INVALID_ARGUMENT) a key or
 * value `checkMetadata` refuses, and an overlay that would hold more than METADATA_MAX_KEYS keys.
 */
export function patchOverlay(
  overlay: Record<string, string>,
  reported: Record<string, string>,
  changes: Record<string, string>,
): Record<string, string> {
  const set: Record<string, string> = {};
  const removed: Record<string, string> = {};
  for (const [k, v] of Object.entries(changes)) {
    if (v === HIDDEN) removed[k] = 'x';
    else set[k] = v;
  }
  checkMetadata(set);
  checkMetadata(removed); // the keys' syntax
  const next: Record<string, string> = { ...overlay, ...set };
  for (const k of Object.keys(removed)) {
    if (Object.hasOwn(reported, k)) next[k] = HIDDEN;
    else delete next[k];
  }
  const keys = Object.keys(next).length;
  if (keys > METADATA_MAX_KEYS) {
    throw new FlotillaError(
      ErrorCode.InvalidArgument,
      `${keys} metadata keys set or removed through the API; the limit is ${METADATA_MAX_KEYS}`,
      { details: { field: 'metadata' } },
    );
  }
  return Object.fromEntries(Object.entries(next).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
