/**
 * `channels(session)`: network channels — many named channels over one WebSocket session
 * between two sluice ends, each behaving like a local `Channel` of the capacity its
 * receiving end chose: credit-based flow control, rendezvous across the wire, close and
 * cancel with their causes, and exactly-once accounting. The wire protocol is described
 * in docs/protocol.md.
 *
 * ## How it works
 * The channel session takes over the session's `incoming` and `outgoing` (text
 * messages, each holding one or more frames — JSON arrays — separated by line feeds;
 * from protocol version 3, binary messages too, one `Uint8Array` value each, encoded and
 * decoded in wire.ts; a binary message first sends the frames pending before it). A
 * reader loop drains `incoming` without ever waiting on a channel — each frame is handled
 * synchronously — so one unconsumed channel never blocks another: the credits bound what
 * each channel may have in memory.
 *
 * The first frame written in a macrotask goes out at once, as its own message; the
 * frames written after it in the same macrotask go to a pending list, in order, sent as
 * ONE message through `outgoing` (`trySend` when the socket takes it now, else a queued
 * `send`) once the macrotask has finished ({@link afterMacrotask}), or at once when
 * {@link BATCH_CHARS} are pending: one WebSocket message, one syscall and one
 * wake-up of the peer per batch instead of per value and per ack. Every path that stops
 * writing decides the list's fate: this end's `bye` (its `close()`, or its answer to the
 * peer's `bye`: the goodbye handshake of docs/protocol.md section 7, which lets the peer's
 * last acks arrive before the Close) and its failures (1002, 1007, 1011) send it first; the peer's Close or a lost connection drop it — a `v`
 * dropped there is still retained by its outbound end and reported at the end, an `ack`
 * dropped there is the documented window of docs/protocol.md section 7, and a `closed`
 * is never left pending (it is sent at once, so that the receiver knows whether it left).
 * When the session refuses a batch (its buffer is at the high-water mark), the batch waits
 * in the session's queue and this end is *congested* until the session took it: every
 * outbound end stops taking values (their sends wait), acks wait in `#dirty` (cumulative,
 * so one per channel in the end), and frames written meanwhile stay pending — bounded,
 * since the peer can drive only a few per channel (`closed`, `withdrawn` of a held value).
 * Only `closed`, the `bye` and a failure's Close are forced through while congested.
 *
 * When the connection ends (read to the end, and `closed` settled), every channel end is
 * finished with one {@link ConnectionLostError}.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  ConnectionLostError,
  ContractMismatchError,
  EncodeError,
  ProtocolError,
  SessionExpiredError,
} from '../errors.js';
import type { CloseReason } from '../errors.js';
import { Channel, channelInternals } from '../channel.js';
import type { ReceiveChannel, ReceiveResult, SendChannel } from '../channel-types.js';
import { CATCHING, Waiter } from '../internal/waiter.js';
import { describeValue } from '../internal/describe-value.js';
import type { Frame } from '../websocket/codec.js';
import type { Session } from '../websocket/session.js';
import { checkCloseArguments, toCloseReason } from '../websocket/validate.js';
import { MAX_CAUSE_LENGTH, isCauseTooLong } from './causes.js';
import { Inbound } from './inbound.js';
import { afterMacrotask } from '../internal/macrotask.js';
import { YIELD_EVERY, carriesBytes } from '../websocket/outgoing.js';
import { Outbound } from './outbound.js';
import { ReplayLog } from './replay.js';
import { compareViews, encodeView, parseView, viewOf } from './contract.js';
import type { Contract, ContractView } from './contract.js';
import {
  ACK,
  BYE,
  CANCEL,
  CLOSE,
  CLOSED,
  CONTRACT,
  OPEN,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_RESUME,
  PULL,
  RECV,
  RESUME,
  RESUME_REFUSED,
  RESUMED,
  SESSION,
  TEXT_VERSION,
  VALUE,
  WITHDRAW,
  WITHDRAWN,
  isCount,
} from './link.js';
import type { AckSource, Link } from './link.js';
import { decodeBinaryMessage, encodeBinaryMessage } from './wire.js';

/** Options of {@link channels}. */
export interface ChannelSessionOptions {
  /**
   * Include `Error` stacks in the close causes and cancel reasons sent to the peer. Off
   * by default: a stack tells a remote party about your code.
   * @default false
   */
  readonly sendStacks?: boolean | undefined;
  /**
   * The most names the peer may have opened that this end has not opened (yet): each one
   * holds an outgoing end here until this end opens it or the connection ends. A peer
   * that opens one more breaks the protocol: the connection closes with 1002. Names this
   * end opened do not count, nor do peer-opened names once this end opens them too.
   * `Infinity` removes the bound.
   * @default 1024
   */
  readonly maxChannels?: number | undefined;
  /**
   * How long {@link ChannelSession.close} waits, in milliseconds, for the peer's answer to
   * its `bye` (the goodbye that carries the peer's last acks) before closing the
   * connection anyway. A peer that does not answer in time (it died, or is stalled) leaves
   * the values it took just before unacknowledged: they are reported to `onUndelivered`
   * although received (docs/protocol.md section 7). 0 closes without waiting for the
   * answer (the `bye` still goes out).
   * @default 1000
   */
  readonly byeTimeout?: number | undefined;
  /**
   * The longest channel name, in characters (UTF-16 code units), on either side: a
   * longer name given to {@link ChannelSession.channel} throws a `RangeError`, and a peer
   * that opens one breaks the protocol (the connection closes with 1002). Each name the
   * peer opens is held here until the connection ends, so this and `maxChannels` bound
   * that memory (about `maxChannels × 2 × maxNameLength` bytes of names). The peer must
   * accept the names this end opens: keep them within its limit too (256 by default).
   * @default 256
   */
  readonly maxNameLength?: number | undefined;
  /**
   * The default of {@link NetworkChannelOptions.maxInFlight} for every channel of this
   * session: the most values of one channel that may have left this end without being
   * acknowledged by the peer, whatever capacity the peer announced.
   * @default 1024
   */
  readonly maxInFlight?: number | undefined;
  /**
   * The contract this end declared, and which side of it this end is (`side`): sent to
   * the peer after the hello and compared with the peer's (a mismatch closes with 1008
   * and `ready` rejects with a `ContractMismatchError` naming the channel). It does not
   * open the channels: endpoints made with `channelEndpoint` do that. A peer without a
   * contract or of protocol version 1 is not checked.
   * @default undefined (no contract: nothing is checked)
   */
  readonly contract?: Contract | undefined;
  /**
   * Called once with the name of a channel this end opened (with
   * {@link ChannelSession.channel}) that the peer has not opened within `openTimeout`
   * milliseconds: its sends would wait until the peer does. Surfaces a name typo or a
   * peer built from other code, where a contract (checked at connect) is not used. Not
   * called once the connection has ended.
   * @default undefined (no timer: a send waits for the peer's open as long as it takes)
   */
  readonly onUnopened?: ((name: string) => void) | undefined;
  /**
   * How long, in milliseconds, a name this end opened may go unopened by the peer before
   * `onUnopened` is called.
   * @default 5000
   */
  readonly openTimeout?: number | undefined;
  /**
   * Which side of `contract` this end is.
   * @default 'server'
   */
  readonly side?: 'server' | 'client' | undefined;
}

/** Options of {@link ChannelSession.channel}. */
export interface NetworkChannelOptions<In, Out> {
  /**
   * The size of **this end's incoming buffer**, which is what the peer's `send` is
   * flow-controlled by: 0 (rendezvous: the peer's `send` resolves only when a receiver
   * here has taken the value), a positive integer n (the peer's `send` resolves once the
   * value has room here), or `Infinity` (never waits). Each end picks the capacity of
   * what it receives; the two directions of a name are independent.
   * @default 0
   */
  readonly capacity?: number | undefined;
  /**
   * Called exactly once for every value this end sent (or tried to send) that the peer's
   * application will never receive: its `send` rejected (closed, aborted, the peer
   * cancelled, the connection was lost), or it had left but was not yet taken when the
   * peer cancelled or the connection ended. See docs/protocol.md for the one inherent
   * window (a value taken just before the connection was lost).
   * @default undefined
   */
  readonly onUndelivered?: ((value: Out) => void) | undefined;
  /**
   * A Standard Schema that every received value is validated (and transformed) by; a value
   * that fails closes the whole connection with 1007 and every channel ends with a
   * `ConnectionLostError` whose `cause` is a `DecodeError` with the schema's issues.
   * Asynchronous schemas keep the order of values. A schema that throws (or rejects) counts
   * as a failure (1007); one that returns something other than a Standard Schema result
   * closes the connection with 1011 (the cause is a `TypeError` naming the channel).
   * @default undefined (values are received as JSON gives them, bytes as a `Uint8Array`)
   */
  readonly schema?: StandardSchemaV1<unknown, In> | undefined;
  /**
   * The most values sent on this channel that may be **in flight** at a time: left this
   * end and not yet acknowledged by the peer. The peer's capacity decides how many values
   * it lets this end send; this bound is this end's own, and the peer can only lower it:
   * a peer announcing an unlimited (or huge) capacity cannot make `send` stop waiting,
   * nor make this end retain more than `maxInFlight` values for `onUndelivered` (or
   * rendezvous sends) while it does not acknowledge them. At the bound, `send` waits as
   * for a full peer buffer, until acks arrive (abortably, first-come first-served);
   * `trySend` fails. Below the peer's window it limits throughput only when a round trip
   * carries fewer values than the bound (the peer acknowledges every half window, and
   * every 128 values for an unlimited channel). `Infinity` lets the peer decide alone
   * (the bytes the peer then makes this end retain are unbounded).
   * @default the session's `maxInFlight` (1024)
   */
  readonly maxInFlight?: number | undefined;
}

