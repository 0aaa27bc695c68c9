/**
 * `serve(…, { transport: 'bun' })`: the same server as serve.ts, on Bun's native
 * `Bun.serve` instead of `ws`. Routing (404/426), the Origin allow-list (403),
 * `authorize` (401/403/500) and the subprotocol are answered in Bun's `fetch` before the
 * upgrade; each connection's `ServerWebSocket` becomes a {@link BunSocket} wrapped in the
 * same server session, with the same handler lifecycle and the same heartbeat (sluice's
 * own pings, Bun's `pong` handler). Loaded by `serve` only under Bun (dynamic import), so
 * Node and Deno never load it; it declares the part of Bun's API it uses.
 *
 * @module
 */
import { STATUS_CODES } from 'node:http';
import { ServerClosedError, ShutdownTimeoutError, TimeoutError } from '../errors.js';
import { BunSocket } from './bun-socket.js';
import type { BunServerWebSocket } from './bun-socket.js';
import { Heartbeat, HeartbeatEntry } from './heartbeat.js';
import type { RouteSpec } from '../websocket/route.js';
import { originAllowed, parseTarget } from './routing.js';
import {
  ABANDON_GRACE,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_PING_INTERVAL,
  DEFAULT_PONG_TIMEOUT,
  shutdownTimeout,
  checkRefusal,
  defaultOnError,
} from './serve.js';
import type { Acceptance, CloseOptions, Refusal, ServeOptions, Server } from './serve.js';
import { ServerSessionImpl, startHandler } from './server-session.js';
import type { HandlerHost, ServerRequest, ServerSession } from './server-session.js';

/** What a connection carries from `fetch` to `open` (Bun's `ws.data`). */
interface Upgrade {
  readonly spec: RouteSpec;
  readonly request: ServerRequest;
  readonly protocol: string;
  connection: BunConnection | undefined;
}

type BunWebSocket = BunServerWebSocket<Upgrade>;

/** The part of the server `Bun.serve` returns that sluice uses. */
interface BunHttpServer {
  readonly port: number;
  readonly hostname: string;
  upgrade(
    request: Request,
    options: { data: Upgrade; headers?: Record<string, string> | undefined },
  ): boolean;
  requestIP(request: Request): { readonly address: string } | null;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

/** The options of `Bun.serve` that sluice sets. */
interface BunServeOptions {
  port: number;
  hostname: string;
  fetch(
    request: Request,
    server: BunHttpServer,
  ): Response | undefined | Promise<Response | undefined>;
  websocket: {
    maxPayloadLength: number;
    idleTimeout: number;
    sendPings: boolean;
    backpressureLimit: number;
    closeOnBackpressureLimit: boolean;
    perMessageDeflate: boolean;
    open(ws: BunWebSocket): void;
    message(ws: BunWebSocket, message: string | ArrayBuffer | Uint8Array): void;
    ping(ws: BunWebSocket, data: ArrayBuffer | Uint8Array): void;
    pong(ws: BunWebSocket, data: ArrayBuffer | Uint8Array): void;
    close(ws: BunWebSocket, code: number, reason: string): void;
  };
}

interface BunRuntime {
  serve(options: BunServeOptions): BunHttpServer;
}

/**
 * Bun buffers what a connection cannot write yet up to this many bytes, then drops
 * messages; the session's `highWaterMark` stops writing long before, so this is only a
 * ceiling that is never meant to be reached (a drop fails the connection, see
 * BunSocket.send).
 */
const BACKPRESSURE_LIMIT = 2 ** 31 - 1;

class BunConnection extends HeartbeatEntry<BunSocket<Upgrade>> {
  readonly session: ServerSessionImpl<unknown, unknown>;
  /** Whether the handler (or a child of its scope) is still running. */
  running = true;

  constructor(socket: BunSocket<Upgrade>, session: ServerSessionImpl<unknown, unknown>) {
    super(socket, session);
    this.session = session;
  }
}

function isUpgradeRequest(request: Request): boolean {
  return request.headers.get('upgrade')?.toLowerCase() === 'websocket';
}

function answer(status: number, headers: Readonly<Record<string, string>> = {}): Response {
  return new Response(STATUS_CODES[status] ?? 'Error', {
    status,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...headers },
  });
}

