/** Small helpers for ordering-based tests: microtask ticks and promise inspection. */

/** Lets `n` rounds of microtasks run (no timers involved). */
export async function ticks(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

export type Settled<T> =
  | { status: 'pending' }
  | { status: 'fulfilled'; value: T }
  | { status: 'rejected'; reason: unknown };

/**
 * Observes a promise without awaiting it: `state()` tells how it has settled so far.
 * Attaching the observer also marks a rejection as handled.
 */
export function observe<T>(promise: Promise<T>): { state: () => Settled<T> } {
  let state: Settled<T> = { status: 'pending' };
  promise.then(
    (value) => {
      state = { status: 'fulfilled', value };
    },
    (reason: unknown) => {
      state = { status: 'rejected', reason };
    },
  );
  return { state: () => state };
}
