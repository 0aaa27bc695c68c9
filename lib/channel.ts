/**
 * `Channel<T>`: a Kotlin/Go-style channel — rendezvous, bounded, unlimited or conflated —
 * with exactly-once delivery: every value given to it is either received by exactly one
 * receiver or handed to `onUndelivered` exactly once.
 *
 * ## Algorithm
 * The state is a buffer (a ring deque, allocated on first use) and one FIFO list of
 * waiters (suspended receivers or suspended senders). Invariant: receivers wait only
 * when the buffer is empty and no sender waits; senders wait only when the buffer is
 * full (for a rendezvous channel, always full) and no receiver waits — so the list never
 * holds both kinds, and its head's kind tells which it holds. Every operation runs synchronously to
 * completion — JavaScript has no preemption — so handing a value to a waiter and
 * resolving its promise is one atomic step: once a promise is resolved, no abort,
 * close or cancel can take the value back, and an aborted waiter is unlinked (O(1)) in
 * the same step that rejects it, so it can never also receive a value. The abort
 * listener is removed whenever a waiter completes, so a long-lived `AbortSignal` never
 * accumulates listeners.
 *
 * @module
 */
import type {
  ChannelOptions,
  OverflowPolicy,
  ReceiveChannel,
  ReceiveIterator,
  ReceiveResult,
  SendChannel,
  SendResult,
  WaitOptions,
} from './channel-types.js';
import { ClosedReceiveError, ClosedSendError } from './errors.js';
import { Deque } from './internal/deque.js';
import { assertSignal, describeValue } from './internal/describe-value.js';
import { callReporting } from './internal/report.js';
import { newClause } from './internal/clauses.js';
import type { SelectClause } from './internal/clauses.js';
import {
  CATCHING,
  ITERATE,
  RECEIVE,
  SEND,
  Waiter,
  WaiterList,
  promiseFor,
} from './internal/waiter.js';
import type { WaiterKind } from './internal/waiter.js';
import { consumeChannel, consumeEachOf } from './internal/consume.js';

const OPEN = 0;
const CLOSED = 1;
const CANCELLED = 2;
type State = typeof OPEN | typeof CLOSED | typeof CANCELLED;

const SUSPEND = 0;
const DROP_OLDEST = 1;
const DROP_LATEST = 2;

const RESOLVED: Promise<void> = Promise.resolve();
const SEND_OK: SendResult = Object.freeze({ ok: true as const });
const SEND_FULL: SendResult = Object.freeze({ ok: false as const, closed: false });
const CLOSED_NORMALLY = Object.freeze({ ok: false as const, closed: true });
const EMPTY = Object.freeze({ ok: false as const, closed: false });
const ITERATION_DONE: IteratorReturnResult<undefined> = Object.freeze({
  done: true as const,
  value: undefined,
});

/**
 * Where the runtime lacks `Symbol.asyncDispose`, a method declared under that key lands
 * under the string key `'undefined'`; remove it rather than expose a bogus method.
 */
function dropUndefinedSymbolKey(prototype: object): void {
  if (typeof Symbol.asyncDispose !== 'symbol') {
    Reflect.deleteProperty(prototype, 'undefined');
  }
}

