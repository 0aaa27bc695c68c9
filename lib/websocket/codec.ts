/**
 * Codecs turn a session's messages into WebSocket frames and back: {@link json} (the
 * default), {@link text}, {@link binary}, {@link raw}, and `json(schema)`, which validates
 * every received message through any Standard Schema (zod, valibot, arktype, …). The
 * received and sent types may differ (`Codec<In, Out>`).
 *
 * A codec is two functions, so writing one is easy; `encode` may throw anything (the
 * session reports it as an `EncodeError`), `decode` should throw a `DecodeError` (anything
 * else is reported as one, closing with 1007).
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { DecodeError, EncodeError } from '../errors.js';

/** A frame's payload: `string` for a text frame, `Uint8Array` for a binary frame. */
export type Frame = string | Uint8Array<ArrayBuffer>;

/**
 * How a session's messages map to WebSocket frames.
 *
 * @typeParam In - the type of the messages received (`session.incoming`).
 * @typeParam Out - the type of the messages sent (`session.outgoing`).
 */
export interface Codec<In, Out = In> {
  /**
   * Turns an outgoing value into a frame: a `string` is sent as a text frame, a
   * `Uint8Array` as a binary frame. Runs synchronously inside `outgoing.send`; if it
   * throws, that `send` rejects with an {@link EncodeError} (the thrown error as its
   * `cause` unless it is one already) and the connection stays usable.
   */
  encode(value: Out): Frame;
  /**
   * Turns a received frame into a message. Throw a {@link DecodeError} to reject it
   * (`closeCode` 1003 for a frame of the wrong type, 1007 for a bad payload); anything
   * else thrown is reported as a `DecodeError` with 1007. May return a promise (an
   * asynchronous schema): messages are still delivered in the order they arrived.
   */
  decode(data: Frame): In | Promise<In>;
}

function wrongFrame(data: Frame, expected: 'text' | 'binary'): DecodeError {
  const got = typeof data === 'string' ? 'a text frame' : 'a binary frame';
  return new DecodeError(`Expected a ${expected} frame, got ${got}`, { data, closeCode: 1003 });
}

function parseJson(data: Frame): unknown {
  if (typeof data !== 'string') throw wrongFrame(data, 'text');
  try {
    return JSON.parse(data);
  } catch (error) {
    throw new DecodeError('Received a text frame that is not valid JSON', {
      data,
      closeCode: 1007,
      cause: error,
    });
  }
}

/** `JSON.stringify`, throwing `EncodeError` where it throws or returns `undefined`. */
export function stringifyJson(value: unknown): string {
  // Typed as string, but undefined for undefined, functions and symbols.
  let text: unknown;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new EncodeError('Expected a value that JSON can encode, got one it cannot', value, {
      cause: error,
    });
  }
  if (typeof text !== 'string') {
    throw new EncodeError(
      `Expected a value that JSON can encode, got ${typeof value} (JSON.stringify returns undefined)`,
      value,
    );
  }
  return text;
}

const JSON_CODEC: Codec<unknown> = Object.freeze({ encode: stringifyJson, decode: parseJson });

function validated<Output>(data: Frame, result: StandardSchemaV1.Result<Output>): Output {
  if (result.issues !== undefined) {
    const first = result.issues[0]?.message ?? 'invalid';
    throw new DecodeError(`Received a message that does not match the schema: ${first}`, {
      data,
      closeCode: 1007,
      issues: result.issues,
    });
  }
  return result.value;
}

function isSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props: unknown = Reflect.get(value, '~standard');
  return (
    typeof props === 'object' &&
    props !== null &&
    typeof Reflect.get(props, 'validate') === 'function'
  );
}

