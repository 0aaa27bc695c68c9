/**
 * `wrap(socket)`: any WHATWG-style WebSocket becomes a {@link Session} — `incoming` and
 * `outgoing` channels plus the connection's life (`closed`, `close`, `flush`,
 * `terminate`) — with the same observable behaviour on every platform.
 *
 * ## How it works
 * - **Outgoing.** `outgoing` is a thin {@link SendChannel} in front of a rendezvous
 *   channel of encoded frames. One writer loop takes frames from it and hands them to
 *   `socket.send`: while it is parked in `receive`, a `send` hands its frame over at once
 *   and the writer runs before the sender's continuation, so a resolved `send` means the
 *   socket has taken the frame (every 256th such direct write resolves its `send` after
 *   a macrotask, so that a tight `await send` loop lets timers and events run; see
 *   outgoing.ts). After each write the writer checks `bufferedAmount`; at
 *   the high-water mark it stops receiving and polls until the socket drains, so further
 *   sends wait (abortably) in the channel: memory stays bounded by one high-water mark.
 *   Closing closes the channel; the writer drains what `send` accepted, then sends Close.
 * - **Incoming.** Each message is decoded and offered to the bounded `incoming` channel
 *   with `trySend`. When it is full (or a decode is asynchronous) messages queue in a short
 *   backlog, fed in order by `send`, and — where the socket can — the socket is paused
 *   until the backlog is gone. The end of the connection travels through the same backlog,
 *   so every message received before a Close is delivered before `incoming` ends.
 * - **Bytes held.** Each message counts its frame's size while the backlog or the
 *   channel's buffer holds it. The session is the buffer's only sender and values leave
 *   it oldest first, so a deque of sizes trimmed to the buffer's count (a channel
 *   internal, O(1)) says what the buffer holds; a hook on each take wakes a pause that
 *   waits for bytes. Reading pauses at half of `incomingMaxBytes`; past all of it the
 *   connection fails (1009). The heartbeat's ping lets a paused socket read again, up to
 *   five eighths, for the pong (see `pinged`).
 * - **Read turns.** Where the socket can pause (`ws`), every received message is charged
 *   to one budget of bytes per macrotask shared by all sessions of the process
 *   (read-turns.ts). Past it the session pauses its socket until its turn comes, and a
 *   message that arrived past it is decoded on a later turn (a server's text message
 *   stays UTF-8 bytes until then): many connections delivering big messages in the same
 *   turn of the event loop take turns instead of holding it. Resuming after a pause (and
 *   a heartbeat's peek) also waits for a turn, after at least one macrotask.
 * - **The writer never spins.** Each pass of the writer loop first checks that the socket
 *   is open (else it refuses the waiting sends and ends), then writes, then waits for a
 *   send, the close or the drain poll's timer: no state can send it round without one
 *   of those.
 * - **Closing once.** Every way the connection ends (close event, `terminate`, idle
 *   timeout) goes through one `#finish`: listeners are removed, timers cleared, unsent
 *   frames handed to `onUndelivered`, `closed` resolved. Nothing is left behind.
 *
 * @module
 */
import { Channel, channelInternals } from '../channel.js';
import type { ReceiveChannel, ReceiveResult, SendChannel } from '../channel-types.js';
import {
  ClosedSendError,
  DecodeError,
  IncomingOverflowError,
  TimeoutError,
  WebSocketCloseError,
} from '../errors.js';
import type { CloseReason } from '../errors.js';
import { Deque } from '../internal/deque.js';
import { startTimer } from '../internal/timer.js';
import { CATCHING, Waiter } from '../internal/waiter.js';
import { json } from './codec.js';
import type { Codec, Frame } from './codec.js';
import { Outgoing, poll } from './outgoing.js';
import { charge, decodeOnTurn, hasBudget, waitForTurn } from './read-turns.js';
import type { Reader } from './read-turns.js';
import type { Entry, OutgoingShared, Writer } from './outgoing.js';
import { CLOSING, CONNECTING, OPEN } from './socket.js';
import type { CloseEventLike, ErrorEventLike, MessageEventLike, WebSocketLike } from './socket.js';
import {
  checkChoice,
  checkCloseArguments,
  checkFunction,
  checkNumber,
  checkProtocolCloseArguments,
  describeValue,
} from './validate.js';

/**
 * What happens when a message arrives and `incoming` is full (by count,
 * `incomingCapacity`, or by bytes, `incomingMaxBytes`).
 * - `'pause'`: push back on the peer: stop reading from the socket until there is room
 *   (Node `ws`: `socket.pause()`, so TCP flow control slows the peer and nothing is
 *   lost). Where the socket cannot pause (browsers, Node's own `WebSocket`) this falls
 *   back to `'close'`. Unlike a Kotlin channel's `SUSPEND`, the wait is the peer's: a
 *   socket cannot suspend one message, only stop reading. `ws` still delivers what it
 *   had read when it paused; that is held within `incomingMaxBytes`.
 * - `'close'`: fail the connection: close it with 1008 (policy violation) and end
 *   `incoming` with an `IncomingOverflowError` after the messages it holds.
 * - `'drop-oldest'` / `'drop-latest'`: drop a message (the oldest buffered, or the one
 *   arriving) and carry on, as the channel overflow policies of the same names.
 */
export type IncomingOverflow = 'pause' | 'close' | 'drop-oldest' | 'drop-latest';

/** Options of {@link wrap} (and of `connect`). */
export interface SessionOptions<In, Out> {
  /**
   * How messages map to frames; see `json`, `text`, `binary`, `raw`.
   * @default json()
   */
  readonly codec?: Codec<In, Out> | undefined;
  /**
   * How many received messages `incoming` buffers before `incomingOverflow` applies.
   * @default 1024
   */
  readonly incomingCapacity?: number | undefined;
  /**
   * The most bytes of received messages the session holds for `incoming` (its buffer and
   * the queue behind it), counted as the frames arrived after decompression (binary: its
   * bytes; text: its length in UTF-16 code units, at most its UTF-8 size), on top of the
   * count bound `incomingCapacity`. It bounds what one peer can make this end hold,
   * whatever the message sizes and compression ratios.
   *
   * - With `'pause'`, reading pauses once the bytes held reach half of it; the other half
   *   takes the frames the socket delivers after it paused (`ws` parses the rest of the
   *   chunk it read: up to 64 KiB on the wire, more once inflated) and those it reads
   *   while the server's heartbeat waits for a pong (see `ServeOptions.pongTimeout`).
   *   Reading resumes once the queue is delivered and the bytes held are under half, at
   *   the session's next read turn (after at least one macrotask: sessions resumed
   *   together read in turns, not all in one turn of the event loop).
   * - A message that would take the bytes held past the bound — a peer flooding past
   *   the pause, a burst of deflate bombs, or any overflow with `'close'` — fails the
   *   connection with 1009 and ends `incoming` with an `IncomingOverflowError` (its
   *   `maxBytes` set) after the messages it holds; `'drop-oldest'` drops buffered
   *   messages to make room instead, `'drop-latest'` drops the arriving one.
   * - A single message bigger than the bound passes when nothing else is held.
   *
   * Worst case per connection, for what the peer sends: at most
   * `max(incomingMaxBytes, maxMessageSize)` bytes of frames held, plus the message `ws`
   * is assembling (up to `maxMessageSize`). Decoded values may cost more than their
   * frames (a JSON array of small numbers about 4–8 times); with `serve`'s defaults
   * (4 MiB, 1 MiB) that is 5 MiB of frames, 1 MiB of it a partial message. Keep
   * `maxMessageSize` at most a quarter of this bound so that a peer that respects flow
   * control never meets it.
   * @default 4194304 (4 MiB)
   */
  readonly incomingMaxBytes?: number | undefined;
  /**
   * What a full `incoming` does with one more message.
   * @default 'pause'
   */
  readonly incomingOverflow?: IncomingOverflow | undefined;
  /**
   * `outgoing.send` waits while the socket's `bufferedAmount` is at least this many bytes,
   * so a peer that stops reading cannot make memory grow without bound.
   * @default 1048576 (1 MiB)
   */
  readonly highWaterMark?: number | undefined;
  /**
   * Milliseconds without any inbound frame (message; with `ws` also ping and pong) after
   * which the connection is failed locally: `closed` resolves `{ code: 1006, wasClean:
   * false }` with the reason recorded, and `incoming` ends with a `WebSocketCloseError`
   * whose `cause` is a `TimeoutError`. Works in browsers, where pings are invisible, as
   * long as the peer sends something (an application heartbeat). Time spent paused by a
   * full `incoming` does not count.
   * @default undefined (no idle timeout)
   */
  readonly idleTimeout?: number | undefined;
  /**
   * What a frame that fails to decode (or validate) does: `'close'` ends `incoming` with
   * the `DecodeError` and closes with its `closeCode` (1007, or 1003 for the wrong frame
   * type); `'skip'` drops the frame and carries on.
   * @default 'close'
   */
  readonly onDecodeError?: 'close' | 'skip' | undefined;
  /**
   * Called exactly once, synchronously, for every value given to `outgoing.send` that was
   * never handed to the socket: its `send` rejected (closed, aborted, `EncodeError`), or
   * it was still waiting when the connection ended or was terminated.
   * @default undefined
   */
  readonly onUndelivered?: ((value: Out) => void) | undefined;
}