function validateCapacity(capacity: unknown): number {
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

function validateOverflow(overflow: unknown, capacity: number): number {
  if (overflow === undefined || overflow === 'suspend') return SUSPEND;
  if (overflow !== 'drop-oldest' && overflow !== 'drop-latest') {
    const message = `Expected overflow to be 'suspend', 'drop-oldest' or 'drop-latest', got ${describeValue(overflow)}`;
    throw typeof overflow === 'string' ? new RangeError(message) : new TypeError(message);
  }
  if (capacity === 0) {
    throw new RangeError(
      `Expected a capacity of at least 1 with overflow '${overflow}' (a rendezvous channel has no buffer to drop from), got 0`,
    );
  }
  return overflow === 'drop-oldest' ? DROP_OLDEST : DROP_LATEST;
}

/**
 * Hooks for `select` (not part of the public API; not re-exported by the package). A
 * select parks a waiter per clause with `enqueue` — only after checking with
 * `tryReceive`/`trySend` that the clause cannot complete now — and withdraws the others
 * with `dequeue` as soon as one completes. The channel completes a parked waiter exactly
 * as it does a plain `send`/`receive`, by calling its `resolve`/`reject`.
 */
export interface ChannelInternals {
  enqueue<T>(channel: Channel<T>, waiter: Waiter<T>): void;
  dequeue<T>(channel: Channel<T>, waiter: Waiter<T>): void;
  /**
   * Sets (or, with `null`, removes) a hook called synchronously right after a receiver
   * starts waiting on `channel` — `receive`, `receiveCatching`, an iterator's `next()`,
   * or a receive clause parked by `select`. Network channels use it to ask the peer for
   * a value. The hook must not operate on `channel` itself.
   */
  onReceiverWaits<T>(channel: Channel<T>, hook: (() => void) | null): void;
  /** How many receivers wait on `channel` now (a counter: O(1)). */
  waitingReceivers<T>(channel: Channel<T>): number;
  /** How many values `channel`'s buffer holds now (O(1)). */
  buffered<T>(channel: Channel<T>): number;
  /**
   * Sets (or, with `null`, removes) a hook called synchronously right after a receiver
   * took a value out of `channel`'s buffer — `receive`, `tryReceive`, an iterator's
   * `next()`, a receive clause of `select`. Sessions use it to see room made in
   * `incoming` (bounded in bytes). The hook must not operate on `channel` itself.
   */
  onTaken<T>(channel: Channel<T>, hook: (() => void) | null): void;
}

// Assigned in Channel's static block, which alone can reach its private state.
export let channelInternals: ChannelInternals = undefined as unknown as ChannelInternals;

// A channel's iteration steps (see ChannelValues), bound to its private members in its
// static block.
let PULL_CHANNEL: <T>(
  channel: Channel<T>,
  waiter: Waiter<unknown>,
  signal: AbortSignal | undefined,
) => Promise<unknown>;
let RELEASE_CHANNEL: <T>(channel: Channel<T>, waiter: Waiter<unknown>) => void;

/**
 * What most channels never set: the close cause and the hooks. A channel makes it when
 * first needed (closed with a cause, an `onClose` handler, an internal hook), so that an
 * open channel carries one field for all of them.
 */
class ChannelRare {
  cause: unknown = undefined;
  hasCause = false;
  closeHandlers: ((cause: unknown) => void)[] | null = null;
  /** See {@link ChannelInternals.onReceiverWaits}; `null` for every ordinary channel. */
  onReceiverWaits: (() => void) | null = null;
  /** See {@link ChannelInternals.onTaken}; `null` for every ordinary channel. */
  onTaken: (() => void) | null = null;
}

/**
 * A channel: a queue with suspending `send` and `receive`, close and cancel, and
 * exactly-once delivery.
 *
 * - `new Channel<T>()` — rendezvous (capacity 0): `send` resolves when a receiver took
 *   the value.
 * - `new Channel<T>(n)` — a buffer of `n` values; `send` waits while it is full.
 * - `new Channel<T>(Infinity)` — unlimited: `send` never waits.
 * - `new Channel<T>(1, { overflow: 'drop-oldest' })` — conflated: keeps the latest.
 * - `new Channel<T>(n, { onUndelivered })` — release values that are never received.
 *
 * A `Channel` is deliberately not thenable: `await channel` gives back the channel and
 * takes no value.
 *
 * @throws TypeError if `capacity` is not a number, `overflow` is not a string, or
 *   `onUndelivered` is not a function.
 * @throws RangeError if `capacity` is negative, NaN or a non-integer other than
 *   `Infinity`, if `overflow` is an unknown policy, or if a drop policy is combined with
 *   capacity 0 (Kotlin silently turns that into a conflated channel; we refuse, because
 *   a rendezvous channel has no buffer to drop from and the intent is ambiguous).
 * @example
 * ```ts
 * const jobs = new Channel<string>(16);
 * void (async () => {
 *   for (const job of ['a', 'b']) await jobs.send(job);
 *   jobs.close();
 * })();
 * for await (const job of jobs) console.log(job); // a, b
 * ```
 */
export class Channel<T> implements SendChannel<T>, ReceiveChannel<T> {
  readonly #capacity: number;
  readonly #overflow: number;
  readonly #onUndelivered: ((value: T) => void) | undefined;
  #buffer: Deque<T> | null = null;
  /**
   * Waiting receivers or waiting senders — never both at once (see the algorithm note),
   * so one list serves both and an idle channel carries one list, not two.
   */
  readonly #waiters = new WaiterList<T>();
  #state: State = OPEN;
  /** The close cause and hooks, made when first set (see {@link ChannelRare}). */
  #rare: ChannelRare | null = null;
  /** How many of `#waiters` are receivers (for {@link ChannelInternals.waitingReceivers}). */
  #receivers = 0;

  static {
    channelInternals = {
      enqueue: (channel, waiter) => {
        channel.#waiters.push(waiter);
        if (waiter.kind !== SEND) {
          channel.#receivers++;
          const rare = channel.#rare;
          if (rare !== null && rare.onReceiverWaits !== null) rare.onReceiverWaits();
        }
      },
      dequeue: (channel, waiter) => {
        channel.#waiters.remove(waiter);
        if (waiter.kind !== SEND) channel.#receivers--;
      },
      onReceiverWaits: (channel, hook) => {
        channel.#r().onReceiverWaits = hook;
      },
      waitingReceivers: (channel) => channel.#receivers,
      buffered: (channel) => channel.#bufferedCount(),
      onTaken: (channel, hook) => {
        channel.#r().onTaken = hook;
      },
    };
    PULL_CHANNEL = <T>(
      channel: Channel<T>,
      waiter: Waiter<unknown>,
      signal: AbortSignal | undefined,
    ) => channel.#receive(ITERATE, signal, waiter as Waiter<T>);
    RELEASE_CHANNEL = <T>(channel: Channel<T>, waiter: Waiter<unknown>) => {
      channel.#endIteration(waiter as Waiter<T>);
    };
  }

  constructor(capacity = 0, options?: ChannelOptions<T>) {
    this.#capacity = validateCapacity(capacity);
    this.#overflow = validateOverflow(options?.overflow, this.#capacity);
    const onUndelivered: unknown = options?.onUndelivered;
    if (onUndelivered !== undefined && typeof onUndelivered !== 'function') {
      throw new TypeError(
        `Expected onUndelivered to be a function or undefined, got ${describeValue(onUndelivered)}`,
      );
    }
    this.#onUndelivered = onUndelivered as ((value: T) => void) | undefined;
  }

  /** The buffer size given to the constructor (0 for rendezvous, may be `Infinity`). */
  get capacity(): number {
    return this.#capacity;
  }

  /** The overflow policy given to the constructor. */
  get overflow(): OverflowPolicy {
    return this.#overflow === SUSPEND
      ? 'suspend'
      : this.#overflow === DROP_OLDEST
        ? 'drop-oldest'
        : 'drop-latest';
  }

  get isClosedForSend(): boolean {
    return this.#state !== OPEN;
  }

  get isClosedForReceive(): boolean {
    return (
      this.#state === CANCELLED ||
      (this.#state === CLOSED && this.#bufferedCount() === 0 && !this.#hasSender())
    );
  }

  get isEmpty(): boolean {
    return this.#state === OPEN && this.#bufferedCount() === 0 && !this.#hasSender();
  }

  // ---------------------------------------------------------------- sending

  send(value: T, options?: WaitOptions): Promise<void> {
    const signal = options?.signal;
    if (signal?.aborted === true) {
      this.#undelivered(value);
      return Promise.reject(signal.reason as Error);
    }
    if (this.#state !== OPEN) {
      this.#undelivered(value);
      return Promise.reject(this.#sendError());
    }
    if (this.#offer(value)) return RESOLVED;
    const waiter = new Waiter<T>(SEND, value);
    const promise = promiseFor<undefined>(waiter);
    this.#waiters.push(waiter);
    if (signal !== undefined) this.#watch(waiter, signal);
    return promise;
  }

  trySend(value: T): SendResult {
    if (this.#state !== OPEN) return this.#closedResult();
    return this.#offer(value) ? SEND_OK : SEND_FULL;
  }

  close(cause?: unknown): boolean {
    if (this.#state !== OPEN) return false;
    this.#state = CLOSED;
    if (cause !== undefined) {
      const rare = this.#r();
      rare.cause = cause;
      rare.hasCause = true;
    }
    // Receivers wait only when nothing is buffered and no sender waits: they will
    // never get a value now.
    this.#failReceivers();
    this.#runCloseHandlers();
    return true;
  }

  onClose(handler: (cause: unknown) => void): () => void {
    if (typeof handler !== 'function') {
      throw new TypeError(`Expected handler to be a function, got ${describeValue(handler)}`);
    }
    if (this.#state !== OPEN) {
      handler(this.#cause());
      return () => undefined;
    }
    const rare = this.#r();
    let handlers = rare.closeHandlers;
    // A one-element literal: a first push onto `[]` would reserve 17 slots.
    if (handlers === null) handlers = rare.closeHandlers = [handler];
    else handlers.push(handler);
    return () => {
      const index = handlers.indexOf(handler);
      if (index >= 0) handlers.splice(index, 1);
    };
  }

  // -------------------------------------------------------------- receiving

  receive(options?: WaitOptions): Promise<T> {
    return this.#receive(RECEIVE, options?.signal) as Promise<T>;
  }

  receiveCatching(options?: WaitOptions): Promise<ReceiveResult<T>> {
    return this.#receive(CATCHING, options?.signal) as Promise<ReceiveResult<T>>;
  }

  tryReceive(): ReceiveResult<T> {
    const buffer = this.#buffer;
    if (buffer !== null && buffer.length > 0) {
      const value = buffer.shift();
      this.#refill(buffer);
      return { ok: true, value };
    }
    const sender = this.#takeSender();
    if (sender !== null) return { ok: true, value: this.#takeFrom(sender) };
    return this.#state === OPEN ? EMPTY : this.#closedResult();
  }

  cancel(reason?: unknown): void {
    if (this.#state === CANCELLED) return;
    const cause =
      reason === undefined ? new DOMException('The channel was cancelled', 'AbortError') : reason;
    const wasOpen = this.#state === OPEN;
    this.#state = CANCELLED;
    if (wasOpen) {
      const rare = this.#r();
      rare.cause = cause;
      rare.hasCause = true;
    }
    const buffer = this.#buffer;
    while (buffer !== null && buffer.length > 0) this.#undelivered(buffer.shift());
    for (let sender = this.#takeSender(); sender !== null; sender = this.#takeSender()) {
      const value = sender.value as T;
      sender.value = undefined;
      this.#settle(sender);
      sender.reject(cause);
      this.#undelivered(value);
    }
    // Receivers can be waiting only if the channel was open (so `cause` is the close
    // cause now): they fail as on close, and `receiveCatching` resolves as closed.
    this.#failReceivers();
    if (wasOpen) this.#runCloseHandlers();
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined, undefined> {
    return new ChannelValues<T>(this, undefined);
  }

  iterate(options?: WaitOptions): ReceiveIterator<T> {
    const signal = options?.signal;
    assertSignal(signal);
    return new ChannelValues<T>(this, signal);
  }

  consume<R>(block: (channel: this) => R | PromiseLike<R>, options?: WaitOptions): Promise<R> {
    return consumeChannel(this, block, options?.signal);
  }

  consumeEach(action: (value: T) => unknown, options?: WaitOptions): Promise<void> {
    return consumeEachOf(this, action, options?.signal);
  }

  /**
   * Closes the channel (`close()`), for `await using`. Present only where the runtime
   * defines `Symbol.asyncDispose`.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return RESOLVED;
  }

  // ----------------------------------------------------------- select clauses

  /** A `select` clause that receives from this channel; see {@link ReceiveChannel.onReceive}. */
  onReceive(): SelectClause<T>;
  onReceive<R>(handler: (value: T) => R | PromiseLike<R>): SelectClause<R>;
  onReceive<R>(handler?: (value: T) => R | PromiseLike<R>): SelectClause<T | R> {
    return newClause(RECEIVE, this as Channel<unknown>, undefined, handler);
  }

  /**
   * A `select` clause that receives a `ReceiveResult` from this channel; see
   * {@link ReceiveChannel.onReceiveCatching}.
   */
  onReceiveCatching(): SelectClause<ReceiveResult<T>>;
  onReceiveCatching<R>(handler: (result: ReceiveResult<T>) => R | PromiseLike<R>): SelectClause<R>;
  onReceiveCatching<R>(
    handler?: (result: ReceiveResult<T>) => R | PromiseLike<R>,
  ): SelectClause<ReceiveResult<T> | R> {
    return newClause(CATCHING, this as Channel<unknown>, undefined, handler);
  }

  /** A `select` clause that sends `value` to this channel; see {@link SendChannel.onSend}. */
  onSend(value: T): SelectClause<undefined>;
  onSend<R>(value: T, handler: () => R | PromiseLike<R>): SelectClause<R>;
  onSend<R>(value: T, handler?: () => R | PromiseLike<R>): SelectClause<R | undefined> {
    return newClause(SEND, this as Channel<unknown>, value, handler);
  }

  // --------------------------------------------------------------- internals

  #hasSender(): boolean {
    const head = this.#waiters.head;
    return head !== null && head.kind === SEND;
  }

  /** Removes and returns the oldest waiting sender, or `null` if none waits. */
  #takeSender(): Waiter<T> | null {
    const head = this.#waiters.head;
    return head !== null && head.kind === SEND ? this.#waiters.shift() : null;
  }

  /** Removes and returns the oldest waiting receiver, or `null` if none waits. */
  #takeReceiver(): Waiter<T> | null {
    const head = this.#waiters.head;
    if (head === null || head.kind === SEND) return null;
    this.#receivers--;
    return this.#waiters.shift();
  }

  #bufferedCount(): number {
    return this.#buffer === null ? 0 : this.#buffer.length;
  }

  /** Accepts `value` without waiting if it can (the channel is open). */
  #offer(value: T): boolean {
    const receiver = this.#takeReceiver();
    if (receiver !== null) {
      this.#deliver(receiver, value);
      return true;
    }
    if (this.#capacity === 0) return false;
    const buffer = (this.#buffer ??= new Deque<T>());
    if (buffer.length < this.#capacity) {
      buffer.push(value);
      return true;
    }
    switch (this.#overflow) {
      case DROP_OLDEST: {
        const dropped = buffer.shift();
        buffer.push(value);
        this.#undelivered(dropped);
        return true;
      }
      case DROP_LATEST:
        this.#undelivered(value);
        return true;
      default:
        return false;
    }
  }

  #receive(
    kind: WaiterKind,
    signal: AbortSignal | undefined,
    reusable: Waiter<T> | null = null,
  ): Promise<unknown> {
    if (signal?.aborted === true) {
      if (reusable !== null) this.#endIteration(reusable);
      return Promise.reject(signal.reason as Error);
    }
    const buffer = this.#buffer;
    if (buffer !== null && buffer.length > 0) {
      const value = buffer.shift();
      this.#refill(buffer);
      return Promise.resolve(wrap(kind, value));
    }
    const sender = this.#takeSender();
    if (sender !== null) return Promise.resolve(wrap(kind, this.#takeFrom(sender)));
    if (this.#state !== OPEN) {
      if (reusable !== null) this.#endIteration(reusable);
      if (kind === RECEIVE || (kind === ITERATE && this.#hasCause())) {
        return Promise.reject(this.#receiveError());
      }
      return Promise.resolve(kind === ITERATE ? ITERATION_DONE : this.#closedResult());
    }
    const waiter =
      reusable !== null && reusable.earlier === null && this.#waiters.head !== reusable
        ? reusable
        : new Waiter<T>(kind, undefined);
    const promise = promiseFor(waiter);
    this.#waiters.push(waiter);
    this.#receivers++;
    // A kept listener (iterate with a signal) is registered once, on the first park.
    if (signal !== undefined && waiter.onAbort === null) this.#watch(waiter, signal);
    const rare = this.#rare;
    if (rare !== null && rare.onReceiverWaits !== null) rare.onReceiverWaits();
    return promise;
  }

  /** After a buffered value was taken: moves the oldest waiting sender's value in. */
  #refill(buffer: Deque<T>): void {
    const sender = this.#takeSender();
    if (sender !== null) buffer.push(this.#takeFrom(sender));
    const rare = this.#rare;
    if (rare !== null && rare.onTaken !== null) rare.onTaken();
  }

  /** Takes the value of a sender that was shifted off the list and resolves its send. */
  #takeFrom(sender: Waiter<T>): T {
    const value = sender.value as T;
    sender.value = undefined;
    this.#settle(sender);
    sender.resolve(undefined);
    return value;
  }

  /** Hands `value` to a receiver that was shifted off the list. */
  #deliver(receiver: Waiter<T>, value: T): void {
    // Most receivers wait without a signal: no listener to detach.
    if (receiver.onAbort !== null && !receiver.keep) this.#detach(receiver);
    const kind = receiver.kind;
    receiver.resolve(
      kind === ITERATE ? { done: false, value } : kind === RECEIVE ? value : { ok: true, value },
    );
  }

  /** Rejects (or resolves as closed) every waiting receiver; the channel is closed. */
  #failReceivers(): void {
    for (let waiter = this.#takeReceiver(); waiter !== null; waiter = this.#takeReceiver()) {
      this.#detach(waiter);
      if (waiter.kind === RECEIVE || (waiter.kind === ITERATE && this.#hasCause())) {
        waiter.reject(this.#receiveError());
      } else {
        waiter.resolve(waiter.kind === ITERATE ? ITERATION_DONE : this.#closedResult());
      }
    }
  }

  #watch(waiter: Waiter<T>, signal: AbortSignal): void {
    const onAbort = (): void => {
      this.#abort(waiter, signal);
    };
    waiter.signal = signal;
    waiter.onAbort = onAbort;
    signal.addEventListener('abort', onAbort);
  }

  /** The waiter's abort listener fired while it was still waiting. */
  #abort(waiter: Waiter<T>, signal: AbortSignal): void {
    if (waiter.onAbort === null) return; // completed in the same turn, before dispatch
    if (waiter.keep && waiter.earlier === null && this.#waiters.head !== waiter) {
      // An iteration's waiter between two values: the value it got is yielded; the
      // next `next()` sees the aborted signal and throws its reason.
      this.#detach(waiter);
      return;
    }
    this.#detach(waiter);
    this.#waiters.remove(waiter);
    if (waiter.kind === SEND) {
      const value = waiter.value as T;
      waiter.value = undefined;
      waiter.reject(signal.reason);
      this.#undelivered(value);
    } else {
      this.#receivers--;
      waiter.reject(signal.reason);
    }
  }

  /**
   * Detaches a waiter that got a value from its abort signal — except an iteration's
   * kept listener, which serves its next values too.
   */
  #settle(waiter: Waiter<T>): void {
    if (!waiter.keep) this.#detach(waiter);
  }

  /** An iteration with a signal ended: its kept listener goes (unless still parked). */
  #endIteration(waiter: Waiter<T>): void {
    if (waiter.earlier === null && this.#waiters.head !== waiter) this.#detach(waiter);
    else waiter.keep = false; // parked by a concurrent `next()`: detached when it completes
  }

  /** Detaches a waiter from its abort signal, whatever it is. */
  #detach(waiter: Waiter<T>): void {
    const onAbort = waiter.onAbort;
    if (onAbort !== null) {
      (waiter.signal as AbortSignal).removeEventListener('abort', onAbort);
      waiter.onAbort = null;
      waiter.signal = null;
    }
  }

  #undelivered(value: T): void {
    const onUndelivered = this.#onUndelivered;
    if (onUndelivered !== undefined) callReporting(onUndelivered, value);
  }

  #runCloseHandlers(): void {
    const rare = this.#rare;
    const handlers = rare === null ? null : rare.closeHandlers;
    if (rare === null || handlers === null) return;
    rare.closeHandlers = null;
    for (const handler of handlers.splice(0)) {
      callReporting(handler, rare.cause);
    }
  }

  /** The rarely used state, made now if it was not. */
  #r(): ChannelRare {
    return (this.#rare ??= new ChannelRare());
  }

  /** Whether the channel was closed or cancelled with a cause. */
  #hasCause(): boolean {
    const rare = this.#rare;
    return rare !== null && rare.hasCause;
  }

  /** The close or cancel cause (`undefined` without one). */
  #cause(): unknown {
    const rare = this.#rare;
    return rare === null ? undefined : rare.cause;
  }

  #sendError(): unknown {
    return this.#hasCause() ? this.#cause() : new ClosedSendError();
  }

  #receiveError(): unknown {
    return this.#hasCause() ? this.#cause() : new ClosedReceiveError();
  }

  #closedResult(): { readonly ok: false; readonly closed: true; readonly cause?: unknown } {
    return this.#hasCause() ? { ok: false, closed: true, cause: this.#cause() } : CLOSED_NORMALLY;
  }
}

