/**
 * How one value of a network channel becomes what travels (docs/protocol.md sections 3
 * and 8): JSON text inside a `v` frame, or — protocol version 3 — the raw bytes of a
 * `Uint8Array` in a binary WebSocket message of its own, `["b",id]`, a line feed, then
 * the bytes. The one place that knows both encodings, so that whatever keeps or replays
 * frames can carry a binary message as it carries a text one.
 *
 * @module
 */
import { EncodeError } from '../errors.js';
import { describeValue } from '../internal/describe-value.js';
import { stringifyJson } from '../websocket/codec.js';
import { BINARY, isCount } from './link.js';

/** What a value becomes: JSON text, nothing (the value `undefined`), or bytes. */
export type Encoded = string | undefined | Uint8Array;

/** The longest header a binary message may have: `["b",` + a safe integer + `]`. */
export const MAX_HEADER_BYTES = 32;

const LF = 0x0a;

/**
 * Encodes one value: a `Uint8Array` (a Node `Buffer` is one) as itself, to travel as
 * bytes; `undefined` as nothing (`["v", id]`); anything else as JSON. Another binary view
 * (`Int16Array`, `DataView`, …) or an `ArrayBuffer` is refused: JSON would turn it into
 * an object of indexes, and sending its bytes would lose its type (and byte order).
 *
 * @throws EncodeError for a value JSON cannot encode or a binary view other than `Uint8Array`.
 */
export function encodeValue(value: unknown): Encoded {
  if (value === undefined) return undefined;
  if (typeof value === 'object' && value !== null) {
    if (value instanceof Uint8Array) return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      throw new EncodeError(
        `Expected a Uint8Array to send bytes, got ${Object.prototype.toString.call(value).slice(8, -1)} (wrap its bytes: new Uint8Array(view.buffer, view.byteOffset, view.byteLength))`,
        value,
      );
    }
  }
  return stringifyJson(value);
}

/**
 * The binary message of one value: `["b",id]` in ASCII, a line feed, then `bytes` (one
 * copy of them, into the message).
 */
export function encodeBinaryMessage(id: number, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const header = `["b",${String(id)}]\n`;
  const size = header.length;
  const message = new Uint8Array(size + bytes.byteLength);
  for (let i = 0; i < size; i++) message[i] = header.charCodeAt(i);
  message.set(bytes, size);
  return message;
}

/** A binary message decoded: the channel id and the value's bytes. */
export interface BinaryMessage {
  readonly id: number;
  /** A view into the received message (no copy): `byteOffset` is past the header. */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Decodes a binary message: its header (at most {@link MAX_HEADER_BYTES} bytes before the
 * first line feed) must be exactly `["b",id]` with `id` a safe integer ≥ 0. Returns the
 * id and a view of the bytes after the line feed, or a message saying what is wrong.
 */
export function decodeBinaryMessage(data: Uint8Array<ArrayBuffer>): BinaryMessage | string {
  const end = Math.min(data.byteLength, MAX_HEADER_BYTES + 1);
  let lf = -1;
  for (let i = 0; i < end; i++) {
    if (data[i] === LF) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    return `Expected a binary message to start with a header ["${BINARY}",id] of at most ${String(MAX_HEADER_BYTES)} bytes and a line feed, got none`;
  }
  let header = '';
  for (let i = 0; i < lf; i++) header += String.fromCharCode(data[i] as number);
  let items: unknown;
  try {
    items = JSON.parse(header);
  } catch {
    items = undefined;
  }
  if (
    !Array.isArray(items) ||
    items.length !== 2 ||
    items[0] !== BINARY ||
    !isCount(items[1] as unknown)
  ) {
    return `Expected a binary message's header to be ["${BINARY}",id], got ${describeValue(header)}`;
  }
  return { id: items[1] as number, bytes: data.subarray(lf + 1) };
}
