/**
 * Every error class that sluice throws on purpose. Each has a fixed `name` (so it
 * survives `structuredClone`, logging and realms) and a stable `code` string for
 * programmatic checks; the README lists them all in one table.
 *
 * Cancellation is not an error class of ours: an aborted operation rejects with the
 * `AbortSignal`'s own `reason`, and a cancelled channel with the reason given to
 * `cancel` (by default a `DOMException` named `AbortError`).
 *
 * @module
 */
import type { Position } from './topics/position.js';

/** Stable codes of sluice's own errors. */
export type SluiceErrorCode =
  | 'ERR_CHANNEL_CLOSED_FOR_SEND'
  | 'ERR_CHANNEL_CLOSED_FOR_RECEIVE'
  | 'ERR_TIMEOUT'
  | 'ERR_MUTEX_NOT_LOCKED'
  | 'ERR_SEMAPHORE_PERMIT_NOT_HELD';

/**
 * Thrown by `send` (and carried by a failed `trySend`'s result when no cause was given)
 * when the channel was closed **normally**, that is by `close()` without a cause.
 *
 * Why a class of its own: a sender must be able to tell "the other side is done with
 * me" from a failure; a channel closed with a cause rethrows that cause instead, as the
 * same object, never wrapped.
 */
export class ClosedSendError extends Error {
  /** Always `'ClosedSendError'`. */
  override readonly name = 'ClosedSendError' as const;
  /** Always `'ERR_CHANNEL_CLOSED_FOR_SEND'`. */
  readonly code = 'ERR_CHANNEL_CLOSED_FOR_SEND' as const;
  constructor(message = 'Channel was closed: no more values can be sent') {
    super(message);
  }
}

/**
 * Thrown by `receive` (and by `for await` never: a normal close just ends the loop) when
 * the channel was closed **normally** and every value sent before the close has been
 * received.
 *
 * Why a class of its own: "no more values, as planned" is the expected end of a stream;
 * `receiveCatching` and `for await` let you treat it as a result instead of an error.
 */
export class ClosedReceiveError extends Error {
  /** Always `'ClosedReceiveError'`. */
  override readonly name = 'ClosedReceiveError' as const;
  /** Always `'ERR_CHANNEL_CLOSED_FOR_RECEIVE'`. */
  readonly code = 'ERR_CHANNEL_CLOSED_FOR_RECEIVE' as const;
  constructor(message = 'Channel was closed and every value in it has been received') {
    super(message);
  }
}

/**
 * The reason an operation was aborted because its time ran out (`withTimeout`,
 * `onTimeout`-driven helpers). Named `TimeoutError` like the `DOMException` that
 * `AbortSignal.timeout()` produces, so `err.name === 'TimeoutError'` checks work for both.
 */
export class TimeoutError extends Error {
  /** Always `'TimeoutError'`. */
  override readonly name = 'TimeoutError' as const;
  /** Always `'ERR_TIMEOUT'`. */
  readonly code = 'ERR_TIMEOUT' as const;
  constructor(message = 'Timed out') {
    super(message);
  }
}

/**
 * Thrown by `Mutex.unlock()` when the mutex is not locked, and by a lock handle's
 * `unlock()` when that hold was already released (by itself or by `mutex.unlock()`).
 *
 * Why a class of its own: unlocking what is not held is a bug in the caller's
 * bookkeeping — silently ignoring it would let a second unlock free somebody else's
 * hold, the very thing a mutex exists to prevent (Kotlin throws `IllegalStateException`,
 * Go panics).
 */
export class MutexNotLockedError extends Error {
  /** Always `'MutexNotLockedError'`. */
  override readonly name = 'MutexNotLockedError' as const;
  /** Always `'ERR_MUTEX_NOT_LOCKED'`. */
  readonly code = 'ERR_MUTEX_NOT_LOCKED' as const;
  constructor(message = 'Expected the mutex to be locked, got it unlocked') {
    super(message);
  }
}

