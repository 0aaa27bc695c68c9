/**
 * The two halves of a channel, as types: {@link SendChannel} for whoever produces values
 * and {@link ReceiveChannel} for whoever consumes them. A {@link Channel} is both; an
 * adapter hands out only the half its holder should use.
 *
 * The semantics follow `kotlinx.coroutines.channels.Channel`; each member says what it
 * does when the channel is **closed**, when the operation is **aborted**, when the
 * channel is **full** or **empty**, and under **concurrency**. Where sluice differs from
 * Kotlin it says so and why.
 *
 * @module
 */
import type { SelectClause } from './internal/clauses.js';

/**
 * What a full buffer does with one more value.
 * - `'suspend'`: `send` waits for room (back-pressure); `trySend` fails.
 * - `'drop-oldest'`: the oldest buffered value is dropped (handed to `onUndelivered`)
 *   and the new one is buffered. Capacity 1 with `'drop-oldest'` is Kotlin's *conflated*
 *   channel: a receiver always gets the latest value.
 * - `'drop-latest'`: the value being sent is dropped (handed to `onUndelivered`); the
 *   buffer keeps what it has.
 *
 * With either drop policy `send` never waits and `trySend` always succeeds while the
 * channel is open.
 */
export type OverflowPolicy = 'suspend' | 'drop-oldest' | 'drop-latest';

/** Options of the `Channel` constructor. */
export interface ChannelOptions<T> {
  /**
   * What a full buffer does with one more value; needs a capacity of at least 1 unless
   * it is `'suspend'`.
   * @default 'suspend'
   */
  readonly overflow?: OverflowPolicy | undefined;
  /**
   * Called exactly once, synchronously, for every value that was given to the channel
   * and will never be received: dropped by the overflow policy, discarded by `cancel`,
   * or carried by a `send` that rejected (closed, aborted). Never for a value that was
   * delivered, never twice. Use it to release resources that values own.
   *
   * A `trySend` that fails does **not** call it: its caller still holds the value.
   *
   * If the callback throws, the channel's state is unaffected and the error is rethrown
   * asynchronously (from a microtask), so that it is reported rather than swallowed.
   * @default undefined
   */
  readonly onUndelivered?: ((value: T) => void) | undefined;
}

/** Options of every operation that may wait. */
export interface WaitOptions {
  /**
   * Aborting it while the operation waits withdraws the operation and rejects it with
   * `signal.reason`; an already aborted signal rejects at once and changes nothing.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The outcome of `trySend`: `{ ok: true }` when the channel accepted the value;
 * otherwise `closed` tells whether it failed because the channel is closed for send
 * (else it was full), and `cause` is present when it was closed with a cause.
 */
export type SendResult =
  | {
      /** The channel accepted the value. */
      readonly ok: true;
    }
  | {
      /** The channel did not take the value; the caller still holds it. */
      readonly ok: false;
      /** `true`: closed for send; `false`: open but full. */
      readonly closed: boolean;
      /** The close cause (the same object), present only when closed with one. */
      readonly cause?: unknown;
    };

/**
 * The outcome of `tryReceive` and `receiveCatching`: `{ ok: true, value }`, or
 * `{ ok: false, closed, cause? }` where `closed` tells whether the channel is closed
 * for receive (else it was merely empty) and `cause` is present when it was closed or
 * cancelled with a cause.
 */
export type ReceiveResult<T> =
  | {
      /** A value was received. */
      readonly ok: true;
      /** The value, taken from the channel (no other receiver gets it). */
      readonly value: T;
    }
  | {
      /** No value was received. */
      readonly ok: false;
      /** `true`: closed and drained; `false`: open but empty. */
      readonly closed: boolean;
      /** The close cause or cancel reason (the same object), present only when there is one. */
      readonly cause?: unknown;
    };

/**
 * What `iterate()` returns: an async iterator over a channel that is its own async
 * iterable (so it goes straight into `for await`), and whose `return()` always exists.
 *
 * @typeParam T - the type of the values.
 */
export interface ReceiveIterator<T> extends AsyncIterableIterator<T, undefined, undefined> {
  /**
   * Takes the next value, as `receive` does: `{ done: false, value }`, or `{ done: true }`
   * once the channel is closed normally and drained. Rejects with the close cause, the
   * cancel reason, or — with a signal — `signal.reason` once it aborts.
   */
  next(): Promise<IteratorResult<T, undefined>>;
  /**
   * Ends this iteration (not the channel): later `next()` calls resolve `{ done: true }`
   * and take nothing, and the iteration's abort listener is removed. A `next()` already
   * waiting keeps waiting (and stays abortable); `for await` never has one when it calls
   * `return()`.
   */
  return(): Promise<IteratorReturnResult<undefined>>;
}

/**
 * The sending half of a channel.
 *
 * @typeParam T - the type of the values.
 */
export interface SendChannel<in T> {
  /**
   * Sends `value`, waiting while the buffer is full.
   *
   * - **Resolves** when the value is buffered, or, for a rendezvous channel, taken by a
   *   receiver. A send that resolved delivered its value (or, with a drop policy, the
   *   value may later be dropped and handed to `onUndelivered`); one that rejected did
   *   not.
   * - **Full:** with `'suspend'` it waits; waiting senders are served first-come
   *   first-served, and their values are received in the order the sends were accepted.
   *   With a drop policy it never waits.
   * - **Closed:** rejects with `ClosedSendError`, or with the close cause itself (the
   *   same object) if the channel was closed or cancelled with one; the value goes to
   *   `onUndelivered`. A send already waiting when `close()` is called keeps waiting
   *   and is delivered, in order, as in Kotlin; `cancel()` rejects it.
   * - **Aborted** while waiting: rejects with `signal.reason`, the value is not
   *   delivered and goes to `onUndelivered`. An already aborted signal rejects at once
   *   without touching the channel (the value still goes to `onUndelivered`: it was
   *   given to the channel and will never be received).
   *
   * @throws never synchronously; every failure is a rejection.
   * @example
   * ```ts
   * const ch = new Channel<number>(1);
   * await ch.send(1);                   // buffered
   * const second = ch.send(2);          // waits: the buffer is full
   * await ch.receive();                 // 1; now `second` resolves
   * await second;
   * ```
   */
  send(value: T, options?: WaitOptions): Promise<void>;

