/**
 * The server side of a connection: the adapter's session (same channels, same close
 * semantics) plus the upgrade `request`, an AbortSignal for the connection's life, and a
 * scope for the handler's children. {@link runHandler} ties the handler to the
 * connection: return → flush and 1000; throw → 1011 and `onError`.
 *
 * @module
 */
import type { ReceiveChannel, SendChannel } from '../channel-types.js';
import {
  ClosedReceiveError,
  ClosedSendError,
  ConnectionLostError,
  DecodeError,
  IncomingOverflowError,
  WebSocketCloseError,
} from '../errors.js';
import type { CloseReason } from '../errors.js';
import { scope } from '../scope.js';
import type { Scope } from '../scope.js';
import { SocketSession } from '../websocket/session.js';
import type { SessionOptions } from '../websocket/session.js';
import type { WebSocketLike } from '../websocket/socket.js';
import type { ServerHandler, ServerRequest, ServerSession } from '../websocket/route.js';
export type { ServerRequest, ServerSession } from '../websocket/route.js';
import { goAway } from '../network/channels.js';

/** The reason sent with 1011 when a handler throws: generic, so no error text leaks. */
export const INTERNAL_ERROR_REASON = 'Internal error';

/** The {@link ServerSession} behind `serve` and `testConversation`; internal. */
export class ServerSessionImpl<In, Out> implements ServerSession<In, Out> {
  readonly request: ServerRequest;
  readonly closed: Promise<CloseReason>;
  readonly #inner: SocketSession<In, Out>;
  /**
   * The handler's scope. The connection's end (or the server's shutdown) cancels it
   * directly — what a parent signal would do — so a connection needs no AbortController
   * of its own.
   */
  #scope: Scope | undefined;
  /** Only if `signal` is read before the handler starts (it never is by `serve`). */
  #controller: AbortController | undefined;
  /** Whether the connection has ended (or the server shut it down), and why. */
  #aborted = false;
  #abortReason: unknown = undefined;
  /** Set when the server failed the connection itself (heartbeat): reported by `closed`. */
  #override: CloseReason | undefined;
  #goingAway: Promise<CloseReason> | undefined;

