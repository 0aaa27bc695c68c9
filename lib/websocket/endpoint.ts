/**
 * Typed endpoints (KVision's shared service interface): define an endpoint once, in code
 * that both sides import, with the message types each way; the server implements it
 * with `handle`, the client talks to it with `connect`. A handler or client that sends or
 * expects the wrong type does not compile. Browser-safe: the server half only builds a
 * route description; serving it needs `sluice/server`.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { makeRoute } from './route.js';
import type { Route, ServerHandler } from './route.js';
import { json } from './codec.js';
import type { Codec } from './codec.js';
import { withWebSocket } from './connect.js';
import type { ConnectOptions, WebSocketHandler } from './connect.js';
import { reconnecting } from './reconnecting.js';
import type {
  ReconnectingClient,
  ReconnectingHandler,
  ReconnectingOptions,
} from './reconnecting.js';
import type { SessionOptions } from './session.js';
import { describeValue } from './validate.js';

/** How an endpoint's messages are encoded: JSON by default, validated by schemas or custom codecs. */
export interface EndpointOptions<ClientMsg, ServerMsg> {
  /**
   * Standard Schemas (zod, valibot, …) that validate what each side receives: `client`
   * checks the client's messages on the server, `server` the server's on the client. A
   * failing message is a `DecodeError` and closes with 1007. Both travel as JSON.
   * @default undefined (JSON, unchecked)
   */
  readonly schemas?:
    | {
        /** Checks the client's messages as the server receives them. */
        readonly client?: StandardSchemaV1<unknown, ClientMsg> | undefined;
        /** Checks the server's messages as the client receives them. */
        readonly server?: StandardSchemaV1<unknown, ServerMsg> | undefined;
      }
    | undefined;
  /**
   * Custom codecs instead: `server` is the server's (receives `ClientMsg`, sends
   * `ServerMsg`), `client` the client's. Not together with `schemas`.
   * @default json() on both sides
   */
  readonly codecs?:
    | {
        /** The server's codec: decodes `ClientMsg`, encodes `ServerMsg`. */
        readonly server: Codec<ClientMsg, ServerMsg>;
        /** The client's codec: decodes `ServerMsg`, encodes `ClientMsg`. */
        readonly client: Codec<ServerMsg, ClientMsg>;
      }
    | undefined;
}

/**
 * The server half of an endpoint: a route handler, given the connection's session
 * (`incoming` from the client, `outgoing` to it, `request`, `signal`, `scope`, …).
 */
export type EndpointHandler<ClientMsg, ServerMsg> = ServerHandler<ClientMsg, ServerMsg>;

/**
 * The client half of an endpoint: given the connection's session (`outgoing` to the
 * server, `incoming` from it, `signal`, `closed`, …), as `withWebSocket`'s handler.
 */
export type EndpointClient<ClientMsg, ServerMsg, R> = WebSocketHandler<ServerMsg, ClientMsg, R>;

/** Session options of a route made by {@link Endpoint.handle} (the codec is the endpoint's). */
export type EndpointRouteOptions<ClientMsg, ServerMsg> = Omit<
  SessionOptions<ClientMsg, ServerMsg>,
  'codec'
> & {
  /** Subprotocols, as `RouteOptions.protocols`. */
  readonly protocols?: readonly string[] | undefined;
};

/** Options of {@link Endpoint.connect} (the codec is the endpoint's). */
export type EndpointConnectOptions<ClientMsg, ServerMsg> = Omit<
  ConnectOptions<ServerMsg, ClientMsg>,
  'codec'
>;

/**
 * A typed WebSocket endpoint, shared by server and client code.
 *
 * @typeParam ClientMsg - what the client sends and the server receives.
 * @typeParam ServerMsg - what the server sends and the client receives.
 */
export interface Endpoint<ClientMsg, ServerMsg> {
  /** The path the endpoint is served on. */
  readonly path: string;
  /** The server's codec (receives `ClientMsg`, sends `ServerMsg`). */
  readonly serverCodec: Codec<ClientMsg, ServerMsg>;
  /** The client's codec (receives `ServerMsg`, sends `ClientMsg`). */
  readonly clientCodec: Codec<ServerMsg, ClientMsg>;
  /**
   * The server half: a route for `serve(options, [Endpoint.handle(…)])` or
   * `testConversation`. The handler receives the connection's `ServerSession`
   * (`incoming`: the client's messages, `outgoing`: to the client, `request`, `signal`,
   * `scope`), as every route handler does; its lifecycle is a route handler's (return →
   * 1000, throw → 1011 and `onError`).
   * @throws TypeError if `handler` is not a function; TypeError/RangeError for options.
   */
  handle(
    handler: EndpointHandler<ClientMsg, ServerMsg>,
    options?: EndpointRouteOptions<ClientMsg, ServerMsg>,
  ): Route<ClientMsg, ServerMsg>;
  /**
   * The client half: connects to `baseUrl` + the endpoint's path and runs `client` for
   * the life of the connection with the connection's session (`outgoing`: to the server,
   * `incoming`: from it, `signal`, …), exactly as `withWebSocket` (return → 1000 after flushing
   * and resolves with the result; throw → 4000 and rejects with the error; abort through
   * `options.signal`).
   * @param baseUrl - the server's URL, e.g. `ws://127.0.0.1:8080` (a trailing `/` is fine).
   */
  connect<R>(
    baseUrl: string | URL,
    client: EndpointClient<ClientMsg, ServerMsg, R>,
    options?: EndpointConnectOptions<ClientMsg, ServerMsg>,
  ): Promise<R>;
  /**
   * A reconnecting client of the endpoint: `reconnecting(baseUrl + path, { …options,
   * codec: clientCodec }, handler)`, so the handler's session is typed with the
   * endpoint's messages and carries the attempt details (`attempt`, `connection`). A
   * server shutting down (1001) is retried; see `reconnecting` for the policy.
   * @throws TypeError if `baseUrl` is not a string or URL, or `handler` not a function.
   */
  reconnecting(
    baseUrl: string | URL,
    handler: ReconnectingHandler<ServerMsg, ClientMsg>,
    options?: Omit<ReconnectingOptions<ServerMsg, ClientMsg>, 'codec'>,
  ): ReconnectingClient;
}

