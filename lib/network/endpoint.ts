/**
 * Channel endpoints: a path plus a {@link Contract}, declared once in shared code. The
 * server turns it into a route (`handle`), the client into a connection (`connect`,
 * `reconnecting`), and both handlers receive one object whose `channels` are the
 * contract's typed halves, already opened and checked against the peer's contract. The
 * library picks the codec (`raw()`: text messages, and binary ones for `Uint8Array`
 * values), so the codec trap cannot happen. A declaration only: nothing here imports the
 * server, and serving needs `sluice/server`.
 *
 * @module
 */
import type { CloseReason } from '../errors.js';
import type { Scope } from '../scope.js';
import { raw } from '../websocket/codec.js';
import type { Frame } from '../websocket/codec.js';
import { withWebSocket } from '../websocket/connect.js';
import type { ConnectOptions } from '../websocket/connect.js';
import type { ClientSession } from '../websocket/client-session.js';
import { reconnecting as reconnectingClient } from '../websocket/reconnecting.js';
import type {
  ReconnectingClient,
  ReconnectingOptions,
  ReconnectingSession,
} from '../websocket/reconnecting.js';
import { makeRoute } from '../websocket/route.js';
import type { Route, ServerRequest, ServerSession } from '../websocket/route.js';
import type { SessionOptions } from '../websocket/session.js';
import { describeValue } from '../websocket/validate.js';
import { channels } from './channels.js';
import type { ChannelSession, ChannelSessionOptions } from './channels.js';
import type {
  ChannelDeclarations,
  ClientChannels,
  Contract,
  ServerChannels,
  Undelivered,
} from './contract.js';

/** What every channel endpoint handler receives: the typed channels and the connection. */
export interface ChannelHandlerSession<Channels> {
  /** The contract's channels, opened, by name: the halves this side uses. */
  readonly channels: Channels;
  /** The channel session: for channels opened ad hoc by name beside the contract's. */
  readonly network: ChannelSession;
  /** Aborted when the connection is over for the handler (as the session's `signal`). */
  readonly signal: AbortSignal;
  /** Resolves once the connection has closed and every channel has ended. */
  readonly closed: Promise<CloseReason>;
  /**
   * Closes after the goodbye handshake (`ChannelSession.close`): every value is then
   * received once or reported to `onUndelivered` once. Returning from the handler does
   * the same with 1000.
   */
  close(code?: number, reason?: string): Promise<CloseReason>;
}

/** What a channel endpoint's server handler receives. */
export interface ChannelServerSession<C extends ChannelDeclarations> extends ChannelHandlerSession<
  ServerChannels<C>
> {
  /** The upgrade request (path, query, headers, remote address). */
  readonly request: ServerRequest;
  /** The handler's scope, as `ServerSession.scope`. */
  readonly scope: Scope;
}

/** What a channel endpoint's client handler receives (`connect`). */
export type ChannelClientSession<C extends ChannelDeclarations> = ChannelHandlerSession<
  ClientChannels<C>
>;

/** What a channel endpoint's reconnecting handler receives: also the attempt details. */
export interface ChannelReconnectingSession<
  C extends ChannelDeclarations,
> extends ChannelHandlerSession<ClientChannels<C>> {
  /** The attempt that opened this connection (1 after a reset, then 2, 3, …). */
  readonly attempt: number;
  /** How many connections the client has opened, this one included (1-based). */
  readonly connection: number;
}

/** Options every side of a channel endpoint takes (`undelivered`, `network`). */
export interface ChannelSideOptions<
  C extends ChannelDeclarations,
  D extends 'toServer' | 'toClient',
> {
  /**
   * `onUndelivered` of the channels this side sends on, by name: called once for every
   * value the peer's application will never receive (see `NetworkChannelOptions`).
   * @default none
   */
  readonly undelivered?: Undelivered<C, D> | undefined;
  /**
   * Options of the channel session (`sendStacks`, `maxChannels`, `byeTimeout`, …).
   * @default the defaults of `channels()`
   */
  readonly network?: Omit<ChannelSessionOptions, 'contract' | 'side'> | undefined;
}

/** Options of {@link ChannelEndpoint.handle}. */
export interface ChannelRouteOptions<C extends ChannelDeclarations> extends ChannelSideOptions<
  C,
  'toClient'
> {
  /** Session options of the route's connections (the codec is always `raw()`). */
  readonly session?: Omit<SessionOptions<Frame, Frame>, 'codec'> | undefined;
  /** Subprotocols, as `RouteOptions.protocols`. */
  readonly protocols?: readonly string[] | undefined;
}

/** Options of {@link ChannelEndpoint.connect}. */
export interface ChannelConnectOptions<C extends ChannelDeclarations> extends ChannelSideOptions<
  C,
  'toServer'
> {
  /** Connect options (the codec is always `raw()`). */
  readonly connect?: Omit<ConnectOptions<Frame, Frame>, 'codec'> | undefined;
}

/** Options of {@link ChannelEndpoint.reconnecting}. */
export interface ChannelReconnectingOptions<
  C extends ChannelDeclarations,