/**
 * One named channel across the wire: `incoming` receives what the peer sends on this
 * name, `outgoing` sends to the peer's `incoming` of this name.
 *
 * @typeParam In - the values received.
 * @typeParam Out - the values sent.
 */
export interface NetworkChannel<In, Out = In> {
  /** The name both ends opened. */
  readonly name: string;
  /**
   * Values the peer sent on this name, in the order it sent them; a `ReceiveChannel` with
   * local semantics (see docs/protocol.md for the few differences). Ends after the peer's
   * `outgoing.close(cause)` with the cause re-created, or with a `ConnectionLostError`.
   * `cancel(reason)` discards what it holds and makes the peer's `send`s reject with the
   * reason re-created. Bytes sent as a `Uint8Array` arrive as a `Uint8Array` (never a
   * `Buffer`): a view into the received message, whose `byteOffset` is past the message's
   * header (its `buffer` holds the header too).
   */
  readonly incoming: ReceiveChannel<In>;
  /**
   * Values to the peer's `incoming` of this name; a `SendChannel` whose `send` waits
   * while the peer's buffer is full (and, for a rendezvous peer, until its application
   * took the value), while `maxInFlight` values are unacknowledged whatever the peer
   * announced, and while the session's buffer is at its high-water mark (the peer or the
   * network is slower than the sender). Every 256th `send` that did not wait resolves
   * after a macrotask, so that a tight `await send` loop lets timers and I/O run. Before
   * the peer has opened the name, sends wait. Values travel as
   * JSON (`undefined` included); one JSON cannot encode rejects its `send` with an
   * `EncodeError` (`trySend` and `onSend` throw it). A `Uint8Array` (a `Buffer` is one)
   * travels as its bytes, a binary message of its own in order with the other values,
   * when both ends speak protocol version 3 or later (sessions made with `raw()`; channel
   * endpoints speak 4, and a resumable session replays bytes like any value); on a
   * version-2 connection (a `text()` session here, or a version-2 peer) its `send`
   * rejects with an `EncodeError` and the value goes to `onUndelivered`, also when the
   * send was made before the peer's hello told the version. Other binary views and
   * `ArrayBuffer` are refused the same way. A `Uint8Array` nested inside another value
   * is not detected: it goes through JSON as an object of indexes (checking every member
   * would double the cost of JSON); send bytes as the value itself.
   */
  readonly outgoing: SendChannel<Out>;
}

/** A session taken over by {@link channels}: it hands out named channels. */
export interface ChannelSession {
  /**
   * Opens the channel `name` on this end: announces this end's incoming capacity to the
   * peer and returns both halves. The peer opens the same name to talk back; values sent
   * before it does wait (they are never lost). On a connection that has already ended,
   * the channel is returned already ended with the `ConnectionLostError`.
   *
   * @throws TypeError if `name` is not a string or an option has the wrong type.
   * @throws RangeError if `name` is empty, longer than the session's `maxNameLength`
   *   (256 characters by default) or already opened on this session, `capacity` is
   *   negative, NaN or a non-integer other than `Infinity`, or `maxInFlight` is not a
   *   positive integer or `Infinity`.
   * @example
   * ```ts
   * const jobs = network.channel<Job>('jobs', { capacity: 16 });
   * await jobs.outgoing.send({ id: 1 }); // waits while the peer's buffer of 16 is full
   * for await (const job of jobs.incoming) handle(job);
   * ```
   */
  channel<In, Out = In>(
    name: string,
    options?: NetworkChannelOptions<In, Out>,
  ): NetworkChannel<In, Out>;
  /**
   * Resolves once the peer's hello has arrived and, when both ends declared a contract,
   * the contracts agree. Rejects with a `ContractMismatchError` when they do not (the
   * connection is then closing with 1008), or with the `ConnectionLostError` when the
   * connection ends first. Channels work before it settles (values wait for the peer as
   * usual); await it to fail fast. Never reported as unhandled.
   */
  readonly ready: Promise<void>;
  /**
   * Resolves once the connection has closed and every channel has been ended, with the
   * session's close code, reason and `wasClean`. Never rejects.
   */
  readonly closed: Promise<CloseReason>;
  /**
   * Closes the connection (as the session's `close`: 1000 or 3000–4999, a reason of at
   * most 123 bytes) after a goodbye handshake; resolves as {@link ChannelSession.closed}.
   * Every value taken so far is acknowledged first, then a `bye` frame goes out; from then
   * on no `incoming` gives a value (their acks could not be sent: the values held are
   * dropped, and the peer reports them), except a buffered channel whose sender had closed
   * it, whose values stay receivable. The peer answers `bye` after acknowledging every
   * value its application took, so that this end reports none of them as undelivered; on
   * that answer (or after `byeTimeout`, or at once if the peer had already said `bye`
   * itself) the WebSocket is closed with `code` and `reason`. Both ends closing at once
   * works the same way: each one's `bye` answers the other's. Channels still open end with
   * a `ConnectionLostError` once the connection has closed; a second call does nothing
   * more, except that a call after the handshake started by the peer closes the WebSocket
   * at once.
   *
   * @throws TypeError or RangeError as the session's `close`.
   * @example
   * ```ts
   * const reason = await network.close(4000, 'done'); // { code: 4000, reason: 'done', wasClean: true }
   * ```
   */
  close(code?: number, reason?: string): Promise<CloseReason>;
  /** `close()`, then waits for `closed`: for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Pending frames of at least this many characters (UTF-16 code units) in all go out at
 * once, without waiting for the end of the macrotask: a producer that never yields still
 * sends messages of bounded size.
 */
export const BATCH_CHARS: number = 16 * 1024;
const DEFAULT_MAX_CHANNELS = 1024;
const DEFAULT_MAX_NAME_LENGTH = 256;
const DEFAULT_MAX_IN_FLIGHT = 1024;
const RESOLVED: Promise<void> = Promise.resolve();
const DEFAULT_BYE_TIMEOUT = 1000;
const DEFAULT_OPEN_TIMEOUT = 5000;
/** The longest delay `setTimeout` takes (2^31 − 1 ms). */
const MAX_TIMEOUT = 2_147_483_647;
/** The channel session that took over each session. */
const taken = new WeakMap<object, ChannelSessionImpl>();

function noop(): void {
  // a frame that could not be sent: the end of the connection settles everything
}

function isSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props: unknown = Reflect.get(value, '~standard');
  return (
    typeof props === 'object' &&
    props !== null &&
    typeof Reflect.get(props, 'validate') === 'function'
  );
}

/** `value` if it is a positive integer (or `Infinity` when `infinite`) or `undefined`, else throws. */
function checkPositive(what: string, value: unknown, infinite: boolean): number | undefined {
  if (value === undefined) return undefined;
  const allowed = infinite
    ? 'a positive integer, Infinity or undefined'
    : 'a positive integer or undefined';
  if (typeof value !== 'number') {
    throw new TypeError(`Expected ${what} to be ${allowed}, got ${describeValue(value)}`);
  }
  if (!(Number.isSafeInteger(value) && value >= 1) && !(infinite && value === Infinity)) {
    throw new RangeError(`Expected ${what} to be ${allowed}, got ${String(value)}`);
  }
  return value;
}

/** A promise resolved in a later macrotask. */
function nextMacrotask(): Promise<void> {
  return new Promise<void>((resolve) => {
    afterMacrotask(resolve);
  });
}

function checkCapacity(capacity: unknown): number {
  if (capacity === undefined) return 0;
  if (typeof capacity !== 'number') {
    throw new TypeError(
      `Expected capacity to be a non-negative integer or Infinity, got ${describeValue(capacity)}`,
    );
  }
  if (capacity !== Infinity && !(Number.isSafeInteger(capacity) && capacity >= 0)) {
    throw new RangeError(
      `Expected capacity to be a non-negative integer or Infinity, got ${String(capacity)}`,
    );
  }
  return capacity;
}

/** The session under a channel session: text messages, and binary ones with `raw()`. */
type WireSession = Session<Frame, Frame>;

/**
 * What the resume handshake (handshake.ts) learnt before the channel session starts:
 * the version both ends speak, the frames that came after the handshake's, and whether
 * the session is resumable (both ends agreed on a token); internal.
 */
export interface Greeting {
  readonly version: number;
  /** Frames (text) and binary messages (`Uint8Array`), in the order they came. */
  readonly leftover: readonly Frame[];
  readonly resumable: boolean;
  /** The bound of the replay log, in bytes (2 per UTF-16 code unit). */
  readonly maxReplayBytes: number;
  /**
   * The client asked for a resumable session and did not wait for the answer: the first
   * frame must be the server's `["session", token]` (or `["session"]`: not resumable).
   */
  readonly awaitSession?: boolean | undefined;
}

/** Up to this length, {@link appended} copies into an array of the exact length. */
const EXACT_UP_TO = 8;

/**
 * `array` with `item` appended: a new array of the exact length while short (a `push`
 * onto a short array reserves room for 16 more: 152 B for a session's one or two
 * channels), then `push` (amortised; the arrays are bounded by `maxChannels`).
 */
function appended<T>(array: T[], item: T): T[] {
  if (array.length >= EXACT_UP_TO) {
    array.push(item);
    return array;
  }
  // Not `[...array, item]`: a spread reserves room as a push does.
  const copy = new Array<T>(array.length + 1);
  for (let i = 0; i < array.length; i++) copy[i] = array[i] as T;
  copy[array.length] = item;
  return copy;
}

