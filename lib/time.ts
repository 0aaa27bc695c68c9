/**
 * Time: `delay`, `withTimeout`, `withTimeoutOrUndefined` and `ticker`. Every timer is
 * cleared, and every abort listener removed, as soon as the operation settles, so that
 * nothing outlives the call — in Node a forgotten timer keeps the process alive.
 *
 * @module
 */
import type { ReceiveChannel, WaitOptions } from './channel-types.js';
import { Channel } from './channel.js';
import { TimeoutError } from './errors.js';
import { addSuppressed, isCancellation } from './internal/cancellation.js';
import { assertFunction, assertSignal } from './internal/describe-value.js';
import { checkMs, startTimer } from './internal/timer.js';

/**
 * Resolves after `ms` milliseconds. Kotlin's `delay`.
 *
 * - **Aborted** while waiting: rejects with `signal.reason` and clears the timer. An
 *   already aborted signal rejects at once.
 * - `ms` may be `0` (the next timer turn, as `setTimeout(fn, 0)`) or `Infinity` (waits
 *   until aborted, with no timer at all). Delays above 2^31 − 1 ms work (hosts would
 *   otherwise fire such a `setTimeout` at once).
 *
 * @throws TypeError if `ms` is not a number or `options.signal` not an `AbortSignal`.
 * @throws RangeError if `ms` is negative or NaN.
 * @example
 * ```ts
 * await delay(100, { signal });
 * ```
 */
export function delay(ms: number, options?: WaitOptions): Promise<void> {
  checkMs('ms', ms, true);
  const signal = options?.signal;
  assertSignal(signal);
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clear();
      (signal as AbortSignal).removeEventListener('abort', onAbort);
      reject((signal as AbortSignal).reason as Error);
    };
    const clear = startTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort);
  });
}

