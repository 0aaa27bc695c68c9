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
import type { Scope } from '../scope.js';
import { addSuppressed, isCancellationBy } from '../internal/cancellation.js';
import { ScopeCore } from '../internal/scope-core.js';
import { SocketSession } from '../websocket/session.js';
import type { FinishListener, SessionOptions } from '../websocket/session.js';
import type { WebSocketLike } from '../websocket/socket.js';
import type { ServerHandler, ServerRequest, ServerSession } from '../websocket/route.js';
export type { ServerRequest, ServerSession } from '../websocket/route.js';
import { goAway } from '../network/channels.js';

/** The reason sent with 1011 when a handler throws: generic, so no error text leaks. */
export const INTERNAL_ERROR_REASON = 'Internal error';

/** Where the handler is: not started, running, or settled (with its scope). */
const RESOLVED: Promise<void> = Promise.resolve();
const BEFORE = 0;
const RUNNING = 1;
const SETTLED = 2;

/** How a handler ended, as `scope(() => handler(session))` would have rejected. */
interface Failure {
  readonly error: unknown;
}

/**
 * The part of a {@link ServerSessionImpl}'s state that a connection whose handler only
 * waits never touches: the handler's scope and what makes it (read `signal` or `scope`),
 * `closed` (read), and the end of the connection (why it ended, a heartbeat's override,
 * a shutdown's goodbye). Made at its first use.
 */
class Rare {
  /** `closed`, once read. */
  closed: Promise<CloseReason> | undefined = undefined;
  /**
   * The handler's scope, once `signal` or `scope` was read while (or after) it ran. The
   * connection's end (or the server's shutdown) cancels it directly — what a parent
   * signal would do — so a connection needs no AbortController of its own.
   */
  scope: ScopeCore | undefined = undefined;
  /** Only if `signal` is read before the handler starts (it never is by `serve`). */
  controller: AbortController | undefined = undefined;
  /** Hands the handler's promise to a scope made during the handler's synchronous call. */
  adopt: ((body: Promise<unknown>) => void) | undefined = undefined;
  /** The outcome of the scope made while the handler ran. */
  scoped: Promise<unknown> | undefined = undefined;
  /** Settled without a scope: why its signal would have been aborted, if it would. */
  settledAbort: Failure | undefined = undefined;
  /** Whether the connection has ended (or the server shut it down), and why. */
  aborted = false;
  abortReason: unknown = undefined;
  /** Set when the server failed the connection itself (heartbeat): reported by `closed`. */
  override: CloseReason | undefined = undefined;
  goingAway: Promise<CloseReason> | undefined = undefined;
}

// The reactions to a handler's promise (see `startBody`), bound to the session's private
// members in its static block.
let BODY_FULFILLED: (this: ServerSessionImpl<unknown, unknown>) => void;
let BODY_REJECTED: (this: ServerSessionImpl<unknown, unknown>, error: unknown) => void;

/**
 * The {@link ServerSession} behind `serve` and `testConversation`; internal.
 *
 * ## What an idle connection holds
 * The handler's scope (an AbortController, its signal, the child set, the body's
 * promise chain) is made only when the handler first reads `signal` or `scope`: until
 * then the handler runs as a plain promise, and {@link ServerSessionImpl.runBody}
 * decides its outcome exactly as `scope(() => handler(session))` would (the end of the
 * connection cancels it; a handler that throws after that has its error suppressed by
 * the reason). A scope made while the handler runs adopts the handler's promise as its
 * body; one asked for after the handler settled is a settled scope whose signal is
 * aborted as the real one would have been. `closed` is made on first use too; the
 * connection's end reaches the session through {@link ServerSessionImpl.sessionFinished}
 * (no promise chain per connection).
 */
