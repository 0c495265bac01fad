/**
 * A promise with its resolve and reject at hand (what Promise.withResolvers
 * gives from Node 22; this runs on 20). Its rejection is observed here, so
 * one that nobody awaits is not an unhandled rejection; whoever awaits it
 * still gets it.
 */
export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (reason: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