  /**
   * Offers `value` without waiting. Returns `{ ok: true }` when accepted (buffered,
   * handed to a waiting receiver, or, with a drop policy, accepted and possibly
   * dropped); otherwise `{ ok: false, closed, cause? }` and the caller still holds the
   * value (`onUndelivered` is not called). Never throws because the channel is full or
   * closed.
   */
  trySend(value: T): SendResult;

  /**
   * Closes the channel for sending. Only later sends fail: values already buffered stay
   * receivable, and sends already waiting are still delivered, in order. Once everything
   * is received, receivers see the close: `receive` rejects with `ClosedReceiveError`
   * (or with `cause`), `for await` ends (or throws `cause`).
   *
   * @param cause - when given (and not `undefined`), the channel is closed with this
   *   cause: later sends and receives reject with this very object.
   * @returns `true` if this call closed the channel, `false` if it was already closed
   *   or cancelled (the first cause stays).
   */
  close(cause?: unknown): boolean;

  /** `true` once `close` or `cancel` has been called: a `send` would reject. */
  readonly isClosedForSend: boolean;

  /**
   * Registers `handler`, called once, synchronously, with the cause (or `undefined` for
   * a normal close) when the channel is closed or cancelled. If the channel is already
   * closed, `handler` runs at once. Several handlers may be registered; they run in
   * registration order. A handler that throws is reported asynchronously and does not
   * stop the others.
   *
   * Differs from Kotlin's `invokeOnClose`, which allows a single handler: adapters and
   * scopes both need to watch a channel.
   *
   * @returns a function that unregisters `handler` (a no-op once it has run).
   */
  onClose(handler: (cause: unknown) => void): () => void;

  /**
   * A `select` clause that sends `value` to this channel: chosen when the channel can
   * take it now (a receiver waits or the buffer has room) or is closed.
   *
   * - **Result:** `handler()` (awaited), or `undefined` without a handler.
   * - **Chosen:** the value was sent exactly as by `send` (buffered or, rendezvous,
   *   taken by a receiver).
   * - **Losing** (another clause won, the select timed out or was aborted): nothing was
   *   sent, and the value does **not** go to `onUndelivered` — it was never given to the
   *   channel; the caller still holds it.
   * - **Closed:** chosen, and the select rejects as `send` would (`ClosedSendError` or
   *   the close cause) and the value goes to `onUndelivered`, as for `send`. A `close()`
   *   while the select waits does not disturb it (as for a waiting `send`).
   * - **Cancelled** while the select waits: the select rejects with the reason and the
   *   value goes to `onUndelivered`.
   * - A handler that throws rejects the select; the value has still been sent.
   *
   * The clause does nothing by itself: it acts only inside `select`/`selectUnbiased`
   * and may be reused (each use sends `value` again). A select may not hold both this
   * and a receive clause of the same channel (`TypeError`).
   *
   * @throws TypeError if `handler` is neither a function nor `undefined`.
   * @example
   * ```ts
   * const out = new Channel<string>();
   * const sent = await select([out.onSend('job', () => true), onTimeout(100, () => false)]);
   * ```
   */
  onSend(value: T): SelectClause<undefined>;
  /** As `onSend(value)`, and the select resolves with `handler()` (awaited). */
  onSend<R>(value: T, handler: () => R | PromiseLike<R>): SelectClause<R>;
}

/**
 * The receiving half of a channel.
 *
 * @typeParam T - the type of the values.
 */
export interface ReceiveChannel<out T> extends AsyncIterable<T, undefined, undefined> {
  /**
   * Takes the next value, waiting while the channel is empty.
   *
   * - **Empty:** waits; waiting receivers are served first-come first-served.
   * - **Closed:** values buffered (or carried by senders that were waiting) before the
   *   close are still received; once drained, rejects with `ClosedReceiveError`, or with
   *   the close cause itself if the channel was closed or cancelled with one.
   * - **Aborted** while waiting: rejects with `signal.reason` and takes no value. An
   *   already aborted signal rejects at once and takes nothing.
   *
   * @example
   * ```ts
   * const ch = new Channel<string>(Infinity);
   * ch.trySend('a');
   * ch.close();
   * await ch.receive(); // 'a'
   * await ch.receive(); // rejects with ClosedReceiveError
   * ```
   */
  receive(options?: WaitOptions): Promise<T>;

