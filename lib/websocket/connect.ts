/**
 * `connect(url)` opens a WebSocket and resolves with its {@link Session} once open;
 * `withWebSocket(url, options, handler)` runs a handler for exactly the life of one
 * connection. Both use the global `WebSocket` in browsers and `ws` in Node (through
 * `isomorphic-ws`), or the constructor given as `options.WebSocket`.
 *
 * @module
 */
import WebSocketDefault from 'isomorphic-ws';
import { ConnectError, HandshakeError, TimeoutError } from '../errors.js';
import { startTimer } from '../internal/timer.js';
import { HandlerSession, connectionLife } from './client-session.js';
import type { ClientSession } from './client-session.js';
import { APPLICATION_ERROR, SocketSession, checkOptions } from './session.js';
import type { Session, SessionOptions } from './session.js';
import type { ErrorEventLike, WebSocketConstructor, WebSocketLike } from './socket.js';
import { assertSignal } from '../internal/describe-value.js';
import { checkFunction, checkNumber, describeValue } from './validate.js';

/** Options of {@link connect} and {@link withWebSocket}: the session's, and these. */
export interface ConnectOptions<In, Out> extends SessionOptions<In, Out> {
  /**
   * The WebSocket constructor to use.
   * @default the global `WebSocket` in browsers, `ws` in Node (`isomorphic-ws`)
   */
  readonly WebSocket?: WebSocketConstructor | undefined;
  /** Subprotocols to offer; the chosen one is `session.protocol`. @default none */
  readonly protocols?: string | readonly string[] | undefined;
  /**
   * Milliseconds to wait for the connection to open before giving up with a
   * `ConnectError` whose `cause` is a `TimeoutError`.
   * @default 30000
   */
  readonly openTimeout?: number | undefined;
  /**
   * Aborting it while connecting drops the attempt and rejects with `signal.reason`. For
   * `withWebSocket` it also ends the connection later: see there.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Passed as the constructor's third argument: with `ws`, its client options
   * (`headers`, `maxPayload`, `perMessageDeflate`, …). Browsers ignore it.
   * @default undefined
   */
  readonly socketOptions?: object | undefined;
}

const DEFAULT_OPEN_TIMEOUT = 30_000;

/** The parts of `ws`'s EventEmitter interface used to see a rejected handshake. */
interface HandshakeEmitter {
  on(event: 'unexpected-response', listener: (request: unknown, response: unknown) => void): void;
  off(event: 'unexpected-response', listener: (request: unknown, response: unknown) => void): void;
}

/** `ws` sockets are EventEmitters; browser sockets are not. */
function asEmitter(socket: WebSocketLike): HandshakeEmitter | undefined {
  return typeof Reflect.get(socket, 'on') === 'function' &&
    typeof Reflect.get(socket, 'off') === 'function'
    ? (socket as unknown as HandshakeEmitter)
    : undefined;
}

/** Status and headers of a `ws` handshake response (an `http.IncomingMessage`). */
function describeResponse(response: unknown): {
  status: number;
  headers: HandshakeError['headers'];
} {
  const get = (key: string): unknown =>
    typeof response === 'object' && response !== null ? Reflect.get(response, key) : undefined;
  const status = get('statusCode');
  const headers = get('headers');
  return {
    status: typeof status === 'number' ? status : 0,
    headers:
      typeof headers === 'object' && headers !== null ? (headers as HandshakeError['headers']) : {},
  };
}

/**
 * What went wrong, for a `ConnectError`'s message: the system error's code and text where
 * the runtime gives them (`connect ECONNREFUSED 127.0.0.1:9`), else the
 * error's message; browsers give no detail at all.
 */