/** A resumable channel session, as the endpoints drive it; internal. */
export interface ResumableSession extends ChannelSession {
  /** Connections this logical session resumed on so far. */
  readonly resumes: number;
  /** Frames received in all (what this end tells the peer on a resume). */
  readonly received: number;
  /** The connection is lost and the session waits to resume (or expire). */
  readonly suspended: boolean;
  /** The session has ended (goodbye, failure or expiry). */
  readonly ended: boolean;
  /** Bytes of the replay log. */
  readonly replayBytes: number;
  /** Called when the connection is lost and the session can resume. */
  onSuspend: ((reason: CloseReason) => void) | undefined;
  /** Called with the server's token (or `undefined`) when `awaitSession`. */
  onSession: ((token: string | undefined) => void) | undefined;
  /**
   * Called once when the session ends, before its channels end (so that work fed by a
   * signal aborted here stops before the channels' ends are seen).
   */
  onEnd: ((reason: CloseReason) => void) | undefined;
  /**
   * Called when the server shuts down a connection of the session (`goAway` from the
   * server's shutdown), before the session says goodbye or expires.
   */
  onShutdown: (() => void) | undefined;
  /** Drops the current connection (the peer came back on a new one first). */
  detach(): void;
  /**
   * Continues on `session`, after the peer said it received `peerReceived` frames: sends
   * `["resumed", received]` first when `answer`, then the frames the peer lacks. An error
   * message if `peerReceived` is not a count this end can replay from.
   */
  attach(
    session: WireSession,
    peerReceived: number,
    leftover: readonly Frame[],
    answer: boolean,
  ): string | undefined;
  /** Ends every channel with `error` (an expiry), with a lost connection's accounting. */
  expire(error: SessionExpiredError): void;
  /** `close` without checking the code (1011 after a handler threw, 4000). */
  goAway(code: number | undefined, reason: string | undefined): Promise<CloseReason>;
}

/** Frames received after which a `recv` goes out at once (the sender's log shrinks). */
const RECV_EVERY = 256;
/** Characters received after which a `recv` goes out at once. */
const RECV_CHARS = 256 * 1024;
/** Milliseconds after which frames received and not yet confirmed are confirmed anyway. */
const RECV_IDLE = 20;

/**
 * Whether a connection that closed with `code` (without a goodbye) ends the logical
 * session rather than suspending it: a normal close, going away, 4000 (the application
 * failed: a handler threw, as a reconnecting client closes then), every failure the peer
 * or this end declared (protocol, payload, policy, size, internal; and their browser
 * forms 4000 + (code − 1000)), and a refused resume. Internal.
 */
export function endsSession(code: number): boolean {
  const base = code >= 4000 && code < 4100 ? code - 3000 : code;
  return (
    code === 1000 ||
    code === 1001 ||
    code === 4000 ||
    base === 1002 ||
    base === 1003 ||
    (base >= 1007 && base <= 1011) ||
    code === RESUME_REFUSED
  );
}

/**
 * A channel session's settings, from its options (checked) and its greeting's replay
 * bound. Sessions made one after the other with equal settings share one object (a
 * server route or an endpoint makes every session with the same options): a session
 * holds one field for them instead of ten. The module keeps the last one made.
 */
class Settings {
  readonly sendStacks: boolean;
  readonly maxChannels: number;
  readonly maxNameLength: number;
  readonly maxInFlight: number;
  readonly byeTimeout: number;
  readonly onUnopened: ((name: string) => void) | undefined;
  readonly openTimeout: number;
  readonly side: 'server' | 'client';
  /** The contract as this side sees it (one per frozen contract and side: see `viewOf`). */
  readonly contract: ContractView | undefined;
  readonly maxReplayBytes: number;

  constructor(options: ChannelSessionOptions, side: 'server' | 'client', maxReplayBytes: number) {
    this.sendStacks = options.sendStacks === true;
    this.maxChannels = options.maxChannels ?? DEFAULT_MAX_CHANNELS;
    this.maxNameLength = options.maxNameLength ?? DEFAULT_MAX_NAME_LENGTH;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.byeTimeout = options.byeTimeout ?? DEFAULT_BYE_TIMEOUT;
    this.onUnopened = options.onUnopened;
    this.openTimeout = options.openTimeout ?? DEFAULT_OPEN_TIMEOUT;
    this.side = side;
    this.contract = options.contract === undefined ? undefined : viewOf(options.contract, side);
    this.maxReplayBytes = maxReplayBytes;
  }

  /** Whether `other` says the same in every setting. */
  equals(other: Settings): boolean {
    return (
      this.sendStacks === other.sendStacks &&
      this.maxChannels === other.maxChannels &&
      this.maxNameLength === other.maxNameLength &&
      this.maxInFlight === other.maxInFlight &&
      this.byeTimeout === other.byeTimeout &&
      this.onUnopened === other.onUnopened &&
      this.openTimeout === other.openTimeout &&
      this.side === other.side &&
      this.contract === other.contract &&
      this.maxReplayBytes === other.maxReplayBytes
    );
  }
}

/** The settings made last (see {@link Settings}). */
let lastSettings: Settings | undefined;

/** The settings of a session made with `options`: the last ones if they are equal. */
function settingsFor(options: ChannelSessionOptions, maxReplayBytes: number): Settings {
  const settings = new Settings(options, options.side ?? 'server', maxReplayBytes);
  if (lastSettings?.equals(settings) === true) return lastSettings;
  lastSettings = settings;
  return settings;
}

/**
 * The half of a channel session's state that a session which never failed, never said
 * goodbye, never lost its connection and never ended does not touch: the goodbye
 * handshake, the failure, the end, the resume-time state (suspension, the last close, the
 * resume count, a log over its bound, a shutdown, the client's wait for its token), and
 * timers of names the peer has not opened. A session makes it at the first use of any of
 * it (`ChannelSessionImpl.#r`) and keeps it.
 */
class Rare {
  /** This end sent its `bye` (its own close, or the answer to the peer's). */
  byeSent = false;
  /** The peer's `bye` arrived. */
  byeReceived = false;
  /** This end's close() started the handshake: it closes the WebSocket at the answer. */
  closing = false;
  closeCode: number | undefined = undefined;
  closeReason: string | undefined = undefined;
  byeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The peer broke the protocol (or a schema): later frames are ignored. */
  failed = false;
  problem: Error | undefined = undefined;
  /** How every channel ended, once the session ended. */
  endError: ConnectionLostError | SessionExpiredError | undefined = undefined;
  /** The server's `session` frame is due first (see {@link Greeting.awaitSession}). */
  awaitSession = false;
  /** The log is over its bound: values wait as when congested. */
  logFull = false;
  /** The connection is lost and the session waits for a new one. */
  suspended = false;
  /** How the last connection ended (for an expiry). */
  lastReason: CloseReason = { code: 1006, reason: '', wasClean: false };
  resumes = 0;
  /** The server is shutting down: the session ends with its connection. */
  shuttingDown = false;
  /** Timers of names this end opened and the peer has not (only with `onUnopened`). */
  unopened: Map<string, ReturnType<typeof setTimeout>> | undefined = undefined;
  /** The client's hook for the server's token (see `ResumableSession.onSession`). */
  onSession: ((token: string | undefined) => void) | undefined = undefined;
}

// The reader's steps, bound to the channel session's private members in its static block.
let resumeReader: (reader: Reader) => void;

/**
 * The read loop of one connection, without an async frame parked between messages: when
 * `incoming` is empty it waits as a `select` clause does, with this waiter (one per
 * connection, reused for every wait), which the channel completes synchronously inside
 * the operation that hands it a message (or closes it); the loop goes on a microtask
 * later, as an `await` of `receiveCatching()` would. A connection that only waits holds
 * this object and nothing else for its reads.
 */
class Reader extends Waiter<Frame> {
  readonly link: ChannelSessionImpl;
  readonly session: WireSession;
  /** What the channel handed the parked reader, until the next step takes it. */
  handed: ReceiveResult<Frame> | undefined = undefined;

  constructor(link: ChannelSessionImpl, session: WireSession) {
    super(CATCHING, undefined);
    this.link = link;
    this.session = session;
    this.resolve = handReader;
  }

  /** Waits for the next message of `incoming` (which has none now and is open). */
  park(incoming: ReceiveChannel<Frame>): void {
    if (incoming instanceof Channel) {
      channelInternals.enqueue(incoming as Channel<Frame>, this);
    } else {
      // A session whose `incoming` is some other ReceiveChannel: its own receive.
      incoming.receiveCatching().then(
        (result) => {
          this.resolve(result);
        },
        (error: unknown) => {
          this.reject(error);
        },
      );
    }
  }

  override reject(error: unknown): void {
    // A parked reader has no signal: a channel never rejects it. Were it, stop reading as
    // at the end of `incoming` (the connection's end then decides the rest).
    this.resolve({ ok: false, closed: true, cause: error });
  }
}

function handReader(this: Reader, result: unknown): void {
  this.handed = result as ReceiveResult<Frame>;
  void Promise.resolve(this).then(resumeReader);
}