/**
 * Thrown by `Semaphore.release()` when no permit is held (every permit is available),
 * and by a permit handle's `release()` when that permit was already released.
 *
 * Why a class of its own: a release without an acquire would raise the number of
 * permits above what the semaphore was made with and silently break its bound.
 */
export class PermitNotHeldError extends Error {
  /** Always `'PermitNotHeldError'`. */
  override readonly name = 'PermitNotHeldError' as const;
  /** Always `'ERR_SEMAPHORE_PERMIT_NOT_HELD'`. */
  readonly code = 'ERR_SEMAPHORE_PERMIT_NOT_HELD' as const;
  constructor(message = 'Expected a permit to be held, got none') {
    super(message);
  }
}

// ------------------------------------------------------------------ WebSocket adapter

/** Stable codes of the WebSocket adapter's errors (`sluice/websocket`). */
export type WebSocketErrorCode =
  | 'ERR_WEBSOCKET_CLOSED'
  | 'ERR_WEBSOCKET_DECODE'
  | 'ERR_WEBSOCKET_ENCODE'
  | 'ERR_WEBSOCKET_CONNECT'
  | 'ERR_WEBSOCKET_HANDSHAKE'
  | 'ERR_WEBSOCKET_INCOMING_OVERFLOW'
  | 'ERR_SLUICE_CONNECTION_LOST'
  | 'ERR_SLUICE_PROTOCOL'
  | 'ERR_SLUICE_CONTRACT_MISMATCH';

/**
 * What a WebSocket connection ended with: the close frame's code and reason as the
 * runtime reports them, and whether the closing handshake completed (`wasClean`).
 */
export interface CloseReason {
  /** 1000–4999 from a Close frame, 1005 if it had no code, 1006 if there was no Close frame. */
  readonly code: number;
  /** The Close frame's reason (UTF-8, at most 123 bytes), or `''`. */
  readonly reason: string;
  /** `true` when the closing handshake completed; `false` for a lost connection (1006). */
  readonly wasClean: boolean;
}

/**
 * The error a session's `incoming` channel ends with when the connection closed
 * abnormally: the peer closed with a code other than 1000 (normal), 1001 (going away) or
 * 1005 (no code), the connection was lost (1006, `wasClean: false`), or it was failed
 * locally (idle timeout: 1006 with the cause attached).
 *
 * Why a class of its own: a normal close ends `for await` quietly, while any other close
 * is a failure the consumer must see — with the code, reason and `wasClean` to decide
 * what to do (retry, report, give up).
 */
export class WebSocketCloseError extends Error {
  /** Always `'WebSocketCloseError'`. */
  override readonly name = 'WebSocketCloseError' as const;
  /** Always `'ERR_WEBSOCKET_CLOSED'`. */
  readonly code = 'ERR_WEBSOCKET_CLOSED' as const;
  /** The close code (see {@link CloseReason.code}); `code` is this error's own code. */
  readonly closeCode: number;
  /** The close reason. */
  readonly reason: string;
  /** Whether the closing handshake completed. */
  readonly wasClean: boolean;
  constructor(close: CloseReason, options?: { cause?: unknown }) {
    super(
      `WebSocket closed with ${close.code}${close.reason === '' ? '' : ` (${close.reason})`}${close.wasClean ? '' : ', not cleanly'}`,
      options,
    );
    this.closeCode = close.code;
    this.reason = close.reason;
    this.wasClean = close.wasClean;
  }
}

/**
 * One problem a schema found in a decoded message: the shape of a Standard Schema issue
 * (`message`, and the `path` to the offending value when known).
 */
export interface SchemaIssue {
  /** What is wrong, in the schema library's words. */
  readonly message: string;
  /** Where: the keys from the message's root to the offending value, when known. */
  readonly path?:
    | ReadonlyArray<
        | PropertyKey
        | {
            /** One key of the path (Standard Schema's path segment). */
            readonly key: PropertyKey;
          }
      >
    | undefined;
}

