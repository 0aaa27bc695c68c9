/**
 * Timers for `delay`, `withTimeout` and `ticker`: argument checks, and a `setTimeout`
 * that also works past the 2^31 − 1 ms (~24.8 days) where hosts silently fire at once.
 *
 * @module
 */
import { describeValue } from './describe-value.js';

const MAX_TIMER = 2_147_483_647;
const noop = (): void => undefined;

/**
 * Throws unless `ms` is a number ≥ 0 (or, when `allowInfinity`, `Infinity`):
 * `TypeError` for a non-number, `RangeError` for NaN, negative or (when not allowed)
 * infinite values.
 */
export function checkMs(name: string, ms: unknown, allowInfinity: boolean): number {
  const expected = allowInfinity
    ? `${name} to be a non-negative number of milliseconds or Infinity`
    : `${name} to be a non-negative finite number of milliseconds`;
  if (typeof ms !== 'number') throw new TypeError(`Expected ${expected}, got ${describeValue(ms)}`);
  if (Number.isNaN(ms) || ms < 0 || (!allowInfinity && ms === Infinity)) {
    throw new RangeError(`Expected ${expected}, got ${String(ms)}`);
  }
  return ms;
}

/**
 * Calls `callback` after `ms` milliseconds (never for `Infinity`); returns a function
 * that clears the timer (idempotent, a no-op once fired).
 */
export function startTimer(ms: number, callback: () => void): () => void {
  if (ms === Infinity) return noop;
  let handle: ReturnType<typeof setTimeout> | undefined;
  const arm = (remaining: number): void => {
    handle =
      remaining > MAX_TIMER
        ? setTimeout(() => {
            arm(remaining - MAX_TIMER);
          }, MAX_TIMER)
        : setTimeout(callback, remaining);
  };
  arm(ms);
  return () => {
    clearTimeout(handle);
  };
}
