/**
 * Every error class that sluice throws on purpose. Each has a fixed `name` (so it
 * survives `structuredClone`, logging and realms) and a stable `code` string for
 * programmatic checks; the README lists them all in one table.
 *
 * Cancellation is not an error class of ours: an aborted operation rejects with the
 * `AbortSignal`'s own `reason`, and a cancelled channel with the reason given to
 * `cancel` (by default a `DOMException` named `AbortError`).
 *
 * @module
 */

/** Stable codes of sluice's own errors. */
export type SluiceErrorCode =
  'ERR_CHANNEL_CLOSED_FOR_SEND' | 'ERR_CHANNEL_CLOSED_FOR_RECEIVE' | 'ERR_TIMEOUT';

/**
 * Thrown by `send` (and carried by a failed `trySend`'s result when no cause was given)
 * when the channel was closed **normally**, that is by `close()` without a cause.
 *
 * Why a class of its own: a sender must be able to tell "the other side is done with
 * me" from a failure; a channel closed with a cause rethrows that cause instead, as the
 * same object, never wrapped.
 */
export class ClosedSendError extends Error {
  /** Always `'ClosedSendError'`. */
  override readonly name = 'ClosedSendError' as const;
  /** Always `'ERR_CHANNEL_CLOSED_FOR_SEND'`. */
  readonly code = 'ERR_CHANNEL_CLOSED_FOR_SEND' as const;
  constructor(message = 'Channel was closed: no more values can be sent') {
    super(message);
  }
}

/**
 * Thrown by `receive` (and by `for await` never: a normal close just ends the loop) when
 * the channel was closed **normally** and every value sent before the close has been
 * received.
 *
 * Why a class of its own: "no more values, as planned" is the expected end of a stream;
 * `receiveCatching` and `for await` let you treat it as a result instead of an error.
 */
export class ClosedReceiveError extends Error {
  /** Always `'ClosedReceiveError'`. */
  override readonly name = 'ClosedReceiveError' as const;
  /** Always `'ERR_CHANNEL_CLOSED_FOR_RECEIVE'`. */
  readonly code = 'ERR_CHANNEL_CLOSED_FOR_RECEIVE' as const;
  constructor(message = 'Channel was closed and every value in it has been received') {
    super(message);
  }
}

/**
 * The reason an operation was aborted because its time ran out (`withTimeout`,
 * `onTimeout`-driven helpers). Named `TimeoutError` like the `DOMException` that
 * `AbortSignal.timeout()` produces, so `err.name === 'TimeoutError'` checks work for both.
 */
export class TimeoutError extends Error {
  /** Always `'TimeoutError'`. */
  override readonly name = 'TimeoutError' as const;
  /** Always `'ERR_TIMEOUT'`. */
  readonly code = 'ERR_TIMEOUT' as const;
  constructor(message = 'Timed out') {
    super(message);
  }
}
