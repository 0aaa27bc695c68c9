/**
 * Before the upgrade: which route a request is for, the {@link ServerRequest} a handler
 * and `authorize` see, the Origin allow-list, and the plain HTTP answers (404, 403, …)
 * written to a socket that is never upgraded.
 *
 * @module
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeValue } from '../websocket/validate.js';
import { toRouteSpec } from '../websocket/route.js';
import type { Route, RouteSpec, ServerHandler } from '../websocket/route.js';
import type { ServerRequest } from './server-session.js';

/**
 * The routes given to `serve`: a map from path to handler (or `route(…)`), or a list of
 * routes that know their path (typed endpoints' `handle(…)`).
 */
export type Routes =
  Readonly<Record<string, ServerHandler<unknown, unknown> | Route>> | readonly Route[];

function checkPath(path: string): void {
  if (!path.startsWith('/') || path.includes('?') || path.includes('#')) {
    throw new RangeError(
      `Expected a route path starting with '/' and without query or fragment, got ${describeValue(path)}`,
    );
  }
}

/** Checks `routes` and builds the path → route table. */
export function routeTable(routes: unknown): ReadonlyMap<string, RouteSpec> {
  const table = new Map<string, RouteSpec>();
  if (Array.isArray(routes)) {
    routes.forEach((value: unknown, index) => {
      const spec = toRouteSpec(value, `routes[${index}]`);
      if (spec.path === undefined) {
        throw new TypeError(
          `Expected routes[${index}] to know its path (an endpoint's handle(…)), got a route without one; use a { path: route } map`,
        );
      }
      checkPath(spec.path);
      if (table.has(spec.path)) {
        throw new RangeError(`Expected each path once, got '${spec.path}' twice`);
      }
      table.set(spec.path, spec);
    });
  } else if (typeof routes === 'object' && routes !== null) {
    for (const [path, value] of Object.entries(routes)) {
      checkPath(path);
      table.set(path, toRouteSpec(value, `routes['${path}']`));
    }
  } else {
    throw new TypeError(
      `Expected routes to be an object mapping paths to handlers or an array of routes, got ${describeValue(routes)}`,
    );
  }
  return table;
}

/** Parses the request target; `undefined` if it is not a path. */
export function parseTarget(target: string | undefined): URL | undefined {
  if (target === undefined || !target.startsWith('/')) return undefined;
  try {
    return new URL(target, 'http://localhost');
  } catch {
    return undefined;
  }
}

/**
 * The request as handlers see it. It keeps what it exposes and nothing more: the query
 * is kept as its text and parsed on first use (most handlers never read it), so the
 * connection keeps neither the whole `URL` nor a `URLSearchParams` it does not need.
 */
class UpgradeRequest implements ServerRequest {
  readonly path: string;
  readonly headers: ServerRequest['headers'];
  readonly remoteAddress: string;
  #search: string;
  #query: URLSearchParams | undefined;

  constructor(message: IncomingMessage, url: URL) {
    this.path = url.pathname;
    this.#search = url.search;
    this.headers = message.headers;
    this.remoteAddress = message.socket.remoteAddress ?? '';
    Object.freeze(this);
  }

  /** The parsed query string (made on first use; the same object afterwards). */
  get query(): URLSearchParams {
    if (this.#query === undefined) {
      this.#query = new URLSearchParams(this.#search);
      this.#search = '';
    }
    return this.#query;
  }
}

export function toServerRequest(message: IncomingMessage, url: URL): ServerRequest {
  return new UpgradeRequest(message, url);
}

/**
 * `true` if the request may proceed: no allow-list, no `Origin` header (not a browser,
 * so not a cross-site request), or an `Origin` in the list (compared exactly, as the
 * browser serialises it: scheme, host, port).
 */
export function originAllowed(
  origins: readonly string[] | undefined,
  origin: string | undefined,
): boolean {
  return origins === undefined || origin === undefined || origins.includes(origin);
}

/**
 * Answers a request that will not be upgraded with `status` and closes the socket. The
 * body is the status text; `headers` are added.
 */
export function refuse(
  socket: Duplex,
  status: number,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (socket.destroyed) return;
  const body = STATUS_CODES[status] ?? 'Error';
  const lines = [
    `HTTP/1.1 ${status} ${body}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
