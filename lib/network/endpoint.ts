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
import {
  ProtocolError,
  ServerClosedError,
  SessionExpiredError,
  WebSocketCloseError,
} from '../errors.js';
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
import { checkNumber, describeValue } from '../websocket/validate.js';
import { channels, endsSession, resumableChannels } from './channels.js';
import type { ChannelSession, ChannelSessionOptions, ResumableSession } from './channels.js';
import { clientHandshake, newToken, serverHandshake } from './handshake.js';
import type { ClientGreeting } from './handshake.js';
import { RESUME_REFUSED, SESSION } from './link.js';
import { SessionStore } from './resume-store.js';
import type { ResumeSettings } from './resume-store.js';
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
  /**
   * Aborted when the session is over for the handler: with resume (docs/protocol.md
   * section 12), when the logical session ends (goodbye, failure, expiry) or the server
   * shuts down — not on a lost connection that resumes; without it, with the connection
   * (as the session's `signal`).
   */
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
  /**
   * The handler's scope, as `ServerSession.scope`: that of the connection the session
   * started on (its children's signal aborts when that connection ends, even if the
   * session resumes on another one: pass the session's `signal` to work that must
   * outlive a cut).
   */
  readonly scope: Scope;
  /** How many times this logical session has resumed on a new connection so far. */
  readonly resumes: number;
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
  /** How many times this logical session has resumed on a new connection so far. */
  readonly resumes: number;
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
   * Options of the channel session (`sendStacks`, `maxChannels`, `byeTimeout`, …), and
   * `maxReplayBytes`: the bound of a resumable session's replay log, in bytes, of the
   * frames sent and not yet confirmed by the peer (2 per UTF-16 code unit of a text
   * frame; a `Uint8Array` value's binary message counts its length: the value's bytes
   * and a header of a few). A value that crosses the bound is still sent. When the
   * peer confirms too little, this end is congested: sends wait as for a full peer,
   * never failing, until the peer's `recv` shrinks the log (default 8 MiB).
   * @default the defaults of `channels()`
   */
  readonly network?: EndpointNetworkOptions | undefined;
}

/** The channel session options of a channel endpoint (`ChannelSideOptions.network`). */
export interface EndpointNetworkOptions extends Omit<ChannelSessionOptions, 'contract' | 'side'> {
  /**
   * The bound of a resumable session's replay log, in bytes: the frames sent and not yet
   * confirmed by the peer (2 per UTF-16 code unit of a text frame; a `Uint8Array`
   * value's binary message counts its length). At the bound sends wait, never failing,
   * until the peer's `recv` shrinks the log.
   * @default 8388608 (8 MiB)
   */
  readonly maxReplayBytes?: number | undefined;
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
  /**
   * Resume (docs/protocol.md, "Resume"): a client that lost its connection comes back on
   * a new one within `window` and the session goes on — the handler keeps running, its
   * channels keep their state, and every value is delivered once. `false` turns it off
   * (every connection is a session of its own, as with protocol version 3 and lower).
   * Suspended sessions are kept in memory per route, bounded by `maxSessions` and
   * `maxBytes` (the bytes of their replay logs); past either bound the oldest one is
   * expired first (its channels end with `SessionExpiredError`, as when its window
   * passes). Each session's own replay log is bounded by `network.maxReplayBytes`.
   * @default { window: 60000, maxSessions: 1024, maxBytes: 67108864 }
   */
  readonly resume?: false | ResumeOptions | undefined;
}

