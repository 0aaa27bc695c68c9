/**
 * `serve(options, routes)`: a WebSocket server on `ws` (`noServer` + `handleUpgrade`)
 * whose connections are sluice sessions. The connection limit, routing, the Origin
 * allow-list and `authorize` run before the upgrade (a refused request costs no
 * WebSocket), and a TCP connection that does not complete its upgrade request within the
 * handshake timeout is cut; each accepted connection runs its route's handler (see
 * `runHandler`) with a ping/pong heartbeat; `close()` shuts everything down and resolves
 * when nothing is left, or at its deadline whatever the handlers do.
 *
 * @module
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { PerMessageDeflateOptions, ServerOptions, WebSocket } from 'ws';
import { ServerClosedError, ShutdownTimeoutError, TimeoutError } from '../errors.js';
import { checkFunction, checkNumber, describeValue } from '../websocket/validate.js';
import { Heartbeat, HeartbeatEntry } from './heartbeat.js';
import type { RouteSpec } from '../websocket/route.js';
import { originAllowed, parseTarget, refuse, routeTable, toServerRequest } from './routing.js';
import type { Routes } from './routing.js';
import { ServerSessionImpl, startHandler } from './server-session.js';
import { serverSocketClass } from './server-socket.js';
import type { HandlerHost, ServerRequest, ServerSession } from './server-session.js';
import { checkTransport } from './transport.js';
import type { Transport } from './transport.js';

/** What `authorize` returns to refuse a request: the HTTP status and extra headers. */
export interface Refusal {
  /** An HTTP status from 400 to 599, typically 401 or 403. */
  readonly status: number;
  /** Extra response headers, e.g. `{ 'WWW-Authenticate': 'Bearer' }`. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** What `authorize` returns to accept a request and say who the client is. */
export interface Acceptance {
  /**
   * Who the client is (a user id, an account): exposed as `request.identity` to the
   * handler; a channel endpoint's resume token is bound to it.
   */
  readonly identity: string;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * The TCP port to listen on; 0 picks a free one (see `server.port`). Not with `server`.
   * @default 0
   */
  readonly port?: number | undefined;
  /**
   * The address to listen on. Loopback by default, for safety: a server is reachable
   * from other machines only when you say so (`'0.0.0.0'`, `'::'`). Not with `server`.
   * @default '127.0.0.1'
   */
  readonly host?: string | undefined;
  /**
   * An existing `http.Server` to attach to instead of listening: its plain HTTP routes
   * keep working, upgrades go to sluice. `close()` detaches but does not close it.
   * @default undefined (sluice creates and owns a server)
   */
  readonly server?: HttpServer | undefined;
  /**
   * The most WebSocket connections this server holds at once: open connections (those
   * counted by `server.sessions`) plus upgrade requests still being decided (in
   * `authorize`). An upgrade request beyond it is answered with HTTP 503 before routing,
   * `authorize` or any WebSocket allocation, and its socket closed; the connections
   * already open are unaffected. `Infinity` turns the limit off.
   *
   * Why a limit by default: each connection may hold buffered messages up to the
   * session's byte bounds, so memory under attack is at most about `maxConnections` times
   * that bound; without a limit it is only bounded by the file descriptors. Raise it when
   * one process must serve more clients (and check the process's `ulimit -n`).
   * @default 1024
   */
  readonly maxConnections?: number | undefined;
  /**
   * Milliseconds a TCP connection may take, from the moment it is accepted, to deliver a
   * complete upgrade request (request line and headers). A connection still without one
   * at the deadline (a slowloris that trickles its headers, or a socket that sends
   * nothing) is answered HTTP 408 and closed; a plain HTTP request (answered 404 or 426)
   * does not extend it. Once the request is complete the timeout no longer applies
   * (`authorize` takes the time it takes). `Infinity` turns it off (Node's
   * `headersTimeout`, 60 s, still applies). Only for the server sluice creates: with
   * `server`, bound slow requests with that server's own `headersTimeout` and
   * `requestTimeout` (giving both `server` and `handshakeTimeout` throws).
   * @default 10000
   */
  readonly handshakeTimeout?: number | undefined;
  /**
   * Decides, before the upgrade, whether a request may connect: `true` accepts;
   * `{ identity }` ({@link Acceptance}) accepts and sets `request.identity` (resume tokens
   * of channel endpoints are bound to it); `false` answers 403; a {@link Refusal} answers
   * its status (401 with `WWW-Authenticate`, …).
   * If it throws, the answer is 500 and the error goes to `onError`. A refused request
   * never reaches a handler and allocates no WebSocket.
   * @default undefined (everyone may connect)
   */
  readonly authorize?:
    | ((
        request: ServerRequest,
      ) => boolean | Refusal | Acceptance | PromiseLike<boolean | Refusal | Acceptance>)
    | undefined;
  /**
   * Allowed values of the `Origin` header (`'https://app.example.org'`), the protection
   * against cross-site WebSocket hijacking: a browser request from any other origin gets
   * 403 before the upgrade. Requests without an `Origin` (not from a browser) pass.
   * @default undefined (any origin)
   */
  readonly origins?: readonly string[] | undefined;
  /**
   * Subprotocols every route speaks unless it sets its own; see `RouteOptions.protocols`.
   * @default undefined (none)
   */
  readonly protocols?: readonly string[] | undefined;
  /**
   * The largest message accepted, in bytes (after decompression); a bigger one closes
   * that connection with 1009 (message too big). `ws` defaults to 100 MiB; sluice does
   * not.
   * @default 1048576 (1 MiB)
   */
  readonly maxMessageSize?: number | undefined;
  /**
   * Milliseconds between heartbeat pings; `Infinity` turns the heartbeat off.
   * @default 30000
   */
  readonly pingInterval?: number | undefined;
  /**
   * Milliseconds to wait for the pong that answers a ping (it must carry the ping's
   * payload). A silent peer is dropped: `closed` resolves `{ code: 1006, reason:
   * 'Heartbeat timeout: …', wasClean: false }` and the handler's signal aborts with a
   * `WebSocketCloseError` caused by a `TimeoutError`.
   * @default 10000
   */
  readonly pongTimeout?: number | undefined;
  /**
   * Milliseconds to wait, once the server has sent a Close frame, for the client's Close
   * before dropping the TCP connection (`closed` is then 1006, `wasClean: false`).
   * @default 10000
   */
  readonly closeTimeout?: number | undefined;
  /**
   * permessage-deflate compression: `true`, or `ws`'s options object. Off by default, as
   * in `ws`: compression costs memory and CPU per connection.
   * @default false
   */
  readonly perMessageDeflate?: boolean | PerMessageDeflateOptions | undefined;
  /**
   * Receives each error that is nobody else's: a handler that threw (its connection is
   * closed with 1011), a failing `authorize` (answered with 500), a handler still running
   * when `close({ timeout })` gave up on it (a `ShutdownTimeoutError`). Called once per
   * error, with the session when there is one. Errors of the connection itself (the
   * client went away) are not reported.
   * @default console.error
   */
  readonly onError?:
    ((error: unknown, session: ServerSession<unknown, unknown> | undefined) => void) | undefined;
  /**
   * The WebSocket server underneath: `'ws'` (the `ws` package on `node:http`; Node, Bun,
   * Deno) or `'bun'` (Bun's native `Bun.serve`, only under Bun: about twice the echo
   * throughput of `ws` on Bun and a fraction of its memory per idle connection). Routing,
   * `authorize`, `origins`, subprotocols, `maxMessageSize` (1009), the heartbeat,
   * sessions, handler lifecycle and `close({ timeout })` behave the same on both. With
   * `'bun'`:
   * - the server does not wait for the client's Close reply: a close started by the server
   *   ends its `closed` at once with the code it sent (`wasClean: true`), so
   *   `closeTimeout` has no effect;
   * - `server` (an `http.Server` to attach to) is refused: Bun listens itself;
   * - `handshakeTimeout` is refused: `Bun.serve` gives no hook before a request is
   *   complete, and cuts a connection whose request is incomplete (a slowloris, a silent
   *   socket) itself after about 10-12 s, without an answer;
   * - `perMessageDeflate` is a boolean (Bun's defaults), not `ws`'s options object;
   * - a connection that ends because of a client's protocol error (1002, 1007, 1009)
   *   reports 1006 on the server with Bun's description as the reason (`ws`: 1006, `''`).
   * Not the default, also under Bun, because of those differences: choose it.
   * @default 'ws'
   * @throws TypeError (as a rejection of `serve`) for `'bun'` outside Bun, or with
   *   `server` or a `perMessageDeflate` object.
   */
  readonly transport?: Transport | undefined;
}

/** Options of {@link Server.close}. */
export interface CloseOptions {
  /**
   * Milliseconds to wait for handlers to finish and clients to answer the 1001 Close
   * before the remaining connections are dropped and `close()` resolves; a handler still
   * running then is reported to `onError` with a `ShutdownTimeoutError`.
   * @default 10000
   */
  readonly timeout?: number | undefined;
}

/** A running server, from {@link serve}. */
export interface Server {
  /** `ws://host:port` (no trailing slash), for clients and tests. */
  readonly url: string;
  /** The port the server listens on. */
  readonly port: number;
  /**
   * How many connections are open or still running their handler; 0 once `close()` has
   * resolved.
   */
  readonly sessions: number;
  /**
   * Shuts down: stops accepting (pending upgrades get 503), aborts every handler's
   * `signal` with a `ServerClosedError`, closes every connection with 1001 (`'Going
   * away'`) after flushing what was accepted, and waits for handlers and Close replies.
   * A connection taken over by `channels()` closes with 1001 after the goodbye handshake
   * (docs/protocol.md section 7; at most its `byeTimeout`): the client's last acks
   * arrive first, so every value is received once or reported to `onUndelivered` once,
   * and a reconnecting client retries the 1001. The handler's own close waits for it.
   *
   * - **Deadline:** after `timeout` milliseconds it stops waiting, whatever handlers or
   *   peers do: the remaining connections are dropped (TCP destroyed, no Close frame) and
   *   `sessions` reads 0. Handlers that were only waiting for their connection to end
   *   (`for await` over `incoming` while the peer never answered the Close) end as the
   *   sockets close; each connection whose handler (or a child of its scope) is still
   *   running after that I/O turn (at most 100 ms) is reported to `onError` as a
   *   `ShutdownTimeoutError` with its session, and the promise resolves. Such a handler
   *   keeps running on its own (nothing can stop a JavaScript function from outside)
   *   against a closed connection: its sends reject, and an error it throws later is
   *   suppressed by the cancellation, as for any cancelled scope. Kotlin's `withTimeout`
   *   would instead wait for the cancelled code to finish; a shutdown with a deadline
   *   must not.
   * - Resolves once no socket, timer or listener of the server remains (an attached
   *   `http.Server` is left running). Never rejects, except for an invalid `timeout`.
   * - **Concurrent calls:** calling it again returns the same promise (the first
   *   `timeout` applies).
   *
   * @throws TypeError / RangeError (as a rejection) if `options` or `timeout` is invalid.
   */
  close(options?: CloseOptions): Promise<void>;
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Internal: shared with bun-serve.ts. */
export const DEFAULT_MAX_MESSAGE_SIZE: number = 1024 * 1024;
/** Internal: shared with bun-serve.ts. */
export const DEFAULT_PING_INTERVAL = 30_000;
/** Internal: shared with bun-serve.ts. */
export const DEFAULT_PONG_TIMEOUT = 10_000;
const DEFAULT_CLOSE_TIMEOUT = 10_000;
/** Internal: shared with bun-serve.ts. */
export const DEFAULT_SHUTDOWN_TIMEOUT = 10_000;
/** Internal: shared with bun-serve.ts. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
/**
 * At the shutdown's deadline, how long the dropped sockets may take to close before the
 * handlers still running are reported (in practice one I/O turn, a millisecond or two).
 */
export const ABANDON_GRACE = 100;
/** What Node's HTTP server answers to a request whose headers time out. */
const REQUEST_TIMEOUT_RESPONSE = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

const positive = (n: number): boolean => n > 0 && !Number.isNaN(n);
const finitePositive = (n: number): boolean => n > 0 && Number.isFinite(n);

function checkStrings(name: string, value: unknown): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new TypeError(`Expected ${name} to be an array of strings, got ${describeValue(value)}`);
  }
}