function describeFailure(cause: unknown): string {
  if (typeof cause === 'string') return cause === '' ? 'no detail from the runtime' : cause;
  if (!(cause instanceof Error)) return 'no detail from the runtime';
  const code: unknown = Reflect.get(cause, 'code');
  const message = cause.message === '' ? cause.name : cause.message;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

function checkConnectOptions(
  options: unknown,
): asserts options is ConnectOptions<unknown, unknown> {
  checkOptions(options);
  const get = (key: string): unknown => Reflect.get(options, key);
  checkFunction('WebSocket', get('WebSocket'));
  checkNumber(
    'openTimeout',
    get('openTimeout'),
    'a positive number of milliseconds or Infinity',
    (n) => n > 0,
  );
  const protocols = get('protocols');
  if (
    protocols !== undefined &&
    typeof protocols !== 'string' &&
    !(Array.isArray(protocols) && protocols.every((p) => typeof p === 'string'))
  ) {
    throw new TypeError(
      `Expected protocols to be a string or an array of strings, got ${describeValue(protocols)}`,
    );
  }
  assertSignal(get('signal'));
  const socketOptions = get('socketOptions');
  if (
    socketOptions !== undefined &&
    (typeof socketOptions !== 'object' || socketOptions === null)
  ) {
    throw new TypeError(
      `Expected socketOptions to be an object, got ${describeValue(socketOptions)}`,
    );
  }
}

/**
 * Opens a WebSocket to `url` and resolves with its session once the connection is open.
 *
 * - **Refused / unreachable / TLS failure:** rejects with a `ConnectError` whose message
 *   names the URL and the system error where the runtime gives one (`Could not connect to
 *   ws://127.0.0.1:9/: connect ECONNREFUSED 127.0.0.1:9`; browsers give no
 *   detail), with the platform's error as `cause`.
 * - **Handshake rejected** (an HTTP status other than 101): a `HandshakeError` with
 *   `status` and `headers` where the runtime exposes the response (Node with `ws`);
 *   browsers and Node's own `WebSocket` hide it, so there it is a plain `ConnectError`.
 * - **`openTimeout`** ran out: a `ConnectError` whose `cause` is a `TimeoutError`.
 * - **Aborted** through `options.signal`: rejects with `signal.reason`; an already aborted
 *   signal rejects at once without opening anything.
 *
 * In every failure the socket is dropped and nothing is left running. Messages the server
 * sends right after the handshake are never missed: the session listens from the start.
 *
 * @throws (as a rejection) TypeError/RangeError for invalid arguments; the constructor's
 *   own error (`SyntaxError`) for a malformed URL.
 * @example
 * ```ts
 * const session = await connect<Reply, Request>('wss://example.org/rpc', { openTimeout: 5000 });
 * await session.outgoing.send({ id: 1, method: 'ping' });
 * const reply = await session.incoming.receive();
 * await session.close();
 * ```
 */
export function connect<In = unknown, Out = In>(
  url: string | URL,
  options: ConnectOptions<In, Out> = {},
): Promise<Session<In, Out>> {
  return open(url, options);
}

/** `connect`, resolving with the session's class (for `withWebSocket`). */
function open<In, Out>(
  url: string | URL,
  options: ConnectOptions<In, Out>,
): Promise<SocketSession<In, Out>> {
  return new Promise<SocketSession<In, Out>>((resolve, reject) => {
    if (typeof url !== 'string' && !(url instanceof URL)) {
      throw new TypeError(`Expected url to be a string or a URL, got ${describeValue(url)}`);
    }
    checkConnectOptions(options);
    const signal = options.signal;
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const href = String(url);
    const Constructor: WebSocketConstructor = options.WebSocket ?? WebSocketDefault;
    const protocols = options.protocols === undefined ? undefined : [options.protocols].flat();
    const socket =
      options.socketOptions === undefined
        ? new Constructor(href, protocols)
        : new Constructor(href, protocols, options.socketOptions);
    const session = new SocketSession<In, Out>(socket, options);

    let lastError: unknown;
    let response: { status: number; headers: HandshakeError['headers'] } | undefined;
    let clearTimer = (): void => undefined;
    let settled = false;
    const emitter = asEmitter(socket);

    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      socket.removeEventListener('open', onOpen);
      socket.removeEventListener('error', onError);
      emitter?.off('unexpected-response', onResponse);
      signal?.removeEventListener('abort', onAbort);
      clearTimer();
      return true;
    };
    const onOpen = (): void => {
      if (settle()) resolve(session);
    };
    const onError = (event: ErrorEventLike): void => {
      lastError = event.error ?? event.message;
    };
    const onResponse = (_request: unknown, res: unknown): void => {
      response = describeResponse(res);
      // With a listener attached, `ws` leaves the request to us: drop it.
      session.terminate();
    };
    const onAbort = (): void => {
      if (!settle()) return;
      session.terminate();
      reject((signal as AbortSignal).reason as Error);
    };
    // The session sees the end however the runtime reports it (some report only an error).
    void session.closed.then((closed) => {
      if (!settle()) return;
      if (response !== undefined) {
        reject(new HandshakeError(href, response.status, response.headers));
        return;
      }
      const cause = lastError ?? new Error(`WebSocket closed with ${closed.code} while connecting`);
      reject(
        new ConnectError(`Could not connect to ${href}: ${describeFailure(cause)}`, href, {
          cause,
        }),
      );
    });

    socket.addEventListener('open', onOpen);
    socket.addEventListener('error', onError);
    emitter?.on('unexpected-response', onResponse);
    signal?.addEventListener('abort', onAbort);
    const openTimeout = options.openTimeout ?? DEFAULT_OPEN_TIMEOUT;
    // startTimer: a timeout beyond 2^31 − 1 ms must not fire at once (setTimeout's limit).
    clearTimer = startTimer(openTimeout, () => {
      if (!settle()) return;
      session.terminate();
      const message = `Timed out after ${openTimeout} ms opening a WebSocket to ${href}`;
      reject(new ConnectError(message, href, { cause: new TimeoutError(message) }));
    });
  });
}

