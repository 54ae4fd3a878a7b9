/** Resolves after the event loop has had a turn: I/O callbacks and timers run in between. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