/**
 * A WebSocket connection as two channels and a life.
 *
 * The same type, with the same semantics, comes from `wrap` (any WebSocket), `connect`,
 * and the server side.
 *
 * @typeParam In - the type of received messages.
 * @typeParam Out - the type of sent messages.
 */
export interface Session<In, Out = In> {
  /**
   * Received messages, in order. Ends after every message that arrived before the
   * connection closed: normally when the close code was 1000, 1001 or 1005 or the close
   * was ours; otherwise it throws a `WebSocketCloseError` (code, reason, `wasClean`), a
   * `DecodeError` for a bad frame, or an `IncomingOverflowError` (over `incomingCapacity`
   * where the socket cannot pause, or over `incomingMaxBytes`). It holds at most
   * `incomingCapacity` messages and `incomingMaxBytes` bytes. Leaving a `for await`
   * loop early does not close the connection. Cancelling it drops later messages but
   * keeps the connection open.
   */
  readonly incoming: ReceiveChannel<In>;
  /**
   * Messages to send. `send` resolves once the socket has taken the message and waits
   * while `bufferedAmount` is at the high-water mark; it rejects with an `EncodeError`
   * for a value the codec cannot encode (the connection stays usable). While the socket
   * keeps taking messages at once, `send` hands each to it synchronously and resolves
   * without waiting for the event loop, except that every 256th send written this way
   * resolves only after a macrotask (`setImmediate`, else a `MessageChannel` message),
   * so a tight `await send` loop never starves timers, heartbeats or incoming messages;
   * that message is written before the wait, so the `send` resolves even if the signal
   * aborts or the connection closes meanwhile. `close()` closes
   * the connection with 1000 after sending everything already accepted (with a `cause`:
   * 4000, `'Application error'`). `trySend` succeeds only when the socket can take the
   * message now; `trySend` and `onSend` throw an `EncodeError` for a value that cannot be
   * encoded.
   *
   * Once the connection is closing or closed, `send` rejects as a closed channel's does
   * (and its value goes to `onUndelivered`), with:
   * - a `ClosedSendError`, a new one for each `send`, after `session.close()`,
   *   `outgoing.close()` without a cause, `terminate()`, or when the peer closed or the
   *   connection was lost; sends still waiting when the connection ends, or as soon as
   *   the socket stops being open (the peer's Close, a TCP FIN, a protocol error; also
   *   while its buffer is still over the high-water mark), are rejected together with
   *   one `ClosedSendError`, and the writer stops;
   * - the cause itself (the same object, rethrown, as for any channel) after
   *   `outgoing.close(cause)`;
   * - `signal.reason` after `withWebSocket`'s signal aborted (the channels are cancelled
   *   with it).
   */
  readonly outgoing: SendChannel<Out>;
  /**
   * Resolves when the connection has closed, with the code, reason and `wasClean` as this
   * side saw them (for a clean close both sides see the same). Never rejects, so it is
   * safe to leave unawaited. A lost connection is `{ code: 1006, wasClean: false }` on
   * every platform, also where the socket reports another code for it (Deno's `WebSocket`
   * says 0): a close event with a code outside 1000–4999 counts as lost.
   */
  readonly closed: Promise<CloseReason>;
  /** The subprotocol the server selected, or `''`. */
  readonly protocol: string;
  /**
   * Closes the connection: later sends reject with `ClosedSendError`, every message `send`
   * already accepted (and sends already waiting) is transmitted, in order, then a Close
   * frame with `code` and `reason`. Messages that arrive meanwhile are still delivered
   * (without flow control from now on, so that the peer's Close gets through even if
   * nobody reads `incoming`). A
   * second call (or a call after the connection ended) does nothing.
   *
   * @param code - 1000 or 3000–4999, as browsers allow, on every platform.
   *   @defaultValue 1000
   * @param reason - at most 123 bytes of UTF-8. @defaultValue `''`
   * @returns `closed`.
   * @throws TypeError if `code` is not a number or `reason` not a string.
   * @throws RangeError if `code` or `reason` breaks those rules.
   */
  close(code?: number, reason?: string): Promise<CloseReason>;
  /**
   * Resolves when everything `send` has accepted so far has left the process
   * (`bufferedAmount` is 0). Rejects with a `WebSocketCloseError` if the connection ends
   * uncleanly first; resolves if it closed cleanly (a clean close sends all data first).
   */
  flush(): Promise<void>;
  /**
   * Drops the connection at once, without a closing handshake: `closed` resolves
   * `{ code: 1006, reason: '', wasClean: false }`, `incoming` ends normally after the
   * messages it holds, and sends still waiting reject with `ClosedSendError` (their values
   * go to `onUndelivered`). With `ws` the TCP connection is destroyed, so the peer sees
   * 1006; browsers and Node's own `WebSocket` cannot drop a connection, so there the
   * socket is closed without a code in the background (the peer sees 1005) and ignored.
   */
  terminate(): void;
  /** `close()`, then waits for `closed`: for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_CAPACITY = 1024;
const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
/** Close code for `outgoing.close(cause)` and a failing `withWebSocket` handler. */
export const APPLICATION_ERROR = 4000;

/** A decode still in progress (asynchronous schema), waiting in the backlog. */
class PendingDecode {
  constructor(
    readonly promise: Promise<unknown>,
    readonly data: Frame | TextBytes,
  ) {}
}

/**
 * A text message from `ws`'s own `'message'` event, still as UTF-8 bytes: made a string
 * only when decoded (on its read turn, when it arrived past the turn's budget).
 */
class TextBytes {
  constructor(readonly bytes: Uint8Array) {}
  toString(): string {
    return UTF8.decode(this.bytes);
  }
}

/** `ws` validated the UTF-8 of text messages already. */
const UTF8 = new TextDecoder();

/** The end of `incoming`, queued behind the messages still in the backlog. */
class EndOfIncoming {
  constructor(readonly cause: unknown) {}
}

const RESOLVED: Promise<void> = Promise.resolve();
const CLOSED_BEFORE_SENT = 'The WebSocket closed before this message was sent';
const noop = (): void => undefined;

function toFrame(data: unknown): Frame | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    // A Node Buffer may be a view into a shared pool: copy into a plain Uint8Array.
    const bytes = new Uint8Array(data.byteLength);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return bytes;
  }
  return undefined;
}

/**
 * What a received frame counts for in `incomingMaxBytes`: its bytes, as `ws` hands them
 * over (after decompression); a text frame its length in UTF-16 code units (at most its
 * UTF-8 size; V8 stores it in one byte per unit when it is Latin-1, else two).
 */
function sizeOf(data: Frame): number {
  return typeof data === 'string' ? data.length : data.byteLength;
}

function isNormalClose(code: number): boolean {
  return code === 1000 || code === 1001 || code === 1005;
}

/**
 * Told when a session's connection ends: `sluice/server`'s session, which aborts the
 * handler's signal then. Internal.
 */
export interface FinishListener {
  /**
   * Called once, in a microtask queued when the connection ended (just before `closed`
   * settles), with the close as this side saw it.
   */
  sessionFinished(reason: CloseReason): void;
}

/** `ws`'s own `'close'` event: the code, and the reason as a `Buffer`. */
type NodeWsCloseListener = (code: number, reason: { toString(): string }) => void;

/**
 * A Node `ws` WebSocket as its own EventEmitter events see it. `ws`'s `addEventListener`
 * wraps each listener in a function that builds a WHATWG event; its close event's
 * `wasClean` is `_closeFrameReceived && _closeFrameSent`, two fields of the socket, read
 * when the event fires. A session listens to those events directly (see {@link wasClean}).
 */
