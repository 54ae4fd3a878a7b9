/**
 * A bound on JSON nesting, checked before `JSON.parse`.
 *
 * V8 parses deeply nested arrays some thirty times slower per byte than flat JSON: a 1 MB NATS
 * message of `[[[…]]]` held a leader's event loop for about two seconds, and twenty of them,
 * published by an agent-only identity on its own report subject, cost the leader its etcd
 * lease (no keepalive for 5 s). Nothing Flotilla exchanges nests more than a few levels.
 */

/** Deepest nesting accepted in a bus message or a fleet API body. */
export const MAX_JSON_DEPTH = 32;

/** Whether `text` nests arrays and objects deeper than `max` levels (brackets inside strings do not count). */
export function jsonNestsDeeper(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string (most of a schedule's bytes: unit files): jump to its closing quote with the
      // native search rather than looking at each character (a quote preceded by an odd number
      // of backslashes is escaped). Unterminated: JSON.parse refuses it.
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return false;
        let backslashes = 0;
        while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = j;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
