/** Delays for polling: doubling from `initialMs`, never above `capMs`. */
export function* backoffDelays(initialMs: number, capMs: number): Generator<number, never> {
  let delay = Math.min(initialMs, capMs);
  for (;;) {
    yield delay;
    delay = Math.min(delay * 2, capMs);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