interface NodeWs {
  readonly _closeFrameReceived: boolean;
  readonly _closeFrameSent: boolean;
  on(event: 'close', listener: NodeWsCloseListener): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  off(event: 'close', listener: NodeWsCloseListener): unknown;
}

/**
 * `socket` as a Node `ws` socket, or `undefined` for any other (browsers, Node's own
 * `WebSocket`, test doubles): those keep `addEventListener`. Told apart
 * by the two fields `ws`'s close event derives `wasClean` from, so that a `ws` without
 * them falls back to `addEventListener` rather than guess.
 */
function asNodeWs(socket: WebSocketLike): NodeWs | undefined {
  const candidate = socket as unknown as Partial<NodeWs>;
  return typeof candidate._closeFrameReceived === 'boolean' &&
    typeof candidate._closeFrameSent === 'boolean' &&
    typeof candidate.on === 'function' &&
    typeof candidate.off === 'function'
    ? (candidate as NodeWs)
    : undefined;
}

/**
 * `wasClean` of a `ws` socket's close event, as `ws`'s `CloseEvent` computes it: both
 * Close frames were exchanged (ours written, the peer's received).
 */
function wasClean(socket: NodeWs): boolean {
  return socket._closeFrameReceived && socket._closeFrameSent;
}

/**
 * The key of a socket's sink: a `ws` socket made by `sluice/server` (see `ServerSocket` in
 * serve.ts) hands its `'message'`, `'close'` and `'error'` events to the session it holds
 * there, through {@link socketSink}, instead of calling listeners. A session made with
 * `rawMessages` on such a socket (its key present and `null`) stores itself there and
 * adds no listener: no closure per event, and no entry in the socket's table of events.
 * Internal.
 */
export const SINK: unique symbol = Symbol('sluice.sink');

/** A socket with a {@link SINK}. */
export interface SinkSocket {
  [SINK]: Untyped | null;
}

/** How a sink socket hands an event to its session (bound in the session's static block). */
export interface SocketSinkCalls {
  /** `ws`'s `'message'`: the data and whether it came as a binary message. */
  message(session: Untyped, data: unknown, isBinary: boolean): void;
  /** `ws`'s `'close'`: the code and the reason's bytes. */
  close(session: Untyped, code: number, reason: { toString(): string }): void;
  /** `ws`'s `'error'`. */
  error(session: Untyped, error: unknown): void;
}

export let socketSink: SocketSinkCalls;

function asSinkSocket(socket: WebSocketLike): SinkSocket | undefined {
  return Reflect.get(socket, SINK) === null ? (socket as unknown as SinkSocket) : undefined;
}

/** The listeners of a session on a socket without a sink: made once, sharing one context. */
interface Listeners {
  /**
   * The message listener: `ws`'s own `(data, isBinary)` where reading can pause (see
   * `TextBytes`), else the WHATWG event's.
   */
  readonly message: (dataOrEvent: unknown, isBinary?: boolean) => void;
  /**
   * The close and error listeners: on a Node `ws` socket, listeners of its own
   * EventEmitter events (see {@link asNodeWs}); else WHATWG event listeners.
   */
  readonly close: CloseListener;
  readonly error: ErrorListener;
}

/** A session's close listener, for either kind of socket. */
type CloseListener = ((event: CloseEventLike) => void) & NodeWsCloseListener;
/** A session's error listener, for either kind of socket. */
type ErrorListener = ((event: ErrorEventLike) => void) & ((error: unknown) => void);

/** A session of any message types, where they do not matter. */
type Untyped = SocketSession<unknown, unknown>;

// The writer's steps, bound to the session's private members in its static block: one
// function each for every session, instead of closures per session.
let startWriter: (session: SocketSession<unknown, unknown>) => void;
let resumeWriter: (session: SocketSession<unknown, unknown>) => void;
let writerHanded: (session: SocketSession<unknown, unknown>, result: unknown) => void;
let writerFailed: (session: SocketSession<unknown, unknown>, error: unknown) => void;
let WRITER: Writer<SocketSession<unknown, unknown>>;

/**
 * The writer's waiter on `frames` while it is parked: the channel completes it like any
 * receiver (`resolve` is called as a method), and it tells its session.
 */
class ParkedWriter<Out> extends Waiter<Entry<Out>> {
  readonly session: Untyped;

  constructor(session: Untyped) {
    super(CATCHING, undefined);
    this.session = session;
    this.resolve = handParkedWriter;
  }

  override reject(error: unknown): void {
    // A parked writer has no signal and is never rejected; were it, fail like the writer.
    writerFailed(this.session, error);
  }
}

function handParkedWriter(this: ParkedWriter<unknown>, result: unknown): void {
  writerHanded(this.session, result);
}

/** See `Rare.granted`: bound to the session's private member in its static block. */
let readTurnGranted: (session: Untyped) => void;

/**
 * The half of a session's state that an open connection which only waits never touches:
 * flow control (the backlog, the bytes held, pausing, peeking for a pong, read-turn
 * throttling), the idle timeout, drain polls, and the close bookkeeping. A session makes
 * it at the first use of any of it (see `SocketSession.#r`) and keeps it; it is also
 * the session's place in the read turns (a {@link Reader}).
 */
class Rare implements Reader {
  readonly session: Untyped;
  /** `closed`, made on first use. */
  closed: Promise<CloseReason> | undefined = undefined;
  resolveClosed: (reason: CloseReason) => void = noop;
  closeReason: CloseReason | undefined = undefined;
  /** Set once a close was asked for (by us): the writer closes after draining. */
  closeRequest: { code: number; reason: string } | null = null;
  /** The close was started on this side: `incoming` ends normally whatever the code. */
  closedHere = false;
  /** After a decode failure or overflow: later frames are ignored. */
  discarding = false;
  /** The writer loop has ended: a close request goes straight to the socket. */
  writerDone = false;
  backlog: unknown[] | null = null;
  /** The size (see `sizeOf`) of each backlog item, at the same index. */
  backlogSizes: number[] | null = null;
  /** Bytes of the messages in the backlog. */
  backlogBytes = 0;
  /**
   * The sizes of the messages in `incoming`'s buffer, oldest first. The session is its
   * only sender and values leave a buffer oldest first, so the buffer holds the last
   * `buffered` of them: the rest were taken (see `#held`).
   */
  bufferSizes: Deque<number> | null = null;
  bufferBytes = 0;
  /** Sluice paused the socket (back-pressure); it may be reading for a pong (`peeking`). */
  paused = false;
  /** Paused, but reading again until the heartbeat's pong arrives (see `pinged`). */
  peeking = false;
  /**
   * The socket is paused until this session's next read turn (read-turns.ts): the bytes
   * decoded in one macrotask across sessions ran out, or a pause has ended.
   */
  throttled = false;
  /** The read turn awaited is for a heartbeat peek (see `pinged`). */
  peekQueued = false;
  /** See {@link Reader.lastSize}. */
  lastSize = 0;
  /**
   * `performance.now()` when the socket last stopped being paused without reading;
   * `Infinity` while it is; `-Infinity` if it never was. See `unreadUntil`.
   */
  unreadUntil = -Infinity;
  lastError: unknown = undefined;
  lastFrame = 0;
  /** Clears the idle timer while one is armed. */
  idleTimer: (() => void) | undefined = undefined;
  /** The stop functions of the drain polls running (`flush`, the writer), if any. */
  pollers: Set<() => void> | null = null;
  onOpen: (() => void) | null = null;
  onControlFrame: (() => void) | null = null;
  onPeekPong: (() => void) | null = null;
  /** Whether `#maybeResume` is hooked to takes from `incoming` (from the first pause on). */
  takenHooked = false;

  constructor(session: Untyped) {
    this.session = session;
  }

  /** This session's read turn (read-turns.ts). */
  granted(): void {
    readTurnGranted(this.session);
  }
}

/**
 * A session's options with their defaults applied: made once per options object that
 * cannot change (a route's, which `sluice/server` freezes) and shared by its sessions,
 * so that a connection carries one pointer to them instead of a copy of each.
 */
class Settings<In, Out> implements OutgoingShared<Out> {
  readonly codec: Codec<In, Out>;
  readonly onUndelivered: ((value: Out) => void) | undefined;
  readonly writer: Writer<unknown>;
  readonly capacity: number;
  readonly overflow: IncomingOverflow;
  readonly highWaterMark: number;
  readonly idleTimeout: number | undefined;
  readonly skipDecodeErrors: boolean;
  readonly maxBytes: number;