/**
 * A received frame that the session's codec could not turn into a message: not JSON,
 * rejected by the schema, or the wrong frame type (binary for a text codec, text for a
 * binary one). By default the session's `incoming` ends with it and the connection is
 * closed with {@link DecodeError.closeCode}.
 *
 * Why a class of its own: the peer broke the protocol, which is neither a close nor a
 * bug of ours; the raw payload and the schema's issues are attached for diagnosis.
 */
export class DecodeError extends Error {
  /** Always `'DecodeError'`. */
  override readonly name = 'DecodeError' as const;
  /** Always `'ERR_WEBSOCKET_DECODE'`. */
  readonly code = 'ERR_WEBSOCKET_DECODE' as const;
  /** The frame's payload as received: a `string` (text frame) or `Uint8Array` (binary). */
  readonly data: string | Uint8Array;
  /** The schema's issues when validation failed, else `undefined`. */
  readonly issues: readonly SchemaIssue[] | undefined;
  /**
   * The close code this calls for: 1003 (unsupported data) for a frame of the wrong
   * type, 1007 (invalid payload) for a payload that does not decode or validate.
   */
  readonly closeCode: 1003 | 1007;
  constructor(
    message: string,
    details: {
      data: string | Uint8Array;
      closeCode: 1003 | 1007;
      issues?: readonly SchemaIssue[] | undefined;
      cause?: unknown;
    },
  ) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.data = details.data;
    this.closeCode = details.closeCode;
    this.issues = details.issues;
  }
}

/**
 * A value given to a session's `outgoing.send` that its codec cannot encode (for
 * `json()`: a `BigInt`, a cycle, `undefined`, a function; for `text()`: not a string;
 * for `binary()`: not a `Uint8Array`), or that a network channel cannot send (what JSON
 * cannot encode; a binary view other than `Uint8Array`; a `Uint8Array` on a connection
 * of protocol version 2). That `send` rejects with it, the value goes to
 * `onUndelivered`, and the connection stays usable.
 *
 * Why a class of its own: it is a bug in the sender's data, local to one message, and
 * must not be confused with the connection closing.
 */
export class EncodeError extends Error {
  /** Always `'EncodeError'`. */
  override readonly name = 'EncodeError' as const;
  /** Always `'ERR_WEBSOCKET_ENCODE'`. */
  readonly code = 'ERR_WEBSOCKET_ENCODE' as const;
  /** The value that could not be encoded. */
  readonly value: unknown;
  constructor(message: string, value: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.value = value;
  }
}

/**
 * `connect` could not open the connection: refused, unreachable, TLS failure, the
 * `openTimeout` ran out (`cause` is then a `TimeoutError`), or the server answered the
 * handshake with something other than 101 (a {@link HandshakeError} where the runtime
 * shows the response; browsers do not, so there it is a plain `ConnectError`).
 *
 * Why a class of its own: "never connected" calls for a retry policy, unlike a
 * connection that was open and then closed.
 */
export class ConnectError extends Error {
  /** `'ConnectError'`, or `'HandshakeError'` for the subclass. */
  override readonly name: 'ConnectError' | 'HandshakeError' = 'ConnectError';
  /** `'ERR_WEBSOCKET_CONNECT'`, or `'ERR_WEBSOCKET_HANDSHAKE'` for the subclass. */
  readonly code: 'ERR_WEBSOCKET_CONNECT' | 'ERR_WEBSOCKET_HANDSHAKE' = 'ERR_WEBSOCKET_CONNECT';
  /** The URL that was being opened. */
  readonly url: string;
  constructor(message: string, url: string, options?: { cause?: unknown }) {
    super(message, options);
    this.url = url;
  }
}

/**
 * The server answered the opening handshake with an HTTP status other than 101 (for
 * example 401 or 404). Only runtimes that expose the response produce it (Node with
 * `ws`); browsers and Node's own `WebSocket` hide it and report a plain `ConnectError`.
 */
