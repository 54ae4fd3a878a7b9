/**
 * Resolves once `cond()` holds, checking every `everyMs`; throws after `ms` naming `what`. For
 * conditions on state this process holds (an engine's, an agent's), read without I/O.
 */
export async function until(
  cond: () => boolean,
  what: string,
  ms = 30_000,
  everyMs = 20,
): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