  constructor(options: SessionOptions<In, Out>) {
    this.codec = options.codec ?? json<In, Out>();
    this.onUndelivered = options.onUndelivered;
    this.writer = WRITER;
    this.capacity = options.incomingCapacity ?? DEFAULT_CAPACITY;
    this.overflow = options.incomingOverflow ?? 'pause';
    this.highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.maxBytes = options.incomingMaxBytes ?? DEFAULT_MAX_BYTES;
    this.idleTimeout = options.idleTimeout;
    this.skipDecodeErrors = options.onDecodeError === 'skip';
  }
}

/** The settings of frozen options objects, made at their first session. */
const SETTINGS = new WeakMap<object, Settings<unknown, unknown>>();

/** The {@link Settings} of `options` (shared when `options` is frozen, else its own). */
function settingsOf<In, Out>(options: SessionOptions<In, Out>): Settings<In, Out> {
  if (!Object.isFrozen(options)) return new Settings(options);
  let settings = SETTINGS.get(options) as Settings<In, Out> | undefined;
  if (settings === undefined) {
    settings = new Settings(options);
    SETTINGS.set(options, settings as unknown as Settings<unknown, unknown>);
  }
  return settings;
}

/**
 * The session behind {@link wrap}. Exported for `sluice/server`, which also needs
 * {@link SocketSession.closeWith} (protocol close codes such as 1001 and 1011).
 *
 * ## What an idle connection holds
 * The fields below are what every open connection uses: the socket, the channels, the
 * options, the writer's parking place and the listeners. Everything else — flow control,
 * the idle timeout, drain polls, the close — lives in a {@link Rare} made at its first
 * use: a connection that receives a message while its handler waits on `incoming`, and
 * sends with the socket keeping up, never makes it.
 */
export class SocketSession<In, Out> implements Session<In, Out> {
  readonly #socket: WebSocketLike;
  /** The options as this session uses them (shared by the sessions of one route). */
  readonly #settings: Settings<In, Out>;
  readonly #incoming: Channel<In>;
  readonly #outgoing: Outgoing<Out>;
  /** Told when the connection ends (the server session); see {@link FinishListener}. */
  readonly #listener: FinishListener | undefined;
  /** The rarely used half of the state, once used (see {@link Rare}). */
  #rare: Rare | null = null;
  #finished = false;
  /** The writer's waiter on `frames`, made at its first park and reused. */
  #parkedWriter: ParkedWriter<Out> | null = null;
  /** What the parked writer was handed, until its next pass takes it. */
  #handed: ReceiveResult<Entry<Out>> | undefined;
  /**
   * The writer is parked on `frames` with nothing in hand and the socket is under the
   * high-water mark: `send` may write directly (see outgoing.ts). Cleared synchronously
   * by whatever completes the writer's waiter (see `#park`).
   */
  #parked = false;
  /**
   * The writer waits for work with no `frames` made yet (it parks on `frames` once made:
   * see `#framesMade`).
   */
  #idle = false;
  /** Whether messages come through `ws`'s own message event (a server's `ws` socket). */
  readonly #raw: boolean;
  /** The session's listeners; `null` on a socket with a sink (see {@link SINK}). */
  readonly #listeners: Listeners | null;