function toServerRequest(request: Request, url: URL, address: string): ServerRequest {
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return Object.freeze({
    path: url.pathname,
    query: new URLSearchParams(url.search),
    headers,
    remoteAddress: address,
  });
}

/** The first of `wanted` that the client offers, or `''`. */
function selectProtocol(request: Request, wanted: readonly string[]): string {
  const header = request.headers.get('sec-websocket-protocol');
  if (header === null || wanted.length === 0) return '';
  const offered = new Set(header.split(',').map((item) => item.trim()));
  return wanted.find((protocol) => offered.has(protocol)) ?? '';
}

class BunServer implements Server {
  readonly url: string;
  readonly port: number;
  readonly #bun: BunHttpServer;
  readonly #routes: ReadonlyMap<string, RouteSpec>;
  readonly #options: ServeOptions;
  readonly #connections = new Map<BunSocket<Upgrade>, BunConnection>();
  readonly #heartbeat: Heartbeat<BunSocket<Upgrade>, BunConnection> | undefined;
  /** Upgrades waiting for `authorize`: each ends its wait with 503 when called. */
  readonly #pending = new Set<() => void>();
  /** Upgrade requests being decided (routing, `authorize`), for `maxConnections`. */
  #deciding = 0;
  readonly #maxConnections: number;
  readonly #report: (error: unknown, session: ServerSession<unknown, unknown> | undefined) => void;
  readonly #host: HandlerHost<BunConnection>;
  #onDrained: (() => void) | undefined;
  #drainedPromise: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(bun: BunRuntime, routes: ReadonlyMap<string, RouteSpec>, options: ServeOptions) {
    this.#routes = routes;
    this.#options = options;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
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
    if (interval !== Infinity) {
      const connections = this.#connections;
      this.#heartbeat = new Heartbeat<BunSocket<Upgrade>, BunConnection>(
        { interval, timeout: options.pongTimeout ?? DEFAULT_PONG_TIMEOUT },
        (socket) => connections.get(socket),
        (connection, text) => {
          const failed = connection.session.fail(
            { code: 1006, reason: text, wasClean: false },
            new TimeoutError(text),
          );
          if (failed) connection.socket.terminate();
        },
      );
    }
    this.#bun = bun.serve({
      port: options.port ?? 0,
      hostname: options.host ?? '127.0.0.1',
      fetch: (request, server) => this.#fetch(request, server),
      websocket: {
        maxPayloadLength: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
        // sluice's heartbeat (pingInterval, pongTimeout) instead of Bun's.
        idleTimeout: 0,
        sendPings: false,
        backpressureLimit: BACKPRESSURE_LIMIT,
        closeOnBackpressureLimit: false,
        perMessageDeflate: options.perMessageDeflate === true,
        open: (ws) => {
          this.#open(ws);
        },
        message: (ws, message) => {
          ws.data.connection?.socket.message(message);
        },
        ping: (ws, data) => {
          ws.data.connection?.socket.control('ping', data);
        },
        pong: (ws, data) => {
          ws.data.connection?.socket.control('pong', data);
        },
        close: (ws, code, reason) => {
          ws.data.connection?.socket.closed(code, reason);
        },
      },
    });
    this.port = this.#bun.port;
    const host = this.#bun.hostname;
    this.url = `ws://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  #isClosing(): boolean {
    return this.#closing !== undefined;
  }

  get sessions(): number {
    return this.#connections.size;
  }

  async #fetch(request: Request, server: BunHttpServer): Promise<Response | undefined> {
    if (!isUpgradeRequest(request)) return this.#plain(request);
    if (this.#closing !== undefined) return answer(503);
    // `#deciding` includes this request.
    this.#deciding++;
    try {
      if (this.#connections.size + this.#deciding > this.#maxConnections) return answer(503);
      return await this.#upgrade(request, server);
    } finally {
      this.#deciding--;
    }
  }

  /** A request without `Upgrade: websocket`: 426 on a route, else 404. */
  #plain(request: Request): Response {
    const url = parseTarget(new URL(request.url).pathname);
    return url === undefined || !this.#routes.has(url.pathname)
      ? answer(404)
      : answer(426, { Upgrade: 'websocket', Connection: 'Upgrade' });
  }

  async #upgrade(request: Request, server: BunHttpServer): Promise<Response | undefined> {
    const target = new URL(request.url);
    const url = parseTarget(target.pathname + target.search);
    const spec = url === undefined ? undefined : this.#routes.get(url.pathname);
    if (url === undefined) return answer(400);
    if (spec === undefined) return answer(404);
    if (!originAllowed(this.#options.origins, request.headers.get('origin') ?? undefined)) {
      return answer(403);
    }
    let serverRequest = toServerRequest(request, url, server.requestIP(request)?.address ?? '');
    const authorize = this.#options.authorize;
    if (authorize !== undefined) {
      let verdict: boolean | Refusal | Acceptance | 'closing';
      let stop = (): void => undefined;
      const closing = new Promise<'closing'>((resolve) => {
        stop = () => {
          resolve('closing');
        };
      });
      this.#pending.add(stop);
      try {
        verdict = await Promise.race([
          Promise.resolve(authorize(serverRequest)).then((value) =>
            value === true || value === false ? value : checkRefusal(value),
          ),
          closing,
        ]);
      } catch (error) {
        this.#report(error, undefined);
        return answer(500);
      } finally {
        this.#pending.delete(stop);
      }
      if (verdict === 'closing' || this.#isClosing()) return answer(503);
      if (verdict === false) return answer(403);
      if (verdict !== true && 'identity' in verdict) {
        serverRequest = Object.freeze({ ...serverRequest, identity: verdict.identity });
      } else if (verdict !== true) {
        return answer(verdict.status, verdict.headers);
      }
    }
    const protocol = selectProtocol(request, spec.protocols ?? this.#options.protocols ?? []);
    const upgraded = server.upgrade(request, {
      data: { spec, request: serverRequest, protocol, connection: undefined },
      headers: protocol === '' ? undefined : { 'Sec-WebSocket-Protocol': protocol },
    });
    // Bun refuses a malformed handshake (a missing key, another version).
    return upgraded ? undefined : answer(400);
  }

  #open(ws: BunWebSocket): void {
    const upgrade = ws.data;
    const socket = new BunSocket(ws, upgrade.protocol);
    const session = new ServerSessionImpl<unknown, unknown>(
      socket,
      upgrade.spec.session,
      upgrade.request,
      false, // Bun hands over whole messages: no ws message event to listen to
    );
    const connection = new BunConnection(socket, session);
    upgrade.connection = connection;
    this.#connections.set(socket, connection);
    this.#heartbeat?.add(connection);
    startHandler(session, upgrade.spec.handler, this.#host, connection);
    if (this.#closing !== undefined) session.shutdown(new ServerClosedError());
  }

  #drained(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return (this.#drainedPromise ??= new Promise<void>((resolve) => {
      this.#onDrained = resolve;
    }));
  }

  #remove(connection: BunConnection): void {
    this.#heartbeat?.delete(connection);
    this.#connections.delete(connection.socket);
    if (this.#connections.size === 0 && this.#onDrained !== undefined) {
      const resolve = this.#onDrained;
      this.#onDrained = undefined;
      this.#drainedPromise = undefined;
      resolve();
    }
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
    // Stop listening; open connections carry on until they are closed below.
    const stopped = this.#bun.stop(false);
    for (const stop of [...this.#pending]) stop();
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
    await stopped;
    await this.#bun.stop(true);
  }

  /**
   * The shutdown's deadline, as in serve.ts: drops and forgets every connection left,
   * then reports each handler still running after the sockets closed (within
   * `ABANDON_GRACE`) with a `ShutdownTimeoutError`.
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
    await new Promise((resolve) => setImmediate(resolve));
    for (const connection of left) {
      if (connection.running) this.#report(new ShutdownTimeoutError(timeout), connection.session);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Starts the server of `serve(options, routes)` on `Bun.serve` (`options.transport` is
 * `'bun'`, already checked); see `serve` and `ServeOptions.transport`.
 */
export function serveOnBun(options: ServeOptions, routes: ReadonlyMap<string, RouteSpec>): Server {
  const bun = Reflect.get(globalThis, 'Bun') as BunRuntime;
  return new BunServer(bun, routes, options);
}