function checkServeOptions(options: unknown): asserts options is ServeOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const get = (key: string): unknown => Reflect.get(options, key);
  const server = get('server');
  if (server !== undefined) {
    if (
      typeof server !== 'object' ||
      server === null ||
      typeof Reflect.get(server, 'on') !== 'function' ||
      typeof Reflect.get(server, 'address') !== 'function'
    ) {
      throw new TypeError(`Expected server to be an http.Server, got ${describeValue(server)}`);
    }
    if (get('port') !== undefined || get('host') !== undefined) {
      throw new TypeError('Expected either server or port/host, got both');
    }
    if (get('handshakeTimeout') !== undefined) {
      throw new TypeError(
        "Expected either server or handshakeTimeout, got both (use the server's headersTimeout)",
      );
    }
  }
  checkNumber(
    'port',
    get('port'),
    'an integer from 0 to 65535',
    (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
  );
  const host = get('host');
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw new TypeError(`Expected host to be a non-empty string, got ${describeValue(host)}`);
  }
  checkFunction('authorize', get('authorize'));
  checkFunction('onError', get('onError'));
  checkStrings('origins', get('origins'));
  checkStrings('protocols', get('protocols'));
  checkTransport(get);
  checkNumber(
    'maxMessageSize',
    get('maxMessageSize'),
    'a positive integer',
    (n) => Number.isSafeInteger(n) && n > 0,
  );
  checkNumber('pingInterval', get('pingInterval'), 'a positive number or Infinity', positive);
  checkNumber('pongTimeout', get('pongTimeout'), 'a positive finite number', finitePositive);
  checkNumber('closeTimeout', get('closeTimeout'), 'a positive finite number', finitePositive);
  checkNumber(
    'maxConnections',
    get('maxConnections'),
    'a positive integer or Infinity',
    (n) => n === Infinity || (Number.isSafeInteger(n) && n > 0),
  );
  checkNumber(
    'handshakeTimeout',
    get('handshakeTimeout'),
    'a positive number or Infinity',
    positive,
  );
  const deflate = get('perMessageDeflate');
  if (
    deflate !== undefined &&
    typeof deflate !== 'boolean' &&
    (typeof deflate !== 'object' || deflate === null)
  ) {
    throw new TypeError(
      `Expected perMessageDeflate to be a boolean or an options object, got ${describeValue(deflate)}`,
    );
  }
}