/**
 * JSON in text frames: `JSON.stringify` to send, `JSON.parse` on receipt. The default
 * codec. Without a schema nothing checks that received messages are of type `In`.
 *
 * - **Sending** a value JSON cannot encode (`BigInt`, a cycle, `undefined`, a function)
 *   rejects that `send` with an `EncodeError`.
 * - **Receiving** invalid JSON fails with a `DecodeError` (1007), a binary frame with a
 *   `DecodeError` (1003).
 *
 * With a Standard Schema, every received message is validated (and transformed) by it:
 * `In` is the schema's output type, `Out` defaults to its input type. A failing message is
 * a `DecodeError` (1007) carrying the schema's `issues`. Outgoing values are not
 * validated. Asynchronous schemas work; messages keep their order.
 *
 * @throws TypeError if `schema` is given but is not a Standard Schema.
 * @example
 * ```ts
 * import { z } from 'zod';
 * const Chat = z.object({ user: z.string(), text: z.string() });
 * const session = await connect(url, { codec: json(Chat) });
 * for await (const { user, text } of session.incoming) console.log(user, text);
 * ```
 */
export function json<In = unknown, Out = In>(): Codec<In, Out>;
export function json<Schema extends StandardSchemaV1, Out = StandardSchemaV1.InferInput<Schema>>(
  schema: Schema,
): Codec<StandardSchemaV1.InferOutput<Schema>, Out>;
export function json(schema?: unknown): Codec<unknown, unknown> {
  if (schema === undefined) return JSON_CODEC;
  if (!isSchema(schema)) {
    throw new TypeError(
      `Expected a Standard Schema (an object with '~standard'.validate), got ${schema === null ? 'null' : typeof schema}`,
    );
  }
  const validate = schema['~standard'].validate;
  return {
    encode: stringifyJson,
    decode(data) {
      const result = validate(parseJson(data));
      return result instanceof Promise
        ? result.then((settled) => validated(data, settled))
        : validated(data, result);
    },
  };
}

const TEXT_CODEC: Codec<string> = Object.freeze({
  encode(value: string): string {
    if (typeof value !== 'string') {
      throw new EncodeError(`Expected a string to send as text, got ${typeof value}`, value);
    }
    return value;
  },
  decode(data: Frame): string {
    if (typeof data !== 'string') throw wrongFrame(data, 'text');
    return data;
  },
});

/**
 * Strings in text frames, unchanged. A binary frame fails with a `DecodeError` (1003);
 * sending a non-string rejects that `send` with an `EncodeError`.
 */
export function text(): Codec<string> {
  return TEXT_CODEC;
}

function toFrame(value: unknown): Uint8Array<ArrayBuffer> {
  if (!(value instanceof Uint8Array)) {
    const got = value === null ? 'null' : typeof value === 'object' ? 'an object' : typeof value;
    throw new EncodeError(`Expected a Uint8Array to send as binary, got ${got}`, value);
  }
  // A view on a SharedArrayBuffer cannot be sent by browsers: copy it.
  return value.buffer instanceof ArrayBuffer
    ? (value as Uint8Array<ArrayBuffer>)
    : new Uint8Array(value);
}

const BINARY_CODEC: Codec<Uint8Array<ArrayBuffer>, Uint8Array> = Object.freeze({
  encode: toFrame,
  decode(data: Frame): Uint8Array<ArrayBuffer> {
    if (typeof data === 'string') throw wrongFrame(data, 'binary');
    return data;
  },
});

/**
 * Bytes in binary frames. Received messages are always `Uint8Array` — never `Blob`,
 * `ArrayBuffer` or `Buffer` — on every platform. A text frame fails with a `DecodeError`
 * (1003); sending anything but a `Uint8Array` (a `Buffer` is one) rejects that `send`
 * with an `EncodeError`.
 */
export function binary(): Codec<Uint8Array<ArrayBuffer>, Uint8Array> {
  return BINARY_CODEC;
}

const RAW_CODEC: Codec<Frame, string | Uint8Array> = Object.freeze({
  encode(value: string | Uint8Array): Frame {
    return typeof value === 'string' ? value : toFrame(value);
  },
  decode(data: Frame): Frame {
    return data;
  },
});

/**
 * Frames as they are: a text frame is received as a `string`, a binary frame as a
 * `Uint8Array`; sending a `string` sends text, a `Uint8Array` sends binary. For protocols
 * that mix both, or to decode by hand.
 */
export function raw(): Codec<Frame, string | Uint8Array> {
  return RAW_CODEC;
}
