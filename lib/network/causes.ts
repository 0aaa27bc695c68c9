/**
 * Close causes and cancel reasons across the wire: {@link encodeCause} turns whatever a
 * channel was closed or cancelled with into the JSON of a `close`/`cancel` frame, and
 * {@link decodeCause} re-creates it on the other side — an `Error` of the same class where
 * that class exists on every platform, else a {@link RemoteError} with the same `name`,
 * `message` and `code`; a JSON value as an equal value.
 *
 * @module
 */
import { ClosedReceiveError, ClosedSendError, RemoteError, TimeoutError } from '../errors.js';

/** The JSON of an encoded cause: `{ error: {…} }` or `{ value: … }`. */
export type EncodedCause =
  | {
      readonly error: {
        readonly name: string;
        readonly message: string;
        readonly code?: string | number;
        readonly stack?: string;
        readonly dom?: true;
      };
    }
  | { readonly value: unknown };

/** The built-in error classes re-created as themselves (their constructors take a message). */
const BUILT_IN: Readonly<Record<string, new (message: string) => Error>> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  ClosedSendError,
  ClosedReceiveError,
  TimeoutError,
};

function isError(value: unknown): value is Error {
  return (
    value instanceof Error || (typeof DOMException === 'function' && value instanceof DOMException)
  );
}

/**
 * Encodes `cause` for a frame. An `Error` (or `DOMException`) keeps its `name`, `message`,
 * a string or number `code`, and its `stack` only when `sendStacks`. Any other value is
 * sent as JSON when `JSON.stringify` can encode it (and re-created as an equal value);
 * one it cannot (a function, a symbol, a `BigInt`, a cycle) becomes an `Error` describing
 * it, so that the peer still sees a failure.
 */
export function encodeCause(cause: unknown, sendStacks: boolean): EncodedCause {
  try {
    return encode(cause, sendStacks);
  } catch {
    // A getter of the error threw, or toJSON did: still tell the peer that it failed.
    return {
      error: { name: 'Error', message: 'The peer closed with a cause it could not encode' },
    };
  }
}

function encode(cause: unknown, sendStacks: boolean): EncodedCause {
  if (isError(cause)) {
    const name = typeof cause.name === 'string' ? cause.name : 'Error';
    const message = typeof cause.message === 'string' ? cause.message : '';
    const code: unknown = Reflect.get(cause, 'code');
    const error: {
      name: string;
      message: string;
      code?: string | number;
      stack?: string;
      dom?: true;
    } = { name, message };
    if (typeof code === 'string' || (typeof code === 'number' && Number.isFinite(code))) {
      // A DOMException's numeric legacy code says nothing its name does not.
      if (!(typeof DOMException === 'function' && cause instanceof DOMException)) error.code = code;
    }
    if (sendStacks && typeof cause.stack === 'string') error.stack = cause.stack;
    if (typeof DOMException === 'function' && cause instanceof DOMException) error.dom = true;
    return { error };
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(cause);
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    return {
      error: {
        name: 'Error',
        message: `The peer closed with a cause that JSON cannot encode (${typeof cause})`,
      },
    };
  }
  return { value: JSON.parse(text) as unknown };
}

/**
 * The longest encoded cause (its JSON text, in characters) that may cross the wire: a
 * peer's longer one breaks the protocol (docs/protocol.md section 6). It bounds the
 * memory a peer's close causes and cancel reasons hold here, one per channel direction.
 */
export const MAX_CAUSE_LENGTH = 4096;
/** An error's `name` or string `code` is cut to this many characters when a cause is too long. */
const MAX_CAUSE_NAME = 256;

/**
 * The JSON text of `encodeCause(cause, sendStacks)`, at most {@link MAX_CAUSE_LENGTH}
 * characters: a longer one loses its stack, then its `name` and a string `code` are cut
 * to 256 characters and its message as much as needed (ending with `…`); a JSON value
 * too long becomes an `Error` saying so.
 */
export function encodeCauseJson(cause: unknown, sendStacks: boolean): string {
  const encoded = encodeCause(cause, sendStacks);
  const text = JSON.stringify(encoded);
  if (text.length <= MAX_CAUSE_LENGTH) return text;
  if (!('error' in encoded)) {
    return JSON.stringify({
      error: {
        name: 'Error',
        message: `The peer closed with a cause too long to send (${String(text.length)} characters of JSON, at most ${String(MAX_CAUSE_LENGTH)})`,
      },
    });
  }
  const error = { ...encoded.error };
  delete error.stack;
  error.name = cut(error.name, MAX_CAUSE_NAME);
  if (typeof error.code === 'string') error.code = cut(error.code, MAX_CAUSE_NAME);
  const message = error.message;
  let keep = message.length;
  for (;;) {
    const shortened = JSON.stringify({ error });
    // (The name and code, cut, take at most 2 × 6 × 257 characters of JSON: the message
    // always makes room before it is empty.)
    if (shortened.length <= MAX_CAUSE_LENGTH || keep === 0) return shortened;
    // Each character cut shortens the JSON by one at least (more for an escape); the `…`
    // and a surrogate pair split by the cut lengthen it a little: loop until it fits.
    keep = Math.max(0, keep - (shortened.length - MAX_CAUSE_LENGTH) - 1);
    error.message = cut(message, keep);
  }
}

/** `text` cut to at most `length` characters, ending with `…` when cut. */
function cut(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, Math.max(0, length - 1))}…`;
}

/** Whether the cause of a frame whose text is `frameLength` long is over the limit. */
export function isCauseTooLong(cause: unknown, frameLength: number): boolean {
  // The frame is longer than its cause: short frames need no second look.
  return frameLength > MAX_CAUSE_LENGTH && JSON.stringify(cause).length > MAX_CAUSE_LENGTH;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Re-creates a cause from its JSON, or returns `undefined` if `json` is not a valid
 * encoded cause (the caller treats that as a protocol violation). Unknown members are
 * ignored, so that a later protocol version may add some.
 */
export function decodeCause(json: unknown): { readonly cause: unknown } | undefined {
  if (!isObject(json)) return undefined;
  if ('value' in json) return { cause: json.value };
  const error = json.error;
  if (!isObject(error)) return undefined;
  const { name, message, code, stack } = error;
  if (typeof name !== 'string' || typeof message !== 'string') return undefined;
  if (code !== undefined && typeof code !== 'string' && typeof code !== 'number') return undefined;
  if (stack !== undefined && typeof stack !== 'string') return undefined;
  let result: Error;
  const Builtin = Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name] : undefined;
  if (error.dom === true && typeof DOMException === 'function') {
    result = new DOMException(message, name);
  } else if (Builtin !== undefined) {
    result = new Builtin(message);
    if (code !== undefined && Reflect.get(result, 'code') === undefined) {
      Object.defineProperty(result, 'code', {
        value: code,
        writable: true,
        configurable: true,
      });
    }
  } else {
    result = new RemoteError(name, message, code);
  }
  // The local stack would point into this module; show the remote one, or none.
  Object.defineProperty(result, 'stack', {
    value: stack ?? (message === '' ? name : `${name}: ${message}`),
    writable: true,
    configurable: true,
  });
  return { cause: result };
}