/** Checks what `authorize` returned when it is not a boolean; internal. */
/**
 * The deadline of `server.close(options)`, for every transport: `options.timeout` or the
 * default. Throws a `TypeError`/`RangeError` saying what was expected.
 */
export function shutdownTimeout(options: CloseOptions): number {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  checkNumber(
    'timeout',
    options.timeout,
    'a non-negative finite number',
    (n) => n >= 0 && Number.isFinite(n),
  );
  return options.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT;
}

export function checkRefusal(verdict: unknown): Refusal | Acceptance {
  if (
    typeof verdict === 'object' &&
    verdict !== null &&
    Reflect.get(verdict, 'status') === undefined &&
    Reflect.get(verdict, 'identity') !== undefined
  ) {
    const identity: unknown = Reflect.get(verdict, 'identity');
    if (typeof identity !== 'string') {
      throw new TypeError(
        `Expected authorize's identity to be a string, got ${describeValue(identity)}`,
      );
    }
    return { identity };
  }
  const status: unknown =
    typeof verdict === 'object' && verdict !== null ? Reflect.get(verdict, 'status') : undefined;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new TypeError(
      `Expected authorize to return true, false, { identity: string } or { status: 400–599 }, got ${describeValue(verdict)}`,
    );
  }
  const headers: unknown = Reflect.get(verdict as object, 'headers');
  if (headers !== undefined) {
    const ok =
      typeof headers === 'object' &&
      headers !== null &&
      Object.entries(headers).every(
        ([name, value]) =>
          /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) &&
          typeof value === 'string' &&
          !/[\r\n]/.test(value),
      );
    if (!ok) {
      throw new TypeError(
        `Expected authorize's headers to map header names to single-line strings, got ${describeValue(headers)}`,
      );
    }
  }
  return verdict as Refusal;
}