  /**
   * `rawMessages` (internal, for `sluice/server`, whose sockets are `ws`'s): listen to
   * `ws`'s own `'message'` event, `(data, isBinary)`, where the socket has `on` and `pause`.
   */
  constructor(
    socket: WebSocketLike,
    options: SessionOptions<In, Out> = {},
    rawMessages = false,
    listener?: FinishListener,
  ) {
    checkSocket(socket);
    checkOptions(options);
    this.#socket = socket;
    const settings = (this.#settings = settingsOf<In, Out>(options));
    const overflow = settings.overflow;
    this.#incoming = new Channel<In>(
      settings.capacity,
      overflow === 'drop-oldest' || overflow === 'drop-latest' ? { overflow } : undefined,
    );
    this.#outgoing = new Outgoing<Out>(settings, this);
    this.#listener = listener;

    socket.binaryType = 'arraybuffer';
    const raw = (this.#raw =
      rawMessages && typeof socket.on === 'function' && typeof socket.pause === 'function');
    const nodeWs = asNodeWs(socket);
    const sink = raw && nodeWs !== undefined ? asSinkSocket(socket) : undefined;
    if (sink !== undefined) {
      // The socket hands its events to this session (see SINK): no listeners at all.
      sink[SINK] = this as unknown as Untyped;
      this.#listeners = null;
    } else {
      // Made here rather than as field initializers, so that the closures share one context.
      const listeners: Listeners = {
        message: raw
          ? (data: unknown, isBinary?: boolean): void => {
              this.#rawMessage(data, isBinary === true);
            }
          : (event: unknown): void => {
              this.#receive((event as MessageEventLike).data);
            },
        // `ws`'s own events, as its `addEventListener` wrappers would report them, without
        // the two wrappers (a closure and its properties each) per connection.
        close:
          nodeWs !== undefined
            ? (((code: number, reason: { toString(): string }): void => {
                this.#wsClosed(code, reason);
              }) as CloseListener)
            : (((event: CloseEventLike): void => {
                this.#socketClosed(event);
              }) as CloseListener),
        error:
          nodeWs !== undefined
            ? (error: unknown): void => {
                this.#errored(error);
              }
            : (((event: ErrorEventLike): void => {
                this.#errored(event.error ?? event.message);
              }) as ErrorListener),
      };
      this.#listeners = listeners;
      if (raw) (socket.on as NonNullable<WebSocketLike['on']>)('message', listeners.message);
      else socket.addEventListener('message', listeners.message);
      if (nodeWs !== undefined) {
        nodeWs.on('close', listeners.close);
        nodeWs.on('error', listeners.error);
      } else {
        socket.addEventListener('close', listeners.close);
        socket.addEventListener('error', listeners.error);
      }
    }
    if (this.#settings.idleTimeout !== undefined && typeof socket.on === 'function') {
      const onControlFrame = (this.#r().onControlFrame = () => {
        this.#touch();
      });
      socket.on('ping', onControlFrame);
      socket.on('pong', onControlFrame);
    }
    const state = socket.readyState;
    if (state === CONNECTING) {
      const onOpen = (this.#r().onOpen = () => {
        this.#opened();
      });
      socket.addEventListener('open', onOpen);
    } else if (state === OPEN) {
      this.#opened();
    } else if (state === CLOSING) {
      // Closing already: nothing more can be sent; the close event will finish us.
      this.#r().closeRequest = { code: 1000, reason: '' };
      this.#outgoing.frames.close();
    } else {
      this.#finish({ code: 1006, reason: '', wasClean: false }, undefined);
    }
  }

  /** The rarely used half of the state, made now if it was not (see {@link Rare}). */
  #r(): Rare {
    return (this.#rare ??= new Rare(this as unknown as Untyped));
  }

  /** The close asked for on this side, if any. */
  #closeRequest(): { code: number; reason: string } | null {
    const rare = this.#rare;
    return rare === null ? null : rare.closeRequest;
  }

  /** The socket is open: the idle clock starts, and the writer after a microtask. */
  #opened(): void {
    this.#touch();
    this.#startIdleTimer();
    void Promise.resolve(this as unknown as Untyped).then(startWriter);
  }

  get incoming(): ReceiveChannel<In> {
    return this.#incoming;
  }

  get outgoing(): SendChannel<Out> {
    return this.#outgoing;
  }

  get closed(): Promise<CloseReason> {
    const rare = this.#r();
    if (rare.closed === undefined) {
      const reason = rare.closeReason;
      rare.closed =
        reason === undefined
          ? new Promise<CloseReason>((resolve) => {
              rare.resolveClosed = resolve;
            })
          : Promise.resolve(reason);
    }
    return rare.closed;
  }

  get protocol(): string {
    return this.#socket.protocol;
  }

  close(code = 1000, reason = ''): Promise<CloseReason> {
    checkCloseArguments(code, reason);
    this.#requestClose(code, reason);
    return this.closed;
  }

  /**
   * Like {@link SocketSession.close}, but also accepts the protocol codes a server may
   * send (1001 going away, 1011 internal error, …): 1000–1003, 1007–1014, 3000–4999.
   * Where the runtime refuses a protocol code (browsers), 4000 + (code − 1000) is sent.
   */
  closeWith(code: number, reason = ''): Promise<CloseReason> {
    checkProtocolCloseArguments(code, reason);
    this.#requestClose(code, reason);
    return this.closed;
  }

  flush(): Promise<void> {
    const settled = (): Promise<void> => {
      const reason = this.#r().closeReason as CloseReason;
      return reason.wasClean ? RESOLVED : Promise.reject(new WebSocketCloseError(reason));
    };
    if (this.#finished) return settled();
    return this.#poll(() => this.#socket.bufferedAmount === 0).then(() =>
      this.#finished ? settled() : undefined,
    );
  }

  terminate(): void {
    if (this.#finished) return;
    this.#r().closedHere = true;
    this.#finish({ code: 1006, reason: '', wasClean: false }, undefined);
    this.#drop();
  }

  /**
   * Cancels both channels with `reason` — pending and later `send`s and `receive`s reject
   * with it, unsent values go to `onUndelivered`, received messages are dropped — and
   * closes the connection with `code` (no flushing: there is nothing left to send). Used
   * by `withWebSocket` when its signal aborts.
   */
  cancel(reason: unknown, code = 1000, closeReason = ''): Promise<CloseReason> {
    checkProtocolCloseArguments(code, closeReason);
    this.#outgoing.frames.cancel(reason);
    this.#incoming.cancel(reason);
    this.#requestClose(code, closeReason);
    return this.closed;
  }

  /** Closes the session (`close()`) and waits for `closed`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#requestClose(1000, '');
    await this.closed;
  }

  // ------------------------------------------------------------------ outgoing

  #requestClose(code: number, reason: string): void {
    if (this.#finished || this.#closeRequest() !== null) return;
    const rare = this.#r();
    rare.closeRequest = { code, reason };
    rare.closedHere = true;
    this.#parked = false;
    this.#outgoing.frames.close();
    // The writer drains what was accepted, then sends Close (see #write).
    if (rare.writerDone) this.#closeSocket();
    // The peer's Close reply must get through even if nobody reads `incoming` any more:
    // from now on `incoming` is not flow-controlled (the handshake bounds this in time).
    if (rare.paused) this.#resumeReading();
  }

  /**
   * The writer: frames from `outgoing` to the socket, in order, with backpressure. It is
   * a loop with no frame of its own between passes: a pass runs (a microtask after the
   * open, after a value reached the parked writer, or after the drain poll), writes what
   * it can, and ends by parking on `frames`, polling for the drain, or finishing. `handed`
   * is what the parked writer was given, if this pass follows a park.
   */
  #writePass(handed: ReceiveResult<Entry<Out>> | undefined): void {
    try {
      if (handed !== undefined) {
        if (!handed.ok) {
          this.#writerEnded();
          return;
        }
        this.#send(handed.value);
      }
      this.#writeMore();
    } catch (error) {
      this.#writerFailed(error);
    }
  }

  /** Not expected (the writer guards every call); never leave it unhandled. */
  #writerFailed(error: unknown): void {
    this.#r().lastError = error;
    this.#finish({ code: 1006, reason: 'Writer failed', wasClean: false }, error);
    this.#drop();
  }

  #writeMore(): void {
    const frames = this.#outgoing.framesIfMade;
    const socket = this.#socket;
    // Every pass either writes a frame, ends the writer, or waits for something outside
    // it (a send, the close, a timer): the checks that end it come first, whatever the
    // buffer holds, so a state that wakes the poll below can never loop back to it.
    if (this.#finished) return;
    // The peer's Close, a FIN or a protocol error made the socket stop being open: it
    // would discard frames silently, whether or not its buffer is still full. Stop
    // taking them: waiting sends are rejected, their values go to `onUndelivered`.
    if (socket.readyState !== OPEN) {
      this.#refuseSends();
      this.#writerEnded();
      return;
    }
    // Write everything already waiting, synchronously (each send resolves as it goes).
    while (
      frames !== null &&
      (socket.bufferedAmount < this.#settings.highWaterMark || this.#closeRequest() !== null)
    ) {
      const result = frames.tryReceive();
      if (!result.ok) break;
      this.#send(result.value);
    }
    if (frames !== null && frames.isClosedForReceive) {
      this.#writerEnded();
      return;
    }
    if (socket.bufferedAmount >= this.#settings.highWaterMark && this.#closeRequest() === null) {
      this.#poll(
        () =>
          socket.bufferedAmount < this.#settings.highWaterMark ||
          this.#closeRequest() !== null ||
          socket.readyState !== OPEN,
      ).then(() => {
        this.#writePass(undefined);
      }, noop);
      return;
    }
    if (frames === null) {
      // Nothing was ever queued: idle without a channel until one is made (see outgoing.ts).
      this.#idle = true;
      this.#parked = true;
      return;
    }
    // The drain loop has just emptied `frames`; were it not empty, take what is there.
    if (!frames.isEmpty) {
      frames.receiveCatching().then((result) => {
        this.#writePass(result);
      }, noop);
      return;
    }
    this.#park(frames);
  }

  /**
   * `frames` was just made: a writer idling without it parks on it now, before whatever
   * made it hands it anything (the direct route stays as it was).
   */
  #framesMade(frames: Channel<Entry<Out>>): void {
    if (!this.#idle) return;
    this.#idle = false;
    const parked = this.#parked;
    this.#park(frames);
    this.#parked = parked;
  }

  #writerEnded(): void {
    this.#r().writerDone = true;
    this.#closeSocket();
  }

  /**
   * Parks the writer on `frames` until a value (or the close) reaches it, and opens the
   * direct route meanwhile. The writer waits as a `select` clause does, with its own
   * waiter (one per session, reused), whose completion closes the direct route
   * synchronously inside the channel operation that hands it a value — a queued `send`,
   * `trySend`, a select running an `onSend` clause — so no direct write can get between
   * that value and the writer. The next pass runs a microtask later, as an `await` of
   * the value would.
   */
  #park(frames: Channel<Entry<Out>>): void {
    const waiter = (this.#parkedWriter ??= new ParkedWriter<Out>(this as unknown as Untyped));
    channelInternals.enqueue(frames, waiter);
    this.#parked = true;
  }

  /** The parked writer got `result` (see `ParkedWriter`). */
  #writerHanded(result: ReceiveResult<Entry<Out>>): void {
    this.#parked = false;
    this.#handed = result;
    void Promise.resolve(this as unknown as Untyped).then(resumeWriter);
  }

  /** The next pass after a park. */
  #resumeWriter(): void {
    const handed = this.#handed;
    this.#handed = undefined;
    this.#writePass(handed);
  }

  static {
    startWriter = (session) => {
      session.#writePass(undefined);
    };
    resumeWriter = (session) => {
      session.#resumeWriter();
    };
    writerHanded = (session, result) => {
      session.#writerHanded(result as ReceiveResult<Entry<unknown>>);
    };
    writerFailed = (session, error) => {
      session.#writerFailed(error);
    };
    readTurnGranted = (session) => {
      session.#granted();
    };
    socketSink = {
      message: (session, data, isBinary) => {
        session.#rawMessage(data, isBinary);
      },
      close: (session, code, reason) => {
        session.#wsClosed(code, reason);
      },
      error: (session, error) => {
        session.#errored(error);
      },
    };
    WRITER = {
      tryWrite: (session, data) => session.#tryWrite(data),
      closed: (session, cause) => {
        if (cause === undefined) session.#requestClose(1000, '');
        else session.#requestClose(APPLICATION_ERROR, 'Application error');
      },
      made: (session, frames) => {
        session.#framesMade(frames);
      },
    };
  }

  /**
   * The socket is no longer open (the peer's Close arrived; the close event has not yet)
   * and would discard frames silently: stop taking them. Later sends reject with a fresh
   * `ClosedSendError` each (closed without a cause); sends waiting now are rejected by
   * the channel, each value handed to `onUndelivered` exactly once.
   */
  #refuseSends(): void {
    const frames = this.#outgoing.frames;
    frames.close();
    frames.cancel(new ClosedSendError(CLOSED_BEFORE_SENT));
  }

  /** Sends Close with the requested code, once the writer is done. */
  #closeSocket(): void {
    const socket = this.#socket;
    const request = this.#closeRequest();
    if (this.#finished || request === null || socket.readyState !== OPEN) return;
    const { code, reason } = request;
    try {
      socket.close(code, reason);
    } catch (error) {
      // Browsers refuse protocol codes (1003, 1007, 1008, 1011): send 4000 + (code − 1000).
      if (code >= 3000) throw error;
      socket.close(code + 3000, reason);
    }
  }

  /** The direct route of `outgoing.send`: writes now if the writer is idle. */
  #tryWrite(data: Frame): boolean {
    const socket = this.#socket;
    const state = socket.readyState;
    if (state !== OPEN) {
      // Closing: refuse now, so that this send is rejected (not taken by the writer, which
      // may be waiting although the direct route is shut at the high-water mark).
      // Connecting: the send waits for the writer.
      if (state !== CONNECTING) this.#refuseSends();
      return false;
    }
    if (!this.#parked) return false;
    socket.send(data);
    // At the high-water mark: later sends queue until the writer has seen the drain.
    if (socket.bufferedAmount >= this.#settings.highWaterMark) this.#parked = false;
    return true;
  }

  #send(entry: Entry<Out>): void {
    if (this.#socket.readyState !== OPEN) {
      // The socket stopped being open after the writer took this value (only a select's
      // `onSend` run against the parked writer can get here; sends and `trySend` are
      // refused first): the socket would discard the frame silently. Report it as
      // undelivered, and stop taking more.
      this.#refuseSends();
      this.#outgoing.undelivered(entry.value);
      return;
    }
    this.#socket.send(entry.data);
  }

  #poll(check: () => boolean): Promise<void> {
    const poller = poll(() => this.#finished || check());
    const pollers = (this.#r().pollers ??= new Set());
    pollers.add(poller.stop);
    return poller.promise.then(() => {
      pollers.delete(poller.stop);
    });
  }

  // ------------------------------------------------------------------ incoming

  #touch(): void {
    if (this.#settings.idleTimeout !== undefined) this.#r().lastFrame = Date.now();
  }

  #receive(raw: unknown): void {
    if (this.#finished || (this.#rare !== null && this.#rare.discarding)) return;
    this.#touch();
    if (raw instanceof TextBytes) {
      this.#receiveLater(raw);
      return;
    }
    const data = toFrame(raw);
    if (data === undefined) {
      this.#decodeFailed(
        new DecodeError(
          `Expected binary data as an ArrayBuffer (binaryType 'arraybuffer'), got ${describeValue(raw)}`,
          { data: new Uint8Array(0), closeCode: 1003 },
        ),
      );
      return;
    }
    const size = sizeOf(data);
    if (!this.#admit(size)) return;
    const pausable = typeof this.#socket.pause === 'function';
    if (pausable && !hasBudget()) {
      // Many sockets read in the same turn: decode later, in a turn of its own.
      const decoded = decodeOnTurn(() => this.#settings.codec.decode(data), size);
      decoded.catch(noop);
      this.#enqueue(new PendingDecode(decoded, data), size);
      this.#checkBytes();
      this.#throttle(size);
      return;
    }
    let value: unknown;
    try {
      value = this.#settings.codec.decode(data);
    } catch (error) {
      this.#decodeFailed(toDecodeError(error, data));
      return;
    }
    if (value instanceof Promise) {
      value.catch(noop);
      this.#enqueue(new PendingDecode(value, data), size);
    } else if (this.#rare !== null && this.#rare.backlog !== null) {
      this.#enqueue(value, size);
    } else if (!this.#offer(value as In, size) && !this.#incoming.isClosedForSend) {
      if (this.#canPause() || this.#closeRequest() !== null) this.#enqueue(value, size, true);
      else this.#overflowed(); // the message is dropped; those before it stay receivable
    }
    this.#checkBytes();
    if (pausable && !charge(size)) this.#throttle(size);
  }

  /** A text message past the turn's budget: decoded (made a string) on a later turn. */
  #receiveLater(text: TextBytes): void {
    const size = text.bytes.byteLength;
    if (!this.#admit(size)) return;
    const decoded = decodeOnTurn(() => this.#settings.codec.decode(text.toString()), size);
    decoded.catch(noop);
    this.#enqueue(new PendingDecode(decoded, text), size);
    this.#checkBytes();
    this.#throttle(size);
  }

  /** The turn's budget of bytes is spent: pause until a later turn (read-turns.ts). */
  #throttle(size: number): void {
    const rare = this.#r();
    rare.lastSize = size;
    // Paused for back-pressure already: its resume waits for a turn (`#resumeReading`).
    if (rare.throttled || this.#finished || (rare.paused && !rare.peeking)) return;
    rare.throttled = true;
    rare.unreadUntil = Infinity;
    this.#stopIdleTimer();
    (this.#socket.pause as () => void)();
    waitForTurn(rare);
  }

  /** This session's read turn: reading goes on unless it is paused for back-pressure. */
  #granted(): void {
    const rare = this.#r();
    rare.throttled = false;
    const peek = rare.peekQueued;
    rare.peekQueued = false;
    if (this.#finished || (rare.paused && !rare.peeking)) return;
    // A peek counts from the ping on (see `pinged`): a dead peer is still detected.
    if (!peek) rare.unreadUntil = performance.now();
    this.#touch();
    this.#startIdleTimer();
    this.#socket.resume?.();
  }

  /**
   * The bytes held for `incoming` now: its buffer and the backlog. Forgets the sizes of
   * the values receivers have taken from the buffer since the last call.
   */
  #held(): number {
    const rare = this.#rare;
    if (rare === null) return 0;
    this.#trimSizes(rare, channelInternals.buffered(this.#incoming));
    return rare.bufferBytes + rare.backlogBytes;
  }

  /** Keeps the sizes of the newest `count` buffered values. */
  #trimSizes(rare: Rare | null, count: number): void {
    const sizes = rare === null ? null : rare.bufferSizes;
    if (sizes === null) return;
    while (sizes.length > count) (rare as Rare).bufferBytes -= sizes.shift();
  }

  #pushSize(size: number): void {
    const rare = this.#r();
    (rare.bufferSizes ??= new Deque<number>()).push(size);
    rare.bufferBytes += size;
  }

  /**
   * Whether a message of `size` bytes may be held. Past `incomingMaxBytes` (unless nothing
   * is held: one message bigger than the bound still passes) the drop policies drop, the
   * others fail the connection with 1009.
   */
  #admit(size: number): boolean {
    const max = this.#settings.maxBytes;
    let held = this.#held();
    if (held === 0 || held + size <= max) return true;
    if (this.#settings.overflow === 'drop-oldest') {
      while (held > 0 && held + size > max && this.#incoming.tryReceive().ok) held = this.#held();
      return held === 0 || held + size <= max;
    }
    if (this.#settings.overflow !== 'drop-latest') this.#overflowed(max);
    return false;
  }

  /** `trySend` to `incoming`, keeping the sizes of what its buffer holds. */
  #offer(value: In, size: number): boolean {
    const incoming = this.#incoming;
    const before = channelInternals.buffered(incoming);
    this.#trimSizes(this.#rare, before);
    if (!incoming.trySend(value).ok) return false;
    const after = channelInternals.buffered(incoming);
    if (after > before) {
      this.#pushSize(size);
    } else if (this.#settings.overflow === 'drop-oldest' && before > 0) {
      // Full: the oldest value was dropped to make room for this one.
      this.#trimSizes(this.#rare, before - 1);
      this.#pushSize(size);
    }
    // Else a waiting receiver took it, or (drop-latest, full) it was dropped.
    return true;
  }

  /**
   * Reading pauses once the bytes held reach half of `incomingMaxBytes`: the other half
   * takes what the socket delivers after it paused, and what it reads for a pong.
   */
  #checkBytes(): void {
    if (this.#closeRequest() !== null || this.#finished) return;
    if (this.#settings.overflow !== 'pause' || typeof this.#socket.pause !== 'function') return;
    const held = this.#held();
    const rare = this.#rare;
    if (rare === null) return; // nothing held, nothing paused
    if (rare.peeking) {
      if (held >= this.#peekLimit()) this.#endPeek();
    } else if (!rare.paused && held >= this.#settings.maxBytes / 2) {
      this.#pause();
    }
  }

  /** While reading for a pong, the bytes held may grow to five eighths of the bound. */
  #peekLimit(): number {
    return (this.#settings.maxBytes / 8) * 5;
  }

  #pause(): void {
    const rare = this.#r();
    if (!rare.takenHooked) {
      // From now on a take from `incoming` may end the pause.
      rare.takenHooked = true;
      channelInternals.onTaken(this.#incoming, () => {
        if (rare.paused && rare.backlog === null) this.#maybeResume();
      });
    }
    rare.paused = true;
    rare.unreadUntil = Infinity;
    this.#stopIdleTimer();
    (this.#socket.pause as () => void)();
  }

  /**
   * Ends a pause (and a peek); reading goes on at this session's next read turn (at once
   * when peeking: the socket is reading already), so that many sessions resumed together
   * do not all decode in the same macrotask (read-turns.ts).
   */
  #resumeReading(): void {
    const rare = this.#r();
    const reading = rare.peeking && !rare.throttled;
    if (rare.peeking) this.#stopPeeking();
    rare.paused = false;
    if (this.#finished || reading || rare.throttled) return;
    rare.throttled = true;
    waitForTurn(rare);
  }

  /** Resumes once the backlog is delivered and the bytes held are under half the bound. */
  #maybeResume(): void {
    const rare = this.#rare;
    if (rare === null || !rare.paused || rare.backlog !== null) return;
    if (!this.#finished && this.#held() >= this.#settings.maxBytes / 2) return;
    this.#resumeReading();
  }

  /**
   * The server's heartbeat has just pinged. A socket sluice paused cannot read the pong:
   * from its next read turn on (the wait counts against the peer) it reads again until
   * the pong arrives, or until the bytes held reach five eighths
   * of `incomingMaxBytes` (then it pauses again, and the heartbeat does not count that
   * time against the peer). Internal, for `sluice/server`.
   */
  pinged(): void {
    const socket = this.#socket;
    const rare = this.#rare;
    if (rare === null || !rare.paused || rare.peeking || this.#finished) return;
    if (typeof socket.on !== 'function') return;
    if (this.#held() >= this.#peekLimit()) return;
    rare.peeking = true;
    socket.on(
      'pong',
      (rare.onPeekPong ??= () => {
        this.#endPeek();
      }),
    );
    // Throttled: the read turn it waits for resumes it (and sets `unreadUntil` then).
    if (rare.throttled) return;
    // Reading resumes at the next read turn, so that a heartbeat that pings many paused
    // sessions at once does not make them all read in the same macrotask; the wait counts
    // against the peer's pong timeout (a dead peer must still be detected).
    rare.unreadUntil = performance.now();
    rare.throttled = true;
    rare.peekQueued = true;
    waitForTurn(rare);
  }

  /**
   * `performance.now()` when the socket last stopped being paused without reading (for a
   * full `incoming`), `Infinity` while it is, `-Infinity` if it never was: a pong that
   * was due while it was so paused could not arrive. Internal, for `sluice/server`.
   */
  get unreadUntil(): number {
    const rare = this.#rare;
    return rare === null ? -Infinity : rare.unreadUntil;
  }

  #stopPeeking(): void {
    const rare = this.#r();
    rare.peeking = false;
    if (rare.onPeekPong !== null) this.#socket.off?.('pong', rare.onPeekPong);
  }

  /** The pong arrived, or the bytes held reached the peek's limit: pause again. */
  #endPeek(): void {
    const rare = this.#r();
    if (!rare.peeking) return;
    this.#stopPeeking();
    if (!rare.paused || this.#finished) return;
    rare.unreadUntil = Infinity;
    (this.#socket.pause as () => void)();
  }

  /**
   * Queues `item` behind the backlog (starting the feeder). `full`: `incoming` refused
   * it. A full `incoming`, or a backlog longer than its capacity, pauses the socket where
   * the policy and the socket allow, or else fails the connection with 1008.
   */
  #enqueue(item: unknown, size: number, full = false): void {
    const rare = this.#r();
    let backlog = rare.backlog;
    if (backlog === null) {
      backlog = rare.backlog = [item];
      (rare.backlogSizes ??= []).push(size);
      void this.#feed(rare);
    } else {
      backlog.push(item);
      (rare.backlogSizes as number[]).push(size);
    }
    rare.backlogBytes += size;
    if (rare.paused || rare.closeRequest !== null) return;
    if (!full && backlog.length <= this.#settings.capacity) return;
    if (this.#canPause()) this.#pause();
    else this.#overflowed();
  }

  #canPause(): boolean {
    return this.#settings.overflow !== 'close' && typeof this.#socket.pause === 'function';
  }

  /** Delivers the backlog in order with `send` (which waits for room), then resumes. */
  async #feed(rare: Rare): Promise<void> {
    const backlog = rare.backlog as unknown[];
    const sizes = rare.backlogSizes as number[];
    // Runs after the caller's synchronous turn, so the first item is already queued.
    await RESOLVED;
    for (let index = 0; index < backlog.length; index++) {
      const item = backlog[index];
      const size = sizes[index] as number;
      backlog[index] = undefined;
      if (item instanceof EndOfIncoming) {
        this.#incoming.close(item.cause);
        break;
      }
      let value = item;
      if (item instanceof PendingDecode) {
        try {
          value = await item.promise;
        } catch (error) {
          rare.backlogBytes -= size;
          const data = item.data instanceof TextBytes ? item.data.toString() : item.data;
          const decodeError = this.#decodeFailed(toDecodeError(error, data), false);
          if (decodeError === undefined) continue;
          this.#incoming.close(decodeError);
          break;
        }
      }
      try {
        await this.#deliver(rare, value as In, size);
      } catch {
        break; // `incoming` was cancelled: drop the rest.
      }
    }
    rare.backlog = null;
    sizes.length = 0;
    rare.backlogBytes = 0;
    this.#maybeResume();
  }

  /** Sends one backlog value to `incoming` (waiting for room), moving its size along. */
  async #deliver(rare: Rare, value: In, size: number): Promise<void> {
    const incoming = this.#incoming;
    if (this.#settings.overflow === 'drop-oldest' || this.#settings.overflow === 'drop-latest') {
      // Never waits: `trySend` fails only once `incoming` is closed.
      rare.backlogBytes -= size;
      if (!this.#offer(value, size)) await incoming.send(value);
      return;
    }
    try {
      await incoming.send(value);
    } finally {
      rare.backlogBytes -= size;
    }
    // The only sender, waiting until now: if the buffer holds anything, its newest value
    // is this one.
    const count = channelInternals.buffered(incoming);
    this.#trimSizes(rare, count > 0 ? count - 1 : 0);
    if (count > 0) this.#pushSize(size);
  }

  /** Ends `incoming` with `cause` after everything before it. */
  #endIncoming(cause: unknown): void {
    const rare = this.#rare;
    if (rare !== null && rare.backlog !== null) {
      rare.backlog.push(new EndOfIncoming(cause));
      (rare.backlogSizes as number[]).push(0);
    } else {
      this.#incoming.close(cause);
    }
  }

  /**
   * Handles a frame that failed to decode: skipped, or ends `incoming` (queued behind the
   * backlog when `queue`) and closes the connection. Returns the error unless skipped.
   */
  #decodeFailed(error: DecodeError, queue = true): DecodeError | undefined {
    if (this.#settings.skipDecodeErrors) return undefined;
    this.#r().discarding = true;
    if (queue) this.#endIncoming(error);
    this.#requestClose(
      error.closeCode,
      error.closeCode === 1003 ? 'Unsupported data' : 'Invalid payload',
    );
    return error;
  }

  /** `incoming` overflowed: by count (1008), or past `maxBytes` (1009). */
  #overflowed(maxBytes?: number): void {
    this.#r().discarding = true;
    this.#endIncoming(new IncomingOverflowError(this.#settings.capacity, maxBytes));
    this.#requestClose(maxBytes === undefined ? 1008 : 1009, 'Incoming buffer overflow');
  }

  // ------------------------------------------------------------------ liveness

  #startIdleTimer(): void {
    const timeout = this.#settings.idleTimeout;
    if (timeout === undefined || this.#finished) return;
    const rare = this.#r();
    if (rare.idleTimer !== undefined) return;
    const check = (): void => {
      rare.idleTimer = undefined;
      const idle = Date.now() - rare.lastFrame;
      if (idle < timeout) {
        rare.idleTimer = startTimer(timeout - idle, check);
        return;
      }
      const reason: CloseReason = {
        code: 1006,
        reason: `Idle timeout: no frame received for ${timeout} ms`,
        wasClean: false,
      };
      const error = new WebSocketCloseError(reason, { cause: new TimeoutError(reason.reason) });
      this.#finish(reason, error);
      this.#drop();
    };
    // startTimer: an idleTimeout beyond 2^31 − 1 ms must not fire at once.
    rare.idleTimer = startTimer(timeout, check);
  }

  #stopIdleTimer(): void {
    const rare = this.#rare;
    if (rare === null || rare.idleTimer === undefined) return;
    rare.idleTimer();
    rare.idleTimer = undefined;
  }

  // ------------------------------------------------------------------ the end

  /** `ws`'s own message event (see `TextBytes`: a text message is decoded in its turn). */
  #rawMessage(data: unknown, isBinary: boolean): void {
    if (isBinary || !(data instanceof Uint8Array)) this.#receive(data);
    else if (hasBudget()) this.#receive(UTF8.decode(data));
    else this.#receive(new TextBytes(data));
  }

  /** `ws`'s own close event, reported as its `CloseEvent` would be (see {@link wasClean}). */
  #wsClosed(code: number, reason: { toString(): string }): void {
    const clean = wasClean(this.#socket as unknown as NodeWs);
    this.#socketClosed({ code, reason: reason.toString(), wasClean: clean });
  }

  /** The socket reported an error (a close event follows, except on Node 20's own WebSocket). */
  #errored(error: unknown): void {
    this.#r().lastError = error;
    // Browsers and `ws` are CLOSING or CLOSED by now, and a close event follows. Node 20's
    // own WebSocket stays CONNECTING and never fires close when it cannot connect.
    if (this.#socket.readyState === CONNECTING) {
      const reason: CloseReason = { code: 1006, reason: '', wasClean: false };
      this.#finish(reason, new WebSocketCloseError(reason, { cause: error }));
    }
  }

  #socketClosed(event: CloseEventLike): void {
    if (this.#finished) return;
    // Deno's WebSocket reports a dropped connection with code 0 (WHATWG says 1006): any
    // code no peer can send (outside 1000–4999) is a lost connection.
    const lost = event.code < 1000 || event.code > 4999;
    const reason: CloseReason = lost
      ? { code: 1006, reason: '', wasClean: false }
      : { code: event.code, reason: event.reason, wasClean: event.wasClean };
    const rare = this.#rare;
    const lastError = rare === null ? undefined : rare.lastError;
    const cause =
      (rare !== null && rare.closedHere) || isNormalClose(reason.code)
        ? undefined
        : new WebSocketCloseError(
            reason,
            lastError === undefined ? undefined : { cause: lastError },
          );
    this.#finish(reason, cause);
  }

  /** Drops the connection without a handshake where the socket can; else closes it. */
  #drop(): void {
    const socket = this.#socket;
    if (typeof socket.terminate === 'function') socket.terminate();
    else if (socket.readyState === CONNECTING || socket.readyState === OPEN) socket.close();
  }

  #finish(reason: CloseReason, incomingCause: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#parked = false;
    const rare = this.#r();
    const final = (rare.closeReason = Object.freeze(reason));
    const socket = this.#socket;
    if (rare.onOpen !== null) socket.removeEventListener('open', rare.onOpen);
    const listeners = this.#listeners;
    if (listeners === null) {
      // A sink socket: later events reach nobody (its errors are swallowed, as the error
      // listener below would).
      (socket as unknown as SinkSocket)[SINK] = null;
    } else {
      if (this.#raw) socket.off?.('message', listeners.message);
      else socket.removeEventListener('message', listeners.message);
      const nodeWs = asNodeWs(socket);
      if (nodeWs !== undefined) nodeWs.off('close', listeners.close);
      else socket.removeEventListener('close', listeners.close);
      // The error listener stays: `ws` (an EventEmitter) throws an 'error' nobody listens
      // to, and a dropped socket may still emit one.
    }
    const onControlFrame = rare.onControlFrame;
    if (onControlFrame !== null && typeof socket.off === 'function') {
      socket.off('ping', onControlFrame);
      socket.off('pong', onControlFrame);
    }
    this.#stopIdleTimer();
    if (rare.peeking) this.#stopPeeking();
    const pollers = rare.pollers;
    if (pollers !== null) {
      for (const stop of pollers) stop();
      pollers.clear();
    }
    const frames = this.#outgoing.frames;
    frames.close();
    frames.cancel(new ClosedSendError(CLOSED_BEFORE_SENT));
    this.#endIncoming(incomingCause);
    const listener = this.#listener;
    if (listener !== undefined) {
      queueMicrotask(() => {
        listener.sessionFinished(final);
      });
    }
    rare.resolveClosed(final);
  }
}