class ChannelSessionImpl implements ResumableSession, Link {
  /** What the options said (checked), shared with the sessions made just before with the same. */
  readonly #settings: Settings;
  readonly closed: Promise<CloseReason>;
  #session: WireSession;
  /** The connection whose frames are read (`undefined` once detached, until a resume). */
  #live: WireSession | undefined;
  /**
   * The version this end announces: 4 after the resume handshake (endpoints), else 3 if
   * its session carries binary messages (`raw()`), else 2 (`text()`).
   */
  readonly #ownVersion: number;
  #resolveClosed: (reason: CloseReason) => void = noop;
  /** This end's incoming ends, by the id this end gave them (grown by {@link appended}). */
  #inbound: Inbound<unknown>[] = [];
  /** This end's outgoing ends, by the id the peer gave its incoming end. */
  #outboundById: Outbound<unknown>[] = [];
  readonly #outboundByName = new Map<string, Outbound<unknown>>();
  /** Sends that resolved without waiting since the last one that yielded. */
  #direct = 0;
  /**
   * Batches handed to the session's queued `send` (it was at its high-water mark) and not
   * yet taken: while there is one, this end is congested (see {@link Link.congested}).
   */
  #queued = 0;
  /**
   * `#batchTaken` bound to this session, made when first congested (a plain `channels()`
   * session usually is, at its hello: the socket is not open yet).
   */
  #onBatchTaken: (() => void) | undefined;
  /** Names the peer opened that this end has not opened. */
  #peerOnly = 0;
  #greeted = false;
  /** The version both ends speak (the lower of the two hellos). */
  #version = 0;
  #contractReceived = false;
  readonly ready: Promise<void>;
  #settleReady: ((error?: Error) => void) | undefined;
  #stopped = false;
  /** The ack sources with an ack due, in order (made at the first, dropped when flushed). */
  #dirty: AckSource[] | undefined;
  #microtaskQueued = false;
  /** `#flushAcks` bound to this session, made at the first urgent ack. */
  #flush: (() => void) | undefined;
  /**
   * Frames written since the last message, in order (made at the first, dropped when sent),
   * and their length in all.
   */
  #pending: string[] | undefined;
  #pendingChars = 0;
  /** A batch flush is scheduled for the end of this macrotask. */
  #batchScheduled = false;
  // ------------------------------------------------------- resume (docs/protocol.md)
  /** The frames sent and not yet confirmed: only on a resumable session. */
  #log: ReplayLog | undefined;
  /** Frames received in all, and what the last `recv` said. */
  #received = 0;
  #confirmed = 0;
  #receivedChars = 0;
  #recvTimer: ReturnType<typeof setTimeout> | undefined;
  onSuspend: ((reason: CloseReason) => void) | undefined;
  onEnd: ((reason: CloseReason) => void) | undefined;
  onShutdown: (() => void) | undefined;
  /** Goodbye, failure, end and resume-time state: made at first use ({@link Rare}). */
  #rare: Rare | undefined;

  get sendStacks(): boolean {
    return this.#settings.sendStacks;
  }

  #r(): Rare {
    return (this.#rare ??= new Rare());
  }