/** The default `onError`; internal. */
export function defaultOnError(error: unknown): void {
  console.error('sluice/server:', error);
}

/**
 * What the server keeps per connection: its socket and session, and its place in the
 * heartbeat. Plain fields, no closures: the handler's host and the heartbeat's timer and
 * 'pong' listener are shared by all the connections of a server.
 */
class Connection extends HeartbeatEntry<WebSocket> {
  /** Whether the handler (or a child of its scope) is still running. */
  running = true;

  /** The connection's session, which is also its heartbeat's `liveness` (one field for both). */
  get session(): ServerSessionImpl<unknown, unknown> {
    return this.liveness as ServerSessionImpl<unknown, unknown>;
  }
}

class RunningServer implements Server {
  readonly url: string;
  readonly port: number;
  readonly #http: HttpServer;
  readonly #owned: boolean;
  readonly #routes: ReadonlyMap<string, RouteSpec>;
  readonly #options: ServeOptions;
  readonly #wss: WebSocketServer;
  /** Every connection whose handler has not finished or that has not closed yet. */
  readonly #connections = new Map<WebSocket, Connection>();
  /** Resolves `#drained()` once `#connections` is empty. */
  #onDrained: (() => void) | undefined;
  #drainedPromise: Promise<void> | undefined;
  readonly #heartbeat: Heartbeat<WebSocket, Connection> | undefined;
  /** Upgrade requests being decided (routing, `authorize`). */
  readonly #pending = new Set<Duplex>();
  readonly #maxConnections: number;
  /** TCP connections of an owned server that have not completed an upgrade request yet. */
  readonly #handshakes = new Map<Duplex, ReturnType<typeof setTimeout>>();
  readonly #routeOf = new WeakMap<IncomingMessage, RouteSpec>();
  readonly #report: (error: unknown, session: ServerSession<unknown, unknown> | undefined) => void;
  /** `startHandler`'s host for every connection of this server. */
  readonly #host: HandlerHost<Connection>;
  #closing: Promise<void> | undefined;

  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.#handshakeDone(socket);
    void this.#upgrade(request, socket, head);
  };

  /** An owned server's new TCP connection: it has `handshakeTimeout` to make its request. */
  readonly #onConnection = (socket: Socket): void => {
    const timeout = this.#options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    if (timeout === Infinity) return;
    // One timer per connection in handshake, sharing this server's callbacks (no closure).
    this.#handshakes.set(socket, setTimeout(this.#onHandshakeTimeout, timeout, socket));
    socket.once('close', this.#onHandshakeClose);
  };

  readonly #onHandshakeTimeout = (socket: Socket): void => {
    this.#handshakes.delete(socket);
    socket.off('close', this.#onHandshakeClose);
    if (socket.destroyed) return;
    // Written and destroyed at once: a peer that does not read must not keep the socket.
    socket.end(REQUEST_TIMEOUT_RESPONSE);
    socket.destroy();
  };

  /** A connection closed during its handshake (called with the socket as `this`). */
  readonly #onHandshakeClose: (this: Duplex) => void;

  /** The upgrade request is complete (or the socket closed): no more handshake timeout. */
  #handshakeDone(socket: Duplex): void {
    const timer = this.#handshakes.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#handshakes.delete(socket);
    socket.off('close', this.#onHandshakeClose);
  }

  readonly #onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const url = parseTarget(request.url);
    const known = url !== undefined && this.#routes.has(url.pathname);
    const status = known ? 426 : 404;
    response.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      ...(known ? { Upgrade: 'websocket', Connection: 'Upgrade' } : {}),
    });
    response.end(known ? 'Upgrade Required' : 'Not Found');
  };

  constructor(
    http: HttpServer,
    owned: boolean,
    routes: ReadonlyMap<string, RouteSpec>,
    options: ServeOptions,
  ) {
    this.#http = http;
    this.#owned = owned;
    this.#routes = routes;
    this.#options = options;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const handshakes = this.#handshakes;
    this.#onHandshakeClose = function (this: Duplex): void {
      clearTimeout(handshakes.get(this));
      handshakes.delete(this);
    };
    const address = http.address() as AddressInfo;
    this.port = address.port;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `ws://${host}:${address.port}`;
    const onError = options.onError ?? defaultOnError;
    const report = (this.#report = (error, session) => {
      try {
        onError(error, session);
      } catch {
        // A throwing onError must not break the server.
      }
    });
    this.#host = {
      report,
      settled: (connection) => {
        connection.running = false;
      },
      done: (connection) => {
        this.#remove(connection);
      },
    };
    const interval = options.pingInterval ?? DEFAULT_PING_INTERVAL;
    let heartbeat: Heartbeat<WebSocket, Connection> | undefined;
    const Socket = serverSocketClass(
      interval === Infinity
        ? undefined
        : (socket, data) => {
            heartbeat?.pong(socket, data);
          },
    );
    if (interval !== Infinity) {
      const connections = this.#connections;
      heartbeat = this.#heartbeat = new Heartbeat<WebSocket, Connection>(
        { interval, timeout: options.pongTimeout ?? DEFAULT_PONG_TIMEOUT },
        (socket) => connections.get(socket),
        (connection, text) => {
          const failed = connection.session.fail(
            { code: 1006, reason: text, wasClean: false },
            new TimeoutError(text),
          );
          if (failed) connection.socket.terminate();
        },
        // Sockets of this server's class report their pongs themselves (see server-socket.ts).
        (socket) => socket instanceof Socket,
      );
    }
    // `closeTimeout` is a `ws` (≥ 8.18) server option that @types/ws does not list yet.
    const wsOptions: ServerOptions & { readonly closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      perMessageDeflate: options.perMessageDeflate ?? false,
      closeTimeout: options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
      WebSocket: Socket,
      handleProtocols: (offered, request) => {
        const wanted = this.#routeOf.get(request)?.protocols ?? options.protocols ?? [];
        return wanted.find((protocol) => offered.has(protocol)) ?? false;
      },
    };
    this.#wss = new WebSocketServer(wsOptions);
    http.on('upgrade', this.#onUpgrade);
    if (owned) {
      http.on('request', this.#onRequest);
      http.on('connection', this.#onConnection);
    }
  }

  #isClosing(): boolean {
    return this.#closing !== undefined;
  }

  get sessions(): number {
    return this.#connections.size;
  }

  /** Resolves once no connection is left. */
  #drained(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return (this.#drainedPromise ??= new Promise<void>((resolve) => {
      this.#onDrained = resolve;
    }));
  }

  #remove(connection: Connection): void {
    this.#heartbeat?.delete(connection);
    this.#connections.delete(connection.socket);
    if (this.#connections.size === 0 && this.#onDrained !== undefined) {
      const resolve = this.#onDrained;
      this.#onDrained = undefined;
      this.#drainedPromise = undefined;
      resolve();
    }
  }

  async #upgrade(message: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ignore = (): void => undefined;
    socket.on('error', ignore);
    this.#pending.add(socket);
    try {
      if (this.#closing !== undefined) {
        refuse(socket, 503);
        return;
      }
      // `#pending` includes this request.
      if (this.#connections.size + this.#pending.size > this.#maxConnections) {
        refuse(socket, 503);
        return;
      }
      const url = parseTarget(message.url);
      if (url === undefined) {
        refuse(socket, 400);
        return;
      }
      const spec = this.#routes.get(url.pathname);
      if (spec === undefined) {
        refuse(socket, 404);
        return;
      }
      if (!originAllowed(this.#options.origins, message.headers.origin)) {
        refuse(socket, 403);
        return;
      }
      let request = toServerRequest(message, url);
      const authorize = this.#options.authorize;
      if (authorize !== undefined) {
        let verdict: boolean | Refusal | Acceptance;
        try {
          verdict = await authorize(request);
          if (verdict !== true && verdict !== false) verdict = checkRefusal(verdict);
        } catch (error) {
          this.#report(error, undefined);
          refuse(socket, 500);
          return;
        }
        if (this.#isClosing()) {
          refuse(socket, 503);
          return;
        }
        if (socket.destroyed) return;
        if (verdict === false) {
          refuse(socket, 403);
          return;
        }
        if (verdict !== true && 'identity' in verdict) {
          request = Object.freeze({ ...request, identity: verdict.identity });
        } else if (verdict !== true) {
          refuse(socket, verdict.status, verdict.headers);
          return;
        }
      }
      this.#routeOf.set(message, spec);
      socket.off('error', ignore);
      this.#wss.handleUpgrade(message, socket, head, (ws) => {
        this.#accept(ws, spec, request);
      });
      // `handleProtocols` has run (handleUpgrade calls it synchronously).
      this.#routeOf.delete(message);
    } finally {
      this.#pending.delete(socket);
    }
  }

  #accept(ws: WebSocket, spec: RouteSpec, request: ServerRequest): void {
    const session = new ServerSessionImpl<unknown, unknown>(ws, spec.session, request);
    const connection = new Connection(ws, session);
    this.#connections.set(ws, connection);
    this.#heartbeat?.add(connection);
    startHandler(session, spec.handler, this.#host, connection);
    if (this.#closing !== undefined) session.shutdown(new ServerClosedError());
  }

  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    let timeout: number;
    try {
      timeout = shutdownTimeout(options);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#closing = this.#shutdown(timeout);
    return this.#closing;
  }

  async #shutdown(timeout: number): Promise<void> {
    const http = this.#http;
    http.off('upgrade', this.#onUpgrade);
    const stopped = this.#owned
      ? new Promise<void>((resolve) => {
          http.close(() => {
            resolve();
          });
          http.closeIdleConnections();
        })
      : Promise.resolve();
    for (const socket of this.#pending) refuse(socket, 503);
    const reason = new ServerClosedError();
    for (const connection of this.#connections.values()) connection.session.shutdown(reason);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#drained().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(true);
        }, timeout);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) await this.#abandon(timeout);
    this.#wss.close();
    if (this.#owned) {
      http.off('request', this.#onRequest);
      http.off('connection', this.#onConnection);
      // Destroys the connections still in their handshake too (their 'close' clears timers).
      http.closeAllConnections();
    }
    await stopped;
  }

  /**
   * The shutdown's deadline: drops every connection left (TCP destroyed) and forgets it,
   * so `sessions` reads 0 at once. A handler that merely waits for its connection to end
   * (a `for await` over `incoming` whose peer never answered the Close) ends as the
   * dropped sockets close, within an I/O turn: only the handlers still running after
   * that turn (bounded by {@link ABANDON_GRACE}, whatever the peers or handlers do) are
   * reported.
   */
  async #abandon(timeout: number): Promise<void> {
    const left = [...this.#connections.values()];
    for (const connection of left) {
      connection.socket.terminate();
      this.#remove(connection);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(left.map((connection) => connection.session.closed)),
      new Promise((resolve) => (timer = setTimeout(resolve, ABANDON_GRACE))),
    ]);
    clearTimeout(timer);
    // What the handlers do on seeing `incoming` end takes microtasks and, at most, the
    // macrotask the session defers its close reporting to.
    await new Promise((resolve) => setImmediate(resolve));
    for (const connection of left) {
      if (connection.running) this.#report(new ShutdownTimeoutError(timeout), connection.session);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function listen(http: HttpServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      resolve();
    });
  });
}

