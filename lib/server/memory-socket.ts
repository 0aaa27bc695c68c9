/**
 * An in-memory WebSocket connection: two {@link MemorySocket}s joined back to back,
 * each shaped like a server-side `ws` socket (WHATWG events, `bufferedAmount`,
 * `pause`/`resume`, `terminate`), so that the adapter's own session code runs on top of
 * them exactly as on a real connection.
 *
 * ## Model
 * Each side has an inbox of frames written by the other side. A frame is delivered one
 * macrotask after it is written (as network data is), in order; a paused side delivers
 * nothing. The writer's `bufferedAmount` counts the bytes of its frames still in the
 * peer's inbox, so a reader that stops (a full `incoming` pauses its socket) pushes back
 * on the writer as TCP would. Closing follows RFC 6455 §5.5.1: Close travels behind the
 * data, the receiver answers with the same code and reason, and each side's close event
 * fires once it has both sent and received a Close (`wasClean: true`); `terminate()` is
 * a lost connection (the peer sees 1006 after the data already in flight). A message
 * over `maxMessageSize` fails the receiving side as `ws` does: it sends Close 1009 and
 * drops the connection.
 *
 * @module
 */
import type { CloseEventLike, MessageEventLike } from '../websocket/socket.js';

type Item =
  | { readonly kind: 'data'; readonly data: string | Uint8Array; readonly size: number }
  | { readonly kind: 'close'; readonly code: number | undefined; readonly reason: string }
  | { readonly kind: 'lost' };

type Listener = (event: never) => void;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** One end of an in-memory connection; see the module doc. */
export class MemorySocket {
  binaryType = 'arraybuffer';
  readonly protocol: string;
  #state = OPEN;
  #peer: MemorySocket | undefined;
  readonly #inbox: Item[] = [];
  /** Bytes this side wrote that are still in the peer's inbox. */
  #buffered = 0;
  #paused = false;
  #scheduled = false;
  #closeSent = false;
  #closeReceived: { code: number; reason: string } | undefined;
  readonly #maxMessageSize: number;
  readonly #listeners = new Map<string, Set<Listener>>();

  constructor(protocol: string, maxMessageSize: number) {
    this.protocol = protocol;
    this.#maxMessageSize = maxMessageSize;
  }

  /** Two sockets joined to each other: `[client, server]`. */
  static pair(
    protocol: string = '',
    maxMessageSize: number = Infinity,
  ): [MemorySocket, MemorySocket] {
    const client = new MemorySocket(protocol, Infinity);
    const server = new MemorySocket(protocol, maxMessageSize);
    client.#peer = server;
    server.#peer = client;
    return [client, server];
  }

  get readyState(): number {
    return this.#state;
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  send(data: string | Uint8Array): void {
    if (this.#state === CONNECTING) throw new Error('WebSocket is not open');
    if (this.#state !== OPEN) return;
    const copy = typeof data === 'string' ? data : new Uint8Array(data);
    const size = typeof copy === 'string' ? Buffer.byteLength(copy) : copy.byteLength;
    this.#buffered += size;
    this.#toPeer({ kind: 'data', data: copy, size });
  }

  close(code?: number, reason = ''): void {
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#sendClose(code, reason);
  }

  terminate(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    this.#inbox.length = 0;
    this.#toPeer({ kind: 'lost' });
    setImmediate(() => {
      this.#emitClose(1006, '', false);
    });
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#schedule();
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  #emit(type: string, event: MessageEventLike | CloseEventLike): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) {
      (listener as (event: MessageEventLike | CloseEventLike) => void)(event);
    }
  }

  #emitClose(code: number, reason: string, wasClean: boolean): void {
    this.#emit('close', { code, reason, wasClean });
    this.#listeners.clear();
  }

  #sendClose(code: number | undefined, reason: string): void {
    this.#closeSent = true;
    this.#toPeer({ kind: 'close', code, reason });
  }

  #toPeer(item: Item): void {
    if (this.#peer !== undefined) this.#peer.#push(item);
  }

  #push(item: Item): void {
    if (this.#state === CLOSED) return;
    this.#inbox.push(item);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#paused || this.#inbox.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#deliver();
    });
  }

  /** Delivers what the inbox holds (as one network read), until paused or closed. */
  #deliver(): void {
    const peer = this.#peer as MemorySocket;
    while (!this.#paused && this.#state !== CLOSED) {
      const item = this.#inbox.shift();
      if (item === undefined) return;
      if (item.kind === 'data') {
        peer.#buffered -= item.size;
        if (this.#closeReceived !== undefined) continue;
        if (item.size > this.#maxMessageSize) {
          this.#fail(1009);
          return;
        }
        const data = typeof item.data === 'string' ? item.data : (item.data.buffer as ArrayBuffer);
        this.#emit('message', { data });
      } else if (item.kind === 'close') {
        const code = item.code ?? 1005;
        this.#closeReceived = { code, reason: item.reason };
        if (!this.#closeSent) {
          this.#state = CLOSING;
          this.#sendClose(item.code, item.reason);
        }
        this.#state = CLOSED;
        this.#inbox.length = 0;
        this.#emitClose(code, item.reason, true);
        return;
      } else {
        this.#state = CLOSED;
        this.#inbox.length = 0;
        this.#emitClose(1006, '', false);
        return;
      }
    }
  }

  /** A protocol failure on receipt, as `ws` handles it: Close(code), then drop. */
  #fail(code: number): void {
    if (!this.#closeSent) this.#sendClose(code, '');
    this.#state = CLOSED;
    this.#inbox.length = 0;
    this.#toPeer({ kind: 'lost' });
    this.#emitClose(1006, '', false);
  }
}
