/**
 * `select` and `selectUnbiased`: wait for the first of several channel operations
 * (`channel.onReceive()`, `channel.onReceiveCatching()`, `channel.onSend()`), a
 * timeout (`onTimeout()`), an abort (`onAbort(signal)`) or a child of a scope
 * (`job.onJoin()`, `deferred.onAwait()`), perform exactly that one, and leave no trace
 * of the others.
 *
 * ## Algorithm
 * A select runs in one synchronous step, then waits:
 *
 * 1. **Poll.** Each channel clause is tried with the channel's own `tryReceive` /
 *    `trySend`, in clause order (`select`) or in a fresh random order (`selectUnbiased`,
 *    a lazy Fisher–Yates shuffle, so the first ready clause found is uniformly random
 *    among the ready ones). A failed `tryX` changes nothing, so the first success *is*
 *    the choice: the operation happened, nothing else was touched. A closed channel
 *    counts as ready (its clause completes by failing, as in Kotlin). An event clause
 *    (`onAbort`, `onJoin`, `onAwait`) is ready when its event has already happened.
 * 2. **Timeout 0.** If nothing is ready and the shortest `onTimeout` is 0, that clause
 *    is chosen at once (Go's `default`); nothing was registered.
 * 3. **Park.** Otherwise a waiter per channel clause is enqueued on its channel, in the
 *    same synchronous step as the poll, so each channel's invariant holds (receivers
 *    wait only on a channel with nothing to take, senders only on a full one). Then a
 *    timer for the shortest timeout, one abort listener for the signal (registered
 *    first) and one synchronous registration per event clause (an abort listener, or a
 *    watcher on the child that its settling calls).
 * 4. **Decide.** The channel completes a parked waiter exactly as a plain `send` or
 *    `receive`, synchronously, by calling its resolve/reject. That callback is the
 *    decision: still inside it, every other waiter is dequeued, the timer cleared and the
 *    abort listener removed, so no other clause can complete afterwards — JavaScript
 *    does not preempt, and nothing in between runs user code. The timer and the abort
 *    listener decide the same way, withdrawing every waiter; so does an event clause's
 *    registration when its event happens.
 * 5. **Handle.** The chosen clause's handler runs in a later microtask, never inside the
 *    channel operation that completed the clause.
 *
 * Why a select's `onSend` meets another select's `onReceive` on a rendezvous channel
 * without deadlock: whichever select runs second finds the other's parked waiter with
 * its poll (`tryReceive` takes from a parked sender, `trySend` hands to a parked
 * receiver) and completes both in one step. Two parked waiters of different selects can
 * never face each other on one channel, because a waiter is parked only when its
 * channel had no counterpart at that moment.
 *
 * @module
 */
import { channelInternals } from './channel.js';
import type { Channel } from './channel.js';
import { ClosedReceiveError } from './errors.js';
import { Clause, EVENT, newClause, TIMEOUT } from './internal/clauses.js';
import type { EventOutcome, EventSource } from './internal/clauses.js';
import { assertSignal, describeValue } from './internal/describe-value.js';
import { checkMs, startTimer } from './internal/timer.js';
import type { SelectClause } from './internal/clauses.js';
import { CATCHING, RECEIVE, SEND, Waiter } from './internal/waiter.js';
import type { WaiterKind } from './internal/waiter.js';

export type { SelectClause } from './internal/clauses.js';