  /**
   * `rawMessages`: listen to `ws`'s own message event, so that a text message is decoded
   * only when its read turn comes (the `ws` transport); `false` for sockets whose `on`
   * knows only ping and pong (the Bun transport).
   */
  constructor(
    socket: WebSocketLike,
    options: SessionOptions<In, Out>,
    request: ServerRequest,
    rawMessages = true,
  ) {
    this.#inner = new SocketSession<In, Out>(socket, options, rawMessages);
    this.request = request;
    this.closed = this.#inner.closed.then((reason) => {
      const final = this.#override ?? reason;
      this.#abort(new WebSocketCloseError(final));
      return final;
    });
  }

  get incoming(): ReceiveChannel<In> {
    return this.#inner.incoming;
  }

  get outgoing(): SendChannel<Out> {
    return this.#inner.outgoing;
  }

  get protocol(): string {
    return this.#inner.protocol;
  }

  get signal(): AbortSignal {
    if (this.#scope !== undefined) return this.#scope.signal;
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get scope(): Scope {
    if (this.#scope === undefined) throw new Error('The handler has not started yet');
    return this.#scope;
  }

  /** Whether the connection ended (or was shut down) with `error` as the reason; internal. */
  abortedWith(error: unknown): boolean {
    return this.#aborted && error === this.#abortReason;
  }

  /** The reason the connection ended before the handler started, if it did; internal. */
  get abortedEarly(): { reason: unknown } | undefined {
    return this.#aborted ? { reason: this.#abortReason } : undefined;
  }

  /** Gives the handler's scope to the session; internal. */
  attach(handlerScope: Scope): void {
    this.#scope = handlerScope;
    if (this.#aborted) handlerScope.cancel(this.#abortReason);
  }

  /** The connection's end: the first reason wins, as with `AbortController.abort`. */
  #abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
    this.#scope?.cancel(reason);
  }

  close(code = 1000, reason = ''): Promise<CloseReason> {
    return this.#inner.closeWith(code, reason);
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }

  terminate(): void {
    this.#inner.terminate();
  }

  /**
   * Server shutdown: aborts the signal with `reason`, then closes with 1001 — after the
   * goodbye handshake when `channels()` took the session over, so that the values in
   * flight are acknowledged or reported once (see {@link goingAway}); internal.
   */
  shutdown(reason: unknown): void {
    this.#abort(reason);
    const away = goAway(this, 1001, 'Going away');
    if (away === undefined) void this.#inner.closeWith(1001, 'Going away');
    else this.#goingAway = away;
  }

  /**
   * While the shutdown's goodbye handshake runs: the channel session's `closed`, which
   * `runHandler` awaits before closing the session itself (a close of its own would cut
   * the handshake short); internal.
   */
  get goingAway(): Promise<CloseReason> | undefined {
    return this.#goingAway;
  }

  /**
   * The server failed the connection (a silent peer): `closed` will report `reason`, the
   * signal aborts with a `WebSocketCloseError` caused by `cause`. Returns `false` if the
   * connection had already been failed; else the caller then destroys the socket.
   * Internal.
   */
  fail(reason: CloseReason, cause: unknown): boolean {
    if (this.#override !== undefined) return false;
    this.#override = reason;
    this.#abort(new WebSocketCloseError(reason, { cause }));
    return true;
  }

  /** The heartbeat pinged (see heartbeat.ts, "Paused connections"); internal. */
  pinged(): void {
    this.#inner.pinged();
  }

  /** See `Liveness.unreadUntil`; internal. */
  get unreadUntil(): number {
    return this.#inner.unreadUntil;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Errors a handler gets from its channels when the connection ends or fails. */
function isConnectionError(error: unknown): boolean {
  return (
    error instanceof WebSocketCloseError ||
    error instanceof ConnectionLostError ||
    error instanceof ClosedSendError ||
    error instanceof ClosedReceiveError ||
    error instanceof DecodeError ||
    error instanceof IncomingOverflowError
  );
}

/** Who hears about a handler's errors and end; internal. */
export interface HandlerHost<T> {
  /** A handler error to report (once); see {@link runHandler}. */
  report(error: unknown, session: ServerSessionImpl<unknown, unknown>): void;
  /** The handler and every child of its scope have settled (the connection may still be open). */
  settled?(token: T): void;
  /** The handler has settled and the connection has closed. */
  done?(token: T): void;
}

/**
 * Runs `handler` for the life of `session`, in a scope tied to the connection, and ends
 * the connection by the handler's outcome:
 * - **returns:** unread messages are dropped, everything accepted is flushed, Close 1000;
 * - **throws:** `host.report(error)` once, Close 1011 `'Internal error'` after flushing;
 * - **ends because the connection did** (it rethrows the signal's reason, or an error of
 *   its channels once the connection is closing): nothing is reported.
 * `host.settled(token)` as soon as the handler's scope has settled, then, once the
 * connection has closed, `host.done(token)`. Resolves after that; never
 * rejects. (One host and no closures per connection: an idle connection holds little.)
 */
export async function runHandler<In, Out, T>(
  session: ServerSessionImpl<In, Out>,
  handler: ServerHandler<In, Out>,
  host: HandlerHost<T>,
  token: T,
): Promise<void> {
  let failure: { error: unknown } | undefined;
  const early = session.abortedEarly;
  if (early !== undefined) {
    // As `scope(…, { signal })` with an aborted signal: the handler never runs.
    failure = { error: early.reason };
  } else {
    try {
      await scope((handlerScope) => {
        session.attach(handlerScope);
        return handler(session);
      });
    } catch (error) {
      failure = { error };
    }
  }
  host.settled?.(token);
  // The server's shutdown is saying goodbye on the channels: let it finish (it closes).
  const away = session.goingAway;
  if (away !== undefined) await away;
  if (failure === undefined) {
    session.incoming.cancel();
    await session.close(1000);
  } else {
    const { error } = failure;
    const quiet =
      session.abortedWith(error) || (isConnectionError(error) && session.outgoing.isClosedForSend);
    if (!quiet) {
      try {
        host.report(error, session as ServerSessionImpl<unknown, unknown>);
      } catch {
        // A throwing onError must not take the server down; the close below still happens.
      }
    }
    session.incoming.cancel(error);
    await session.close(1011, INTERNAL_ERROR_REASON);
  }
  await session.closed;
  host.done?.(token);
}