/** The resume settings of a channel endpoint route (`ChannelRouteOptions.resume`). */
export interface ResumeOptions {
  /**
   * How long, in milliseconds, a suspended session waits for its client.
   * @default 60000
   */
  readonly window?: number | undefined;
  /**
   * The most suspended sessions the route keeps; the oldest is expired first.
   * @default 1024
   */
  readonly maxSessions?: number | undefined;
  /**
   * The most bytes the route's suspended sessions may retain in all (their replay logs,
   * 2 bytes per UTF-16 code unit of the frames); the oldest is expired first.
   * @default 67108864 (64 MiB)
   */
  readonly maxBytes?: number | undefined;
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
  /**
   * Resume (docs/protocol.md, "Resume"): after a lost connection (not a goodbye), the
   * client reconnects with its backoff and the session resumes where it was — the
   * handler is not run again, its channels keep working, every value is delivered once.
   * `window`: how long, in milliseconds, this end keeps a lost session resumable (past
   * it, or when the server refuses the resume, the channels end with
   * `SessionExpiredError` and the next connection starts a fresh session: the handler
   * runs again). `false`: every connection is a session of its own (as today).
   * @default { window: 60000 }
   */
  readonly resume?: false | ClientResumeOptions | undefined;
}

/** The resume settings of a reconnecting channel endpoint client. */
export interface ClientResumeOptions {
  /**
   * How long, in milliseconds, this end keeps a lost session resumable; past it the
   * channels end with `SessionExpiredError`. The reconnects happen within it: an attempt
   * whose connection never opens (a black hole during the opening handshake, where
   * `idleTimeout` does not run yet) lasts the reconnect option `openTimeout` (30 s by
   * default), so keep `openTimeout` well under the window (a few seconds) or a single
   * stuck attempt can use most of it.
   * @default 60000
   */
  readonly window?: number | undefined;
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
   * - **Server shutdown:** `signal` aborts, and the goodbye runs with 1001; suspended
   *   sessions expire (`SessionExpiredError`).
   * - **Lost connection (resume on, the default):** the handler keeps running, its channels
   *   wait; a client that comes back within `resume.window` with the session's token (and
   *   the same `authorize` identity) continues it (`resumes` counts), else the session
   *   expires: its channels end with `SessionExpiredError`, every value accounted once. A
   *   resume with an unknown, expired or foreign token is refused with 3410. A client of
   *   protocol 3 or lower, or one that asks for no token, gets a session that ends with
   *   its connection, as before.
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
   * A reconnecting client of the endpoint (see `reconnecting`): the channels are opened
   * and checked, then `handler` runs with the channels and the attempt details. With
   * resume (the default), once per logical session: a lost connection (not a goodbye) is
   * followed by a reconnect with the backoff and the session resumes — same handler, same
   * channels, every value once (`resumes` counts). When it cannot (the window passed,
   * the server refused with 3410, restarted, or went away with 1001), its channels end
   * with `SessionExpiredError` and the next connection starts a fresh session: the
   * handler runs again. Without resume (`resume: false`, or a server of protocol 3 or
   * lower), once per connection, as before. The handler returning ends the client after
   * the goodbye; throwing closes with 4000 and is retried. A contract mismatch ends the
   * client (`done` rejects with the `ContractMismatchError`: 1008 is not retried); a server
   * shutting down (1001) is retried.
   * @throws TypeError if `baseUrl` or `handler` is invalid; TypeError/RangeError for the
   *   `resume` and `network.maxReplayBytes` options.
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

const DEFAULT_WINDOW = 60_000;
const DEFAULT_MAX_SESSIONS = 1024;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_REPLAY_BYTES = 8 * 1024 * 1024;
/** The longest delay `setTimeout` takes (2^31 − 1 ms). */
const MAX_TIMEOUT = 2_147_483_647;

function noop(): void {
  // a rejection handled elsewhere
}