function toDecodeError(error: unknown, data: Frame): DecodeError {
  return error instanceof DecodeError
    ? error
    : new DecodeError('The codec could not decode the frame', {
        data,
        closeCode: 1007,
        cause: error,
      });
}

function checkSocket(socket: unknown): asserts socket is WebSocketLike {
  const ok =
    typeof socket === 'object' &&
    socket !== null &&
    typeof Reflect.get(socket, 'send') === 'function' &&
    typeof Reflect.get(socket, 'close') === 'function' &&
    typeof Reflect.get(socket, 'addEventListener') === 'function' &&
    typeof Reflect.get(socket, 'removeEventListener') === 'function' &&
    typeof Reflect.get(socket, 'readyState') === 'number';
  if (!ok) {
    throw new TypeError(
      `Expected a WebSocket (with readyState, send, close, addEventListener and removeEventListener), got ${describeValue(socket)}`,
    );
  }
}

/** Checks `wrap`'s options (also used by `connect` before it opens a socket). */
export function checkOptions(
  options: unknown,
): asserts options is SessionOptions<unknown, unknown> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const get = (key: string): unknown => Reflect.get(options, key);
  const codec = get('codec');
  if (
    codec !== undefined &&
    (typeof codec !== 'object' ||
      codec === null ||
      typeof Reflect.get(codec, 'encode') !== 'function' ||
      typeof Reflect.get(codec, 'decode') !== 'function')
  ) {
    throw new TypeError(
      `Expected codec to be an object with encode and decode functions, got ${describeValue(codec)}`,
    );
  }
  const overflow = get('incomingOverflow');
  checkChoice('incomingOverflow', overflow, ['pause', 'close', 'drop-oldest', 'drop-latest']);
  const dropping = overflow === 'drop-oldest' || overflow === 'drop-latest';
  checkNumber(
    'incomingCapacity',
    get('incomingCapacity'),
    dropping ? 'a positive integer or Infinity' : 'a non-negative integer or Infinity',
    (n) => n === Infinity || (Number.isSafeInteger(n) && n >= (dropping ? 1 : 0)),
  );
  checkNumber('highWaterMark', get('highWaterMark'), 'a non-negative number', (n) => n >= 0);
  checkNumber(
    'incomingMaxBytes',
    get('incomingMaxBytes'),
    'a positive integer or Infinity',
    (n) => n === Infinity || (Number.isSafeInteger(n) && n > 0),
  );
  checkNumber(
    'idleTimeout',
    get('idleTimeout'),
    'a positive finite number of milliseconds',
    (n) => n > 0 && Number.isFinite(n),
  );
  checkChoice('onDecodeError', get('onDecodeError'), ['close', 'skip']);
  checkFunction('onUndelivered', get('onUndelivered'));
}

/**
 * Adapts an existing WebSocket into a {@link Session}.
 *
 * The socket may be connecting (sends wait for the open), open, or closing; the session
 * takes it over: it sets `binaryType` to `'arraybuffer'` (leave it so) and listens to its
 * events until the connection ends. Wrap a socket once.
 *
 * @throws TypeError if `socket` is not WebSocket-like, or an option has the wrong type.
 * @throws RangeError if an option is out of range.
 * @example
 * ```ts
 * const session = wrap<{ n: number }>(new WebSocket('wss://example.org'));
 * await session.outgoing.send({ n: 1 });
 * for await (const message of session.incoming) console.log(message.n);
 * console.log(await session.closed); // { code: 1000, reason: '', wasClean: true }
 * ```
 */
export function wrap<In = unknown, Out = In>(
  socket: WebSocketLike,
  options?: SessionOptions<In, Out>,
): Session<In, Out> {
  return new SocketSession<In, Out>(socket, options);
}

// Where the runtime lacks `Symbol.asyncDispose`, the method above landed under the key
// 'undefined': remove it rather than expose a bogus method.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(SocketSession.prototype, 'undefined');
}
