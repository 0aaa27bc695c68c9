/**
 * The one rule that tells a cancellation from a failure, shared by scopes and
 * `withTimeout`, and the side table that carries suppressed errors.
 *
 * A block that was asked to stop (its signal aborted) and then rejects with the
 * signal's `reason` — or with any error named `'AbortError'`, as older APIs create a
 * fresh one instead of rethrowing the reason — ended *because* it was cancelled: that is
 * not a new failure. Anything else it throws is a real error.
 *
 * @module
 */

/** `true` when `error` is how a block whose `signal` was aborted reports that abort. */
export function isCancellation(error: unknown, signal: AbortSignal): boolean {
  return signal.aborted && isCancellationBy(error, signal.reason);
}

/** {@link isCancellation} for a block whose signal was aborted with `reason`. */
export function isCancellationBy(error: unknown, reason: unknown): boolean {
  if (error === reason) return true;
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'AbortError'
  );
}

// Error objects are never mutated: they may be frozen, shared between scopes, or a
// `SuppressedError` whose own `suppressed` property means something else.
const table = new WeakMap<object, unknown[]>();
const NONE: readonly unknown[] = Object.freeze([]);

/**
 * Records `error` as suppressed by `primary` (a later error that lost to the first one).
 * Ignored when `primary` is not an object (nothing to attach to), when `error` is
 * `primary` itself, or when it is already recorded.
 */
export function addSuppressed(primary: unknown, error: unknown): void {
  if ((typeof primary !== 'object' && typeof primary !== 'function') || primary === null) return;
  if (error === primary) return;
  const list = table.get(primary);
  if (list === undefined) table.set(primary, [error]);
  else if (!list.includes(error)) list.push(error);
}

/**
 * The errors that were suppressed by `error`: thrown by other children of a scope (or
 * by a block after its `withTimeout` deadline) after `error` had already decided the
 * outcome. Oldest first; an empty array when there are none.
 *
 * Why a function and not a property: sluice never mutates your error objects. They may
 * be frozen, shared by several scopes (an abort reason usually is), or a
 * `SuppressedError` whose own `suppressed` property means something else. Suppressed
 * errors of a primitive (`throw 'oops'`) cannot be recorded and are dropped.
 *
 * @example
 * ```ts
 * try {
 *   await scope(async (s) => {
 *     s.launch(async () => { throw new Error('first'); });
 *     s.launch(async (signal) => { await delay(10, { signal }).catch(() => {}); throw new Error('second'); });
 *   });
 * } catch (error) {
 *   suppressedErrors(error); // [Error: second]
 * }
 * ```
 */
export function suppressedErrors(error: unknown): readonly unknown[] {
  if ((typeof error !== 'object' && typeof error !== 'function') || error === null) return NONE;
  const list = table.get(error);
  return list === undefined ? NONE : list.slice();
}

/**
 * What stands in for `undefined` as a failure that is about to close a channel: closing
 * with `undefined` is a *normal* close, so passing it on would turn "the producer (or
 * stream) failed" into a silent, clean end. An `Error` whose message says so, with the
 * original `undefined` kept as its own `cause` property (`'cause' in error` is `true`).
 * Any other value — including `null` and other falsy ones — is returned unchanged.
 *
 * @param what - names the failing side in the message, e.g. `'producer'`.
 */
export function failureCause(what: string, error: unknown): unknown {
  if (error !== undefined) return error;
  return new Error(`The ${what} failed with undefined as its error`, { cause: undefined });
}
