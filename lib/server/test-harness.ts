/**
 * `testConversation(handler, client)`: runs a server handler against a client over an
 * in-memory connection — no network, no port — with the semantics of a real one (Ktor's
 * `handleWebSocketConversation`). Both ends are the adapter's own sessions on
 * {@link MemorySocket}s, so close codes, ordering, codecs and backpressure behave as over
 * TCP; the shared server conformance cases run against both to prove it.
 *
 * @module
 */
import { json } from '../websocket/codec.js';
import { APPLICATION_ERROR, checkOptions, wrap } from '../websocket/session.js';
import type { SessionOptions } from '../websocket/session.js';
import { HandlerSession, connectionLife } from '../websocket/client-session.js';
import type { WebSocketHandler } from '../websocket/connect.js';
import { checkFunction, checkNumber, describeValue } from '../websocket/validate.js';
import { MemorySocket } from './memory-socket.js';
import { toRouteSpec } from '../websocket/route.js';
import type { Route, ServerHandler } from '../websocket/route.js';
import { ServerSessionImpl, runHandler } from './server-session.js';
import type { ServerRequest } from './server-session.js';

/**
 * The client side of {@link testConversation}: `withWebSocket`'s handler shape, given the
 * client's session (`incoming`, `outgoing`, `signal`, `closed`, …).
 */
export type ConversationClient<In, Out, R> = WebSocketHandler<In, Out, R>;

/** Options of {@link testConversation}. `In`/`Out` are the client's message types. */
export interface ConversationOptions<In, Out> {
  /**
   * The request the handler sees as `session.request`.
   * @default path '/', no query, no headers, remoteAddress '127.0.0.1'
   */
  readonly request?:
    | {
        /** `session.request.path`. @default '/' */
        readonly path?: string | undefined;
        /** Parsed into `session.request.query` (`URLSearchParams`). @default no parameters */
        readonly query?: string | Readonly<Record<string, string>> | undefined;
        /** `session.request.headers`; names are lower-cased. @default none */
        readonly headers?: Readonly<Record<string, string>> | undefined;
        /** `session.request.remoteAddress`. @default '127.0.0.1' */
        readonly remoteAddress?: string | undefined;
      }
    | undefined;
  /** The subprotocol both sides see (`session.protocol`). @default '' */
  readonly protocol?: string | undefined;
  /**
   * The client session's options. The codec defaults to the route's client codec (typed
   * endpoints) or `json()`.
   * @default {}
   */
  readonly client?: SessionOptions<In, Out> | undefined;
  /** As `serve`'s: a bigger client message closes with 1009. @default 1048576 */
  readonly maxMessageSize?: number | undefined;
  /**
   * Receives the handler's error, as `serve`'s `onError`. Without it, a handler error
   * makes `testConversation` reject with it (after the conversation has ended).
   * @default undefined
   */
  readonly onError?: ((error: unknown) => void) | undefined;
}

const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;

function toRequest(options: ConversationOptions<unknown, unknown>['request']): ServerRequest {
  const path = options?.path ?? '/';
  const query = new URLSearchParams(options?.query ?? '');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options?.headers ?? {})) {
    headers[name.toLowerCase()] = value;
  }
  return Object.freeze({
    path,
    query,
    headers,
    remoteAddress: options?.remoteAddress ?? '127.0.0.1',
  });
}

/**
 * Runs `handler` (a handler function, a `route(…)`, or an endpoint's `handle(…)`) for one
 * in-memory connection (for a channel endpoint of `sluice/network`, pass
 * `endpoint.client(fn)` as `client`: both ends then get the contract's typed channels), and `client` as its peer, with `withWebSocket`'s lifecycle on the
 * client side (`client` receives the client's session; its `signal` aborts with a
 * `WebSocketCloseError` once the connection has closed): when `client` returns, the client flushes and closes with 1000; when it
 * throws, with 4000. Resolves with `client`'s result once the handler has settled and
 * both sides have closed.
 *
 * - The handler's outcome shows as on a real server: returning closes with 1000 after
 *   flushing, throwing with 1011 `'Internal error'` (the client sees that close).
 * - No heartbeat runs (there is no network to go silent).
 *
 * @throws (as a rejection) the client's error; else the handler's error when there is no
 *   `onError`; TypeError/RangeError for invalid arguments.
 * @example
 * ```ts
 * const reply = await testConversation(
 *   async (session) => {
 *     for await (const n of session.incoming) await session.outgoing.send(n * 2);
 *   },
 *   async ({ incoming, outgoing }) => {
 *     await outgoing.send(21);
 *     return incoming.receive();
 *   },
 * );
 * // reply === 42
 * ```
 */
export async function testConversation<In = unknown, Out = In, R = void>(
  handler: ServerHandler<Out, In> | Route<Out, In>,
  client: ConversationClient<In, Out, R>,
  options: ConversationOptions<In, Out> = {},
): Promise<R> {
  const spec = toRouteSpec(handler, 'handler');
  checkFunction('client', client);
  if (typeof client !== 'function') {
    throw new TypeError(`Expected client to be a function, got ${describeValue(client)}`);
  }
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  checkNumber(
    'maxMessageSize',
    options.maxMessageSize,
    'a positive integer',
    (n) => Number.isSafeInteger(n) && n > 0,
  );
  checkFunction('onError', options.onError);
  const clientOptions: SessionOptions<In, Out> = {
    codec: (spec.clientCodec as SessionOptions<In, Out>['codec']) ?? json<In, Out>(),
    ...options.client,
  };
  checkOptions(clientOptions);

  const [clientSocket, serverSocket] = MemorySocket.pair(
    options.protocol ?? '',
    options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
  );
  const server = new ServerSessionImpl<unknown, unknown>(
    serverSocket,
    spec.session,
    toRequest(options.request),
  );
  const handlerErrors: unknown[] = [];
  const onError = options.onError;
  const handled = runHandler(
    server,
    spec.handler,
    {
      report: (error) => {
        if (onError !== undefined) onError(error);
        else handlerErrors.push(error);
      },
    },
    undefined,
  );
  const session = wrap<In, Out>(clientSocket, clientOptions);
  const life = connectionLife(session);

  let outcome: { ok: true; value: R } | { ok: false; error: unknown };
  try {
    const value = await client(new HandlerSession(session, life.signal));
    session.incoming.cancel();
    await session.close(1000);
    outcome = { ok: true, value };
  } catch (error) {
    session.incoming.cancel(error);
    await session.close(APPLICATION_ERROR, 'Application error');
    outcome = { ok: false, error };
  }
  await Promise.all([handled, server.closed]);
  if (!outcome.ok) throw outcome.error;
  if (handlerErrors.length > 0) throw handlerErrors[0];
  return outcome.value;
}
