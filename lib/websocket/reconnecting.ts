/**
 * `reconnecting(url, options, handler)`: a client that keeps one WebSocket connection
 * alive, running `handler` once per connection with fresh channels (KVision's loop), with
 * exponential backoff, a reconnect policy, and an observable connection state.
 *
 * ## How it works
 * One loop, one connection at a time: `connecting` → (`open` → handler) → `closed` →
 * backoff → `connecting` …. The next attempt starts only after the previous connection's
 * `closed` has resolved and its handler has settled, so there is never more than one live
 * socket. Every transition goes through one `#emit`, which updates the synchronous
 * `state` and pushes the state to every subscriber's unlimited channel: a subscriber sees
 * every transition, in order, however slowly it reads. Stopping (`stop()` or the
 * `signal`) aborts one internal signal that the connect attempt, the backoff timer and
 * the running connection all listen to; the loop then records the final `closed` state,
 * closes the subscribers' channels, and settles `done`.
 *
 * @module
 */
import { Channel } from '../channel.js';
import type { ReceiveChannel } from '../channel-types.js';
import { ConnectError, ReconnectAttemptsError, WebSocketCloseError } from '../errors.js';
import type { CloseReason } from '../errors.js';
import { startTimer } from '../internal/timer.js';
import WebSocketDefault from 'isomorphic-ws';
import { HandlerSession } from './client-session.js';
import type { ClientSession } from './client-session.js';
import { connect } from './connect.js';
import type { ConnectOptions } from './connect.js';
import type { Session } from './session.js';
import type { WebSocketConstructor, WebSocketLike } from './socket.js';
import { assertSignal } from '../internal/describe-value.js';
import { checkFunction, checkNumber, describeValue } from './validate.js';

