/**
 * How argument errors name the value they got: `Expected …, got <this>`. Short, never
 * the whole value (it may be huge or hold secrets), and never throws.
 *
 * @module
 */

/** `'abc' (string)`, `-1 (number)`, `null`, or the `typeof` of anything else. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}' (string)`;
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return `${String(value)} (${typeof value})`;
  }
  return value === null ? 'null' : typeof value;
}

/** Throws a `TypeError` unless `value` is a function. */
export function assertFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new TypeError(`Expected ${name} to be a function, got ${describeValue(value)}`);
  }
}

/**
 * Throws a `TypeError` unless `signal` is `undefined` or looks like an `AbortSignal`
 * (duck-typed, so that a signal from another realm or a polyfill is accepted).
 */
export function assertSignal(signal: unknown): asserts signal is AbortSignal | undefined {
  if (signal === undefined) return;
  const isSignal =
    typeof signal === 'object' &&
    signal !== null &&
    typeof Reflect.get(signal, 'aborted') === 'boolean' &&
    typeof Reflect.get(signal, 'addEventListener') === 'function' &&
    typeof Reflect.get(signal, 'removeEventListener') === 'function';
  if (!isSignal) {
    throw new TypeError(
      `Expected signal to be an AbortSignal or undefined, got ${describeValue(signal)}`,
    );
  }
}
