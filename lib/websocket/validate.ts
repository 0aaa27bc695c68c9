/**
 * Argument checks shared by the WebSocket adapter: close codes and reasons by the
 * browser's rules (so every platform accepts and refuses the same values), and the
 * "Expected …, got …" messages of every option.
 *
 * @module
 */

import { describeValue } from '../internal/describe-value.js';

export { describeValue };

const encoder = new TextEncoder();

/** The UTF-8 length of `text` in bytes. */
export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

/**
 * Checks an application close code and reason as browsers do: the code is 1000 or an
 * integer from 3000 to 4999, the reason at most 123 bytes of UTF-8.
 *
 * @throws TypeError if `code` is not a number or `reason` not a string.
 * @throws RangeError if either is out of range.
 */
export function checkCloseArguments(code: unknown, reason: unknown): void {
  if (typeof code !== 'number') {
    throw new TypeError(
      `Expected code to be 1000 or an integer from 3000 to 4999, got ${describeValue(code)}`,
    );
  }
  if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
    throw new RangeError(
      `Expected code to be 1000 or an integer from 3000 to 4999, got ${String(code)}`,
    );
  }
  checkReason(reason);
}

/**
 * Checks a close code that sluice itself may send (protocol codes included, as a server
 * may): 1000–1003, 1007–1014, or 3000–4999.
 */
export function checkProtocolCloseArguments(code: unknown, reason: unknown): void {
  const valid =
    typeof code === 'number' &&
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) ||
      (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999));
  if (!valid) {
    const message = `Expected code to be 1000–1003, 1007–1014 or 3000–4999, got ${describeValue(code)}`;
    throw typeof code === 'number' ? new RangeError(message) : new TypeError(message);
  }
  checkReason(reason);
}

function checkReason(reason: unknown): void {
  if (typeof reason !== 'string') {
    throw new TypeError(`Expected reason to be a string, got ${describeValue(reason)}`);
  }
  const length = utf8Length(reason);
  if (length > 123) {
    throw new RangeError(`Expected reason to be at most 123 bytes of UTF-8, got ${length} bytes`);
  }
}

/** Truncates `text` to at most 123 bytes of UTF-8 without splitting a character. */
export function toCloseReason(text: string): string {
  if (utf8Length(text) <= 123) return text;
  let result = '';
  for (const char of text) {
    if (utf8Length(result + char) > 120) break;
    result += char;
  }
  return `${result}…`;
}

/**
 * Throws unless `value` is `undefined` or a number for which `valid` holds: `TypeError`
 * for a non-number, `RangeError` otherwise; `expected` says what is allowed.
 */
export function checkNumber(
  name: string,
  value: unknown,
  expected: string,
  valid: (n: number) => boolean,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number') {
    throw new TypeError(`Expected ${name} to be ${expected}, got ${describeValue(value)}`);
  }
  if (!valid(value)) {
    throw new RangeError(`Expected ${name} to be ${expected}, got ${String(value)}`);
  }
}

/** Throws unless `value` is `undefined` or one of `allowed`. */
export function checkChoice(name: string, value: unknown, allowed: readonly string[]): void {
  if (value === undefined || allowed.includes(value as string)) return;
  const message = `Expected ${name} to be ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describeValue(value)}`;
  throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
}

/** Throws unless `value` is `undefined` or a function. */
export function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(
      `Expected ${name} to be a function or undefined, got ${describeValue(value)}`,
    );
  }
}
