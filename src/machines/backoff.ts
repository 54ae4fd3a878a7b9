/** Retry delays for the agent's machines: pure functions of the attempt and a jitter. */

/**
 * Exponential backoff: `base · 2^(attempt-1)`, capped at `max`, stretched by `jitter` ∈ [0,1)
 * up to +25 %. Pure: the caller supplies the jitter (random in actors, fixed in tests).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  jitter: number,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.round(exp * (1 + 0.25 * Math.min(Math.max(jitter, 0), 0.999)));
}

/** A stable fraction in [0,1) from a string (FNV-1a), so a unit's jitter is deterministic. */
export function stableFraction(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}