/** Options of {@link reconnecting}: those of `connect` (per attempt), and these. */
export interface ReconnectingOptions<In, Out> extends Omit<ConnectOptions<In, Out>, 'signal'> {
  /**
   * Milliseconds to wait before a reconnect: before attempt 2 (the first retry after a
   * failed attempt 1), and before attempt 1 after a connection that stayed up `minUptime`.
   * Each further failed attempt in a row multiplies the wait by `factor`, up to
   * `maxDelay`. The client's very first attempt starts at once.
   * @default 1000
   */
  readonly minDelay?: number | undefined;
  /**
   * The longest wait between two attempts, in milliseconds (before jitter).
   * Must be at least `minDelay`.
   * @default 30000, or `minDelay` when that is larger
   */
  readonly maxDelay?: number | undefined;
  /**
   * How much the wait grows after each failed attempt (1: constant).
   * @default 2
   */
  readonly factor?: number | undefined;
  /**
   * How much randomness to take off each wait, from 0 (none: exact waits) to 1 ("full
   * jitter": anywhere from 0 to the computed wait). The wait is
   * `base × (1 − jitter × Math.random())`, so clients that lost the same server do not
   * all come back at the same instant.
   * @default 0.5
   */
  readonly jitter?: number | undefined;
  /**
   * Milliseconds a connection must stay open to count as a success. Only such a
   * connection resets the attempt counter (and so the backoff and `maxAttempts`); one that
   * closes sooner counts as a failed attempt, so a server that accepts and at once drops
   * the connection is not hammered.
   * @default 5000
   */
  readonly minUptime?: number | undefined;
  /**
   * The most attempts in a row (counted since the last connection that stayed up
   * `minUptime`). When that many have failed and `shouldReconnect` asks for another one,
   * the client gives up: `done` rejects with a `ReconnectAttemptsError`.
   * @default Infinity
   */
  readonly maxAttempts?: number | undefined;
  /**
   * Decides, after each close, whether to try again. Called with how the connection (or
   * the attempt) ended; not called once the client is stopped. A function that throws
   * ends the client: `done` rejects with its error.
   * @default {@link defaultShouldReconnect}: not after a local close, not after 1000,
   *   not after the fatal protocol codes 1002, 1003, 1007, 1008, 1009 and 1010; after
   *   anything else (1001, 1005, 1006, 1011–1015, 3000–4999, a failed connect), yes.
   */
  readonly shouldReconnect?: ((close: ConnectionClose) => boolean) | undefined;
  /**
   * Aborting it stops the client as `stop()` does, except that `done` then rejects with
   * `signal.reason`. An already aborted signal stops the client before it opens anything.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * How one connection, or one attempt that never connected, ended: its `CloseReason`
 * (`{ code: 1006, reason: '', wasClean: false }` for an attempt that never opened, as
 * browsers report it), plus what the reconnect policy needs to know.
 */
export interface ConnectionClose extends CloseReason {
  /** The attempt number (1-based, counted since the counter was last reset). */
  readonly attempt: number;
  /** `false` when the attempt never connected (refused, handshake rejected, timed out). */
  readonly opened: boolean;
  /**
   * `true` when the client closed the connection itself: the handler returned or threw
   * while it was open, or the client was stopped. Closes that the session makes on its own
   * (a decode error: 1007, an overflow: 1008, `idleTimeout`: 1006) are not local: their
   * code decides.
   */
  readonly local: boolean;
  /**
   * What went wrong, if anything: the `ConnectError` of a failed attempt, or the error the
   * handler threw (for a lost connection typically the `WebSocketCloseError` its
   * `incoming` ended with). `undefined` when the attempt was stopped or the handler
   * returned.
   */
  readonly error: unknown;
}

/** A connection attempt is in progress (the first one starts as the client is created). */
export interface ConnectingState {
  /** Tells the states apart. */
  readonly type: 'connecting';
  /** The attempt number: 1 after a reset, then 2, 3, … while attempts keep failing. */
  readonly attempt: number;
}

/** The connection is open and the handler is running. */
export interface OpenState {
  /** Tells the states apart. */
  readonly type: 'open';
  /** The attempt that opened it. */
  readonly attempt: number;
  /** How many connections this client has opened, this one included (1-based). */
  readonly connection: number;
  /** The subprotocol the server selected, or `''`. */
  readonly protocol: string;
}

/**
 * The connection closed (or the attempt failed), and the handler has settled. Always
 * followed by `connecting` after `retryIn` milliseconds, or, when `retryIn` is
 * `undefined`, the last state of the client.
 */
export interface ClosedState {
  /** Tells the states apart. */
  readonly type: 'closed';
  /** The attempt that ended. */
  readonly attempt: number;
  /** How it ended. */
  readonly reason: ConnectionClose;
  /**
   * Milliseconds until the next attempt (jitter applied), or `undefined` if none follows
   * (stopped, the policy declined, `maxAttempts` reached). `stop()` during the wait
   * cancels the planned attempt; then no further state follows.
   */
  readonly retryIn: number | undefined;
}

/** The state of a reconnecting client's connection (fritz2's `isOpen`/`opens`/`closes`). */
export type ConnectionState = ConnectingState | OpenState | ClosedState;

/**
 * What the handler of {@link reconnecting} receives for one connection: that
 * connection's session (fresh `incoming` and `outgoing`, `closed`, …) and its place in
 * the loop, as one object: `async ({ incoming, outgoing, attempt, signal }) => …`.
 */
export interface ReconnectingSession<In, Out = In> extends ClientSession<In, Out> {
  /** The attempt that opened this connection (1 after a reset, then 2, 3, …). */
  readonly attempt: number;
  /** How many connections the client has opened, this one included (1-based). */
  readonly connection: number;
  /**
   * Aborted when this connection is over for the handler: with the stop reason when the
   * client is stopped (a `DOMException` named `AbortError` for `stop()`, `signal.reason`
   * for the client's `signal`), or with a `WebSocketCloseError` carrying the close when
   * the connection has closed. Pass it to anything the handler waits for besides
   * `incoming`.
   */
  readonly signal: AbortSignal;
}

/**
 * The handler of {@link reconnecting}, run once per connection with that connection's
 * session (fresh channels, the attempt, a signal). Its result is ignored.
 */
export type ReconnectingHandler<In, Out> = (session: ReconnectingSession<In, Out>) => unknown;

/** The session given to a reconnecting handler; internal. */
class AttemptSession<In, Out>
  extends HandlerSession<In, Out>
  implements ReconnectingSession<In, Out>
{
  readonly attempt: number;
  readonly connection: number;

  constructor(inner: Session<In, Out>, signal: AbortSignal, attempt: number, connection: number) {
    super(inner, signal);
    this.attempt = attempt;
    this.connection = connection;
  }
}

/** A running reconnecting client: its state, and the means to stop it. */
export interface ReconnectingClient {
  /**
   * The current state, synchronously: `connecting` from the moment the client is created,
   * then whatever the last transition was. Once the client has ended, its final `closed`.
   */
  readonly state: ConnectionState;
  /** `state.type === 'open'`. */
  readonly isOpen: boolean;
  /** `true` until the client has ended (stopped, given up, or declined to reconnect). */
  readonly isActive: boolean;
  /**
   * A new subscription to the state: a channel that holds the current state first, then
   * receives every later transition, in order, and closes (normally) after the client's
   * final `closed` state. Its buffer is unlimited, so no transition is ever missed or
   * dropped however slowly it is read; a transition costs one small object, and a client
   * makes at most three per attempt. Cancel the channel (`cancel()`, or `consume`/
   * `consumeEach`) to unsubscribe; leaving a `for await` loop early does not (as with
   * every channel), so the subscription then lives, buffering, until the client ends.
   * After the end, the channel holds just the final state and is closed.
   */
  states(): ReceiveChannel<ConnectionState>;
  /**
   * Settles once the client has ended: the last connection is closed, its handler has
   * settled, and the final `closed` state is out.
   * - **Stopped** with `stop()`: resolves with the last close (`local: true` if a
   *   connection was open).
   * - **Aborted** through `options.signal`: rejects with `signal.reason`.
   * - **The policy declined** (`shouldReconnect` returned false): resolves with the last
   *   close, unless the last handler threw: then rejects with that error (the same object).
   * - **Gave up** after `maxAttempts`: rejects with a `ReconnectAttemptsError` (`cause`: the
   *   last attempt's error).
   * - **Unrecoverable**: an error from `connect` that is not a `ConnectError` (malformed
   *   URL, invalid connect option) or from `shouldReconnect`: rejects with it at once.
   *
   * A rejection is never reported as unhandled when nobody awaits `done`.
   */
  readonly done: Promise<ConnectionClose>;
  /**
   * Stops the client: a connect attempt in progress is dropped, a planned attempt is
   * cancelled, and an open connection's `incoming` is cancelled (with a `DOMException`
   * named `AbortError`; the handler's pending `receive` rejects with it and its
   * `signal` aborts) and the connection closed with 1000 after flushing what `outgoing`
   * already accepted. No further attempt is made. A second call does nothing.
   *
   * - **No handler running** (connecting, waiting to retry, ended): the promise resolves
   *   once the client has ended.
   * - **A handler running:** the promise resolves once that connection has closed, without
   *   waiting for the handler to settle, because the caller may be the handler itself:
   *   `await client.stop()` inside the handler resumes once the connection is closed, and
   *   the client ends (`done` settles, `isActive` turns false) after the handler returns.
   *   Code outside the handler that must also wait for the handler awaits `done` (or uses
   *   `await using`, which does). Kotlin's `cancelAndJoin()` from inside the job itself
   *   throws instead; JavaScript cannot tell who the caller is, so sluice waits for the
   *   one thing the caller cannot be blocking.
   *
   * @returns a promise that resolves (never rejects) as described; `done` tells how the
   *   client ended.
   */
  stop(): Promise<void>;
  /**
   * For `await using`: `stop()`, then waits until the client has ended, its last
   * handler included (never rejects).
   */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The default reconnect policy: `false` after a local close, after 1000 (normal closure),
 * and after the codes that mean the peers disagree on the protocol and a new connection
 * would fail the same way: 1002 (protocol error), 1003 (unsupported data), 1007 (invalid
 * payload), 1008 (policy violation), 1009 (message too big), 1010 (missing extension).
 * `true` for everything else: a failed connect, 1001 (going away), 1005, 1006 (lost), 1011
 * and up (server errors, restarts), and application codes 3000–4999.
 *
 * @example
 * ```ts
 * // Also give up on the application's "unauthorized" code:
 * const shouldReconnect = (close: ConnectionClose): boolean =>
 *   close.code !== 4401 && defaultShouldReconnect(close);
 * ```
 */
export function defaultShouldReconnect(close: ConnectionClose): boolean {
  if (close.local) return false;
  const code = close.code;
  return !(code === 1000 || code === 1002 || code === 1003 || (code >= 1007 && code <= 1010));
}

const DEFAULTS = {
  minDelay: 1000,
  maxDelay: 30_000,
  factor: 2,
  jitter: 0.5,
  minUptime: 5000,
  maxAttempts: Infinity,
} as const;

/** A never-opened attempt's close, as browsers report a failed connection. */
const NOT_OPENED = { code: 1006, reason: '', wasClean: false } as const;

const noop = (): void => undefined;

/**
 * How long the loop waits, at most, for a dropped socket to report that it is gone before
 * the next attempt (a safety net for runtimes that never fire `close` for a failed
 * connection, such as Node 20's own `WebSocket`).
 */
const GONE_TIMEOUT = 2000;

interface Settings {
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly factor: number;
  readonly jitter: number;
  readonly minUptime: number;
  readonly maxAttempts: number;
  readonly shouldReconnect: (close: ConnectionClose) => boolean;
}

function checkSettings(options: unknown): Settings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const get = (key: string): unknown => Reflect.get(options, key);
  const ms = 'a non-negative finite number of milliseconds';
  checkNumber('minDelay', get('minDelay'), ms, (n) => n >= 0 && Number.isFinite(n));
  const minDelay = (get('minDelay') as number | undefined) ?? DEFAULTS.minDelay;
  checkNumber(
    'maxDelay',
    get('maxDelay'),
    `a finite number of milliseconds ≥ minDelay (${minDelay})`,
    (n) => n >= minDelay && Number.isFinite(n),
  );
  checkNumber('factor', get('factor'), 'a finite number ≥ 1', (n) => n >= 1 && Number.isFinite(n));
  checkNumber('jitter', get('jitter'), 'a number from 0 to 1', (n) => n >= 0 && n <= 1);
  checkNumber('minUptime', get('minUptime'), ms, (n) => n >= 0 && Number.isFinite(n));
  checkNumber(
    'maxAttempts',
    get('maxAttempts'),
    'a positive integer or Infinity',
    (n) => n === Infinity || (Number.isSafeInteger(n) && n >= 1),
  );
  checkFunction('shouldReconnect', get('shouldReconnect'));
  assertSignal(get('signal'));
  const o = options as ReconnectingOptions<unknown, unknown>;
  return {
    minDelay,
    maxDelay: o.maxDelay ?? Math.max(DEFAULTS.maxDelay, minDelay),
    factor: o.factor ?? DEFAULTS.factor,
    jitter: o.jitter ?? DEFAULTS.jitter,
    minUptime: o.minUptime ?? DEFAULTS.minUptime,
    maxAttempts: o.maxAttempts ?? DEFAULTS.maxAttempts,
    shouldReconnect: o.shouldReconnect ?? defaultShouldReconnect,
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts; leaves no timer or listener. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const finish = (): void => {
      clear();
      signal.removeEventListener('abort', finish);
      resolve();
    };
    const clear = startTimer(ms, finish);
    signal.addEventListener('abort', finish);
  });
}