/** The resume settings from a `resume` option; `undefined` for `false`. */
function checkResume(resume: unknown, server: boolean): ResumeSettings | undefined {
  if (resume === false) return undefined;
  if (resume !== undefined && (typeof resume !== 'object' || resume === null)) {
    throw new TypeError(
      `Expected resume to be false, an object or undefined, got ${describeValue(resume)}`,
    );
  }
  const get = (key: string): unknown =>
    resume === undefined ? undefined : Reflect.get(resume, key);
  checkNumber(
    'resume.window',
    get('window'),
    `a number of milliseconds from 1 to ${String(MAX_TIMEOUT)}`,
    (n) => n >= 1 && n <= MAX_TIMEOUT,
  );
  if (server) {
    checkNumber(
      'resume.maxSessions',
      get('maxSessions'),
      'a non-negative integer or Infinity',
      (n) => n === Infinity || (Number.isSafeInteger(n) && n >= 0),
    );
    checkNumber('resume.maxBytes', get('maxBytes'), 'a non-negative number', (n) => n >= 0);
  }
  return {
    window: (get('window') as number | undefined) ?? DEFAULT_WINDOW,
    maxSessions: (get('maxSessions') as number | undefined) ?? DEFAULT_MAX_SESSIONS,
    maxBytes: (get('maxBytes') as number | undefined) ?? DEFAULT_MAX_BYTES,
  };
}

type NetworkOptions = ChannelSideOptions<ChannelDeclarations, 'toServer'>['network'];

/** The channel session options without `maxReplayBytes`, and that bound (checked). */
function splitNetwork(
  network: NetworkOptions,
): [Omit<ChannelSessionOptions, 'contract' | 'side'>, number] {
  if (network === undefined) return [{}, DEFAULT_MAX_REPLAY_BYTES];
  checkOptionsObject(network);
  const { maxReplayBytes, ...rest } = network;
  checkNumber(
    'network.maxReplayBytes',
    maxReplayBytes,
    'a positive number of bytes or Infinity',
    (n) => n > 0,
  );
  return [rest, maxReplayBytes ?? DEFAULT_MAX_REPLAY_BYTES];
}

/**
 * The handler's `signal` of a resumable server session: aborted when the logical session
 * ends (its `onEnd`) or the server shuts down one of its connections (a connection's
 * signal aborts with a `ServerClosedError`), with the first of those reasons — not on a
 * mere cut. Made lazily: an idle session holds this object and two hooks, and neither an
 * AbortController nor its connections' signals (which the server makes on first read)
 * until the handler reads `signal`, a resumed connection ends or the session ends. The
 * shutdown is seen through the session's `onShutdown` hook (the server calls it right
 * after aborting the connection's signal), or, for a shutdown that came before the
 * session took the connection over, by looking at its connections' signals at those
 * moments: the same reason, at the same point of the handler's view, as a listener on
 * every connection's signal would give.
 */
class LogicalSignal {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown = undefined;
  /** The connection the session started on, and those it resumed on (made at a resume). */
  readonly #first: ServerSession<Frame, Frame>;
  #resumed: ServerSession<Frame, Frame>[] | undefined;