/**
 * Starts a WebSocket server whose connections are sluice sessions.
 *
 * - **Routing:** the request path picks the route; an unknown path gets HTTP 404 (no
 *   upgrade), a plain HTTP request to a known path 426.
 * - **Before the upgrade:** `origins`, then `authorize` (401/403/… without allocating a
 *   WebSocket; the handler never runs).
 * - **Per connection:** the route's handler runs with a {@link ServerSession}; returning
 *   closes with 1000 after flushing, throwing closes with 1011 (`'Internal error'`, the
 *   error text is not sent) and reports the error once to `onError`; other connections
 *   are unaffected. Protocol errors of a client (invalid UTF-8 → 1007, unmasked frame →
 *   1002, message over `maxMessageSize` → 1009) close only that connection.
 * - **Liveness:** a ping every `pingInterval`; no matching pong within `pongTimeout`
 *   drops the connection (1006, reason recorded, handler signal aborted).
 *
 * Listens on 127.0.0.1 unless `host` says otherwise. Runs on `ws`, or under Bun on
 * `Bun.serve` with `transport: 'bun'` (same semantics; the differences are listed at
 * {@link ServeOptions.transport}).
 *
 * @param routes - `{ '/path': handler or route(…) }`, or `[Endpoint.handle(…), …]`.
 * @returns the running server, once it listens.
 * @throws TypeError / RangeError (as a rejection) for invalid options or routes; the
 *   listen error (`EADDRINUSE`, …) if the port cannot be bound.
 * @example
 * ```ts
 * const server = await serve({ port: 0 }, {
 *   '/echo': async (session) => {
 *     for await (const message of session.incoming) await session.outgoing.send(message);
 *   },
 * });
 * console.log(server.url); // ws://127.0.0.1:54321
 * await server.close();
 * ```
 */
export async function serve(options: ServeOptions, routes: Routes): Promise<Server> {
  checkServeOptions(options);
  const table = routeTable(routes);
  if (options.transport === 'bun') {
    // Loaded only here: Node and Deno never load the Bun transport.
    const { serveOnBun } = await import('./bun-serve.js');
    return serveOnBun(options, table);
  }
  if (options.server !== undefined) {
    const http = options.server;
    if (!http.listening) {
      await new Promise<void>((resolve) => http.once('listening', resolve));
    }
    return new RunningServer(http, false, table, options);
  }
  const http = createServer();
  await listen(http, options.port ?? 0, options.host ?? '127.0.0.1');
  return new RunningServer(http, true, table, options);
}
