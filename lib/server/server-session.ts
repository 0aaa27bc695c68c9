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
  DecodeError,
  IncomingOverflowError,
  WebSocketCloseError,
} from '../errors.js';
import type { CloseReason } from '../errors.js';
import { scope } from '../scope.js';
import type { Scope } from '../scope.js';
import { SocketSession } from '../websocket/session.js';
import type { Session, SessionOptions } from '../websocket/session.js';
import type { WebSocketLike } from '../websocket/socket.js';
import type { ServerHandler } from './route.js';

/** The HTTP upgrade request a connection came from, as the handler (and `authorize`) sees it. */
export interface ServerRequest {
  /** The path of the request target, without the query (`/chat`). */
  readonly path: string;
  /** The parsed query string. */
  readonly query: URLSearchParams;
  /** The request headers, with lower-cased names (as Node's `http` gives them). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The peer's IP address (`'127.0.0.1'`, `'::1'`), or `''` when unknown. */
  readonly remoteAddress: string;
}

/**
 * A connection on the server: the same {@link Session} as on the client — `incoming`,
 * `outgoing`, `closed`, `flush`, `terminate` with the same semantics — plus what only the
 * server knows.
 *
 * @typeParam In - messages from the client.
 * @typeParam Out - messages to the client.
 */
export interface ServerSession<In, Out = In> extends Session<In, Out> {
  /** The upgrade request (path, query, headers, remote address). */
  readonly request: ServerRequest;
  /**
   * Aborted when the connection ends (reason: a `WebSocketCloseError` with the close
   * code; for a silent peer, code 1006 with a `TimeoutError` cause), when the server shuts
   * down (a `ServerClosedError`), or when a child of {@link ServerSession.scope} fails.
   * Pass it to whatever the handler awaits so that the work stops with the connection.
   */
  readonly signal: AbortSignal;
  /**
   * The handler's scope: children started with `scope.launch`/`scope.async` get
   * {@link ServerSession.signal}, and the handler's connection is closed only after all
   * of them have settled. A failing child fails the handler (1011, `onError`).
   */
  readonly scope: Scope;
  /**
   * As {@link Session.close}, but a server may also send protocol codes: 1000–1003,
   * 1007–1014 (1001 going away, 1008 policy violation, 1011 internal error, …) or
   * 3000–4999. Flushes what `send` accepted first; a second call does nothing.
   *
   * @throws TypeError if `code` is not a number or `reason` not a string.
   * @throws RangeError if `code` is not one of those, or `reason` exceeds 123 UTF-8 bytes.
   */
  close(code?: number, reason?: string): Promise<CloseReason>;
}

/** The reason sent with 1011 when a handler throws: generic, so no error text leaks. */
export const INTERNAL_ERROR_REASON = 'Internal error';

/** The {@link ServerSession} behind `serve` and `testConversation`; internal. */
export class ServerSessionImpl<In, Out> implements ServerSession<In, Out> {
  readonly request: ServerRequest;
  readonly closed: Promise<CloseReason>;
  readonly #inner: SocketSession<In, Out>;
  readonly #controller = new AbortController();
  #scope: Scope | undefined;
  /** Set when the server failed the connection itself (heartbeat): reported by `closed`. */
  #override: CloseReason | undefined;

  constructor(socket: WebSocketLike, options: SessionOptions<In, Out>, request: ServerRequest) {
    this.#inner = new SocketSession<In, Out>(socket, options);
    this.request = request;
    this.closed = this.#inner.closed.then((reason) => {
      const final = this.#override ?? reason;
      this.#controller.abort(new WebSocketCloseError(final));
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

  /** The connection's own signal (no scope); internal. */
  get connectionSignal(): AbortSignal {
    return this.#controller.signal;
  }

  get signal(): AbortSignal {
    return this.#scope?.signal ?? this.#controller.signal;
  }

  get scope(): Scope {
    if (this.#scope === undefined) throw new Error('The handler has not started yet');
    return this.#scope;
  }

  /** Gives the handler's scope to the session; internal. */
  attach(handlerScope: Scope): void {
    this.#scope = handlerScope;
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

  /** Server shutdown: aborts the signal with `reason`, then closes with 1001; internal. */
  shutdown(reason: unknown): void {
    this.#controller.abort(reason);
    void this.#inner.closeWith(1001, 'Going away');
  }

  /**
   * The server failed the connection (a silent peer): `closed` will report `reason`, the
   * signal aborts with a `WebSocketCloseError` caused by `cause`; `drop` then destroys the
   * socket. Internal.
   */
  fail(reason: CloseReason, cause: unknown, drop: () => void): void {
    if (this.#override !== undefined) return;
    this.#override = reason;
    this.#controller.abort(new WebSocketCloseError(reason, { cause }));
    drop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Errors a handler gets from its channels when the connection ends or fails. */
function isConnectionError(error: unknown): boolean {
  return (
    error instanceof WebSocketCloseError ||
    error instanceof ClosedSendError ||
    error instanceof ClosedReceiveError ||
    error instanceof DecodeError ||
    error instanceof IncomingOverflowError
  );
}

/**
 * Runs `handler` for the life of `session`, in a scope tied to the connection, and ends
 * the connection by the handler's outcome:
 * - **returns:** unread messages are dropped, everything accepted is flushed, Close 1000;
 * - **throws:** `report(error)` once, Close 1011 `'Internal error'` after flushing;
 * - **ends because the connection did** (it rethrows the signal's reason, or an error of
 *   its channels once the connection is closing): nothing is reported.
 * Resolves once the handler has settled and the connection has closed; never rejects.
 */
export async function runHandler<In, Out>(
  session: ServerSessionImpl<In, Out>,
  handler: ServerHandler<In, Out>,
  report: (error: unknown) => void,
): Promise<void> {
  const signal = session.connectionSignal;
  let failure: { error: unknown } | undefined;
  try {
    await scope(
      async (handlerScope) => {
        session.attach(handlerScope);
        await handler(session);
      },
      { signal },
    );
  } catch (error) {
    failure = { error };
  }
  if (failure === undefined) {
    session.incoming.cancel();
    await session.close(1000);
    return;
  }
  const { error } = failure;
  const quiet =
    (signal.aborted && error === signal.reason) ||
    (isConnectionError(error) && session.outgoing.isClosedForSend);
  if (!quiet) {
    try {
      report(error);
    } catch {
      // A throwing onError must not take the server down; the close below still happens.
    }
  }
  session.incoming.cancel(error);
  await session.close(1011, INTERNAL_ERROR_REASON);
}
