/**
 * A route: what `serve` runs for one path — a handler plus the session options (codec,
 * capacities) and subprotocols of its connections. Plain data, no Node built-ins, so
 * typed endpoints defined in shared (browser) code can make routes too.
 *
 * @module
 */
import type { CloseReason } from '../errors.js';
import type { Scope } from '../scope.js';
import type { Codec } from './codec.js';
import type { Session, SessionOptions } from './session.js';
import { checkOptions } from './session.js';
import { checkFunction, describeValue } from './validate.js';

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
  /**
   * Who `authorize` said the client is, when it accepted with `{ identity }`; else
   * `undefined` (`authorize` returned `true`, or there is none). A channel endpoint binds
   * its resume tokens to it: a resume from another identity is refused.
   */
  readonly identity?: string | undefined;
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

/**
 * What runs for each connection on a route. The connection lives as long as the handler:
 * when it returns, everything it sent is flushed and the connection is closed with 1000;
 * when it throws, the connection is closed with 1011 (`'Internal error'`: the error text
 * is not sent to the client) and the error goes to `onError`.
 */
export type ServerHandler<In = unknown, Out = In> = (session: ServerSession<In, Out>) => unknown;

/** Options of {@link route}: the handler, its connections' session options, and subprotocols. */
export interface RouteOptions<In, Out> extends SessionOptions<In, Out> {
  /** Runs once per connection; see {@link ServerHandler}. */
  readonly handler: ServerHandler<In, Out>;
  /**
   * Subprotocols this route speaks, in order of preference: the first one the client
   * offers is selected (`session.protocol`). When the client offers none of them the
   * handshake still succeeds without a subprotocol, as RFC 6455 §4.2.2 says; the client
   * decides whether to go on (`session.protocol` is then `''`).
   * @default the `protocols` option of `serve`, else none
   */
  readonly protocols?: readonly string[] | undefined;
}

/** What a {@link Route} holds; internal to `sluice/server`. */
export interface RouteSpec {
  readonly path: string | undefined;
  readonly handler: ServerHandler<unknown, unknown>;
  readonly session: SessionOptions<unknown, unknown>;
  readonly protocols: readonly string[] | undefined;
  /** The codec a client of this route uses (typed endpoints know it). */
  readonly clientCodec: Codec<unknown, unknown> | undefined;
}

const specs = new WeakMap<Route, RouteSpec>();

/**
 * A handler with its options, made by {@link route} or by a typed endpoint's `handle`.
 * Opaque: give it to `serve` (in a map keyed by path, or in a list when it knows its
 * `path`) or to `testConversation`.
 */
export class Route<In = unknown, Out = In> {
  /** The path this route serves when it knows it (typed endpoints); else `undefined`. */
  readonly path: string | undefined;
  /** Type-level only (never set): the messages the route receives (`in`) and sends (`out`). */
  declare readonly messageTypes?: {
    /** What the route's handler receives. */
    readonly in: In;
    /** What the route's handler sends. */
    readonly out: Out;
  };
  private constructor(spec: RouteSpec) {
    this.path = spec.path;
    specs.set(this, spec);
  }

  /** @internal Makes a route; use {@link route} or an endpoint's `handle`. */
  static create<In, Out>(spec: RouteSpec): Route<In, Out> {
    return new Route<In, Out>(spec);
  }
}

/** The spec behind `value` if it is a {@link Route}; internal. */
export function routeSpec(value: unknown): RouteSpec | undefined {
  return value instanceof Route ? specs.get(value) : undefined;
}

function checkProtocols(protocols: unknown): readonly string[] | undefined {
  if (protocols === undefined) return undefined;
  if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string' && p !== '')) {
    throw new TypeError(
      `Expected protocols to be an array of non-empty strings, got ${describeValue(protocols)}`,
    );
  }
  return Object.freeze([...(protocols as string[])]);
}

/**
 * Makes a route from a handler and the options of its connections, keeping the message
 * types: `In` and `Out` are inferred from `codec` (or given), and the handler's session
 * is typed with them.
 *
 * @throws TypeError if `handler` is not a function or an option has the wrong type.
 * @throws RangeError if an option is out of range.
 * @example
 * ```ts
 * const server = await serve({ port: 0 }, {
 *   '/upper': route({
 *     codec: text(),
 *     protocols: ['upper.v1'],
 *     handler: async (session) => {
 *       for await (const line of session.incoming) await session.outgoing.send(line.toUpperCase());
 *     },
 *   }),
 * });
 * ```
 */
export function route<In = unknown, Out = In>(options: RouteOptions<In, Out>): Route<In, Out> {
  return makeRoute(undefined, options, undefined);
}

/** Checks `options` and makes a route; internal (endpoints pass a path and client codec). */
export function makeRoute<In, Out>(
  path: string | undefined,
  options: RouteOptions<In, Out>,
  clientCodec: Codec<unknown, unknown> | undefined,
): Route<In, Out> {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected route options to be an object, got ${describeValue(options)}`);
  }
  const { handler, protocols, ...session } = options;
  if (typeof handler !== 'function') {
    throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
  }
  checkFunction('handler', handler);
  checkOptions(session);
  return Route.create<In, Out>({
    path,
    handler: handler as ServerHandler<unknown, unknown>,
    // Frozen: the route's sessions share one copy of their settings (see session.ts).
    session: Object.freeze(session),
    protocols: checkProtocols(protocols),
    clientCodec,
  });
}

/** The session options of a bare handler's route. */
const DEFAULT_SESSION: SessionOptions<unknown, unknown> = Object.freeze({});

/** A route for a bare handler (default session options); internal. */
export function toRouteSpec(value: unknown, where: string): RouteSpec {
  const spec = routeSpec(value);
  if (spec !== undefined) return spec;
  if (typeof value === 'function') {
    return {
      path: undefined,
      handler: value as ServerHandler<unknown, unknown>,
      session: DEFAULT_SESSION,
      protocols: undefined,
      clientCodec: undefined,
    };
  }
  throw new TypeError(
    `Expected ${where} to be a handler function or a route, got ${describeValue(value)}`,
  );
}