/** How the loop ended, decided once. */
type Ending = { readonly kind: 'resolve' } | { readonly kind: 'reject'; readonly error: unknown };

class Client<In, Out> implements ReconnectingClient {
  readonly #url: string | URL;
  readonly #connectOptions: ConnectOptions<In, Out>;
  readonly #settings: Settings;
  readonly #handler: ReconnectingHandler<In, Out>;
  readonly #signal: AbortSignal | undefined;
  /** Aborted on stop: the connect attempt, the backoff wait and the connection listen. */
  readonly #stopper = new AbortController();
  readonly #subscribers = new Set<Channel<ConnectionState>>();
  readonly #done: Promise<ConnectionClose>;
  #state: ConnectionState;
  #active = true;
  /** Set by the first stop: `'stop'` (resolve) or `'signal'` (reject with its reason). */
  #stoppedBy: 'stop' | 'signal' | undefined;
  #connections = 0;
  /** The loop has made its final decision (or been stopped): no more stops count. */
  #ending = false;
  /**
   * Resolves once the last socket created has fired `close` or `error`. A session may
   * finish before its socket is gone (a dropped connection in browsers closes in the
   * background), so the next attempt waits for this too: one live socket at a time.
   */
  #gone: Promise<void> = Promise.resolve();
  /** While a handler runs: its connection's `closed`. */
  #serving: Promise<CloseReason> | undefined;

