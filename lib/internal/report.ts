/**
 * Calling user callbacks (`onUndelivered`, `onClose`) without letting them break our
 * state: a throwing callback is rethrown from a microtask, so it is reported as an
 * uncaught error rather than swallowed, and the caller carries on.
 *
 * @module
 */

/** Calls `callback(argument)`; if it throws, rethrows the error from a microtask. */
export function callReporting<A>(callback: (argument: A) => unknown, argument: A): void {
  try {
    callback(argument);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