function runWithTimeout<T>(
  ms: number,
  block: (signal: AbortSignal) => T | PromiseLike<T>,
  options: WaitOptions | undefined,
  orUndefined: boolean,
): Promise<T | undefined> {
  checkMs('ms', ms, true);
  assertFunction('block', block);
  const parent = options?.signal;
  assertSignal(parent);
  if (parent?.aborted === true) return Promise.reject(parent.reason as Error);
  const controller = new AbortController();
  const signal = controller.signal;
  let timeout: TimeoutError | undefined;
  const clear = startTimer(ms, () => {
    timeout = new TimeoutError(`Timed out after ${ms} ms`);
    controller.abort(timeout);
  });
  const onParentAbort = (): void => {
    controller.abort((parent as AbortSignal).reason);
  };
  parent?.addEventListener('abort', onParentAbort);
  const done = (): void => {
    clear();
    parent?.removeEventListener('abort', onParentAbort);
  };
  let result: Promise<T>;
  try {
    result = Promise.resolve(block(signal));
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.then(
    (value) => {
      done();
      if (!signal.aborted) return value;
      if (orUndefined && signal.reason === timeout) return undefined;
      throw signal.reason;
    },
    (error: unknown) => {
      done();
      if (!signal.aborted) throw error;
      const reason: unknown = signal.reason;
      if (!isCancellation(error, signal)) addSuppressed(reason, error);
      if (orUndefined && reason === timeout) return undefined;
      throw reason;
    },
  );
}

/**
 * Runs `block` with a deadline: after `ms` milliseconds its signal is aborted with a
 * `TimeoutError`, and the call rejects with that error once `block` has settled.
 * Kotlin's `withTimeout`.
 *
 * - **Finishes in time:** resolves (or rejects) as `block` did; the timer is cleared.
 * - **Deadline passes:** the signal aborts with a fresh `TimeoutError` (message
 *   `Timed out after <ms> ms`). The call waits for `block` to settle — nothing outlives
 *   the call, as in Kotlin — then rejects with that `TimeoutError`, even if `block`
 *   returned a value after the deadline. If `block` threw some other error while
 *   stopping, that error is suppressed by the `TimeoutError` (see `suppressedErrors`).
 *   A block that ignores its signal delays the rejection: JavaScript cannot interrupt
 *   it.
 * - **`options.signal` aborts:** the block's signal aborts with the same reason and the
 *   call rejects with it once `block` has settled. Already aborted: rejects at once and
 *   `block` never runs.
 * - `ms` of `0` times out at the next timer turn (Kotlin throws at once without running
 *   the block; in JavaScript a 0 ms timer means "as soon as possible"); `Infinity`
 *   never times out.
 *
 * @throws TypeError if `ms` is not a number, `block` not a function, or
 *   `options.signal` not an `AbortSignal`.
 * @throws RangeError if `ms` is negative or NaN.
 * @example
 * ```ts
 * const page = await withTimeout(5_000, (signal) => fetch(url, { signal }));
 * ```
 */
export function withTimeout<T>(
  ms: number,
  block: (signal: AbortSignal) => T | PromiseLike<T>,
  options?: WaitOptions,
): Promise<T> {
  return runWithTimeout(ms, block, options, false) as Promise<T>;
}

/**
 * Like {@link withTimeout}, but resolves with `undefined` instead of rejecting when the
 * deadline passes. Kotlin's `withTimeoutOrNull`. Cancellation through
 * `options.signal` still rejects with its reason, and errors of `block` before the
 * deadline still reject.
 *
 * @throws TypeError / RangeError as {@link withTimeout}.
 * @example
 * ```ts
 * const reply = await withTimeoutOrUndefined(1_000, (signal) => replies.receive({ signal }));
 * if (reply === undefined) console.log('no reply within a second');
 * ```
 */
export function withTimeoutOrUndefined<T>(
  ms: number,
  block: (signal: AbortSignal) => T | PromiseLike<T>,
  options?: WaitOptions,
): Promise<T | undefined> {
  return runWithTimeout(ms, block, options, true);
}

/** Options of {@link ticker}. */
export interface TickerOptions {
  /**
   * Stops the ticker when aborted: the channel is closed **normally** (a `for await`
   * over it just ends) and its timer cleared. Already aborted: the channel is returned
   * closed.
   * @default undefined — the ticker runs until the channel is cancelled.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Milliseconds before the first tick.
   * @default the period
   */
  readonly initialDelay?: number | undefined;
}

const now = (): number => performance.now();

/**
 * A rendezvous channel that yields a tick every `period` milliseconds. Kotlin's
 * `ticker` in its `FIXED_PERIOD` mode. Each tick is the number of the period it belongs
 * to: 1, 2, 3, … counting from the first tick.
 *
 * - **Slow consumer:** ticks never pile up. A tick waits (the channel has no buffer)
 *   until it is received; if by then one or more later periods have passed, those ticks
 *   are skipped and the next one comes at the next period boundary — the numbers show
 *   the gap (1, 2, 5, 6, …). So a consumer that falls behind gets one late tick and then
 *   returns to the schedule, never a burst.
 * - **Drift:** boundaries are computed from the start (`performance.now()`), so late
 *   timers do not accumulate delay.
 * - **Stopping:** aborting `options.signal` closes the channel normally; cancelling the
 *   channel (`cancel`, `consume`) stops it too. Either way its timer is cleared. Without
 *   a signal the ticker runs — and in Node keeps the process alive — until the channel
 *   is cancelled.
 *
 * Differs from Kotlin: ticks carry their period number instead of `Unit`, and the
 * ticker stops through a signal as well as through `cancel`.
 *
 * @throws TypeError if `period` or `initialDelay` is not a number, or `options.signal`
 *   not an `AbortSignal`.
 * @throws RangeError if `period` is not a positive finite number, or `initialDelay` is
 *   negative, NaN or infinite.
 * @example
 * ```ts
 * for await (const tick of ticker(1_000, { signal })) console.log('tick', tick);
 * ```
 */
export function ticker(period: number, options?: TickerOptions): ReceiveChannel<number> {
  checkMs('period', period, false);
  if (period === 0) throw new RangeError('Expected period to be a positive number, got 0');
  const initialDelay = options?.initialDelay ?? period;
  checkMs('initialDelay', initialDelay, false);
  const parent = options?.signal;
  assertSignal(parent);
  const channel = new Channel<number>();
  if (parent?.aborted === true) {
    channel.close();
    return channel;
  }
  const controller = new AbortController();
  const onParentAbort = (): void => {
    channel.close();
  };
  parent?.addEventListener('abort', onParentAbort);
  channel.onClose(() => {
    parent?.removeEventListener('abort', onParentAbort);
    controller.abort();
  });
  void tick(channel, period, initialDelay, controller.signal);
  return channel;
}

async function tick(
  channel: Channel<number>,
  period: number,
  initialDelay: number,
  signal: AbortSignal,
): Promise<void> {
  try {
    let deadline = now() + initialDelay;
    await delay(initialDelay, { signal });
    for (let index = 1; ; index++) {
      await channel.send(index, { signal });
      deadline += period;
      const time = now();
      if (time >= deadline) {
        const missed = Math.floor((time - deadline) / period) + 1;
        deadline += missed * period;
        index += missed;
      }
      await delay(deadline - time, { signal });
    }
  } catch {
    // Stopped: the signal aborted or the channel was closed; nothing is left running.
  }
}