  readonly #onAbort = (): void => {
    this.#stop('signal', (this.#signal as AbortSignal).reason);
  };

  constructor(
    url: string | URL,
    options: ReconnectingOptions<In, Out>,
    settings: Settings,
    handler: ReconnectingHandler<In, Out>,
  ) {
    this.#url = url;
    this.#settings = settings;
    this.#handler = handler;
    this.#signal = options.signal;
    const connectOptions: Record<string, unknown> = { ...options };
    for (const key of [
      'minDelay',
      'maxDelay',
      'factor',
      'jitter',
      'minUptime',
      'maxAttempts',
      'shouldReconnect',
    ]) {
      Reflect.deleteProperty(connectOptions, key);
    }
    connectOptions.signal = this.#stopper.signal;
    const Base: WebSocketConstructor = options.WebSocket ?? WebSocketDefault;
    // Sees every socket the attempts create, to know when the previous one is really gone.
    const track = (socket: WebSocketLike): WebSocketLike => {
      this.#gone = new Promise<void>((resolve) => {
        const gone = (): void => {
          socket.removeEventListener('close', gone);
          socket.removeEventListener('error', gone);
          resolve();
        };
        socket.addEventListener('close', gone);
        socket.addEventListener('error', gone);
      });
      return socket;
    };
    connectOptions.WebSocket = function (
      url: string,
      protocols?: string | string[],
      more?: object,
    ) {
      return track(more === undefined ? new Base(url, protocols) : new Base(url, protocols, more));
    };
    this.#connectOptions = connectOptions;
    this.#state = Object.freeze({ type: 'connecting', attempt: 1 });
    this.#done = this.#run();
    this.#done.catch(noop);
    if (this.#signal?.aborted === true) this.#onAbort();
    else this.#signal?.addEventListener('abort', this.#onAbort);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get isOpen(): boolean {
    return this.#state.type === 'open';
  }

  get isActive(): boolean {
    return this.#active;
  }

  get done(): Promise<ConnectionClose> {
    return this.#done;
  }

  states(): ReceiveChannel<ConnectionState> {
    const channel = new Channel<ConnectionState>(Infinity);
    channel.trySend(this.#state);
    if (!this.#active) {
      channel.close();
      return channel;
    }
    this.#subscribers.add(channel);
    channel.onClose(() => {
      this.#subscribers.delete(channel);
    });
    return channel;
  }

  stop(): Promise<void> {
    this.#stop('stop', new DOMException('The reconnecting client was stopped', 'AbortError'));
    const serving = this.#serving;
    // A running handler may be the caller: waiting for it to settle would never end.
    const ended = serving === undefined ? this.#done : Promise.race([this.#done, serving]);
    return ended.then(noop, noop);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await this.#done.then(noop, noop);
  }

  #stop(by: 'stop' | 'signal', reason: unknown): void {
    // Once the loop has decided to end, a late stop changes nothing (nor `done`).
    if (this.#stoppedBy !== undefined || this.#ending) return;
    this.#stoppedBy = by;
    this.#stopper.abort(reason);
  }

  #emit(state: ConnectionState): void {
    this.#state = Object.freeze(state);
    for (const channel of this.#subscribers) channel.trySend(this.#state);
  }

  /** The loop. Settles `done`; never rejects for any other reason than documented. */
  async #run(): Promise<ConnectionClose> {
    // Let the constructor finish (and see an already aborted signal) first.
    await Promise.resolve();
    let ending: Ending = { kind: 'resolve' };
    let attempt = 1;
    let last: ConnectionClose | undefined;
    try {
      for (;;) {
        if (attempt !== 1 || last !== undefined) this.#emit({ type: 'connecting', attempt });
        const { close, uptime } = await this.#attempt(attempt);
        last = close;
        const next = close.opened && uptime >= this.#settings.minUptime ? 1 : attempt + 1;
        const decision = this.#decide(close, next);
        this.#emit({
          type: 'closed',
          attempt,
          reason: close,
          retryIn: decision.kind === 'retry' ? decision.delay : undefined,
        });
        if (decision.kind !== 'retry') {
          this.#ending = true;
          ending = decision;
          break;
        }
        await Promise.all([wait(decision.delay, this.#stopper.signal), this.#previousGone()]);
        if (this.#stoppedBy !== undefined) break;
        attempt = next;
      }
    } catch (error) {
      // Not expected (every step guards its calls); still end cleanly.
      ending = { kind: 'reject', error };
    }
    this.#ending = true;
    await this.#previousGone();
    this.#active = false;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const channel of this.#subscribers) channel.close();
    this.#subscribers.clear();
    if (this.#stoppedBy === 'signal') throw (this.#signal as AbortSignal).reason;
    if (this.#stoppedBy === 'stop') return last as ConnectionClose;
    if (ending.kind === 'reject') throw ending.error;
    return last as ConnectionClose;
  }

  /** Resolves when the last socket is gone, or after {@link GONE_TIMEOUT} at most. */
  #previousGone(): Promise<void> {
    const timeout = new AbortController();
    return Promise.race([this.#gone, wait(GONE_TIMEOUT, timeout.signal)]).then(() => {
      timeout.abort();
    });
  }

  /** After a close: retry after a delay, or end (resolving or rejecting `done`). */
  #decide(
    close: ConnectionClose,
    next: number,
  ): Ending | { readonly kind: 'retry'; readonly delay: number } {
    if (this.#stoppedBy !== undefined) return { kind: 'resolve' };
    if (close.error !== undefined && !close.opened && !(close.error instanceof ConnectError)) {
      // A malformed URL or an invalid connect option: trying again cannot help.
      return { kind: 'reject', error: close.error };
    }
    let again: boolean;
    try {
      again = this.#settings.shouldReconnect(close);
    } catch (error) {
      return { kind: 'reject', error };
    }
    if (!again) {
      return close.opened && close.error !== undefined
        ? { kind: 'reject', error: close.error }
        : { kind: 'resolve' };
    }
    const settings = this.#settings;
    if (next > settings.maxAttempts) {
      const cause = close.error ?? new WebSocketCloseError(close);
      const reason: CloseReason = {
        code: close.code,
        reason: close.reason,
        wasClean: close.wasClean,
      };
      return {
        kind: 'reject',
        error: new ReconnectAttemptsError(close.attempt, reason, { cause }),
      };
    }
    // The first retry waits minDelay, each further one `factor` times longer.
    const base = Math.min(
      settings.maxDelay,
      settings.minDelay * settings.factor ** Math.max(0, next - 2),
    );
    return { kind: 'retry', delay: base * (1 - settings.jitter * Math.random()) };
  }

  /** One attempt: connect, run the handler, wait for the close. Never rejects. */
  async #attempt(attempt: number): Promise<{ close: ConnectionClose; uptime: number }> {
    let session: Session<In, Out>;
    try {
      session = await connect<In, Out>(this.#url, this.#connectOptions);
    } catch (error) {
      const stopped = this.#stoppedBy !== undefined;
      return {
        close: {
          ...NOT_OPENED,
          attempt,
          opened: false,
          local: stopped,
          error: stopped ? undefined : error,
        },
        uptime: 0,
      };
    }
    const openedAt = Date.now();
    const connection = ++this.#connections;
    this.#emit({ type: 'open', attempt, connection, protocol: session.protocol });
    const close = await this.#serve(session, attempt, connection);
    return { close, uptime: Date.now() - openedAt };
  }

  /** Runs the handler for the life of `session`; resolves once both have ended. */
  async #serve(
    session: Session<In, Out>,
    attempt: number,
    connection: number,
  ): Promise<ConnectionClose> {
    const controller = new AbortController();
    // An object, so that reads after `await` are not narrowed to their initial values.
    const flags = { closed: false, local: false };
    void session.closed.then((reason) => {
      flags.closed = true;
      controller.abort(new WebSocketCloseError(reason));
    });
    const stopper = this.#stopper.signal;
    const onStop = (): void => {
      if (!flags.closed) flags.local = true;
      controller.abort(stopper.reason);
      session.incoming.cancel(stopper.reason);
      void session.close(1000);
    };
    if (stopper.aborted) onStop();
    else stopper.addEventListener('abort', onStop);

    let error: unknown;
    this.#serving = session.closed;
    try {
      await this.#handler(new AttemptSession(session, controller.signal, attempt, connection));
    } catch (thrown) {
      error = thrown === undefined ? new TypeError('The handler threw undefined') : thrown;
    }
    this.#serving = undefined;
    if (!flags.closed && !stopper.aborted) {
      // The handler ended while the connection was open: close it, as `withWebSocket` does.
      flags.local = true;
      session.incoming.cancel(error);
      if (error === undefined) void session.close(1000);
      else void session.close(4000, 'Application error');
    }
    const reason = await session.closed;
    stopper.removeEventListener('abort', onStop);
    if (this.#stoppedBy !== undefined && error === stopper.reason) error = undefined;
    return {
      code: reason.code,
      reason: reason.reason,
      wasClean: reason.wasClean,
      attempt,
      opened: true,
      local: flags.local,
      error,
    };
  }
}

/**
 * Keeps a WebSocket connection to `url` alive: connects, runs `handler` with the
 * connection's fresh channels, and when the connection closes, waits (exponential backoff
 * with jitter) and connects again, until stopped or the policy says no. KVision's
 * `webSocket` loop, with fritz2's observable connection state.
 *
 * - **Once per connection:** `handler(session)` runs for each connection that opens, with
 *   that connection's own session: fresh `incoming`/`outgoing`, `signal`, and the
 *   `attempt` and `connection` numbers (destructure what you need). When it returns while the
 *   connection is open, the connection is closed with 1000 (after flushing) — a local
 *   close, so by default the client ends. When it throws while open, the connection is
 *   closed with 4000 (`'Application error'`) and, by default, `done` rejects with the
 *   error. When the connection closes first, `incoming` ends (normally, or with a
 *   `WebSocketCloseError`) and `session.signal` aborts; the handler should then settle.
 * - **One socket at a time:** the next attempt starts only after the connection has
 *   closed **and** the handler has settled; a handler that never settles stalls the loop.
 * - **Backoff:** the first attempt starts at once. Before attempt `n ≥ 2` of a streak
 *   (attempt `n − 1` failed) the client waits `min(maxDelay, minDelay × factor^(n−2))`,
 *   minus up to `jitter` of it at random: `minDelay`, then `minDelay × factor`, …. After a
 *   connection that stayed up `minUptime`, the streak restarts: attempt 1, after
 *   `minDelay` (jittered).
 * - **Policy:** after each close, `shouldReconnect(close)` (default
 *   {@link defaultShouldReconnect}); when it says yes but `maxAttempts` attempts in a row
 *   have failed, the client gives up.
 * - **Stopping:** `client.stop()`, `await using`, or `options.signal`; see
 *   {@link ReconnectingClient.stop} and {@link ReconnectingClient.done}.
 * - **State:** `client.state` (synchronous), `client.states()` (a channel per subscriber
 *   that never misses a transition). The client starts in `connecting` (attempt 1); then
 *   `open`, `closed` (with the close and `retryIn`), `connecting`, …; it always ends with a
 *   `closed` state whose `retryIn` is `undefined`, or whose planned retry was cancelled
 *   by a stop.
 *
 * Options other than the ones above are `connect`'s and apply to every attempt
 * (`openTimeout` per attempt, `codec`, `WebSocket`, …). Runs in browsers and Node.
 *
 * @throws TypeError if `url` is not a string or `URL`, `handler` not a function, or an
 *   option has the wrong type; RangeError if a number is out of range (both "Expected …,
 *   got …"). `connect`'s own options are checked at the first attempt: an invalid one
 *   rejects `done`.
 * @example
 * ```ts
 * const client = reconnecting<Quote, Subscribe>(
 *   'wss://example.org/quotes',
 *   { minDelay: 500, maxDelay: 10_000 },
 *   async ({ incoming, outgoing }) => {
 *     await outgoing.send({ subscribe: 'EURUSD' }); // again on every new connection
 *     for await (const quote of incoming) show(quote);
 *   },
 * );
 * for await (const state of client.states()) banner(state.type);
 * // elsewhere: await client.stop();
 * ```
 */
export function reconnecting<In = unknown, Out = In>(
  url: string | URL,
  options: ReconnectingOptions<In, Out>,
  handler: ReconnectingHandler<In, Out>,
): ReconnectingClient {
  if (typeof url !== 'string' && !(url instanceof URL)) {
    throw new TypeError(`Expected url to be a string or a URL, got ${describeValue(url)}`);
  }
  const settings = checkSettings(options);
  if (typeof handler !== 'function') {
    throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
  }
  return new Client<In, Out>(url, options, settings, handler);
}

// Where the runtime lacks `Symbol.asyncDispose`, the method landed under the key
// 'undefined': remove it rather than expose a bogus method.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(Client.prototype, 'undefined');
}