> extends ChannelSideOptions<C, 'toServer'> {
  /** The reconnecting client's options (the codec is always `raw()`). */
  readonly reconnect?: Omit<ReconnectingOptions<Frame, Frame>, 'codec'> | undefined;
}

/**
 * A path with a contract, shared by server and client code.
 *
 * @typeParam C - the contract's channel declarations.
 */
export interface ChannelEndpoint<C extends ChannelDeclarations> {
  /** The path the endpoint is served on. */
  readonly path: string;
  /** The contract both ends declare. */
  readonly contract: Contract<C>;
  /**
   * The server half: a route for `serve(options, [endpoint.handle(…)])` or
   * `testConversation`. For each connection the contract's channels are opened and
   * checked against the client's contract, then `handler` runs with
   * `{ channels, network, request, signal, scope, closed, close }`.
   * - **Returns:** the goodbye handshake, then 1000 (every value accounted once).
   * - **Throws:** 1011 and `onError`, as every route handler.
   * - **Contract mismatch:** the handler does not run; the connection closes with 1008
   *   and `onError` gets the `ContractMismatchError`.
   * - **Server shutdown:** `signal` aborts, and the goodbye runs with 1001.
   * @throws TypeError if `handler` is not a function; TypeError/RangeError for options.
   */
  handle(
    handler: (session: ChannelServerSession<C>) => unknown,
    options?: ChannelRouteOptions<C>,
  ): Route<Frame, Frame>;
  /**
   * The client half: connects to `baseUrl` + the path, opens and checks the channels,
   * runs `client` with `{ channels, network, signal, closed, close }`, and resolves with
   * its result after the goodbye handshake (1000). Rejects with a `ConnectError` when
   * the connection fails, a `ContractMismatchError` when the contracts differ (the
   * client never runs), or what `client` threw (the connection then closes with 4000).
   */
  connect<R>(
    baseUrl: string | URL,
    client: (session: ChannelClientSession<C>) => R | Promise<R>,
    options?: ChannelConnectOptions<C>,
  ): Promise<R>;
  /**
   * A reconnecting client of the endpoint (see `reconnecting`): for each connection the
   * channels are opened and checked, then `handler` runs with the channels and the
   * attempt details. A contract mismatch ends the client (`done` rejects with the
   * `ContractMismatchError`: 1008 is not retried); a server shutting down (1001) is
   * retried.
   * @throws TypeError if `baseUrl` or `handler` is invalid.
   */
  reconnecting(
    baseUrl: string | URL,
    handler: (session: ChannelReconnectingSession<C>) => unknown,
    options?: ChannelReconnectingOptions<C>,
  ): ReconnectingClient;
  /**
   * `client` as a plain session handler, for `testConversation(endpoint.handle(…),
   * endpoint.client(…))`: the same typed channels, checked, over the in-memory connection.
   */
  client<R>(
    client: (session: ChannelClientSession<C>) => R | Promise<R>,
    options?: ChannelSideOptions<C, 'toServer'>,
  ): (session: ClientSession<Frame, Frame>) => Promise<R>;
}

type Side = 'server' | 'client';

/** Opens the contract's channels on `network` and returns this side's halves. */
function openChannels(
  network: ChannelSession,
  declared: Contract,
  side: Side,
  undelivered: Readonly<Record<string, ((value: unknown) => void) | undefined>> | undefined,
): Record<string, unknown> {
  const halves: Record<string, unknown> = {};
  for (const [key, declaration] of Object.entries(declared.channels)) {
    const receives = (declaration.direction === 'toServer') === (side === 'server');
    const channel = receives
      ? network.channel(key, { capacity: declaration.capacity, schema: declaration.schema })
      : network.channel(key, { onUndelivered: undelivered?.[key] });
    halves[key] = receives ? channel.incoming : channel.outgoing;
  }
  return Object.freeze(halves);
}

/** The channel session over `session`, its contract's halves, once the peer agreed. */
async function start(
  session: ServerSession<Frame, Frame> | ClientSession<Frame, Frame>,
  declared: Contract,
  side: Side,
  options: {
    readonly undelivered?: object | undefined;
    readonly network?: ChannelSideOptions<ChannelDeclarations, 'toServer'>['network'];
  },
): Promise<[ChannelSession, Record<string, unknown>]> {
  const network = channels(session, { ...options.network, contract: declared, side });
  const halves = openChannels(
    network,
    declared,
    side,
    options.undelivered as Readonly<Record<string, ((value: unknown) => void) | undefined>>,
  );
  await network.ready;
  return [network, halves];
}

/** Runs `body`, then says goodbye (1000) whether it returned or threw; its result. */
async function thenGoodbye<R>(network: ChannelSession, body: () => R | Promise<R>): Promise<R> {
  const result = await body();
  await network.close();
  return result;
}

