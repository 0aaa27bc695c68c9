/**
 * Bun's `ServerWebSocket` as a {@link WebSocketLike} (for the session) and a
 * {@link PingableSocket} (for the heartbeat). Bun delivers a connection's events to the
 * handlers of its server, not to the socket: the server hands each one to the socket's
 * `BunSocket` (`message`, `pong`, `closed`), which dispatches it to its listeners. Only
 * loaded under Bun (see bun-serve.ts); it declares the small part of Bun's API it uses,
 * so that no Bun types are needed to compile it.
 *
 * @module
 */
import { CLOSED, CLOSING, OPEN } from '../websocket/socket.js';
import type { CloseEventLike, MessageEventLike, WebSocketLike } from '../websocket/socket.js';
import type { PingableSocket } from './heartbeat.js';

/** The part of Bun's `ServerWebSocket` that sluice uses. */
export interface BunServerWebSocket<Data> {
  readonly data: Data;
  readonly remoteAddress: string;
  binaryType: string;
  /** -1: queued behind backpressure, 0: dropped, > 0: bytes written. */
  send(data: string | Uint8Array<ArrayBuffer>): number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(data?: Uint8Array): number;
  pause(): void;
  resume(): void;
  getBufferedAmount(): number;
}

type Listener<E> = (event: E) => void;
type ControlListener = (data: Uint8Array) => void;

/** `listeners` without `listener` (a new array: dispatch may be iterating the old one). */
function without<T>(listeners: readonly T[], listener: T): T[] {
  return listeners.filter((item) => item !== listener);
}

/**
 * One server-side connection of `Bun.serve`. `readyState` is this object's own: open
 * from the start (Bun calls `open` once the handshake is done), CLOSING once `close()`
 * was called, CLOSED once the close event has been dispatched, which always happens in a
 * microtask after Bun reported the end (Bun reports the end of a connection it closes
 * itself synchronously, inside `close()`; the session expects events afterwards, as
 * from a browser or `ws`).
 */
export class BunSocket<Data> implements WebSocketLike, PingableSocket {
  readonly protocol: string;
  binaryType = 'arraybuffer';
  #state: number = OPEN;
  readonly #ws: BunServerWebSocket<Data>;
  #onMessage: readonly Listener<MessageEventLike>[] = [];
  #onClose: readonly Listener<CloseEventLike>[] = [];
  #onPing: readonly ControlListener[] = [];
  #onPong: readonly ControlListener[] = [];
  #ended = false;

  constructor(ws: BunServerWebSocket<Data>, protocol: string) {
    this.#ws = ws;
    this.protocol = protocol;
    // Binary messages as ArrayBuffer: the session takes them without a copy.
    ws.binaryType = 'arraybuffer';
  }

  get readyState(): number {
    return this.#state;
  }

  get bufferedAmount(): number {
    return this.#state === CLOSED ? 0 : this.#ws.getBufferedAmount();
  }

  send(data: string | Uint8Array<ArrayBuffer>): void {
    if (this.#state !== OPEN) return;
    // 0 for a non-empty message = Bun dropped it (over `backpressureLimit`, which
    // bun-serve sets beyond any high-water mark, or the connection is gone): fail the
    // connection rather than lose a message whose `send` resolves. (An empty message
    // sent is 0 bytes too.)
    if (this.#ws.send(data) === 0 && (typeof data === 'string' ? data : data.byteLength)) {
      this.terminate();
    }
  }

  close(code?: number, reason?: string): void {
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#ws.close(code, reason);
  }

  /** Destroys the TCP connection; Bun then reports 1006. */
  terminate(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSING;
    this.#ws.terminate();
  }

  pause(): void {
    if (this.#state !== CLOSED) this.#ws.pause();
  }

  resume(): void {
    if (this.#state !== CLOSED) this.#ws.resume();
  }

  ping(data: Uint8Array): void {
    if (this.#state === OPEN) this.#ws.ping(data);
  }

  addEventListener(type: 'open', listener: (event: unknown) => void): void;
  addEventListener(type: 'message', listener: Listener<MessageEventLike>): void;
  addEventListener(type: 'close', listener: Listener<CloseEventLike>): void;
  addEventListener(type: 'error', listener: (event: never) => void): void;
  addEventListener(type: string, listener: Listener<never>): void {
    // 'open' has happened before the session exists; Bun reports no errors per socket.
    if (type === 'message') {
      this.#onMessage = [...this.#onMessage, listener as Listener<MessageEventLike>];
    } else if (type === 'close') {
      this.#onClose = [...this.#onClose, listener as Listener<CloseEventLike>];
    }
  }

  removeEventListener(type: 'open', listener: (event: unknown) => void): void;
  removeEventListener(type: 'message', listener: Listener<MessageEventLike>): void;
  removeEventListener(type: 'close', listener: Listener<CloseEventLike>): void;
  removeEventListener(type: 'error', listener: (event: never) => void): void;
  removeEventListener(type: string, listener: Listener<never>): void {
    if (type === 'message') {
      this.#onMessage = without(this.#onMessage, listener as Listener<MessageEventLike>);
    } else if (type === 'close') {
      this.#onClose = without(this.#onClose, listener as Listener<CloseEventLike>);
    }
  }

  /** Ping and pong listeners (a `'message'` listener is refused: use `addEventListener`). */
  on(event: 'ping' | 'pong', listener: ControlListener): this;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): this;
  on(
    event: 'ping' | 'pong' | 'message',
    listener: ControlListener | ((data: unknown, isBinary: boolean) => void),
  ): this {
    if (event === 'message') throw new TypeError("Expected 'ping' or 'pong', got 'message'");
    const control = listener as ControlListener;
    if (event === 'ping') this.#onPing = [...this.#onPing, control];
    else this.#onPong = [...this.#onPong, control];
    return this;
  }

  /** Removes a ping or pong listener added with `on`. */
  off(event: 'ping' | 'pong', listener: ControlListener): this;
  off(event: 'message', listener: (data: unknown, isBinary: boolean) => void): this;
  off(
    event: 'ping' | 'pong' | 'message',
    listener: ControlListener | ((data: unknown, isBinary: boolean) => void),
  ): this {
    if (event === 'message') return this;
    const control = listener as ControlListener;
    if (event === 'ping') this.#onPing = without(this.#onPing, control);
    else this.#onPong = without(this.#onPong, control);
    return this;
  }

  /** Bun's `message` handler: a text (`string`) or binary message. */
  message(data: string | ArrayBuffer | Uint8Array): void {
    if (this.#ended) return;
    const event: MessageEventLike = { data };
    for (const listener of this.#onMessage) listener(event);
  }

  /** Bun's `ping` / `pong` handlers (the payload comes as the `binaryType` says). */
  control(kind: 'ping' | 'pong', payload: ArrayBuffer | Uint8Array): void {
    if (this.#ended) return;
    const data = payload instanceof ArrayBuffer ? new Uint8Array(payload) : payload;
    for (const listener of kind === 'ping' ? this.#onPing : this.#onPong) {
      listener.call(this, data);
    }
  }

  /**
   * Bun's `close` handler. Bun gives no `wasClean`: 1006 (connection lost, or failed by
   * the server after a protocol error) is unclean, any other code clean.
   */
  closed(code: number, reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#state = CLOSING;
    queueMicrotask(() => {
      this.#state = CLOSED;
      const event: CloseEventLike = { code, reason, wasClean: code !== 1006 };
      for (const listener of this.#onClose) listener(event);
    });
  }
}
