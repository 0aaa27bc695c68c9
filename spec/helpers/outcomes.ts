/** Helpers for tests that assert exact outcomes: rejections, gates and aborts. */

/** The reason `promise` rejects with; fails the test if it fulfils instead. */
export async function rejection(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('Expected a rejection, got a fulfilment');
}

/** A promise with its resolving functions, to let a test decide when a task finishes. */
export function gate<T = void>(): {
  promise: Promise<T>;
  open: (value: T) => void;
  fail: (error: unknown) => void;
} {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** Resolves with the signal's reason once it is aborted (at once if it already is). */
export function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/** Rejects with the signal's reason once it is aborted: what a well-behaved block does. */
export async function untilAborted(signal: AbortSignal): Promise<never> {
  throw await aborted(signal);
}
