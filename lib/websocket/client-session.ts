/**
 * What a client-side handler receives (`withWebSocket`, an endpoint's `connect`,
 * `reconnecting`, `testConversation`): the connection's {@link Session} itself, plus a
 * `signal` for the connection's life — one object to use or destructure by name, as a
 * server handler's `ServerSession`.
 *
 * @module
 */
import type { ReceiveChannel, SendChannel } from '../channel-types.js';
import { WebSocketCloseError } from '../errors.js';
import type { CloseReason } from '../errors.js';
import type { Session } from './session.js';

/**
 * The session a client handler receives: the same {@link Session} (`incoming`,
 * `outgoing`, `closed`, `close`, …) plus `signal`. Destructure what you need:
 * `async ({ incoming, outgoing, signal }) => …`; call the methods (`close`, `flush`,
 * `terminate`) on the session.
 *
 * @typeParam In - the type of received messages.
 * @typeParam Out - the type of sent messages.
 */
export interface ClientSession<In, Out = In> extends Session<In, Out> {
  /**
   * Aborted when the connection is over for the handler: with a `WebSocketCloseError`
   * carrying the close once the connection has closed, or with the reason of the
   * caller's signal (`withWebSocket`'s `options.signal`, the reconnecting client's stop)
   * when that aborts first. Pass it to whatever the handler waits for besides `incoming`
   * and `outgoing`, so that the work stops with the connection.
   */
  readonly signal: AbortSignal;
}

/**
 * A controller for a handler's `signal`: aborted with a `WebSocketCloseError` carrying
 * the close once `session` has closed (the caller may abort it sooner); internal.
 */
export function connectionLife(session: Pick<Session<unknown>, 'closed'>): AbortController {
  const life = new AbortController();
  void session.closed.then((reason) => {
    life.abort(new WebSocketCloseError(reason));
  });
  return life;
}

/** A {@link ClientSession} in front of a session; internal. */
export class HandlerSession<In, Out> implements ClientSession<In, Out> {
  readonly signal: AbortSignal;
  readonly #inner: Session<In, Out>;

  constructor(inner: Session<In, Out>, signal: AbortSignal) {
    this.#inner = inner;
    this.signal = signal;
  }

  get incoming(): ReceiveChannel<In> {
    return this.#inner.incoming;
  }

  get outgoing(): SendChannel<Out> {
    return this.#inner.outgoing;
  }

  get closed(): Promise<CloseReason> {
    return this.#inner.closed;
  }

  get protocol(): string {
    return this.#inner.protocol;
  }

  close(code?: number, reason?: string): Promise<CloseReason> {
    return this.#inner.close(code, reason);
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }

  terminate(): void {
    this.#inner.terminate();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#inner[Symbol.asyncDispose]();
  }
}

// Where the runtime lacks `Symbol.asyncDispose`, the method landed under the key
// 'undefined': remove it rather than expose a bogus method.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(HandlerSession.prototype, 'undefined');
}