export class HandshakeError extends ConnectError {
  /** Always `'HandshakeError'`. */
  override readonly name = 'HandshakeError' as const;
  /** Always `'ERR_WEBSOCKET_HANDSHAKE'`. */
  override readonly code = 'ERR_WEBSOCKET_HANDSHAKE' as const;
  /** The HTTP status code of the response. */
  readonly status: number;
  /** The response headers, lower-cased names. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  constructor(
    url: string,
    status: number,
    headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  ) {
    super(`WebSocket handshake with ${url} was rejected with HTTP status ${status}`, url);
    this.status = status;
    this.headers = headers;
  }
}

/**
 * The session's `incoming` buffer was full, the socket cannot be paused (browsers, Node's
 * own `WebSocket`) and the overflow policy is `'pause'` or `'close'`: the connection is
 * closed with 1008 (policy violation) and `incoming` ends with this error after the
 * buffered messages. Also when the messages held for `incoming` would pass
 * `incomingMaxBytes` (`maxBytes` is set then): the connection is closed with 1009.
 *
 * Why a class of its own: it means the consumer is too slow for the peer, which calls
 * for a bigger buffer, a drop policy, or flow control in the protocol — not a retry.
 */
export class IncomingOverflowError extends Error {
  /** Always `'IncomingOverflowError'`. */
  override readonly name = 'IncomingOverflowError' as const;
  /** Always `'ERR_WEBSOCKET_INCOMING_OVERFLOW'`. */
  readonly code = 'ERR_WEBSOCKET_INCOMING_OVERFLOW' as const;
  /** The capacity of `incoming` (in messages) that was exceeded, or that was in force. */
  readonly capacity: number;
  /**
   * The byte bound (`incomingMaxBytes`) that was exceeded, or `undefined` when the count
   * (`capacity`) was.
   */
  readonly maxBytes: number | undefined;
  constructor(capacity: number, maxBytes?: number) {
    super(
      maxBytes === undefined
        ? `More messages arrived than incoming can buffer (capacity ${capacity})`
        : `More bytes arrived than incoming may hold (incomingMaxBytes ${maxBytes})`,
    );
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }
}

// ------------------------------------------------------------------ WebSocket server

/** Stable codes of the WebSocket server's errors (`sluice/server`). */
export type ServerErrorCode = 'ERR_SERVER_CLOSED' | 'ERR_SERVER_SHUTDOWN_TIMEOUT';

/**
 * The reason a server session's `signal` is aborted with when `server.close()` shuts the
 * server down: every handler sees it, and each connection is closed with 1001 (going
 * away). A handler that ends by rethrowing it is not reported to `onError`.
 *
 * Why a class of its own: a handler must be able to tell "the whole server is stopping"
 * (finish quickly, nothing went wrong) from its own connection ending or failing.
 */
export class ServerClosedError extends Error {
  /** Always `'ServerClosedError'`. */
  override readonly name = 'ServerClosedError' as const;
  /** Always `'ERR_SERVER_CLOSED'`. */
  readonly code = 'ERR_SERVER_CLOSED' as const;
  constructor(message = 'The server is shutting down') {
    super(message);
  }
}

/**
 * Reported by `server.close({ timeout })` for each connection whose handler (or a child
 * of the handler's scope) was still running when the timeout ran out: it goes to the
 * server's `onError` with that connection's session, once per connection. By then the
 * handler's `signal` had been aborted (with a `ServerClosedError`) for `timeout`
 * milliseconds; its connection is dropped, it no longer counts in `server.sessions`, and
 * `close()` resolves without waiting for it. The handler itself cannot be stopped from
 * outside (a JavaScript function cannot be killed): whatever it still does afterwards
 * runs against a closed connection (its sends reject), and an error it throws later is
 * suppressed by the cancellation (as for any cancelled scope), not reported.
 *
 * Why a class of its own: it means a handler that does not honour its `signal`, a bug to
 * fix in the handler (pass the signal to what it awaits), unlike `ServerClosedError`,
 * which is the expected end of every handler during a shutdown.
 */
export class ShutdownTimeoutError extends Error {
  /** Always `'ShutdownTimeoutError'`. */
  override readonly name = 'ShutdownTimeoutError' as const;
  /** Always `'ERR_SERVER_SHUTDOWN_TIMEOUT'`. */
  readonly code = 'ERR_SERVER_SHUTDOWN_TIMEOUT' as const;
  /** The `timeout` given to `close()`, in milliseconds. */
  readonly timeout: number;
  constructor(timeout: number) {
    super(
      `The handler was still running when server.close() gave up waiting after ${timeout} ms; its connection was dropped`,
    );
    this.timeout = timeout;
  }
}

// ------------------------------------------------------------------ reconnecting client

/**
 * A reconnecting client (`reconnecting` in `sluice/websocket`) gave up: `maxAttempts`
 * attempts in a row failed to connect, or connected but closed again before `minUptime`,
 * while `shouldReconnect` still asked for another one. Its `done` rejects with this error.
 *
 * Why a class of its own: it is the one outcome of a reconnecting client that is neither
 * a decision (the policy declined, the client was stopped) nor a bug (the handler threw):
 * the server stayed unreachable or unstable for as long as it was allowed to.
 */
export class ReconnectAttemptsError extends Error {
  /** Always `'ReconnectAttemptsError'`. */
  override readonly name = 'ReconnectAttemptsError' as const;
  /** Always `'ERR_WEBSOCKET_RECONNECT_ATTEMPTS'`. */
  readonly code = 'ERR_WEBSOCKET_RECONNECT_ATTEMPTS' as const;
  /** How many attempts in a row failed (the `maxAttempts` that was reached). */
  readonly attempts: number;
  /** How the last attempt ended (1006 for one that never connected). */
  readonly lastClose: CloseReason;
  /**
   * @param attempts - the number of failed attempts in a row.
   * @param lastClose - how the last one ended.
   * @param options - `cause`: the last attempt's error (a `ConnectError`, the handler's
   *   error) or, when it had none, a `WebSocketCloseError` for `lastClose`.
   */
  constructor(attempts: number, lastClose: CloseReason, options?: { cause?: unknown }) {
    super(
      `Gave up reconnecting after ${attempts} failed attempt${attempts === 1 ? '' : 's'} in a row (last close: ${lastClose.code})`,
      options,
    );
    this.attempts = attempts;
    this.lastClose = lastClose;
  }
}

// ------------------------------------------------------------------ network channels

/**
 * The connection under a network channel (`channels(session)` in `sluice/websocket`)
 * ended, for any reason: closed by either side, lost, or failed by a protocol violation.
 * Every channel of that connection that was still open ends with it: waiting and later
 * `send`s reject with it (their values go to `onUndelivered`), and `receive` rejects with
 * it — values that had arrived but were not taken are dropped (the sender reports them
 * as undelivered), except those of a buffered channel that its sender had closed, which
 * stay receivable as in a local closed channel (docs/protocol.md, "Accounting").
 *
 * Why a class of its own: unlike a close or cancel decided by the peer's application, it
 * says nothing about what the peer wanted — only that the connection is gone — and it
 * carries how it ended ({@link ConnectionLostError.closeReason}) so that the caller can
 * decide to reconnect. A protocol violation or a value that failed its schema is its
 * `cause` (a {@link ProtocolError} or a {@link DecodeError}).
 */
export class ConnectionLostError extends Error {
  /** Always `'ConnectionLostError'`. */
  override readonly name = 'ConnectionLostError' as const;
  /** Always `'ERR_SLUICE_CONNECTION_LOST'`. */
  readonly code = 'ERR_SLUICE_CONNECTION_LOST' as const;
  /** How the connection ended, as this side saw it. */
  readonly closeReason: CloseReason;
  constructor(closeReason: CloseReason, options?: { cause?: unknown }) {
    super(
      `The connection was lost (${closeReason.code}${closeReason.reason === '' ? '' : ` ${closeReason.reason}`}${closeReason.wasClean ? '' : ', not cleanly'})`,
      options,
    );
    this.closeReason = closeReason;
  }
}

/**
 * A resumable channel session (docs/protocol.md, "Resume") can no longer resume: its
 * resume window passed on either end, the server no longer had it (restarted, shut down,
 * or evicted it from its bounded store of suspended sessions), or the server refused the
 * resume (close code 3410: an unknown, expired or foreign token). Every channel of the
 * session ends with it, with the accounting of a lost connection: each value was received
 * by the peer's application once, or is reported to its sender's `onUndelivered` once.
 * A reconnecting channel endpoint then starts a fresh session (its handler runs again).
 *
 * Why a class of its own and not a {@link ConnectionLostError}: a lost connection is
 * resumed without the application seeing it; this error is what the application sees
 * when that was not possible, and it means "start over", not "retry the same exchange".
 */
export class SessionExpiredError extends Error {
  /** Always `'SessionExpiredError'`. */
  override readonly name = 'SessionExpiredError' as const;
  /** Always `'ERR_SESSION_EXPIRED'`. */
  readonly code = 'ERR_SESSION_EXPIRED' as const;
  /** How the last connection of the session ended, as this side saw it. */
  readonly closeReason: CloseReason;
  constructor(message: string, closeReason: CloseReason, options?: { cause?: unknown }) {
    super(message, options);
    this.closeReason = closeReason;
  }
}

/**
 * The peer broke the network channel protocol (docs/protocol.md): a first frame that is
 * not a hello, an unsupported version, a malformed or unknown frame, a value beyond the
 * credit it was given. The connection is closed with 1002 (4002 where the runtime refuses
 * protocol close codes, as browsers do) and every channel of it ends with a
 * {@link ConnectionLostError} whose `cause` is this error.
 *
 * Why a class of its own: it points at a bug or an incompatible peer, not at the network,
 * so retrying the same exchange will fail the same way.
 */
export class ProtocolError extends Error {
  /** Always `'ProtocolError'`. */
  override readonly name = 'ProtocolError' as const;
  /** Always `'ERR_SLUICE_PROTOCOL'`. */
  readonly code = 'ERR_SLUICE_PROTOCOL' as const;
}

/**
 * The two ends of a connection declared different network channel contracts
 * (`contract()`): a channel name only one side has, a direction that differs (both send,
 * or both receive), or a different contract name or version. Detected at connect, from
 * the `contract` frame each end sends after the hello (docs/protocol.md section 8); the
 * connection is closed with 1008 (4008 where the runtime refuses protocol codes) and
 * every channel ends with a {@link ConnectionLostError} whose `cause` is this error.
 * `Endpoint.connect` and `reconnecting` reject with it before running the handler; on the
 * server the handler does not run and the error goes to `onError`.
 *
 * Why a class of its own: client and server were built from different code — retrying
 * cannot help, and a send on a channel the peer does not have would otherwise wait
 * forever.
 */
export class ContractMismatchError extends Error {
  /** Always `'ContractMismatchError'`. */
  override readonly name = 'ContractMismatchError' as const;
  /** Always `'ERR_SLUICE_CONTRACT_MISMATCH'`. */
  readonly code = 'ERR_SLUICE_CONTRACT_MISMATCH' as const;
  /** The channel that differs, or `undefined` when the contracts' names or versions do. */
  readonly channel: string | undefined;
  constructor(message: string, channel?: string) {
    super(message);
    this.channel = channel;
  }
}

/**
 * An error re-created from a close cause or cancel reason that the peer sent, when its
 * class is not one that can be re-created as itself (`Error`, the built-in `TypeError`,
 * `RangeError`…, `DOMException`, and sluice's `ClosedSendError`, `ClosedReceiveError`,
 * `TimeoutError` are). It carries the remote error's `name`, `message` and `code` (when it
 * had a string or number `code`), and `stack` is the remote stack when the peer opted in
 * (`sendStacks`), else just the first line.
 *
 * Why a class of its own: a custom error class of the peer does not exist here, yet its
 * `name` and `code` must survive for `err.name === 'QuotaError'` style checks;
 * `instanceof RemoteError` says the error came from the other side.
 */
export class RemoteError extends Error {
  /** The remote error's `name` (e.g. `'QuotaError'`). */
  override readonly name: string;
  /** The remote error's `code`, when it had a string or number one. */
  readonly code: string | number | undefined;
  constructor(name: string, message: string, code?: string | number) {
    super(message);
    this.name = name;
    this.code = code;
  }
}

// ------------------------------------------------------------------ topics

/** Stable codes of the topics' errors. */
export type TopicErrorCode = 'ERR_TOPIC_DISCONTINUITY' | 'ERR_TOPIC_SUBSCRIBER_OVERFLOW';

/**
 * A subscription asked for everything after a `since` position that the topic can no
 * longer give: values after it are no longer retained (`count` of them), or it belongs
 * to another epoch (a history that is gone: `count` is `undefined`), or it lies beyond
 * the topic's current position. The subscription ends with it before delivering
 * anything; with `onDiscontinuity: 'oldest'` it continues from the oldest retained value
 * instead and reports the gap as its first event.
 *
 * Why a class of its own: the subscriber must learn that it cannot have a continuous
 * stream, and exactly what is missing, to decide how to recover (reload the full state,
 * show that messages were lost) — a retry would fail the same way.
 */
export class DiscontinuityError extends Error {
  /** Always `'DiscontinuityError'`. */
  override readonly name = 'DiscontinuityError' as const;
  /** Always `'ERR_TOPIC_DISCONTINUITY'`. */
  readonly code = 'ERR_TOPIC_DISCONTINUITY' as const;
  /** The position given as `since`. */
  readonly since: Position;
  /** The topic's position when the subscription looked: its last publication. */
  readonly position: Position;
  /** The offset of the oldest value retained, in `position.epoch` (`position.offset + 1` when none is). */
  readonly oldest: number;
  /**
   * How many values after `since` are gone; `undefined` when `since` is of another
   * epoch or ahead of the topic (the number cannot be known).
   */
  readonly count: number | undefined;
  constructor(since: Position, position: Position, oldest: number) {
    const sameEpoch = since.epoch === position.epoch;
    const count =
      sameEpoch && since.offset <= position.offset ? oldest - since.offset - 1 : undefined;
    const at = `${since.epoch}:${since.offset}`;
    super(
      !sameEpoch
        ? `Cannot resume after ${at}: epoch ${since.epoch} is gone, the topic is at ${position.epoch}:${position.offset}`
        : count === undefined
          ? `Cannot resume after ${at}: the topic is only at offset ${position.offset}`
          : `Cannot resume after ${at}: offsets ${since.offset + 1} to ${oldest - 1} are no longer retained (${count} value${count === 1 ? '' : 's'})`,
    );
    this.since = since;
    this.position = position;
    this.oldest = oldest;
    this.count = count;
  }
}

/**
 * A subscription with `overflow: 'close'` was full when another value was published:
 * it stops receiving, delivers what it holds, then ends with this error. `position` is
 * that of the last value it delivered: subscribing again `since` it misses nothing still
 * retained.
 *
 * Why a class of its own: it says "this subscriber was too slow", which calls for a
 * bigger buffer, a drop policy, or resuming `since` the position — not a failure of the
 * topic.
 */
export class SubscriberOverflowError extends Error {
  /** Always `'SubscriberOverflowError'`. */
  override readonly name = 'SubscriberOverflowError' as const;
  /** Always `'ERR_TOPIC_SUBSCRIBER_OVERFLOW'`. */
  readonly code = 'ERR_TOPIC_SUBSCRIBER_OVERFLOW' as const;
  /** The position of the last value delivered before this error: resume `since` it. */
  readonly position: Position;
  /** The subscription's capacity that was exceeded. */
  readonly capacity: number;
  constructor(position: Position, capacity: number) {
    super(
      `The subscriber was too slow: its buffer of ${capacity} was full at ${position.epoch}:${position.offset}`,
    );
    this.position = position;
    this.capacity = capacity;
  }
}