  /**
   * Takes the next value if one is ready, without waiting: `{ ok: true, value }`, or
   * `{ ok: false, closed: false }` when empty, or `{ ok: false, closed: true, cause? }`
   * when closed and drained. Never throws.
   */
  tryReceive(): ReceiveResult<T>;

  /**
   * Like `receive`, but a closed channel resolves with `{ ok: false, closed: true,
   * cause? }` instead of rejecting. Rejects only when aborted (with `signal.reason`).
   */
  receiveCatching(options?: WaitOptions): Promise<ReceiveResult<T>>;

  /**
   * Cancels the channel from the receiving side: closes it with `reason` as the cause
   * (if it was not closed already), discards every buffered value (each goes to
   * `onUndelivered`), rejects every waiting sender with `reason` (its value goes to
   * `onUndelivered`), and ends every waiting receiver as a close with `reason` as the
   * cause would: `receive` and `for await` reject with `reason`, `receiveCatching`
   * resolves `{ ok: false, closed: true, cause: reason }`. Afterwards the channel is
   * closed for both send and receive. A second call does nothing.
   *
   * If the channel was already closed, its close cause stays what it was (later
   * operations report that), but buffered values are still discarded and waiting
   * senders rejected with `reason`.
   *
   * @param reason - defaults to a `DOMException` named `AbortError`, as
   *   `AbortController.abort()` makes.
   */
  cancel(reason?: unknown): void;

  /**
   * `true` once the channel is closed and every value is received, or it is cancelled:
   * a `receive` would reject.
   */
  readonly isClosedForReceive: boolean;

  /**
   * `true` when a `receive` would have to wait: nothing buffered, no sender waiting, and
   * not closed for receive (as in Kotlin, a closed-and-drained channel is not "empty").
   */
  readonly isEmpty: boolean;

  /**
   * `for await (const value of channel)`: receives until the channel is closed and
   * drained. A normal close ends the loop; a close with a cause throws that cause.
   * Leaving the loop early (`break`, `return`, a throw) takes no extra value and does
   * **not** cancel the channel, so several consumers can share it, like a Kotlin `for`
   * loop over a channel. Use `consume`/`consumeEach` for the cancelling forms.
   */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined, undefined>;

  /**
   * An async iterable over this channel, like `for await (const v of channel)`, whose
   * loop can be stopped from outside: `for await (const v of channel.iterate({ signal }))`.
   * Kotlin's `for (x in channel)` is cancellable because the coroutine is; a JavaScript
   * loop is not, so the cancellation comes in as a signal (pass the scope's or the job's).
   *
   * - **Aborted:** the loop ends by throwing `signal.reason` (the same object) — at
   *   once if it waits for a value, else at its next step. **Nothing is lost:** a value
   *   taken from the channel is yielded (an abort that comes after the channel handed a
   *   value over does not take it back), and a value not taken stays in the channel for
   *   other receivers. An already aborted signal throws at the first step and takes
   *   nothing. The abort does not cancel the channel (use `consumeEach` for that).
   * - **Closed:** as `for await`: ends once drained, or throws the close cause (the same
   *   object) if there is one. **Cancelled:** throws the reason.
   * - **Empty:** waits; waiting receivers (this loop among them) are served first-come
   *   first-served.
   * - **Leaving early** (`break`, `return`, a throw in the body) takes no extra value and
   *   does not cancel the channel.
   * - **Cost:** one abort listener per iteration, not per value: it is added when the
   *   loop first waits and removed when the loop ends (drained, thrown, aborted, or
   *   left early — `for await` calls `return()`). If you drive the iterator by hand and
   *   stop before it is done, call `return()` to remove it.
   * - Without a signal it is exactly `channel[Symbol.asyncIterator]()`.
   *
   * Go's `for v := range ch` cannot be stopped either; Go code selects on
   * `ctx.Done()` instead, which is what this does in one line.
   *
   * @throws TypeError if `signal` is neither an `AbortSignal` nor `undefined` (at once,
   *   not from the loop).
   * @example
   * ```ts
   * const jobs = new Channel<string>(16);
   * await scope(async (s) => {
   *   s.launch(async (signal) => {
   *     for await (const job of jobs.iterate({ signal })) console.log(job);
   *   });
   *   s.cancel(); // the loop throws signal.reason; the scope ends as cancelled
   * }).catch(() => undefined);
   * ```
   */
  iterate(options?: WaitOptions): ReceiveIterator<T>;