/** Options of {@link select} and {@link selectUnbiased}. */
export interface SelectOptions {
  /**
   * Aborting it while the select waits withdraws every clause and rejects the select
   * with `signal.reason`. An already aborted signal rejects at once, before any clause
   * is tried, and changes nothing.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * What a select over the clauses `C` resolves with: the union of the clauses' results.
 *
 * @typeParam C - the union of the clause types (`typeof clauses[number]`).
 */
export type SelectResult<C> = C extends SelectClause<infer R> ? R : never;

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Waits until one of `clauses` can complete, completes exactly that one, and resolves
 * with its result. When several are ready, the **first in order** wins (biased, as
 * Kotlin's `select`): put the clause that must not starve first, or use
 * {@link selectUnbiased}.
 *
 * - **Result:** the chosen clause's handler result (awaited). A clause given without a
 *   handler resolves with its own value: the received value for `onReceive`, the
 *   `ReceiveResult` for `onReceiveCatching`, `undefined` for `onSend` and `onTimeout`.
 * - **Exactly one clause completes.** A losing `onReceive` takes no value; a losing
 *   `onSend` delivers nothing and its value is *not* passed to the channel's
 *   `onUndelivered` (it was never sent). No registration outlives the select, however
 *   it ends (a clause won, the timeout fired, the signal aborted).
 * - **Handler:** runs in a microtask after the choice is made and every other clause is
 *   withdrawn, never synchronously inside `select` or inside another party's channel
 *   operation. A handler that throws (or rejects) rejects the select with that error;
 *   the clause's channel operation has still happened — the value was received, or
 *   sent — exactly as if the handler had run after a plain `receive`/`send`.
 * - **Closed:** a closed channel counts as ready. `onReceive` on a closed and drained
 *   channel rejects the select as `receive` would (`ClosedReceiveError`, or the close
 *   cause itself); `onReceiveCatching` completes with `{ ok: false, closed: true,
 *   cause? }`; `onSend` on a closed channel rejects as `send` would (`ClosedSendError`
 *   or the cause) and, as for `send`, its value goes to `onUndelivered`. If the channel
 *   is **cancelled** while an `onSend` waits, the select rejects with the reason and
 *   the channel passes the value to `onUndelivered` (this clause was the one chosen);
 *   the other `onSend` clauses lose and theirs are not passed. A `close()` does not
 *   disturb a waiting `onSend`, as it does not disturb a waiting `send`.
 * - **Timeout:** `onTimeout(ms)` completes only if no other clause became ready within
 *   `ms`; its timer is cleared as soon as another clause wins. `onTimeout(0)` completes
 *   at once when no other clause is ready now (Go's `default`) and sets no timer. With
 *   several timeouts the shortest wins (the earliest in order among equals).
 * - **Aborted:** rejects with `signal.reason` and withdraws every clause; no value was
 *   taken or delivered, and no `onSend` value goes to `onUndelivered` — unlike an
 *   aborted `send`, whose value had been handed to the channel, nothing was chosen.
 * - **Events:** `onAbort(signal, fn)` completes with the signal's reason (Go's
 *   `case <-ctx.Done()`), `job.onJoin(fn)` when the child settles, `deferred.onAwait(fn)`
 *   with the child's value (or rejects the select with its error, as `await` would).
 *   Losing, they leave no listener or watcher behind.
 * - **Concurrency:** a parked clause competes with plain `send`/`receive` calls and
 *   other selects first-come first-served, like any waiter. Two selects (or a select
 *   and a `receive`) racing for one value: exactly one gets it. A select's `onSend`
 *   and another select's `onReceive` on a rendezvous channel always meet.
 *
 * Differs from Kotlin and Go:
 * - One select may not hold both `onSend` and an `onReceive`/`onReceiveCatching` of the
 *   same channel (Go allows it): such a select could only ever meet itself on a
 *   rendezvous channel, and on a buffered one the two clauses race in ways that hide
 *   bugs. It is refused with a `TypeError`.
 * - A negative or NaN timeout is refused (Kotlin treats it as 0) and an empty clause
 *   list too (Go's `select {}` blocks forever): both are almost always bugs.
 * - A closed channel's `onSend` hands its value to `onUndelivered` as `send` does (as
 *   Kotlin's `onUndeliveredElement`); Go has no such callback.
 *
 * @param clauses - the alternatives, made by `channel.onReceive()`,
 *   `channel.onReceiveCatching()`, `channel.onSend()` and `onTimeout()`. The same
 *   clause may appear in several selects.
 * @returns the chosen clause's result; see {@link SelectResult}.
 * @throws never synchronously; every failure is a rejection: `TypeError` if `clauses`
 *   is not an array of clauses or holds both `onSend` and a receive clause of one
 *   channel, or if `signal` is not an `AbortSignal`; `RangeError` if `clauses` is empty.
 * @example
 * ```ts
 * const jobs = new Channel<string>(16);
 * const quit = new Channel<void>();
 * const outcome = await select([
 *   quit.onReceiveCatching(() => 'quit' as const),
 *   jobs.onReceive((job) => `did ${job}`),
 *   onTimeout(1000, () => 'idle' as const),
 * ]);
 * ```
 */
export function select<const C extends readonly SelectClause<unknown>[]>(
  clauses: C,
  options?: SelectOptions,
): Promise<SelectResult<C[number]>> {
  return run(clauses, options, false) as Promise<SelectResult<C[number]>>;
}

/**
 * Like {@link select}, but when several clauses are ready it picks one **uniformly at
 * random** (as Go's `select` does), so that no channel starves another. Everything else
 * — results, handlers, closed channels, timeouts, abort, concurrency — is as for
 * `select`; `onTimeout(0)` still completes only when no channel clause is ready.
 *
 * @throws never synchronously; see {@link select}.
 * @example
 * ```ts
 * const a = new Channel<number>(8);
 * const b = new Channel<number>(8);
 * a.trySend(1);
 * b.trySend(2);
 * const first = await selectUnbiased([a.onReceive(), b.onReceive()]); // 1 or 2, 50/50
 * ```
 */
export function selectUnbiased<const C extends readonly SelectClause<unknown>[]>(
  clauses: C,
  options?: SelectOptions,
): Promise<SelectResult<C[number]>> {
  return run(clauses, options, true) as Promise<SelectResult<C[number]>>;
}

/**
 * A clause that completes after `ms` milliseconds unless another clause of the select
 * completes first; its timer is cleared as soon as the select settles otherwise.
 *
 * - `onTimeout(0)` completes at once if no other clause is ready now (Go's `default`
 *   case) and sets no timer.
 * - `onTimeout(Infinity)` never completes (a handy "no timeout" in generic code).
 * - With several `onTimeout` clauses, the shortest wins; among equal ones the first.
 * - The timer starts when the select runs, not when the clause is made, so a clause
 *   can be reused.
 *
 * Without a handler the select resolves with `undefined` when this clause wins.
 *
 * @param ms - a non-negative number of milliseconds (delays beyond the 2^31 - 1 ms that
 *   `setTimeout` honours are handled), or `Infinity`.
 * @throws TypeError if `ms` is not a number or `handler` is neither a function nor
 *   `undefined`.
 * @throws RangeError if `ms` is negative or NaN.
 * @example
 * ```ts
 * const replies = new Channel<string>();
 * const reply = await select([replies.onReceive(), onTimeout(500, () => null)]); // null
 * ```
 */
export function onTimeout(ms: number): SelectClause<undefined>;
export function onTimeout<R>(ms: number, handler: () => R | PromiseLike<R>): SelectClause<R>;
export function onTimeout<R>(
  ms: number,
  handler?: () => R | PromiseLike<R>,
): SelectClause<R | undefined> {
  return newClause(TIMEOUT, null, checkMs('ms', ms, true), handler);
}

/**
 * A clause that completes when `signal` aborts — Go's `case <-ctx.Done():`. The select
 * resolves with `handler(signal.reason)` (awaited), or with `signal.reason` itself
 * without a handler: the abort is the clause's *result*, not a failure of the select
 * (to make the whole select fail on abort, pass the signal as its `signal` option).
 *
 * - **Already aborted:** ready at once; as any ready clause it wins over later clauses
 *   in `select`, and competes at random in `selectUnbiased`.
 * - **Losing:** its abort listener is removed when the select settles, however it
 *   settles, so a long-lived signal used in a loop of selects gathers no listeners.
 * - **The same signal as the select's `signal` option:** the option wins, and the
 *   select rejects with the reason (whether the signal was already aborted or aborts
 *   while the select waits).
 * - The clause is inert until a select runs it and may be reused.
 *
 * @throws TypeError if `signal` is not an `AbortSignal` or `handler` is neither a
 *   function nor `undefined`.
 * @example
 * ```ts
 * const jobs = new Channel<string>(16);
 * const { signal } = new AbortController();
 * const next = await select([
 *   jobs.onReceive((job) => ({ job })),
 *   onAbort(signal, () => null), // stopping: no more jobs
 * ]);
 * ```
 */
export function onAbort(signal: AbortSignal): SelectClause<unknown>;
export function onAbort<R>(
  signal: AbortSignal,
  handler: (reason: unknown) => R | PromiseLike<R>,
): SelectClause<R>;
export function onAbort<R>(
  signal: AbortSignal,
  handler?: (reason: unknown) => R | PromiseLike<R>,
): SelectClause<unknown> {
  const given: unknown = signal;
  if (given === undefined) {
    throw new TypeError('Expected signal to be an AbortSignal, got undefined');
  }
  assertSignal(given);
  return newClause(EVENT, null, new AbortSource(signal), handler);
}

// ------------------------------------------------------------------ internals

/** What an `onAbort` clause waits for. */
class AbortSource implements EventSource {
  readonly #signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
  }

  ready(): EventOutcome | null {
    const signal = this.#signal;
    return signal.aborted ? { ok: true, value: signal.reason } : null;
  }

  listen(onReady: (outcome: EventOutcome) => void): () => void {
    const signal = this.#signal;
    const listener = (): void => {
      onReady({ ok: true, value: signal.reason });
    };
    signal.addEventListener('abort', listener);
    return () => {
      signal.removeEventListener('abort', listener);
    };
  }
}

function run(
  clauses: readonly SelectClause<unknown>[],
  options: SelectOptions | undefined,
  unbiased: boolean,
): Promise<unknown> {
  try {
    validate(clauses, options);
  } catch (error) {
    return Promise.reject(error);
  }
  const list = clauses as unknown as readonly Clause[];
  const signal = options?.signal;
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  const count = list.length;

  // 1. Poll, in order or in a random order. `order` is only built when needed.
  let order: number[] | null = null;
  if (unbiased && count > 1) {
    order = new Array<number>(count);
    for (let i = 0; i < count; i++) order[i] = i;
  }
  for (let k = 0; k < count; k++) {
    let index = k;
    if (order !== null) {
      const pick = k + Math.floor(Math.random() * (count - k));
      index = order[pick] as number;
      order[pick] = order[k] as number;
      order[k] = index;
    }
    const clause = list[index] as Clause;
    if (clause.kind === EVENT) {
      const outcome = (clause.value as EventSource).ready();
      if (outcome !== null) return completeEvent(clause, outcome);
      continue;
    }
    const channel = clause.channel;
    if (channel === null) continue;
    if (clause.kind === SEND) {
      const result = channel.trySend(clause.value);
      if (result.ok) return complete(clause, undefined);
      // Closed: fail as `send` would, which also hands the value to `onUndelivered`.
      if (result.closed) return failedSend(channel, clause.value);
    } else {
      const result = channel.tryReceive();
      if (result.ok) return complete(clause, clause.kind === RECEIVE ? result.value : result);
      if (result.closed) {
        if (clause.kind === CATCHING) return complete(clause, result);
        // Closed and drained: fail as `receive` would, with the cause itself if any.
        const error: unknown = 'cause' in result ? result.cause : new ClosedReceiveError();
        return Promise.reject(error);
      }
    }
  }

  // 2. Nothing is ready. The shortest timeout counts, the earliest among equals; 0 is
  // Go's `default`.
  let timeout: Clause | null = null;
  for (const clause of list) {
    if (
      clause.kind === TIMEOUT &&
      (timeout === null || (clause.value as number) < (timeout.value as number))
    ) {
      timeout = clause;
    }
  }
  if (timeout !== null && timeout.value === 0) return complete(timeout, undefined);

  // 3. Park, still in the same synchronous step as the poll. A copy of the list: the
  // caller may reuse its array while this select waits.
  return new Promise((resolve, reject) => {
    new PendingSelect(list.slice(), timeout, signal, resolve, reject);
  });
}

/** Throws a `TypeError` or `RangeError` unless the arguments of a select are valid. */
function validate(clauses: unknown, options: SelectOptions | undefined): void {
  if (!Array.isArray(clauses)) {
    throw new TypeError(`Expected an array of select clauses, got ${describeValue(clauses)}`);
  }
  const count = clauses.length;
  if (count === 0) {
    throw new RangeError('Expected at least one select clause, got an empty array');
  }
  let sends = false;
  for (let i = 0; i < count; i++) {
    const clause: unknown = clauses[i];
    if (!(clause instanceof Clause)) {
      throw new TypeError(
        `Expected clauses[${i}] to be a select clause (channel.onReceive(), channel.onReceiveCatching(), channel.onSend(), onTimeout(), onAbort(), job.onJoin() or deferred.onAwait()), got ${describeValue(clause)}`,
      );
    }
    if (clause.kind === SEND) sends = true;
  }
  if (options !== undefined) assertSignal(options.signal);
  if (!sends) return;
  const list = clauses as readonly Clause[];
  for (let i = 0; i < count; i++) {
    const send = list[i] as Clause;
    if (send.kind !== SEND) continue;
    for (let j = 0; j < count; j++) {
      const other = list[j] as Clause;
      if (other.channel === send.channel && (other.kind === RECEIVE || other.kind === CATCHING)) {
        throw new TypeError(
          `Expected onSend and onReceive/onReceiveCatching of one select to use different channels, got the same channel in clauses[${i}] (onSend) and clauses[${j}] (${other.kind === RECEIVE ? 'onReceive' : 'onReceiveCatching'})`,
        );
      }
    }
  }
}

/** The chosen clause completed with `input`: resolves with its handler's result. */
function complete(clause: Clause, input: unknown): Promise<unknown> {
  const handler = clause.handler;
  if (handler === undefined) return Promise.resolve(input);
  return RESOLVED.then(() => handler(input));
}

/** An event clause chosen with `outcome`: its handler's result, or the failure. */
function completeEvent(clause: Clause, outcome: EventOutcome): Promise<unknown> {
  return outcome.ok ? complete(clause, outcome.value) : Promise.reject(outcome.value);
}

/** An `onSend` chosen on a closed channel: rejects exactly as `send` does. */
function failedSend(channel: Channel<unknown>, value: unknown): Promise<never> {
  return channel.send(value).then(() => {
    throw new Error('unreachable: send on a closed channel resolved');
  });
}

/** A select that found nothing ready: its waiters, timer and abort listener. */
class PendingSelect {
  readonly #clauses: readonly Clause[];
  /** One per clause; `null` for timeouts and event clauses. */
  readonly #waiters: (Waiter<unknown> | null)[];
  /** How to stop listening to each event clause; `null` when there is none. */
  #unlisten: (() => void)[] | null = null;
  readonly #resolve: (result: unknown) => void;
  readonly #reject: (error: unknown) => void;
  #clearTimer: (() => void) | null = null;
  readonly #signal: AbortSignal | undefined;
  #onAbort: (() => void) | null = null;
  #done = false;

  constructor(
    clauses: readonly Clause[],
    timeout: Clause | null,
    signal: AbortSignal | undefined,
    resolve: (result: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.#clauses = clauses;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    const count = clauses.length;
    const waiters = new Array<Waiter<unknown> | null>(count).fill(null);
    this.#waiters = waiters;
    // The select's own signal first: if an `onAbort` clause watches the same signal,
    // the select rejects, as it does when that signal is already aborted.
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (this.#withdraw(-1)) this.#reject(signal.reason);
      };
      this.#onAbort = onAbort;
      signal.addEventListener('abort', onAbort);
    }
    for (let i = 0; i < count; i++) {
      const clause = clauses[i] as Clause;
      if (clause.kind === EVENT) {
        const unlisten = (clause.value as EventSource).listen((outcome) => {
          if (!this.#withdraw(i)) return;
          if (outcome.ok) this.#finish(clause, outcome.value);
          else this.#reject(outcome.value);
        });
        (this.#unlisten ??= []).push(unlisten);
        continue;
      }
      const channel = clause.channel;
      if (channel === null) continue;
      const waiter = new Waiter<unknown>(clause.kind as WaiterKind, clause.value);
      waiter.resolve = (result) => {
        this.#win(i, result);
      };
      waiter.reject = (error) => {
        this.#fail(i, error);
      };
      waiters[i] = waiter;
      channelInternals.enqueue(channel, waiter);
    }
    if (timeout !== null && timeout.value !== Infinity) {
      this.#clearTimer = startTimer(timeout.value as number, () => {
        if (this.#withdraw(-1)) this.#finish(timeout, undefined);
      });
    }
  }

  /** The channel completed the waiter of clause `index` (already off its list). */
  #win(index: number, result: unknown): void {
    if (this.#withdraw(index)) this.#finish(this.#clauses[index] as Clause, result);
  }

  /** The channel failed the waiter of clause `index` (closed or cancelled). */
  #fail(index: number, error: unknown): void {
    if (this.#withdraw(index)) this.#reject(error);
  }

  /**
   * The decision: withdraws every waiter but the one of clause `keep` (which the
   * channel has already taken off its list), the timer and the abort listener.
   * Synchronous, and runs no user code. Returns `false` if the select was decided before.
   */
  #withdraw(keep: number): boolean {
    if (this.#done) {
      // Unreachable: the first completion withdraws every other registration at once.
      // Report it without throwing into the channel operation that called us.
      queueMicrotask(() => {
        throw new Error('sluice internal error: a select completed twice');
      });
      return false;
    }
    this.#done = true;
    const waiters = this.#waiters;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i];
      if (waiter != null && i !== keep) {
        channelInternals.dequeue((this.#clauses[i] as Clause).channel as Channel<unknown>, waiter);
      }
    }
    if (this.#clearTimer !== null) this.#clearTimer();
    const unlisten = this.#unlisten;
    // Every event registration goes; the one that fired (if any) is a no-op to remove.
    if (unlisten !== null) for (const remove of unlisten) remove();
    const onAbort = this.#onAbort;
    if (onAbort !== null) (this.#signal as AbortSignal).removeEventListener('abort', onAbort);
    return true;
  }

  /** Runs the chosen clause's handler in a microtask and settles the select with it. */
  #finish(clause: Clause, input: unknown): void {
    const handler = clause.handler;
    if (handler === undefined) {
      this.#resolve(input);
      return;
    }
    queueMicrotask(() => {
      try {
        this.#resolve(handler(input));
      } catch (error) {
        this.#reject(error);
      }
    });
  }
}