dropUndefinedSymbolKey(Channel.prototype);

/** A taken value as the waiter's kind wants it (also used by topic subscriptions). */
export function wrap(kind: WaiterKind, value: unknown): unknown {
  return kind === RECEIVE
    ? value
    : kind === CATCHING
      ? { ok: true, value }
      : { done: false, value };
}

/**
 * A channel's iterator (`for await`, `iterate()`): each `next()` is a receive; `return()`
 * ends this iterator only (the channel is not cancelled, no value is taken).
 *
 * It is also the waiter its `next()` parks with, reused for every value (`for await` has
 * at most one `next()` pending; a concurrent one parks a waiter of its own): a loop
 * waiting on a channel — every server handler between two messages — holds one object
 * for its iteration. With a signal, the waiter keeps one abort listener for the whole
 * iteration (registered when it first parks), instead of adding and removing one per
 * value.
 */
class ChannelValues<T> extends Waiter<T> implements ReceiveIterator<T> {
  readonly #channel: Channel<T>;
  readonly #signal: AbortSignal | undefined;
  #done = false;

  constructor(channel: Channel<T>, signal: AbortSignal | undefined) {
    super(ITERATE, undefined);
    this.#channel = channel;
    this.#signal = signal;
    if (signal !== undefined) this.keep = true;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#done) return Promise.resolve(ITERATION_DONE);
    return PULL_CHANNEL(this.#channel, this, this.#signal) as Promise<IteratorResult<T, undefined>>;
  }

  return(): Promise<IteratorReturnResult<undefined>> {
    this.#done = true;
    if (this.#signal !== undefined) RELEASE_CHANNEL(this.#channel, this);
    return Promise.resolve(ITERATION_DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * The iterator behind a subscription's `for await`: each `next()` is a receive; `return()`
 * ends this iterator only. It holds its source and a function shared by every iterator of
 * that kind, rather than a closure per iterator.
 */
export class ChannelIterator<T, S> implements ReceiveIterator<T> {
  readonly #source: S;
  /** The next step: a promise of an `IteratorResult`. */
  readonly #pull: IterationPull<S>;
  readonly #signal: AbortSignal | undefined;
  #done = false;

  constructor(source: S, pull: IterationPull<S>, signal: AbortSignal | undefined) {
    this.#source = source;
    this.#pull = pull;
    this.#signal = signal;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#done) return Promise.resolve(ITERATION_DONE);
    return this.#pull(this.#source, this.#signal) as Promise<IteratorResult<T, undefined>>;
  }

  return(): Promise<IteratorReturnResult<undefined>> {
    this.#done = true;
    return Promise.resolve(ITERATION_DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** One step of an iteration of `source` (see {@link ChannelIterator}). */
export type IterationPull<S> = (source: S, signal: AbortSignal | undefined) => Promise<unknown>;