function handlerView<Channels>(
  network: ChannelSession,
  halves: Channels,
  signal: () => AbortSignal,
): ChannelHandlerSession<Channels> {
  return {
    channels: halves,
    network,
    get signal() {
      return signal();
    },
    closed: network.closed,
    close: (code?: number, reason?: string) => network.close(code, reason),
  };
}

function checkOptionsObject(options: unknown): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
}

/**
 * Declares a channel endpoint: `contract` served at `path`.
 *
 * @throws RangeError if `path` does not start with `/` or has a query or fragment.
 * @throws TypeError if `declared` is not a contract.
 * @example
 * ```ts
 * // shared.ts
 * export const JobQueue = channelEndpoint('/jobs', contract('jobs', 1, {
 *   jobs: toClient<{ id: number }>({ capacity: 4 }),
 *   results: toServer<{ id: number }>({ capacity: 16 }),
 * }));
 * // server.ts
 * await serve({ port: 0 }, [JobQueue.handle(async ({ channels: { jobs, results } }) => { … })]);
 * // worker.ts
 * await JobQueue.connect(url, async ({ channels: { jobs, results } }) => { … });
 * ```
 */
export function channelEndpoint<C extends ChannelDeclarations>(
  path: string,
  declared: Contract<C>,
): ChannelEndpoint<C> {
  if (typeof path !== 'string' || !path.startsWith('/') || /[?#]/.test(path)) {
    throw new RangeError(
      `Expected path to start with '/' and have no query or fragment, got ${describeValue(path)}`,
    );
  }
  if (
    typeof declared !== 'object' ||
    (declared as unknown) === null ||
    typeof declared.name !== 'string' ||
    typeof declared.channels !== 'object'
  ) {
    throw new TypeError(`Expected a contract (made by contract()), got ${describeValue(declared)}`);
  }
  const codec = raw();
  const urlOf = (baseUrl: unknown): string => {
    if (typeof baseUrl !== 'string' && !(baseUrl instanceof URL)) {
      throw new TypeError(
        `Expected baseUrl to be a string or a URL, got ${describeValue(baseUrl)}`,
      );
    }
    return `${String(baseUrl).replace(/\/+$/, '')}${path}`;
  };
  const checkHandler = (handler: unknown): void => {
    if (typeof handler !== 'function') {
      throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
    }
  };
  const client = <R>(
    body: (session: ChannelClientSession<C>) => R | Promise<R>,
    options: ChannelSideOptions<C, 'toServer'> = {},
  ): ((session: ClientSession<Frame, Frame>) => Promise<R>) => {
    checkHandler(body);
    checkOptionsObject(options);
    return async (session) => {
      const [network, halves] = await start(session, declared, 'client', options);
      const view = handlerView(network, halves as ClientChannels<C>, () => session.signal);
      return thenGoodbye(network, () => body(view));
    };
  };
  return Object.freeze({
    path,
    contract: declared,
    handle(
      handler: (session: ChannelServerSession<C>) => unknown,
      options: ChannelRouteOptions<C> = {},
    ): Route<Frame, Frame> {
      checkHandler(handler);
      checkOptionsObject(options);
      return makeRoute<Frame, Frame>(
        path,
        {
          ...options.session,
          ...(options.protocols === undefined ? {} : { protocols: options.protocols }),
          codec,
          handler: async (session) => {
            const [network, halves] = await start(session, declared, 'server', options);
            // `scope` is read when the handler asks for it: the server makes a handler's
            // scope on first use, and an idle channel session need not have one.
            const view = Object.defineProperties(
              handlerView(network, halves as ServerChannels<C>, () => session.signal),
              {
                request: { value: session.request, enumerable: true },
                scope: { get: () => session.scope, enumerable: true },
              },
            ) as ChannelServerSession<C>;
            await thenGoodbye(network, () => handler(view));
          },
        },
        codec,
      );
    },
    connect<R>(
      baseUrl: string | URL,
      body: (session: ChannelClientSession<C>) => R | Promise<R>,
      options: ChannelConnectOptions<C> = {},
    ): Promise<R> {
      try {
        const url = urlOf(baseUrl);
        return withWebSocket<Frame, Frame, R>(
          url,
          { ...options.connect, codec },
          client(body, options),
        );
      } catch (error) {
        return Promise.reject(error);
      }
    },
    reconnecting(
      baseUrl: string | URL,
      handler: (session: ChannelReconnectingSession<C>) => unknown,
      options: ChannelReconnectingOptions<C> = {},
    ): ReconnectingClient {
      const url = urlOf(baseUrl);
      checkHandler(handler);
      checkOptionsObject(options);
      return reconnectingClient<Frame, Frame>(
        url,
        { ...options.reconnect, codec },
        async (session: ReconnectingSession<Frame, Frame>) => {
          const [network, halves] = await start(session, declared, 'client', options);
          const view: ChannelReconnectingSession<C> = Object.assign(
            handlerView(network, halves as ClientChannels<C>, () => session.signal),
            { attempt: session.attempt, connection: session.connection },
          );
          await thenGoodbye(network, () => handler(view));
        },
      );
    },
    client,
  });
}