  /** The peer broke the protocol (or a schema): later frames are ignored. */
  get #failed(): boolean {
    return this.#rare?.failed === true;
  }

  get #endError(): ConnectionLostError | SessionExpiredError | undefined {
    return this.#rare?.endError;
  }

  get #byeSent(): boolean {
    return this.#rare?.byeSent === true;
  }

  get #byeReceived(): boolean {
    return this.#rare?.byeReceived === true;
  }

  get #closing(): boolean {
    return this.#rare?.closing === true;
  }

  get #awaitSession(): boolean {
    return this.#rare?.awaitSession === true;
  }

  get #logFull(): boolean {
    return this.#rare?.logFull === true;
  }

  get #suspended(): boolean {
    return this.#rare?.suspended === true;
  }

  get #unopened(): Map<string, ReturnType<typeof setTimeout>> | undefined {
    return this.#rare?.unopened;
  }

  #clearByeTimer(): void {
    const rare = this.#rare;
    if (rare?.byeTimer !== undefined) {
      clearTimeout(rare.byeTimer);
      rare.byeTimer = undefined;
    }
  }

  get onSession(): ((token: string | undefined) => void) | undefined {
    return this.#rare?.onSession;
  }

  set onSession(hook: ((token: string | undefined) => void) | undefined) {
    if (hook !== undefined || this.#rare !== undefined) this.#r().onSession = hook;
  }

  static {
    resumeReader = (reader) => {
      const handed = reader.handed;
      reader.handed = undefined;
      reader.link.#readOn(reader, handed);
    };
  }

  // Timer and batch callbacks without a closure per session: `setTimeout` and
  // `afterMacrotask` pass the session.
  static #closeSessionOf(self: ChannelSessionImpl): void {
    self.#closeSession();
  }

  static #endBatchOf(self: ChannelSessionImpl): void {
    self.#endBatch();
  }

  static #recvIdle(self: ChannelSessionImpl): void {
    self.#recvTimer = undefined;
    self.#sendRecv();
  }

  #closeSession(): void {
    this.#clearByeTimer();
    const rare = this.#r();
    void this.#session.close(rare.closeCode, rare.closeReason);
  }

  #endBatch(): void {
    this.#batchScheduled = false;
    // Acks due after the macrotask: the first one written sends them with the pending
    // frames, as one message, and opens the next batch, so that frames written until that
    // one ends are batched too. (Closing the batch only after the acks measured
    // 30–35k instead of 80–105k msg/s at capacity 16: each microtask's ack then left alone.)
    this.#flushAcks();
    this.#sendPending();
  }

  #batchTaken(): void {
    if (--this.#queued === 0) this.#decongested();
  }

  constructor(session: WireSession, options: ChannelSessionOptions, greeting?: Greeting) {
    this.#session = session;
    this.#live = session;
    this.#ownVersion =
      greeting !== undefined
        ? PROTOCOL_VERSION_RESUME
        : carriesBytes(session.outgoing)
          ? PROTOCOL_VERSION
          : TEXT_VERSION;
    this.#settings = settingsFor(options, greeting?.maxReplayBytes ?? Infinity);
    this.#log = greeting?.resumable === true ? new ReplayLog() : undefined;
    if (greeting?.awaitSession === true) this.#r().awaitSession = true;
    this.closed = new Promise<CloseReason>((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = (error) => {
        this.#settleReady = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
    this.ready.catch(noop);
    this.#watch(session);
    if (greeting === undefined) {
      this.write(`["${PROTOCOL_NAME}",${String(this.#ownVersion)}]`);
      this.#read(session, []);
    } else {
      this.#greeted = true;
      this.#greet(greeting.version);
      this.#read(session, greeting.leftover);
    }
  }

  /** The peer's hello said `version`: the lower one is spoken; the contract frame follows. */
  #greet(version: number): void {
    this.#greeted = true;
    this.#version = Math.min(version, this.#ownVersion);
    if (this.#version >= 2) {
      const own = this.#settings.contract;
      this.write(
        own === undefined ? `["${CONTRACT}"]` : `["${CONTRACT}",${encodeView(own).slice(1)}`,
      );
    } else {
      this.#settleReady?.();
    }
  }

  #watch(session: WireSession): void {
    session.outgoing.onClose(() => {
      if (session !== this.#live) return;
      if (this.#canSuspend()) this.#pause();
      else this.#stopWriting();
    });
  }

  /** A lost connection would suspend the session rather than end it. */
  #canSuspend(): boolean {
    return (
      this.#log !== undefined &&
      !this.#awaitSession &&
      this.#endError === undefined &&
      // A goodbye resumes too until it is known to be complete: the initiator (`#closing`)
      // knows once the answer arrived; the peer that answered, once the initiator closed
      // the connection cleanly (see #read), since its answer may have been lost.
      !(this.#closing && this.#byeReceived) &&
      this.#rare?.shuttingDown !== true &&
      !this.#failed
    );
  }

  // ------------------------------------------------------------------ the API

  channel<In, Out = In>(
    name: string,
    options: NetworkChannelOptions<In, Out> = {},
  ): NetworkChannel<In, Out> {
    if (typeof name !== 'string') {
      throw new TypeError(`Expected name to be a non-empty string, got ${describeValue(name)}`);
    }
    if (name === '') throw new RangeError(`Expected name to be a non-empty string, got ''`);
    if (name.length > this.#settings.maxNameLength) {
      throw new RangeError(
        `Expected name to be at most ${String(this.#settings.maxNameLength)} characters long (maxNameLength), got one of ${String(name.length)}`,
      );
    }
    if (typeof options !== 'object' || (options as unknown) === null) {
      throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
    }
    const capacity = checkCapacity(options.capacity);
    const maxInFlight =
      checkPositive('maxInFlight', options.maxInFlight, true) ?? this.#settings.maxInFlight;
    const onUndelivered: unknown = options.onUndelivered;
    if (onUndelivered !== undefined && typeof onUndelivered !== 'function') {
      throw new TypeError(
        `Expected onUndelivered to be a function or undefined, got ${describeValue(onUndelivered)}`,
      );
    }
    const schema: unknown = options.schema;
    if (schema !== undefined && !isSchema(schema)) {
      throw new TypeError(
        `Expected schema to be a Standard Schema (an object with '~standard'.validate) or undefined, got ${describeValue(schema)}`,
      );
    }
    if (this.#outboundByName.get(name)?.attached === true) {
      throw new RangeError(
        `Expected the name of a channel not yet opened on this session, got ${describeValue(name)}`,
      );
    }
    const id = this.#inbound.length;
    const inbound = new Inbound<In>(this, id, name, capacity, options.schema);
    this.#inbound = appended(this.#inbound, inbound as Inbound<unknown>);
    let outbound = this.#outboundByName.get(name) as Outbound<Out> | undefined;
    if (outbound === undefined) {
      outbound = new Outbound<Out>(this, name);
      this.#outboundByName.set(name, outbound as Outbound<unknown>);
    } else if (outbound.peerOpened) {
      this.#peerOnly--;
    }
    outbound.attach(options.onUndelivered, maxInFlight);
    const ended = this.#endError;
    if (ended !== undefined) {
      inbound.lost(ended);
      outbound.lost(ended);
    } else {
      this.write(
        `["${OPEN}",${id},${JSON.stringify(name)},${capacity === Infinity ? 'null' : String(capacity)}]`,
      );
      const onUnopened = this.#settings.onUnopened;
      if (
        onUnopened !== undefined &&
        !outbound.peerOpened &&
        this.#settings.openTimeout !== Infinity
      ) {
        const timer = setTimeout(() => {
          this.#unopened?.delete(name);
          onUnopened(name);
        }, this.#settings.openTimeout);
        (this.#r().unopened ??= new Map()).set(name, timer);
      }
    }
    return Object.freeze({ name, incoming: inbound.facade, outgoing: outbound.facade });
  }

  close(code?: number, reason?: string): Promise<CloseReason> {
    if (this.#closing) return this.closed;
    if (!this.#stopped) checkCloseArguments(code ?? 1000, reason ?? '');
    return this.goAway(code, reason);
  }

  /**
   * `close` without checking the code: the server's shutdown says goodbye with 1001,
   * which its session may send (see {@link goAway}).
   */
  goAway(code: number | undefined, reason: string | undefined): Promise<CloseReason> {
    if (this.#closing) return this.closed;
    if (this.#stopped) {
      // The peer's bye was answered (or the connection is ending): nothing to wait for.
      void this.#session.close(code, reason);
      return this.closed;
    }
    const rare = this.#r();
    rare.closing = true;
    rare.closeCode = code;
    rare.closeReason = reason;
    // Suspended: the goodbye runs on the connection the session resumes on (or the
    // session expires when its window passes).
    if (!this.#suspended) this.#goodbye();
    return this.closed;
  }

  /**
   * The server's shutdown: a live session says goodbye (1001); a suspended one cannot
   * resume on a server that is going away, so it expires now.
   */
  shutdown(code: number, reason: string): Promise<CloseReason> {
    // Nothing resumes on a server going away: a connection lost now ends the session.
    this.#r().shuttingDown = true;
    this.onShutdown?.();
    if (this.#suspended && this.#endError === undefined) {
      this.expire(
        new SessionExpiredError(
          'The server shut down while the session waited to resume',
          this.#r().lastReason,
        ),
      );
      return this.closed;
    }
    return this.goAway(code, reason);
  }

  /** Everything written so far, the acks of every value taken, then the bye. */
  #goodbye(): void {
    const sent = this.#sayBye();
    if (!sent || this.#settings.byeTimeout === 0) this.#closeSession();
    else
      this.#r().byeTimer = setTimeout(
        ChannelSessionImpl.#closeSessionOf,
        this.#settings.byeTimeout,
        this,
      );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ Link

  get writable(): boolean {
    return !this.#stopped;
  }

  get congested(): boolean {
    return this.#queued > 0 || this.#logFull || this.#suspended;
  }

  get resumes(): number {
    return this.#rare?.resumes ?? 0;
  }

  get received(): number {
    return this.#received;
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  get ended(): boolean {
    return this.#endError !== undefined;
  }

  get replayBytes(): number {
    return this.#log?.bytes ?? 0;
  }

  detach(): void {
    if (this.#suspended || this.#endError !== undefined) return;
    const old = this.#session;
    this.#pause();
    this.#r().lastReason = { code: 1006, reason: 'Replaced by a new connection', wasClean: false };
    // Its frames are no longer read, its close is ignored.
    this.#live = undefined;
    old.terminate();
  }

  attach(
    session: WireSession,
    peerReceived: number,
    leftover: readonly Frame[],
    answer: boolean,
  ): string | undefined {
    const log = this.#log;
    if (log === undefined || !this.#suspended || this.#endError !== undefined) {
      return 'The session cannot resume';
    }
    if (!log.confirm(peerReceived)) {
      return `Expected a received count from ${String(log.confirmed)} to ${String(log.end)} (the frames sent), got ${String(peerReceived)}`;
    }
    this.#session = session;
    this.#live = session;
    taken.set(session, this);
    const rare = this.#r();
    rare.suspended = false;
    this.#queued = 0;
    rare.resumes++;
    this.#watch(session);
    if (answer) this.#send(`["${RESUMED}",${String(this.#received)}]`);
    this.#confirmed = this.#received;
    this.#receivedChars = 0;
    for (const frame of log.frames()) {
      if (typeof frame === 'string') this.#send(frame);
      else this.#sendBinary(frame);
    }
    rare.logFull = log.bytes > this.#settings.maxReplayBytes;
    for (const inbound of this.#inbound) inbound.thaw();
    if (this.#closing && !this.#byeSent) {
      // The application closed while the connection was lost: the goodbye, now.
      this.#goodbye();
    } else if (this.#closing) {
      // The bye went out again with the log: wait for the answer as before.
      this.#r().byeTimer = setTimeout(
        ChannelSessionImpl.#closeSessionOf,
        this.#settings.byeTimeout,
        this,
      );
    } else {
      this.#decongested();
    }
    this.#read(session, leftover);
    return undefined;
  }

  expire(error: SessionExpiredError): void {
    if (this.#endError !== undefined) return;
    this.#end(this.#r().lastReason, error);
  }

  get bytes(): boolean | undefined {
    return this.#greeted ? this.#version >= 3 : undefined;
  }

  bytesRefused(value: unknown): Error {
    const why =
      this.#ownVersion < 3
        ? "this end's session carries text only (make it with the raw() codec)"
        : 'the peer speaks protocol version 2';
    return new EncodeError(
      `Expected a value that JSON can encode, got a Uint8Array: bytes travel as binary messages, from protocol version 3 on, and ${why}`,
      value,
    );
  }

  writeBytes(id: number, bytes: Uint8Array): boolean {
    if (this.#stopped) return false;
    const message = encodeBinaryMessage(id, bytes);
    // A binary message is one frame of the resume layer: numbered, logged, replayed.
    if (this.#log !== undefined && this.#logged(message)) return true;
    return this.#sendBinary(message);
  }

  /**
   * The text frames written before `message` go first: order holds across both kinds
   * (forced: values leave only while not congested, but pending frames must never be
   * overtaken); then the binary message, on its own.
   */
  #sendBinary(message: Uint8Array<ArrayBuffer>): boolean {
    if (!this.#sendPending(true)) return false;
    return this.#deliver(message);
  }

  sentDirectly(): Promise<void> {
    if (++this.#direct < YIELD_EVERY) return RESOLVED;
    this.#direct = 0;
    return nextMacrotask();
  }

  write(frame: string): boolean {
    if (this.#stopped) return false;
    if (this.#log !== undefined && this.#logged(frame)) return true;
    return this.#send(frame);
  }

  /**
   * Keeps a frame (text, or a binary message) in the replay log; `true` if the session is
   * suspended (it goes out from the log on a resume, not now).
   */
  #logged(frame: Frame): boolean {
    const log = this.#log as ReplayLog;
    log.push(frame);
    if (this.#suspended) return true;
    if (!this.#logFull && log.bytes > this.#settings.maxReplayBytes) {
      // The peer confirms too little: values wait until it does (never unbounded).
      this.#r().logFull = true;
      for (const outbound of this.#outboundByName.values()) outbound.stopWriting();
    }
    return false;
  }

  /** Hands a frame to the connection (batched), without logging it. */
  #send(frame: string): boolean {
    (this.#pending ??= []).push(frame);
    if (this.#queued > 0) {
      // Congested: everything waits for the batch the session has not taken yet. What can
      // be written meanwhile is bounded: values wait in their channels, acks in `#dirty`.
      this.#pendingChars += frame.length;
      return true;
    }
    if (!this.#batchScheduled) {
      // The first frame of a macrotask leaves at once (a lone send, an ack, a rendezvous
      // pull or value: no added latency); those after it wait for the end of the
      // macrotask. Measured: +25–35 % at capacity 64 and for rendezvous round trips over
      // batching every frame, the same at capacity 16.
      this.#batchScheduled = true;
      afterMacrotask(ChannelSessionImpl.#endBatchOf, this);
      return this.#sendPending();
    }
    this.#pendingChars += frame.length;
    if (this.#pendingChars >= BATCH_CHARS) this.#sendPending();
    return true;
  }

  flush(): boolean {
    if (this.#stopped) return false;
    if (this.#suspended) return true;
    return this.#sendPending(true);
  }

  violation(message: string): void {
    this.#fail(new ProtocolError(message), 1002, message);
  }

  invalid(error: Error, reason: string): void {
    this.#fail(error, 1007, reason);
  }

  broken(error: Error): void {
    this.#fail(error, 1011, 'Internal error');
  }

  scheduleAck(source: AckSource, urgent: boolean): void {
    if (!source.ackQueued) {
      source.ackQueued = true;
      (this.#dirty ??= []).push(source);
    }
    if (this.#microtaskQueued) return;
    if (urgent) {
      this.#microtaskQueued = true;
      queueMicrotask(
        (this.#flush ??= () => {
          this.#flushAcks();
        }),
      );
    } else if (!this.#batchScheduled) {
      this.#batchScheduled = true;
      afterMacrotask(ChannelSessionImpl.#endBatchOf, this);
    }
  }

  // ------------------------------------------------------------------ internals

  /**
   * Sends the acks due, the pending frames and `bye`, then stops writing: nothing more
   * may be taken whose ack could not be sent. `false` if the session refused the frames.
   */
  #sayBye(): boolean {
    this.#flushAllAcks();
    this.#r().byeSent = true;
    const sent = this.write(`["${BYE}"]`) && this.flush();
    this.#stopWriting();
    return sent;
  }

  /** Writes the acks due; while congested they wait (cumulative: one per channel in the end). */
  #flushAcks(force = false): void {
    this.#microtaskQueued = false;
    if (this.#queued > 0 && !force) return;
    const dirty = this.#dirty;
    if (dirty === undefined) return;
    // Acks scheduled while these are flushed go to a new list, for a later flush.
    this.#dirty = undefined;
    for (const source of dirty) source.flushAck();
  }

  /**
   * Acks still waiting for their batch (or timer) go out now, before this end stops
   * writing: the peer then counts those values as delivered instead of reporting them to
   * its onUndelivered.
   */
  #flushAllAcks(): void {
    this.#flushAcks(true);
    for (const inbound of this.#inbound) inbound.flushAck();
  }

  /**
   * Sends the pending frames as one message, LF-separated; `false` if the session no
   * longer takes messages (the frames are dropped: see the module note for what that
   * means for each frame type). When the session cannot take the message now (at its
   * high-water mark), it goes through the session's queued `send` and this end is
   * congested until the session has taken it; meanwhile the frames stay pending, unless
   * `force` (a `closed`, the `bye`, a failure: they must reach the session now, and each
   * happens at most once per channel or connection).
   */
  #sendPending(force = false): boolean {
    const pending = this.#pending;
    if (pending === undefined) return true;
    if (this.#suspended) {
      // Logged already: they go out again from the log on a resume.
      this.#pending = undefined;
      this.#pendingChars = 0;
      return true;
    }
    if (this.#queued > 0 && !force) return true;
    const message = pending.length === 1 ? (pending[0] as string) : pending.join('\n');
    this.#pending = undefined;
    this.#pendingChars = 0;
    return this.#deliver(message);
  }

  /**
   * Hands one message to the session: `trySend` when it takes it now, else its queued
   * `send`, and this end is congested until the session took it; `false` if the session
   * no longer takes messages.
   */
  #deliver(message: Frame): boolean {
    const outgoing = this.#session.outgoing;
    const result = outgoing.trySend(message);
    if (result.ok) return true;
    if (result.closed) return false;
    if (this.#queued++ === 0) {
      // Congested: no value leaves until the session took this batch (their sends wait).
      for (const outbound of this.#outboundByName.values()) outbound.stopWriting();
    }
    // A rejection means the session closed: #stopWriting and #end settle everything.
    outgoing.send(message).then(
      (this.#onBatchTaken ??= () => {
        this.#batchTaken();
      }),
      noop,
    );
    return true;
  }

  /** The session took the batch this end was waiting on: send what waited meanwhile. */
  #decongested(): void {
    if (this.#stopped || this.#suspended) return;
    this.#flushAcks();
    if (this.#pending !== undefined) {
      this.#sendPending();
      if (this.#queued > 0) return;
    }
    if (this.#logFull) return;
    for (const outbound of this.#outboundByName.values()) outbound.resume();
  }

  #fail(problem: Error, code: number, reason: string): void {
    if (this.#failed) return;
    const rare = this.#r();
    rare.failed = true;
    rare.problem = problem;
    this.#flushAllAcks();
    // Frames before the failure (those acks included) go out before the Close.
    this.#sendPending(true);
    const session = this.#session as WireSession & {
      closeWith?: (code: number, reason?: string) => Promise<CloseReason>;
    };
    const text = toCloseReason(reason);
    if (typeof session.closeWith === 'function') {
      void session.closeWith(code, text);
    } else {
      try {
        void session.close(code, text);
      } catch {
        // A session that refuses protocol codes (as browsers do): 4000 + (code − 1000).
        void session.close(code + 3000, text);
      }
    }
    this.#stopWriting();
  }

  /**
   * The connection is lost but the session may resume: values wait (as when congested),
   * frames written meanwhile go to the log only, the application still takes values (their
   * acks are logged and replayed).
   */
  #pause(): void {
    if (this.#suspended) return;
    this.#r().suspended = true;
    this.#pending = undefined;
    this.#pendingChars = 0;
    this.#clearRecvTimer();
    this.#clearByeTimer();
    for (const outbound of this.#outboundByName.values()) outbound.stopWriting();
    for (const inbound of this.#inbound) inbound.freeze();
  }

  #clearRecvTimer(): void {
    if (this.#recvTimer !== undefined) clearTimeout(this.#recvTimer);
    this.#recvTimer = undefined;
  }

  /** Tells the peer how many frames arrived, so that it drops them from its log. */
  #sendRecv(): void {
    this.#clearRecvTimer();
    if (this.#received === this.#confirmed || this.#stopped || this.#suspended) return;
    this.#confirmed = this.#received;
    this.#receivedChars = 0;
    this.#send(`["${RECV}",${String(this.#received)}]`);
  }

  /** After a message: confirm now when much arrived, else within {@link RECV_IDLE}. */
  #noteReceived(chars: number): void {
    if (this.#stopped || this.#suspended) return;
    this.#receivedChars += chars;
    if (this.#received - this.#confirmed >= RECV_EVERY || this.#receivedChars >= RECV_CHARS) {
      this.#sendRecv();
    } else if (this.#recvTimer === undefined && this.#received > this.#confirmed) {
      this.#recvTimer = setTimeout(ChannelSessionImpl.#recvIdle, RECV_IDLE, this);
    }
  }

  #stopWriting(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearRecvTimer();
    // Only the peer's Close or a lost connection gets here with frames pending (close()
    // and #fail sent them): the session would refuse them. Dropped deliberately: the values
    // among them are retained and reported by their outbound ends when the connection
    // ends; the acks are the window of docs/protocol.md section 7.
    this.#pending = undefined;
    this.#pendingChars = 0;
    for (const outbound of this.#outboundByName.values()) outbound.stopWriting();
    for (const inbound of this.#inbound) inbound.stopWriting();
  }

  /**
   * Starts reading `session`: the frames left over from the handshake first (a microtask
   * later, after the caller has set its hooks (onSession) and opened its channels), then
   * `incoming` until it ends, each message handled synchronously as it is taken; then the
   * connection's end ({@link #readEnded}). Runs no async frame: see {@link Reader}.
   */
  #read(session: WireSession, leftover: readonly Frame[]): void {
    const reader = new Reader(this, session);
    if (leftover.length === 0) {
      this.#readOn(reader, undefined);
      return;
    }
    void Promise.resolve().then(() => {
      for (const frame of leftover) {
        if (this.#failed) break;
        this.#guarded(frame);
      }
      if (this.#log !== undefined) this.#noteReceived(0);
      this.#readOn(reader, undefined);
    });
  }

  /**
   * The read loop: takes what `incoming` holds (after `handed`, what the parked reader
   * got), parks the reader when it is empty, and at its end waits for the connection's
   * `closed`. Messages read after the connection was replaced (a resume) are dropped;
   * after a failure they are taken and ignored.
   */
  #readOn(reader: Reader, handed: ReceiveResult<Frame> | undefined): void {
    const session = reader.session;
    const incoming = session.incoming;
    let result = handed;
    for (;;) {
      if (result === undefined) {
        result = incoming.tryReceive();
        if (!result.ok && !result.closed) {
          reader.park(incoming);
          return;
        }
      }
      if (!result.ok) break;
      if (session !== this.#live) return;
      if (!this.#failed) {
        const value = result.value;
        this.#guarded(value);
        if (this.#log !== undefined) {
          this.#noteReceived(typeof value === 'string' ? value.length : value.byteLength);
        }
      }
      result = undefined;
    }
    void session.closed.then((reason) => {
      this.#readEnded(session, reason);
    });
  }

  /** `session` was read to its end and closed with `reason`: suspend, or end. */
  #readEnded(session: WireSession, reason: CloseReason): void {
    if (session !== this.#live) return;
    this.#r().lastReason = reason;
    const answered = this.#byeReceived && !this.#closing;
    if (
      this.#canSuspend() &&
      !endsSession(reason.code) &&
      !(answered && reason.wasClean) &&
      this.onSuspend !== undefined
    ) {
      this.#pause();
      this.onSuspend(reason);
      return;
    }
    let expired: SessionExpiredError | undefined;
    if (this.#log !== undefined && this.#awaitSession && this.#endError === undefined) {
      // The server made a resumable session whose token never arrived: it expires there
      // (its window), so it ends here as an expiry too, with the same accounting.
      expired = new SessionExpiredError(
        "The connection was lost before the server's resume token arrived: the session cannot resume",
        reason,
      );
    } else if (
      this.#log !== undefined &&
      this.#settings.side === 'client' &&
      reason.code === 1001
    ) {
      expired = new SessionExpiredError(
        'The server went away (1001): the session cannot resume there',
        reason,
      );
    }
    this.#end(reason, expired);
  }

  #guarded(message: unknown): void {
    try {
      this.#message(message);
    } catch (error) {
      // A bug of ours, never the peer's: fail this connection, not the process.
      this.broken(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #end(reason: CloseReason, expired?: SessionExpiredError): void {
    this.#clearByeTimer();
    this.#stopWriting();
    this.#flushAcks(true);
    const rare = this.#r();
    const problem = rare.problem;
    const error =
      expired ??
      new ConnectionLostError(reason, problem === undefined ? undefined : { cause: problem });
    rare.endError = error;
    this.onEnd?.(reason);
    const unopened = this.#unopened;
    if (unopened !== undefined) {
      for (const timer of unopened.values()) clearTimeout(timer);
      unopened.clear();
    }
    this.#settleReady?.(problem instanceof ContractMismatchError ? problem : error);
    for (const inbound of this.#inbound) inbound.lost(error);
    for (const outbound of this.#outboundByName.values()) outbound.lost(error);
    this.#resolveClosed(reason);
  }

  /** One message: its frames in order, none after one that failed the connection. */
  #message(message: unknown): void {
    if (message instanceof Uint8Array) {
      this.#binary(message as Uint8Array<ArrayBuffer>);
      return;
    }
    if (typeof message !== 'string' || !message.includes('\n')) {
      this.#frame(message);
      return;
    }
    for (const frame of message.split('\n')) {
      this.#frame(frame);
      if (this.#failed) return;
    }
  }

  /** A binary message: one value's bytes (version 3), `["b",id]`, a line feed, the bytes. */
  #binary(data: Uint8Array<ArrayBuffer>): void {
    if (!this.#greeted) {
      this.violation(
        `Expected the hello frame ["${PROTOCOL_NAME}",${String(this.#ownVersion)}] first, got a binary message`,
      );
      return;
    }
    if (this.#version < 3) {
      const message = `Expected text messages (protocol version ${String(this.#version)}), got a binary message`;
      this.#fail(new ProtocolError(message), 1003, message);
      return;
    }
    if (this.#awaitSession) {
      this.violation(
        `Expected ["${SESSION}", token] or ["${SESSION}"] after ["${RESUME}"], got a binary message`,
      );
      return;
    }
    // A frame of the resume layer like any other: counted (and confirmed by `recv`).
    if (this.#log !== undefined) this.#received++;
    const decoded = decodeBinaryMessage(data);
    if (typeof decoded === 'string') {
      this.violation(decoded);
      return;
    }
    const inbound = this.#inboundAt(decoded.id);
    if (inbound === undefined) {
      this.violation(
        `Received a binary message for channel id ${String(decoded.id)}, which was not announced`,
      );
      return;
    }
    const error = inbound.value(decoded.bytes);
    if (error !== undefined) this.violation(error);
  }

  #frame(text: unknown): void {
    if (typeof text !== 'string') {
      this.violation(`Expected text frames, got ${describeValue(text)} (${TEXT_SESSION})`);
      return;
    }
    if (text === '') {
      this.violation(
        'Expected a frame, got an empty one (a message must not be empty, start or end with a line feed, or hold two in a row)',
      );
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.violation('Expected a frame of JSON, got text that is not JSON');
      return;
    }
    if (!Array.isArray(frame) || typeof frame[0] !== 'string') {
      const hint =
        typeof frame === 'string' && frame.startsWith('[')
          ? ' (is the peer using the json() codec instead of text()?)'
          : '';
      this.violation(`Expected a frame to be a JSON array starting with its type${hint}`);
      return;
    }
    const items = frame as unknown[];
    const type = items[0] as string;
    const length = items.length;
    if (!this.#greeted) {
      const version = items[1];
      if (type !== PROTOCOL_NAME || length !== 2) {
        this.violation(
          `Expected the hello frame ["${PROTOCOL_NAME}",${String(this.#ownVersion)}] first`,
        );
      } else if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
        this.violation(`Expected protocol version 1 or higher in the hello frame`);
      } else {
        // A later version speaks the peer's when its peer announces a lower one.
        this.#greet(version);
      }
      return;
    }
    if (this.#awaitSession) {
      this.#r().awaitSession = false;
      const token = items[1];
      if (
        type !== SESSION ||
        (length === 2 && !(typeof token === 'string' && token !== '' && token.length <= 64)) ||
        (length !== 1 && length !== 2)
      ) {
        this.violation(`Expected ["${SESSION}", token] or ["${SESSION}"] after ["${RESUME}"]`);
        return;
      }
      if (length === 1) this.#log = undefined;
      this.onSession?.(length === 1 ? undefined : (token as string));
      return;
    }
    if (this.#log !== undefined) {
      if (type === RECV) {
        const count = items[1];
        if (length !== 2 || !isCount(count)) {
          this.violation(`Received a malformed '${RECV}' frame`);
        } else if (!this.#log.confirm(count)) {
          this.violation(
            `Received a '${RECV}' of ${String(count)} frames, expected ${String(this.#log.confirmed)} to ${String(this.#log.end)} (the frames sent)`,
          );
        } else if (this.#logFull && this.#log.bytes <= this.#settings.maxReplayBytes) {
          this.#r().logFull = false;
          this.#decongested();
        }
        return;
      }
      this.#received++;
    }
    let error: string | undefined;
    switch (type) {
      case VALUE: {
        const inbound = this.#inboundAt(items[1]);
        if (inbound === undefined || (length !== 2 && length !== 3)) break;
        error = inbound.value(items[2]);
        if (error !== undefined) this.violation(error);
        return;
      }
      case ACK: {
        const outbound = this.#outboundAt(items[1]);
        const count = items[2];
        if (outbound === undefined || length !== 3 || !isCount(count)) break;
        if (!outbound.ack(count))
          this.violation(`Received an invalid ack for channel '${outbound.name}'`);
        return;
      }
      case PULL: {
        const outbound = this.#outboundAt(items[1]);
        const limit = items[2];
        if (outbound === undefined || length !== 3 || !isCount(limit)) break;
        if (!outbound.pull(limit))
          this.violation(`Received an invalid pull for channel '${outbound.name}'`);
        return;
      }
      case OPEN: {
        const id = items[1];
        const name = items[2];
        const capacity = items[3];
        if (
          length !== 4 ||
          id !== this.#outboundById.length ||
          typeof name !== 'string' ||
          name === '' ||
          !(capacity === null || isCount(capacity))
        ) {
          break;
        }
        if (name.length > this.#settings.maxNameLength) {
          this.violation(
            `Received an open of a name of ${String(name.length)} characters, beyond maxNameLength (${String(this.#settings.maxNameLength)})`,
          );
          return;
        }
        let outbound = this.#outboundByName.get(name);
        if (outbound?.peerOpened === true) {
          this.violation(`Received a second open for channel '${name}'`);
          return;
        }
        if (outbound === undefined) {
          if (this.#peerOnly >= this.#settings.maxChannels) {
            this.violation(
              `Received an open of channel '${name}' beyond maxChannels (${String(this.#settings.maxChannels)} names opened by the peer alone)`,
            );
            return;
          }
          this.#peerOnly++;
          outbound = new Outbound<unknown>(this, name);
          this.#outboundByName.set(name, outbound);
        }
        this.#outboundById = appended(this.#outboundById, outbound);
        const timer = this.#unopened?.get(name);
        if (timer !== undefined) {
          clearTimeout(timer);
          this.#unopened?.delete(name);
        }
        outbound.open(id, capacity === null ? Infinity : capacity);
        return;
      }
      case CLOSE: {
        const inbound = this.#inboundAt(items[1]);
        if (inbound === undefined || (length !== 2 && length !== 3)) break;
        if (length === 3 && isCauseTooLong(items[2], text.length)) {
          this.violation(
            `Received a close cause for channel '${inbound.name}' longer than ${String(MAX_CAUSE_LENGTH)} characters of JSON`,
          );
          return;
        }
        error = inbound.close(length === 3, items[2]);
        if (error !== undefined) this.violation(error);
        return;
      }
      case CLOSED: {
        const outbound = this.#outboundAt(items[1]);
        if (outbound === undefined || length !== 2) break;
        if (!outbound.closed())
          this.violation(`Received 'closed' for channel '${outbound.name}', which was not closed`);
        return;
      }
      case CANCEL: {
        const outbound = this.#outboundAt(items[1]);
        const count = items[2];
        if (outbound === undefined || length !== 4 || !isCount(count)) break;
        if (isCauseTooLong(items[3], text.length)) {
          this.violation(
            `Received a cancel reason for channel '${outbound.name}' longer than ${String(MAX_CAUSE_LENGTH)} characters of JSON`,
          );
          return;
        }
        if (!outbound.cancel(count, items[3]))
          this.violation(`Received an invalid cancel for channel '${outbound.name}'`);
        return;
      }
      case WITHDRAW: {
        const inbound = this.#inboundAt(items[1]);
        const seq = items[2];
        if (inbound === undefined || length !== 3 || !isCount(seq)) break;
        error = inbound.withdraw(seq);
        if (error !== undefined) this.violation(error);
        return;
      }
      case CONTRACT: {
        if (this.#version < 2 || this.#contractReceived || (length !== 1 && length !== 4)) break;
        this.#contractReceived = true;
        this.#peerContract(length === 1 ? null : parseView(items[1], items[2], items[3]));
        return;
      }
      case BYE: {
        if (length !== 1) break;
        if (this.#byeReceived) {
          this.violation(`Received a second '${BYE}'`);
          return;
        }
        this.#r().byeReceived = true;
        // This end's own bye went first (its close, or both closing at once): this is the
        // answer, and the initiator closes the WebSocket. Else answer after the acks.
        if (this.#closing) this.#closeSession();
        else if (!this.#byeSent) this.#sayBye();
        return;
      }
      case WITHDRAWN: {
        const outbound = this.#outboundAt(items[1]);
        const seq = items[2];
        if (outbound === undefined || length !== 3 || !isCount(seq)) break;
        if (!outbound.withdrawn(seq))
          this.violation(`Received an invalid withdrawn for channel '${outbound.name}'`);
        return;
      }
      default:
        this.violation(`Received a frame of unknown type ${describeValue(type)}`);
        return;
    }
    this.violation(`Received a malformed '${type}' frame`);
  }

  /** The peer's `contract` frame (`null`: it declared none; `undefined`: malformed). */
  #peerContract(peer: ContractView | null | undefined): void {
    if (peer === undefined) {
      this.violation(`Received a malformed '${CONTRACT}' frame`);
      return;
    }
    if (peer !== null && peer.sends.size > this.#settings.maxChannels) {
      this.violation(
        `Received a contract of ${String(peer.sends.size)} channels, beyond maxChannels (${String(this.#settings.maxChannels)})`,
      );
      return;
    }
    const own = this.#settings.contract;
    const difference = own === undefined || peer === null ? undefined : compareViews(own, peer);
    if (difference === undefined) {
      this.#settleReady?.();
      return;
    }
    const [message, channel] = difference;
    const error = new ContractMismatchError(message, channel);
    this.#settleReady?.(error);
    this.#fail(error, 1008, message);
  }

  #inboundAt(id: unknown): Inbound<unknown> | undefined {
    return isCount(id) ? this.#inbound[id] : undefined;
  }

  #outboundAt(id: unknown): Outbound<unknown> | undefined {
    return isCount(id) ? this.#outboundById[id] : undefined;
  }
}

function checkSession(session: unknown): asserts session is WireSession {
  const ok =
    typeof session === 'object' &&
    session !== null &&
    typeof Reflect.get(session, 'incoming') === 'object' &&
    typeof Reflect.get(session, 'outgoing') === 'object' &&
    typeof Reflect.get(session, 'close') === 'function' &&
    Reflect.get(session, 'closed') instanceof Promise;
  if (!ok) {
    throw new TypeError(
      `Expected a session (with incoming, outgoing, closed and close), got ${describeValue(session)}`,
    );
  }
}

/** What to do when `channels()` gets a session made with neither `raw()` nor `text()`. */
const TEXT_SESSION =
  'channels() needs a session made with the raw() codec (or text(), without binary values): route({ codec: raw(), handler }) on the server, connect(url, { codec: raw() }) on the client';

/**
 * A compile-time hint, not a value: the extra requirement {@link channels} puts on a
 * session that neither receives only `string`s and `Uint8Array`s nor sends `string`s (a
 * session made with neither the `raw()` nor the `text()` codec, typically the default
 * `json()`). The compiler then reports the missing property, whose name says what to do,
 * instead of a bare mismatch between session types.
 */
export type TextSessionHint<In, Out> = [In] extends [string | Uint8Array]
  ? [string] extends [Out]
    ? unknown
    : TextSessionFix
  : TextSessionFix;

/** The missing property of {@link TextSessionHint}: its name says what to do. */
export type TextSessionFix = {
  /** Never present: its name is the message. */
  readonly 'channels() needs a session made with the raw() codec (or text(), without binary values): route({ codec: raw(), handler }) on the server, connect(url, { codec: raw() }) on the client': true;
};

/** Throws what {@link channels} documents for a bad option. */
function checkChannelOptions(options: ChannelSessionOptions): void {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const sendStacks: unknown = options.sendStacks;
  if (sendStacks !== undefined && typeof sendStacks !== 'boolean') {
    throw new TypeError(
      `Expected sendStacks to be a boolean or undefined, got ${describeValue(sendStacks)}`,
    );
  }
  const maxChannels: unknown = options.maxChannels;
  if (maxChannels !== undefined) {
    if (typeof maxChannels !== 'number') {
      throw new TypeError(
        `Expected maxChannels to be a non-negative integer, Infinity or undefined, got ${describeValue(maxChannels)}`,
      );
    }
    if (maxChannels !== Infinity && !(Number.isSafeInteger(maxChannels) && maxChannels >= 0)) {
      throw new RangeError(
        `Expected maxChannels to be a non-negative integer, Infinity or undefined, got ${String(maxChannels)}`,
      );
    }
  }
  const byeTimeout: unknown = options.byeTimeout;
  if (byeTimeout !== undefined) {
    if (typeof byeTimeout !== 'number') {
      throw new TypeError(
        `Expected byeTimeout to be a number of milliseconds from 0 to ${String(MAX_TIMEOUT)} or undefined, got ${describeValue(byeTimeout)}`,
      );
    }
    if (!(byeTimeout >= 0 && byeTimeout <= MAX_TIMEOUT)) {
      throw new RangeError(
        `Expected byeTimeout to be a number of milliseconds from 0 to ${String(MAX_TIMEOUT)} or undefined, got ${String(byeTimeout)}`,
      );
    }
  }
  const onUnopened: unknown = options.onUnopened;
  if (onUnopened !== undefined && typeof onUnopened !== 'function') {
    throw new TypeError(
      `Expected onUnopened to be a function or undefined, got ${describeValue(onUnopened)}`,
    );
  }
  const openTimeout: unknown = options.openTimeout;
  if (
    openTimeout !== undefined &&
    !(
      typeof openTimeout === 'number' &&
      openTimeout >= 0 &&
      (openTimeout <= MAX_TIMEOUT || openTimeout === Infinity)
    )
  ) {
    throw new RangeError(
      `Expected openTimeout to be a number of milliseconds from 0 to ${String(MAX_TIMEOUT)}, Infinity or undefined, got ${describeValue(openTimeout)}`,
    );
  }
  const side: unknown = options.side;
  if (side !== undefined && side !== 'server' && side !== 'client') {
    throw new TypeError(
      `Expected side to be 'server', 'client' or undefined, got ${describeValue(side)}`,
    );
  }
  // No Infinity: the names a peer opens are held here, and their length must be bounded.
  checkPositive('maxNameLength', options.maxNameLength, false);
  checkPositive('maxInFlight', options.maxInFlight, true);
}

/**
 * Turns a session between two sluice ends into a {@link ChannelSession}: any number of
 * named, independently typed channels over the one connection, each behaving like a local
 * `Channel` of the capacity its receiving end chose — `send` waits for room on the other
 * machine, a rendezvous `send` resolves when the peer's application took the value, close
 * causes and cancel reasons cross the wire, and every value is either received by the
 * peer's application or handed to this end's `onUndelivered`, once.
 *
 * The session must use the `raw()` codec (`connect(url, { codec: raw() })`,
 * `wrap(socket, { codec: raw() })`, or a `sluice/server` route with `codec: raw()`; a
 * `channelEndpoint` picks it for you): values then travel as JSON in text messages, and a
 * `Uint8Array` value as its bytes in a binary message (protocol version 3). A session
 * made with `text()` works too, but announces protocol version 2 (text only): sending a
 * `Uint8Array` on its channels rejects with an `EncodeError`, as it does when the peer
 * speaks version 2. A session typed otherwise (`connect(url)` or a route without a codec:
 * `json()`) does not compile, with {@link TextSessionHint} naming the fix; one forced
 * through with a cast fails at the first message with 1002 and a `ProtocolError` saying
 * the same. And
 * the peer must speak the same protocol (docs/protocol.md). `channels` takes the session
 * over: do not use its `incoming` or `outgoing` any more. A peer that breaks the protocol
 * (or opens more than `maxChannels` names this end has not opened) gets the connection
 * closed with 1002; every channel then ends with a `ConnectionLostError` whose `cause` is
 * a `ProtocolError`. A value failing a channel's schema closes it with 1007 (cause: a
 * `DecodeError`), a schema that returns no Standard Schema result or an internal error
 * with 1011.
 *
 * @throws TypeError if `session` is not a session, was already taken over by `channels`,
 *   or an option has the wrong type.
 * @throws RangeError if `maxChannels` is negative, NaN or a non-integer other than
 *   `Infinity`.
 * @throws RangeError if `byeTimeout` is negative, NaN or above 2147483647.
 * @throws RangeError if `maxNameLength` is not a positive integer, or `maxInFlight` not a
 *   positive integer or `Infinity`.
 * @example
 * ```ts
 * const network = channels(await connect(url, { codec: raw() }));
 * const chat = network.channel<string>('chat', { capacity: 8 });
 * await chat.outgoing.send('hello');
 * console.log(await chat.incoming.receive());
 * await network.close();
 * ```
 */
export function channels<In = string, Out = string>(
  textSession: Session<In, Out> & TextSessionHint<In, Out>,
  options: ChannelSessionOptions = {},
): ChannelSession {
  const session = textSession as unknown as WireSession;
  checkSession(session);
  checkChannelOptions(options);
  if (taken.has(session)) {
    throw new TypeError('Expected a session not yet taken over by channels(), got one that was');
  }
  const network = new ChannelSessionImpl(session, options);
  taken.set(session, network);
  return network;
}

/**
 * A channel session over `session` after the resume handshake (handshake.ts) has run:
 * no hello is sent or expected; resumable when `greeting.resumable`. Internal: the
 * endpoints use it; not exported by any entry point.
 */
export function resumableChannels(
  session: WireSession,
  options: ChannelSessionOptions,
  greeting: Greeting,
): ResumableSession {
  checkChannelOptions(options);
  const network = new ChannelSessionImpl(session, options, greeting);
  taken.set(session, network);
  return network;
}

/**
 * If `channels()` took `session` over: starts its goodbye handshake (docs/protocol.md
 * section 7), closing the WebSocket with `code` and `reason` on the peer's answer or after
 * `byeTimeout`, and returns the channel session's `closed`; else `undefined`. The server's
 * shutdown (1001) calls it so that every value is accounted once. `code` is not checked:
 * the caller's session must accept it. Internal: not exported by any entry point.
 */
export function goAway(
  session: object,
  code: number,
  reason: string,
): Promise<CloseReason> | undefined {
  return taken.get(session)?.shutdown(code, reason);
}

// Where the runtime lacks `Symbol.asyncDispose`, the method above landed under the key
// 'undefined': remove it rather than expose a bogus method.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(ChannelSessionImpl.prototype, 'undefined');
}