/**
 * The handler of {@link withWebSocket} (and of an endpoint's `connect`): it receives the
 * connection's session — `incoming`, `outgoing`, `closed`, `signal`, … — as one object,
 * to use as `session` or to destructure by name.
 */
export type WebSocketHandler<In, Out, R> = (session: ClientSession<In, Out>) => R | PromiseLike<R>;

/**
 * Connects to `url`, runs `handler` with the connection's session, and keeps the
 * connection exactly as long as the handler runs (KVision's `webSocket { }` shape).
 *
 * - **Returns:** `incoming` is cancelled (unread messages are dropped), everything the
 *   handler sent is flushed, the connection is closed with 1000, and once `closed` has
 *   resolved `withWebSocket` resolves with the handler's result.
 * - **Throws:** the connection is closed with 4000 (`'Application error'`, an
 *   application code that every platform may send) after flushing, and `withWebSocket`
 *   rejects with the handler's error (the same object) once `closed` has resolved.
 * - **Aborted** (`options.signal`): while connecting, as {@link connect}; after the open
 *   but before the handler started, the handler never runs, the connection is closed with
 *   1000 and `withWebSocket` rejects with `signal.reason` once it has closed; while the
 *   handler runs, `session.signal` aborts with `signal.reason`, both channels are
 *   cancelled with it (its pending `receive`/`send` reject with it, unsent values go to
 *   `onUndelivered`), the connection is closed with 1000, and `withWebSocket` rejects
 *   with `signal.reason` once the handler has settled and the connection has closed.
 * - **Connection lost** while the handler runs: the handler sees it through its channels
 *   (`incoming` throws a `WebSocketCloseError`, `send` rejects) and `session.signal`
 *   (aborted with a `WebSocketCloseError`); its outcome decides.
 *
 * Unlike Ktor's `webSocket { }` and KVision's `webSocket { output, input -> }`, the
 * handler gets one object rather than channels by position, so that every handler in
 * sluice (routes, endpoints, `reconnecting`, `testConversation`) has the same shape.
 *
 * @example
 * ```ts
 * const total = await withWebSocket<number, 'next'>(url, {}, async ({ incoming, outgoing }) => {
 *   let sum = 0;
 *   for (let i = 0; i < 3; i++) {
 *     await outgoing.send('next');
 *     sum += await incoming.receive();
 *   }
 *   return sum;
 * });
 * ```
 */
export async function withWebSocket<In = unknown, Out = In, R = void>(
  url: string | URL,
  options: ConnectOptions<In, Out>,
  handler: WebSocketHandler<In, Out, R>,
): Promise<R> {
  if (typeof handler !== 'function') {
    throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
  }
  const session = await open(url, options);
  const signal = options.signal;
  // A function, not a narrowed property: the signal may abort across each await.
  const aborted = (): boolean => signal?.aborted === true;
  // The handler's signal: the caller's abort, or the connection's end, whichever is first.
  const life = connectionLife(session);
  const onAbort = (): void => {
    life.abort((signal as AbortSignal).reason);
    void session.cancel((signal as AbortSignal).reason);
  };
  signal?.addEventListener('abort', onAbort);
  try {
    // Aborted after the open but before the listener was added: the handler never runs.
    if (aborted()) throw (signal as AbortSignal).reason;
    const result = await handler(new HandlerSession(session, life.signal));
    if (aborted()) throw (signal as AbortSignal).reason;
    session.incoming.cancel();
    await session.close(1000);
    return result;
  } catch (error) {
    if (aborted()) {
      const reason: unknown = (signal as AbortSignal).reason;
      // Whether or not the abort listener ran, the session is cancelled and closing before
      // we wait for it (a second cancel does nothing).
      void session.cancel(reason);
      await session.closed;
      throw reason;
    }
    session.incoming.cancel(error);
    await session.close(APPLICATION_ERROR, 'Application error');
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
