/**
 * The structural type of a WebSocket that sluice can wrap: the WHATWG `WebSocket`
 * surface (browsers, Node's own `WebSocket`, `ws` and `isomorphic-ws`), plus the optional
 * extras that Node's `ws` has (`terminate`, `pause`/`resume`, ping/pong events), which
 * sluice uses when present. Nothing here imports a WebSocket implementation.
 *
 * @module
 */

/** `readyState` of a socket whose opening handshake is in progress. */
export const CONNECTING = 0;
/** `readyState` of an open socket. */
export const OPEN = 1;
/** `readyState` of a socket whose closing handshake is in progress. */
export const CLOSING = 2;
/** `readyState` of a closed socket. */
export const CLOSED = 3;

/** The `message` event, as every implementation delivers it. */
export interface MessageEventLike {
  /** `string` for a text frame; `ArrayBuffer` (or a `Uint8Array` such as a `Buffer`) for binary. */
  readonly data: unknown;
}

/** The `close` event, as every implementation delivers it. */
export interface CloseEventLike {
  /** The close code the peer sent, or 1005 (none sent) / 1006 (connection lost). */
  readonly code: number;
  /** The peer's close reason (UTF-8, at most 123 bytes), or `''`. */
  readonly reason: string;
  /** Whether both closing handshakes were exchanged before the connection ended. */
  readonly wasClean: boolean;
}

/** The `error` event; `ws` attaches the underlying `error`, browsers attach nothing. */
export interface ErrorEventLike {
  /** `ws` only: the underlying `Error` (for example `ECONNREFUSED`). */
  readonly error?: unknown;
  /** A description, where the implementation gives one. */
  readonly message?: unknown;
}

/**
 * A WebSocket as sluice needs it. The browser `WebSocket`, Node's own `WebSocket`
 * (`globalThis.WebSocket`, Node ≥ 22 or `--experimental-websocket`), and `ws`'s client
 * and server-side sockets all fit without adapters.
 *
 * Optional members are Node `ws` extras that sluice uses when they exist:
 * - `terminate()` drops the TCP connection without a closing handshake;
 * - `pause()`/`resume()` stop and restart reading, so a full `incoming` pushes back on
 *   the peer through TCP;
 * - `on`/`off` for `'ping'`/`'pong'`, which count as inbound frames for `idleTimeout`.
 */
export interface WebSocketLike {
  /** {@link CONNECTING}, {@link OPEN}, {@link CLOSING} or {@link CLOSED}. */
  readonly readyState: number;
  /** Bytes handed to `send` and not yet written to the network. */
  readonly bufferedAmount: number;
  /** sluice sets it to `'arraybuffer'` (browsers default to `'blob'`). */
  binaryType: string;
  /** The subprotocol the server selected, or `''`. */
  readonly protocol: string;
  /** Queues one frame: text for a `string`, binary for bytes. */
  send(data: string | Uint8Array<ArrayBuffer>): void;
  /** Starts the closing handshake (browsers accept only 1000 and 3000–4999). */
  close(code?: number, reason?: string): void;
  /** Listens for the end of the opening handshake. */
  addEventListener(type: 'open', listener: (event: unknown) => void): void;
  /** Listens for each received data frame. */
  addEventListener(type: 'message', listener: (event: MessageEventLike) => void): void;
  /** Listens for the end of the connection (fires once). */
  addEventListener(type: 'close', listener: (event: CloseEventLike) => void): void;
  /** Listens for failures; a `close` event follows on every implementation but Node 20's own. */
  addEventListener(type: 'error', listener: (event: ErrorEventLike) => void): void;
  /** Removes an `'open'` listener. */
  removeEventListener(type: 'open', listener: (event: unknown) => void): void;
  /** Removes a `'message'` listener. */
  removeEventListener(type: 'message', listener: (event: MessageEventLike) => void): void;
  /** Removes a `'close'` listener. */
  removeEventListener(type: 'close', listener: (event: CloseEventLike) => void): void;
  /** Removes an `'error'` listener. */
  removeEventListener(type: 'error', listener: (event: ErrorEventLike) => void): void;
  /** `ws` only: destroys the connection at once, without a closing handshake. */
  terminate?(): void;
  /** `ws` only: stops reading from the network (events already parsed may still fire). */
  pause?(): void;
  /** `ws` only: undoes `pause()`. */
  resume?(): void;
  /** `ws` only: control-frame events. */
  on?(event: 'ping' | 'pong', listener: () => void): unknown;
  /**
   * `ws` only: each message as `ws` parsed it, a text message still as UTF-8 bytes (sluice
   * listens so where the socket can also pause, to decode a text frame only when its turn
   * comes).
   */
  on?(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  /** `ws` only: removes a listener added with `on`. */
  off?(event: 'ping' | 'pong', listener: () => void): unknown;
  /** `ws` only: removes a `'message'` listener added with `on`. */
  off?(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
}

/**
 * A WebSocket constructor: the global `WebSocket`, `ws`'s `WebSocket`, or the default
 * export of `isomorphic-ws`. The third argument is passed through (with `ws`, its client
 * options such as `headers`; browsers ignore it).
 */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: object,
) => WebSocketLike;