  constructor(network: ResumableSession, first: ServerSession<Frame, Frame>) {
    this.#first = first;
    network.onShutdown = () => {
      this.#followShutdown();
    };
    network.onEnd = (reason) => {
      this.#followShutdown();
      this.#abort(new WebSocketCloseError(reason));
    };
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#followShutdown();
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** The session resumed on `session`: a shutdown of that connection aborts too. */
  resumedOn(session: ServerSession<Frame, Frame>): void {
    (this.#resumed ??= []).push(session);
    // Shut down before the session took it over: the handler may be listening already.
    if (this.#controller !== undefined) this.#shutDownBy(session);
  }

  /**
   * The resumed connection `session` ended: a shutdown that came before is seen now, and
   * the connection is forgotten (a session resumed many times holds none of the old ones).
   */
  left(session: ServerSession<Frame, Frame>): void {
    this.#shutDownBy(session);
    const resumed = this.#resumed ?? [];
    const index = resumed.indexOf(session);
    if (index >= 0) resumed.splice(index, 1);
  }

  /** Aborts with a connection's `ServerClosedError`, if one was shut down by the server. */
  #followShutdown(): void {
    this.#shutDownBy(this.#first);
    for (const session of this.#resumed ?? []) this.#shutDownBy(session);
  }

  #shutDownBy(session: ServerSession<Frame, Frame>): void {
    if (this.#aborted) return;
    const signal = session.signal;
    const reason: unknown = signal.reason;
    if (signal.aborted && reason instanceof ServerClosedError) this.#abort(reason);
  }

  #abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** The logical signal of each resumable server session (read by its resumes). */
const signals = new WeakMap<ResumableSession, LogicalSignal>();

/** Closes `session` with a protocol code where it can (1002), else its 4000 + form. */
function closeFailed(session: ServerSession<Frame, Frame>, message: string): Promise<CloseReason> {
  return session.close(1002, message.slice(0, 120));
}

/**
 * One connection of a channel endpoint route: a new session (the handler runs), or a
 * resume of a session that lost its connection (the handler keeps running; this
 * connection serves it until it ends).
 */
async function serveConnection<C extends ChannelDeclarations>(
  session: ServerSession<Frame, Frame>,
  declared: Contract<C>,
  options: ChannelRouteOptions<C>,
  store: SessionStore | undefined,
  handler: (session: ChannelServerSession<C>) => unknown,
): Promise<void> {
  const [networkOptions, maxReplayBytes] = splitNetwork(options.network);
  const greeting = await serverHandshake(session);
  if (greeting.kind === 'closed') return;
  const identity = session.request.identity;
  if (greeting.kind === 'resume') {
    const network = store?.take(greeting.token, identity);
    if (network === undefined) {
      await session.close(RESUME_REFUSED, 'Session expired: unknown, expired or foreign token');
      return;
    }
    // The client may come back before this end noticed the loss: drop the old connection.
    network.detach();
    const problem = network.attach(session, greeting.received, greeting.leftover, true);
    if (problem !== undefined) {
      const error = new ProtocolError(problem);
      network.expire(
        new SessionExpiredError(
          `The client's resume broke the protocol: ${problem}`,
          { code: 1002, reason: problem.slice(0, 120), wasClean: false },
          { cause: error },
        ),
      );
      await closeFailed(session, problem);
      return;
    }
    const logical = signals.get(network);
    logical?.resumedOn(session);
    try {
      await session.closed;
    } finally {
      logical?.left(session);
    }
    return;
  }
  let token: string | undefined;
  if (greeting.wantsToken) {
    token = store === undefined ? undefined : newToken();
    session.outgoing
      .send(token === undefined ? `["${SESSION}"]` : `["${SESSION}",${JSON.stringify(token)}]`)
      .catch(noop);
  }
  const network = resumableChannels(
    session,
    { ...networkOptions, contract: declared, side: 'server' },
    {
      version: greeting.version,
      leftover: greeting.leftover,
      resumable: token !== undefined,
      maxReplayBytes,
    },
  );
  if (token !== undefined) store?.add(token, identity, network);
  const halves = openChannels(
    network,
    declared,
    'server',
    options.undelivered as Readonly<Record<string, ((value: unknown) => void) | undefined>>,
  );
  await network.ready;
  let logical: LogicalSignal | undefined;
  if (token !== undefined) {
    logical = new LogicalSignal(network, session);
    signals.set(network, logical);
  }
  // `scope` and `signal` are read when the handler asks for them: the server makes a
  // handler's scope on first use, and an idle channel session need not have one.
  const view = new ServerView<C>(network, halves as ServerChannels<C>, session, logical);
  // Not awaited here: this frame, with all the locals of the handshake, ends now, and the
  // handler's whole life is held by the small frame of runHandler.
  return runHandler(network, view, token !== undefined, handler);
}

/** Runs the server handler, then says goodbye (1000); a throw ends the session (1011). */
async function runHandler<C extends ChannelDeclarations>(
  network: ResumableSession,
  view: ChannelServerSession<C>,
  resumable: boolean,
  handler: (session: ChannelServerSession<C>) => unknown,
): Promise<void> {
  try {
    // As thenGoodbye, inline: one async frame fewer for as long as the handler runs.
    await handler(view);
    await network.close();
  } catch (error) {
    // The session may live on another connection than this one: end it there too.
    if (resumable && !network.ended) void network.goAway(1011, 'Internal error');
    throw error;
  }
}

/**
 * What a channel endpoint's server handler receives. A class, not a literal: V8 keeps an
 * object literal with getters in dictionary mode (~400 B more per session), and the
 * getters here are shared by every session instead of three closures each. `signal`,
 * `scope` and `resumes` are read through the prototype (destructuring reads them as
 * before); `close` is an own function, so that it works destructured.
 */
class ServerView<C extends ChannelDeclarations> implements ChannelServerSession<C> {
  readonly channels: ServerChannels<C>;
  readonly network: ResumableSession;
  readonly closed: Promise<CloseReason>;
  readonly close: (code?: number, reason?: string) => Promise<CloseReason>;
  readonly request: ServerRequest;
  readonly #session: ServerSession<Frame, Frame>;
  readonly #logical: LogicalSignal | undefined;

  constructor(
    network: ResumableSession,
    channels: ServerChannels<C>,
    session: ServerSession<Frame, Frame>,
    logical: LogicalSignal | undefined,
  ) {
    this.channels = channels;
    this.network = network;
    this.closed = network.closed;
    this.close = (code, reason) => network.close(code, reason);
    this.request = session.request;
    this.#session = session;
    this.#logical = logical;
  }

  get signal(): AbortSignal {
    return this.#logical === undefined ? this.#session.signal : this.#logical.signal;
  }

  get scope(): Scope {
    return this.#session.scope;
  }

  get resumes(): number {
    return this.network.resumes;
  }
}

/** A reconnecting client's logical session, across connections. */
interface Logical {
  readonly network: ResumableSession;
  /** The server's token, once its `session` frame arrived (`undefined`: not resumable). */
  token: string | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The handler's run: settles when it returned (after the goodbye) or threw. */
  done: Promise<void>;
}

function expireLogical(logical: Logical, message: string, cause?: unknown): void {
  if (logical.timer !== undefined) clearTimeout(logical.timer);
  logical.timer = undefined;
  logical.network.expire(
    new SessionExpiredError(
      message,
      { code: 1006, reason: '', wasClean: false },
      cause === undefined ? undefined : { cause },
    ),
  );
}

/**
 * Until `session` ends and the logical session suspended, or the handler settled (a
 * session that ended lets its handler finish first, as without resume).
 */
async function serveLogical(logical: Logical, session: ClientSession<Frame, Frame>): Promise<void> {
  const settled = logical.done.then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  let outcome = await Promise.race([session.closed.then(() => 'closed' as const), settled]);
  if (outcome === 'closed') {
    // The channel session sees the end a few microtasks later.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (logical.network.suspended) return;
    outcome = await settled;
  }
  if (outcome !== undefined) throw outcome.error;
}

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
      splitNetwork(options.network);
      const settings = checkResume(options.resume, true);
      const store = settings === undefined ? undefined : new SessionStore(settings);
      return makeRoute<Frame, Frame>(
        path,
        {
          ...options.session,
          ...(options.protocols === undefined ? {} : { protocols: options.protocols }),
          codec,
          handler: (session) => serveConnection(session, declared, options, store, handler),
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
      const [networkOptions, maxReplayBytes] = splitNetwork(options.network);
      const settings = checkResume(options.resume, false);
      let logical: Logical | undefined;
      const client = reconnectingClient<Frame, Frame>(
        url,
        { ...options.reconnect, codec },
        async (session: ReconnectingSession<Frame, Frame>) => {
          let greeting: ClientGreeting;
          const current = logical;
          if (current?.token !== undefined && current.network.suspended) {
            greeting = await clientHandshake(
              session,
              { token: current.token, received: current.network.received },
              true,
            );
            if (greeting.kind === 'resumed') {
              if (current.timer !== undefined) clearTimeout(current.timer);
              current.timer = undefined;
              const problem = current.network.attach(
                session,
                greeting.received,
                greeting.leftover,
                false,
              );
              if (problem !== undefined) {
                const error = new ProtocolError(problem);
                expireLogical(current, `The server's resume broke the protocol: ${problem}`, error);
                void session.close(4002, problem.slice(0, 120));
                throw error;
              }
              await serveLogical(current, session);
              return;
            }
            if (greeting.kind === 'closed') {
              const { code } = await session.closed;
              // Lost during the handshake (a cut, a black hole): still resumable, the
              // next connection asks again with the same count (a resume is idempotent).
              if (!endsSession(code)) return;
              expireLogical(current, `The server refused to resume the session (${String(code)})`);
              return;
            }
            expireLogical(current, 'The server no longer resumes sessions');
          } else {
            greeting = await clientHandshake(session, undefined, settings !== undefined);
          }
          if (greeting.kind !== 'fresh') return;
          const resumable = greeting.awaitSession;
          const network = resumableChannels(
            session,
            { ...networkOptions, contract: declared, side: 'client' },
            {
              version: greeting.version,
              leftover: greeting.leftover,
              resumable,
              awaitSession: resumable,
              maxReplayBytes,
            },
          );
          const controller = new AbortController();
          // Before any frame is read: the server's `session` frame comes first.
          let entry: Logical | undefined;
          if (resumable && settings !== undefined) {
            const window = settings.window;
            const created: Logical = {
              network,
              token: undefined,
              timer: undefined,
              done: Promise.resolve(),
            };
            logical = created;
            entry = created;
            network.onSession = (token) => {
              created.token = token;
            };
            network.onSuspend = () => {
              created.timer = setTimeout(() => {
                created.timer = undefined;
                expireLogical(
                  created,
                  `The session was not resumed within its window (${String(window)} ms)`,
                );
              }, window);
            };
            network.onEnd = (reason) => {
              if (created.timer !== undefined) clearTimeout(created.timer);
              created.timer = undefined;
              controller.abort(new WebSocketCloseError(reason));
              if (logical === created) logical = undefined;
            };
          }
          const halves = openChannels(
            network,
            declared,
            'client',
            options.undelivered as Readonly<Record<string, ((value: unknown) => void) | undefined>>,
          );
          await network.ready;
          const details = { attempt: session.attempt, connection: session.connection };
          if (entry === undefined) {
            const view: ChannelReconnectingSession<C> = Object.assign(
              handlerView(network, halves as ClientChannels<C>, () => session.signal),
              details,
              { resumes: 0 },
            );
            await thenGoodbye(network, () => handler(view));
            return;
          }
          const view = Object.assign(
            handlerView(network, halves as ClientChannels<C>, () => controller.signal),
            details,
          );
          Object.defineProperty(view, 'resumes', {
            enumerable: true,
            get: () => network.resumes,
          });
          entry.done = (async () => {
            try {
              await handler(view as ChannelReconnectingSession<C>);
              if (network.ended) return; // expired: the next connection starts afresh
              await network.close();
              // The goodbye ended the session (maybe across a resume): the client is done,
              // as when a handler returns, whatever code the last connection closed with.
              void client.stop();
            } catch (error) {
              if (!network.ended) void network.goAway(4000, 'Application error');
              throw error;
            }
          })();
          entry.done.catch(noop);
          await serveLogical(entry, session);
        },
      );
      const stopped = (): void => {
        if (logical !== undefined) expireLogical(logical, 'The reconnecting client stopped');
      };
      client.done.then(stopped, stopped);
      return client;
    },
    client,
  });
}