  /**
   * Runs `block` with this channel and cancels the channel when `block` settles:
   * normally with the default reason, or with `block`'s error when it throws (the same
   * object is then rethrown). Values still buffered go to `onUndelivered`; producers
   * waiting in `send` are rejected.
   *
   * - **Aborted** (`options.signal`): the channel is cancelled with `signal.reason` at
   *   once — a `receive` the block waits on rejects with it — and the call rejects with
   *   `signal.reason` once the block has settled (unless the block threw an error of its
   *   own, which is rethrown). An already aborted signal cancels the channel and rejects
   *   without running `block`.
   *
   * @throws TypeError (as a rejection) if `signal` is not an `AbortSignal`.
   */
  consume<R>(block: (channel: this) => R | PromiseLike<R>, options?: WaitOptions): Promise<R>;

  /**
   * Receives every value, calling (and awaiting) `action` for each, until the channel is
   * closed and drained; then cancels it, as `consume` does. Rejects with the close cause,
   * or with `action`'s error (after cancelling the channel with it).
   *
   * - **Aborted** (`options.signal`): rejects with `signal.reason` after cancelling the
   *   channel with it; a running `action` is awaited first, and every value taken was
   *   passed to `action` (the rest go to `onUndelivered`, as the cancel discards them).
   *
   * @throws TypeError (as a rejection) if `signal` is not an `AbortSignal`.
   */
  consumeEach(action: (value: T) => unknown, options?: WaitOptions): Promise<void>;

  /**
   * A `select` clause that receives from this channel: chosen when a value can be taken
   * now (buffered, or from a waiting sender) or the channel is closed for receive.
   *
   * - **Result:** `handler(value)` (awaited), or the value itself without a handler.
   * - **Losing** (another clause won, the select timed out or was aborted): takes no
   *   value.
   * - **Closed** and drained: chosen, and the select rejects as `receive` would
   *   (`ClosedReceiveError`, or the close cause itself); use `onReceiveCatching` to get
   *   the close as a result. **Cancelled** while the select waits: rejects with the
   *   reason.
   * - A handler that throws rejects the select; the value has still been taken.
   *
   * The clause does nothing by itself: it acts only inside `select`/`selectUnbiased`
   * and may be reused.
   *
   * @throws TypeError if `handler` is neither a function nor `undefined`.
   * @example
   * ```ts
   * const jobs = new Channel<{ id: number }>(16);
   * const next = await select([jobs.onReceive((job) => job.id), onTimeout(100, () => null)]);
   * ```
   */
  onReceive(): SelectClause<T>;
  /** As `onReceive()`, and the select resolves with `handler(value)` (awaited). */
  onReceive<R>(handler: (value: T) => R | PromiseLike<R>): SelectClause<R>;

  /**
   * A `select` clause like `onReceive`, but a closed channel completes it with
   * `{ ok: false, closed: true, cause? }` instead of rejecting the select (as
   * `receiveCatching` does). A value completes it with `{ ok: true, value }`.
   *
   * - **Result:** `handler(result)` (awaited), or the `ReceiveResult` itself.
   * - **Losing:** takes no value. **Cancelled:** completes with `{ ok: false, closed:
   *   true, cause: reason }`, as `receiveCatching` does.
   * - A handler that throws rejects the select; the value has still been taken.
   *
   * @throws TypeError if `handler` is neither a function nor `undefined`.
   * @example
   * ```ts
   * const events = new Channel<string>();
   * events.close();
   * const r = await select([events.onReceiveCatching()]);
   * if (!r.ok && r.closed) console.log('no more events');
   * ```
   */
  onReceiveCatching(): SelectClause<ReceiveResult<T>>;
  /** As `onReceiveCatching()`, and the select resolves with `handler(result)` (awaited). */
  onReceiveCatching<R>(handler: (result: ReceiveResult<T>) => R | PromiseLike<R>): SelectClause<R>;
}