/**
 * Defines a typed endpoint at `path`.
 *
 * @throws RangeError if `path` does not start with `/`; TypeError for bad options.
 * @example
 * ```ts
 * // shared.ts
 * export const Chat = endpoint<{ text: string }, { from: string; text: string }>('/chat');
 * // server.ts
 * await serve({ port: 0 }, [
 *   Chat.handle(async ({ incoming, outgoing, request }) => {
 *     for await (const { text } of incoming) await outgoing.send({ from: request.remoteAddress, text });
 *   }),
 * ]);
 * // client.ts
 * await Chat.connect(url, async ({ incoming, outgoing }) => {
 *   await outgoing.send({ text: 'hi' });
 *   console.log((await incoming.receive()).from);
 * });
 * ```
 */
export function endpoint<ClientMsg = unknown, ServerMsg = unknown>(
  path: string,
  options: EndpointOptions<ClientMsg, ServerMsg> = {},
): Endpoint<ClientMsg, ServerMsg> {
  if (typeof path !== 'string') {
    throw new TypeError(`Expected path to be a string, got ${describeValue(path)}`);
  }
  if (!path.startsWith('/') || path.includes('?') || path.includes('#')) {
    throw new RangeError(
      `Expected path to start with '/' and have no query or fragment, got ${describeValue(path)}`,
    );
  }
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  if (options.schemas !== undefined && options.codecs !== undefined) {
    throw new TypeError('Expected either schemas or codecs, got both');
  }
  const schemas = options.schemas;
  const serverCodec: Codec<ClientMsg, ServerMsg> =
    options.codecs?.server ??
    (schemas?.client === undefined
      ? json<ClientMsg, ServerMsg>()
      : json<StandardSchemaV1<unknown, ClientMsg>, ServerMsg>(schemas.client));
  const clientCodec: Codec<ServerMsg, ClientMsg> =
    options.codecs?.client ??
    (schemas?.server === undefined
      ? json<ServerMsg, ClientMsg>()
      : json<StandardSchemaV1<unknown, ServerMsg>, ClientMsg>(schemas.server));
  return Object.freeze({
    path,
    serverCodec,
    clientCodec,
    handle(
      handler: EndpointHandler<ClientMsg, ServerMsg>,
      routeOptions: EndpointRouteOptions<ClientMsg, ServerMsg> = {},
    ): Route<ClientMsg, ServerMsg> {
      if (typeof handler !== 'function') {
        throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
      }
      return makeRoute(
        path,
        {
          ...routeOptions,
          codec: serverCodec,
          handler,
        },
        clientCodec as Codec<unknown, unknown>,
      );
    },
    connect<R>(
      baseUrl: string | URL,
      client: EndpointClient<ClientMsg, ServerMsg, R>,
      connectOptions: EndpointConnectOptions<ClientMsg, ServerMsg> = {},
    ): Promise<R> {
      if (typeof baseUrl !== 'string' && !(baseUrl instanceof URL)) {
        return Promise.reject(
          new TypeError(`Expected baseUrl to be a string or a URL, got ${describeValue(baseUrl)}`),
        );
      }
      const url = `${String(baseUrl).replace(/\/+$/, '')}${path}`;
      return withWebSocket<ServerMsg, ClientMsg, R>(
        url,
        { ...connectOptions, codec: clientCodec },
        client,
      );
    },
    reconnecting(
      baseUrl: string | URL,
      handler: ReconnectingHandler<ServerMsg, ClientMsg>,
      options: Omit<ReconnectingOptions<ServerMsg, ClientMsg>, 'codec'> = {},
    ): ReconnectingClient {
      if (typeof baseUrl !== 'string' && !(baseUrl instanceof URL)) {
        throw new TypeError(
          `Expected baseUrl to be a string or a URL, got ${describeValue(baseUrl)}`,
        );
      }
      const url = `${String(baseUrl).replace(/\/+$/, '')}${path}`;
      return reconnecting<ServerMsg, ClientMsg>(url, { ...options, codec: clientCodec }, handler);
    },
  });
}