export class ServerSessionImpl<In, Out> implements ServerSession<In, Out>, FinishListener {
  readonly request: ServerRequest;
  readonly #inner: SocketSession<In, Out>;
  #state: typeof BEFORE | typeof RUNNING | typeof SETTLED = BEFORE;
  /** The handler's promise while it runs (the body a scope made meanwhile adopts). */
  #body: Promise<unknown> | undefined;
  /** Who hears about the handler's end, while it runs (see `runHandler`). */
  #host: HandlerHost<unknown> | undefined;
  #token: unknown;
  /** The rest of the state, made at its first use (see {@link Rare}). */
  #rare: Rare | null = null;

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
    this.#inner = new SocketSession<In, Out>(socket, options, rawMessages, this);
    this.request = request;
  }

  /** The rarely used half of the state, made now if it was not. */
  #r(): Rare {
    return (this.#rare ??= new Rare());
  }

  get closed(): Promise<CloseReason> {
    const rare = this.#r();
    return (rare.closed ??= this.#inner.closed.then((reason) => rare.override ?? reason));
  }

  /**
   * The connection ended (called by the inner session in the microtask in which its own
   * `closed` settles, before anything awaiting it resumes); internal.
   */
  sessionFinished(reason: CloseReason): void {
    this.#abort(new WebSocketCloseError(this.#rare?.override ?? reason));
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
    const handlerScope = this.#handlerScope();
    if (handlerScope !== undefined) return handlerScope.signal;
    const rare = this.#r();
    if (rare.controller === undefined) {
      rare.controller = new AbortController();
      if (rare.aborted) rare.controller.abort(rare.abortReason);
    }
    return rare.controller.signal;
  }

  get scope(): Scope {
    const handlerScope = this.#handlerScope();
    if (handlerScope === undefined) throw new Error('The handler has not started yet');
    return handlerScope;
  }

  /** The handler's scope, made on first use; `undefined` before the handler started. */
  #handlerScope(): ScopeCore | undefined {
    const existing = this.#rare?.scope;
    if (existing !== undefined || this.#state === BEFORE) return existing;
    const rare = this.#r();
    if (this.#state === RUNNING) {
      const core = (rare.scope = new ScopeCore(false, true, undefined, undefined));
      if (rare.aborted) core.cancel(rare.abortReason);
      let body = this.#body;
      if (body === undefined) {
        // Asked for while the handler is being called: its promise comes when it returns.
        body = new Promise((resolve) => {
          rare.adopt = resolve;
        });
      }
      const adopted = body;
      rare.scoped = core.run(() => adopted);
      return core;
    }
    // Settled without a scope: the scope it would have had, settled.
    const core = (rare.scope = new ScopeCore(false, false, undefined, undefined));
    const abort = rare.settledAbort;
    if (abort !== undefined) core.cancel(abort.error);
    core.seal();
    return core;
  }

  /**
   * Runs `handler` as the body of the handler's scope; once it (and the scope, if one was
   * made) has settled, the connection ends as {@link runHandler} says, with the error
   * `scope(() => handler(session))` would have rejected with, if any. No async frame
   * waits meanwhile: the handler's promise has one reaction. Internal.
   */
  startBody(handler: ServerHandler<In, Out>, host: HandlerHost<unknown>, token: unknown): void {
    this.#state = RUNNING;
    this.#host = host;
    this.#token = token;
    let body: Promise<unknown>;
    try {
      body = Promise.resolve(handler(this));
    } catch (error) {
      body = Promise.reject(error);
    }
    this.#body = body;
    const rare = this.#rare;
    if (rare !== null && rare.adopt !== undefined) {
      rare.adopt(body);
      rare.adopt = undefined;
    }
    // Bound functions rather than closures: no context object besides them.
    const self = this as unknown as ServerSessionImpl<unknown, unknown>;
    body.then(BODY_FULFILLED.bind(self), BODY_REJECTED.bind(self));
  }

  static {
    BODY_FULFILLED = function (this: ServerSessionImpl<unknown, unknown>): void {
      this.#bodySettled(undefined);
    };
    BODY_REJECTED = function (this: ServerSessionImpl<unknown, unknown>, error: unknown): void {
      this.#bodySettled({ error });
    };
  }

  #bodySettled(failure: Failure | undefined): void {
    this.#body = undefined;
    this.#state = SETTLED;
    const rare = this.#rare;
    const scoped = rare === null ? undefined : rare.scoped;
    if (scoped !== undefined) {
      // The handler read its scope: the scope decides (and waits for its children).
      scoped.then(
        () => {
          this.#handlerEnded(undefined);
        },
        (error: unknown) => {
          this.#handlerEnded({ error });
        },
      );
      return;
    }
    if (rare !== null && rare.aborted) {
      // A cancelled scope rejects with the reason; a real failure after the cancellation
      // is recorded as suppressed by it.
      const reason = rare.abortReason;
      if (failure !== undefined && !isCancellationBy(failure.error, reason)) {
        addSuppressed(reason, failure.error);
      }
      failure = { error: reason };
    }
    if (failure !== undefined) this.#r().settledAbort = failure;
    // A scope's promise would settle a microtask after its body: keep that timing.
    void RESOLVED.then(() => {
      this.#handlerEnded(failure);
    });
  }

  #handlerEnded(failure: Failure | undefined): void {
    const host = this.#host as HandlerHost<unknown>;
    const token = this.#token;
    this.#host = undefined;
    this.#token = undefined;
    void endConnection(this, failure, host, token);
  }

  /** Whether the connection ended (or was shut down) with `error` as the reason; internal. */
  abortedWith(error: unknown): boolean {
    const rare = this.#rare;
    return rare !== null && rare.aborted && error === rare.abortReason;
  }

  /** The reason the connection ended before the handler started, if it did; internal. */
  get abortedEarly(): { reason: unknown } | undefined {
    const rare = this.#rare;
    return rare !== null && rare.aborted ? { reason: rare.abortReason } : undefined;
  }

  /** The connection's end: the first reason wins, as with `AbortController.abort`. */
  #abort(reason: unknown): void {
    const rare = this.#r();
    if (rare.aborted) return;
    rare.aborted = true;
    rare.abortReason = reason;
    rare.controller?.abort(reason);
    rare.scope?.cancel(reason);
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
    else this.#r().goingAway = away;
  }

  /**
   * While the shutdown's goodbye handshake runs: the channel session's `closed`, which
   * `runHandler` awaits before closing the session itself (a close of its own would cut
   * the handshake short); internal.
   */
  get goingAway(): Promise<CloseReason> | undefined {
    return this.#rare?.goingAway;
  }

  /**
   * The server failed the connection (a silent peer): `closed` will report `reason`, the
   * signal aborts with a `WebSocketCloseError` caused by `cause`. Returns `false` if the
   * connection had already been failed; else the caller then destroys the socket.
   * Internal.
   */
  fail(reason: CloseReason, cause: unknown): boolean {
    const rare = this.#r();
    if (rare.override !== undefined) return false;
    rare.override = reason;
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
 * connection has closed, `host.done(token)`. (One host and no closures per connection,
 * no frame waiting while the handler runs: an idle connection holds little.)
 */
export function startHandler<In, Out, T>(
  session: ServerSessionImpl<In, Out>,
  handler: ServerHandler<In, Out>,
  host: HandlerHost<T>,
  token: T,
): void {
  const early = session.abortedEarly;
  if (early !== undefined) {
    // As `scope(…, { signal })` with an aborted signal: the handler never runs.
    void endConnection(session, { error: early.reason }, host, token);
  } else {
    session.startBody(handler, host, token);
  }
}

/** {@link startHandler}, resolving after `host.done`; never rejects. */
export function runHandler<In, Out, T>(
  session: ServerSessionImpl<In, Out>,
  handler: ServerHandler<In, Out>,
  host: HandlerHost<T>,
  token: T,
): Promise<void> {
  return new Promise<void>((resolve) => {
    startHandler(
      session,
      handler,
      {
        report: (error, failed) => {
          host.report(error, failed);
        },
        settled: (value) => host.settled?.(value),
        done: (value) => {
          host.done?.(value);
          resolve();
        },
      },
      token,
    );
  });
}

/** After the handler: say goodbye, close by its outcome, wait for the close. */
async function endConnection<In, Out, T>(
  session: ServerSessionImpl<In, Out>,
  failure: Failure | undefined,
  host: HandlerHost<T>,
  token: T,
): Promise<void> {
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
