/**
 * Structured concurrency: `scope`, `supervisorScope`, `createScope`, and the `Job` /
 * `Deferred` handles of the children they run, plus `produce`. Kotlin's
 * `coroutineScope`/`launch`/`async`/`produce` for promises, with cancellation carried by
 * `AbortSignal`: JavaScript cannot interrupt a promise, so every child receives a signal
 * and is expected to pass it on to whatever it awaits.
 *
 * ## How a scope settles
 * A scope counts what is still running: its body (if it has one) and every child. Each
 * child is started at once and settles in a microtask, where it is classified:
 * - **completed** — its block returned (or resolved) and nobody cancelled it;
 * - **cancelled** — its signal was aborted before it settled and it then returned, or
 *   rejected with the signal's `reason` (or any error named `'AbortError'`);
 * - **failed** — it threw anything else.
 *
 * The first failure aborts the scope's signal with that error as the reason, which
 * aborts every child's signal; later failures are recorded as suppressed by the first
 * (see {@link suppressedErrors}). When the count reaches zero the scope settles: with the
 * first failure, else with the cancellation reason if it was cancelled, else with the
 * body's value. Nothing is left behind: the only listener a scope registers (on the
 * parent signal given in its options) is removed when it settles, and a child's
 * rejection is always consumed by the scope, so none can become an unhandled rejection.
 *
 * @module
 */
import type { ChannelOptions, ReceiveChannel, SendChannel } from './channel-types.js';
import { Channel } from './channel.js';
import { failureCause } from './internal/cancellation.js';
import { abortError } from './internal/child.js';
import { ScopeCore } from './internal/scope-core.js';
import type { SelectClause } from './internal/clauses.js';
import { assertFunction, assertSignal } from './internal/describe-value.js';

export { suppressedErrors } from './internal/cancellation.js';

/**
 * A running child of a scope, started by {@link Scope.launch} (or, as a
 * {@link Deferred}, by {@link Scope.async}). Kotlin's `Job`, with cancellation carried by
 * the `AbortSignal` its block receives.
 *
 * States move only forward: active → (cancelling) → completed.
 */
export interface Job {
  /**
   * Asks the child to stop: aborts its signal with `reason`. The child is then
   * *cancelled*, which does **not** fail its scope (unless, while stopping, it throws an
   * error other than `reason`). A no-op once the job has completed or was already
   * cancelled (the first reason stays).
   *
   * The block keeps running until it honours its signal; `join()` waits for that.
   *
   * @param reason - defaults to a `DOMException` named `AbortError`, as
   *   `AbortController.abort()` makes.
   */
  cancel(reason?: unknown): void;
  /**
   * Resolves once the child has settled, however it ended (completed, cancelled or
   * failed); never rejects, like Kotlin's `join`. Await a {@link Deferred} itself to get
   * its value or error.
   */
  join(): Promise<void>;
  /**
   * A `select` clause that completes when this child has settled, however it ended —
   * Kotlin's `job.onJoin`. The select resolves with `handler()` (awaited), or with
   * `undefined` without a handler; it never rejects because of how the child ended.
   *
   * - **Already settled:** ready at once (wins over later clauses in `select`).
   * - **Losing:** the registration on the job is removed when the select settles, so a
   *   loop of selects over one long-lived job gathers nothing.
   * - The clause is inert until a select runs it and may be reused.
   *
   * @throws TypeError if `handler` is neither a function nor `undefined`.
   * @example
   * ```ts
   * await scope(async (s) => {
   *   const worker = s.launch((signal) => delay(50, { signal }));
   *   const ticks = ticker(10, { signal: s.signal });
   *   let seen = 0;
   *   while (await select([worker.onJoin(() => false), ticks.onReceive(() => true)])) seen++;
   *   s.cancel();
   * }).catch(() => undefined);
   * ```
   */
  onJoin(): SelectClause<undefined>;
  /** As `onJoin()`, and the select resolves with `handler()` (awaited). */
  onJoin<R>(handler: () => R | PromiseLike<R>): SelectClause<R>;
  /** `true` while the child runs and nobody has asked it to stop. */
  readonly isActive: boolean;
  /** `true` once the child has settled, however it ended. */
  readonly isCompleted: boolean;
  /**
   * `true` once the child was asked to stop (by `cancel`, or because its scope was
   * cancelled or failed) before it settled, or once it failed — as in Kotlin, where a
   * failed job counts as cancelled.
   */
  readonly isCancelled: boolean;
}

/**
 * A child that computes a value: a {@link Job} you can `await`. Started by
 * {@link Scope.async}.
 *
 * - **Completed:** resolves with the block's value.
 * - **Failed:** rejects with the block's error (the same object). In a `scope` that
 *   error also fails the scope whether or not you await it (as in Kotlin); in a
 *   `supervisorScope` awaiting it *is* handling it.
 * - **Cancelled:** rejects with the cancellation reason — also when the block ignored
 *   its signal and returned a value anyway (its result was no longer wanted), as in
 *   Kotlin.
 *
 * Awaiting never causes an unhandled rejection by itself: the error is held until
 * someone calls `then`.
 */
export interface Deferred<T> extends Job, PromiseLike<T> {
  /**
   * A `select` clause that completes when this child has settled — Kotlin's
   * `deferred.onAwait`. Completed: the select resolves with `handler(value)` (awaited),
   * or the value itself without a handler. Failed or cancelled: the select rejects with
   * the error or the cancellation reason (the same object), as `await deferred` would.
   *
   * - **Already settled:** ready at once (wins over later clauses in `select`).
   * - **Chosen** counts as awaiting: in a `supervisorScope` the failure is then handled
   *   by whoever ran the select (it does not go to `onError`). A losing clause does not
   *   count.
   * - **Losing:** the registration on the child is removed when the select settles.
   * - The clause is inert until a select runs it and may be reused.
   *
   * @throws TypeError if `handler` is neither a function nor `undefined`.
   * @example
   * ```ts
   * await scope(async (s) => {
   *   const a = s.async(() => delay(10).then(() => 'a'));
   *   const b = s.async(() => delay(20).then(() => 'b'));
   *   const first = await select([a.onAwait(), b.onAwait()]); // 'a'
   *   s.cancel();
   * }).catch(() => undefined);
   * ```
   */
  onAwait(): SelectClause<T>;
  /** As `onAwait()`, and the select resolves with `handler(value)` (awaited). */
  onAwait<R>(handler: (value: T) => R | PromiseLike<R>): SelectClause<R>;
  /** Subscribes to the outcome, as `Promise.prototype.then`; marks the result as observed. */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2>;
}

/**
 * Where children run. Handed to the body of {@link scope} / {@link supervisorScope}, or
 * made by {@link createScope} for `await using`.
 */
export interface Scope extends AsyncDisposable {
  /**
   * Aborted when the scope is cancelled (its parent signal aborted, or `cancel()`) or,
   * except in a supervisor scope, when a child or the body fails; the reason is the
   * cancellation reason or the first error. Pass it to whatever the body awaits.
   */
  readonly signal: AbortSignal;
  /** `true` until the scope is cancelled, fails, or has settled. */
  readonly isActive: boolean;
  /**
   * Starts `block` as a child and returns its {@link Job}. The block runs **at once**,
   * synchronously up to its first `await` (like calling an async function; Kotlin's
   * `launch` dispatches instead, but in JavaScript starting work is what a call does).
   *
   * - **Fails** (throws or rejects with anything but its cancellation reason): in a
   *   `scope` the scope fails; in a supervisor scope the error goes to `onError`, or,
   *   without one, rejects the scope once everything has settled.
   * - **Scope already cancelled or failing:** the job is created cancelled and `block`
   *   never runs (as in Kotlin).
   *
   * @throws TypeError if `block` is not a function.
   * @throws DOMException named `InvalidStateError` if the scope has already settled:
   *   nobody would wait for the child. A {@link createScope} scope settles when its
   *   disposal has *finished* (every child settled); while disposal is still waiting for
   *   children the scope is merely cancelled, so `launch` returns a cancelled job whose
   *   block never runs, as above — a child that is winding down may call it without
   *   failing.
   * @example
   * ```ts
   * const jobs = new Channel<string>(16);
   * await scope(async (s) => {
   *   // iterate({ signal }), not a plain `for await`: the loop must stop when the scope
   *   // is cancelled or fails, and a plain loop waits for a value or the close.
   *   s.launch(async (signal) => {
   *     for await (const job of jobs.iterate({ signal })) console.log(job);
   *   });
   *   jobs.close();
   * });
   * ```
   */
  launch(block: (signal: AbortSignal) => unknown): Job;
  /**
   * Starts `block` as a child whose value you can await: a {@link Deferred}. Starts at
   * once, like {@link Scope.launch}, with the same rules for failure and cancellation.
   *
   * @throws TypeError if `block` is not a function.
   * @throws DOMException named `InvalidStateError` if the scope has already settled (for
   *   a {@link createScope} scope: once its disposal has finished), as for `launch`.
   */
  async<T>(block: (signal: AbortSignal) => T | PromiseLike<T>): Deferred<T>;
  /**
   * Cancels the scope: aborts its signal (and so every child's) with `reason`. The
   * scope still settles only after every child has; a `scope`/`supervisorScope` call
   * then rejects with `reason`. A no-op if the scope already failed, was cancelled, or
   * has settled.
   *
   * @param reason - defaults to a `DOMException` named `AbortError`.
   */
  cancel(reason?: unknown): void;
  /**
   * For `await using`: cancels the scope (if still active), waits for every child to
   * settle, and rejects with the first failure of a child, if any (cancellations are
   * not failures). Calling it again returns the same promise. A scope made by
   * {@link createScope} settles when this promise settles: from then on `launch` and
   * `async` throw `InvalidStateError`; before that (disposal started, children still
   * stopping) they return a cancelled child that never runs, as in any cancelled scope.
   */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link scope}. */
export interface ScopeOptions {
  /**
   * Cancels the scope when aborted: every child sees the abort and the scope rejects
   * with `signal.reason` once all have settled. Already aborted: the body never runs and
   * the call rejects at once with `signal.reason`.
   * @default undefined
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link supervisorScope}. */
export interface SupervisorScopeOptions extends ScopeOptions {
  /**
   * Receives each child failure that nobody else handles — with the failed child's
   * job — so that the supervisor scope itself does not reject because of it. Called at
   * once for a `launch`ed child; for an `async` child only if its {@link Deferred} was
   * never awaited by the time the scope settles (awaiting it is handling it). If
   * `onError` throws, that error fails the scope like a body error.
   * @default undefined — unhandled child failures reject the scope once everything has
   *   settled (the first one; later ones are suppressed by it).
   */
  readonly onError?: ((error: unknown, job: Job) => void) | undefined;
}

/** Options of {@link createScope}. */
export interface CreateScopeOptions extends SupervisorScopeOptions {
  /**
   * `true` makes a supervisor scope: a failing child does not cancel its siblings.
   * `onError` is only used when this is `true`.
   * @default false
   */
  readonly supervisor?: boolean | undefined;
}

/** Options of {@link produce}: the channel's options plus its capacity. */
export interface ProduceOptions<T> extends ChannelOptions<T> {
  /**
   * The channel's buffer size, as for `new Channel(capacity)`.
   * @default 0 (rendezvous, as in Kotlin's `produce`)
   */
  readonly capacity?: number | undefined;
}

/**
 * Runs `body` in a new scope and resolves with its value once the body **and every
 * child** have settled. Kotlin's `coroutineScope`.
 *
 * - **A child or the body fails:** the first error aborts `scope.signal` with that
 *   error as the reason (every child sees it); once all have settled the call rejects
 *   with that same error object. Errors thrown afterwards by other children are
 *   suppressed by it ({@link suppressedErrors}) and never reported as unhandled. A
 *   child that merely ends because it was cancelled is not a failure.
 * - **Cancelled** (`options.signal` aborts, or `scope.cancel(reason)`): every child sees
 *   the abort; the call rejects with the reason once all have settled, even if the body
 *   returned normally. Real errors thrown while stopping are suppressed by the reason
 *   (Kotlin would prefer such an error over its `CancellationException`; here the caller
 *   who cancelled gets back the reason it gave, so it can tell its own cancellation by
 *   identity).
 * - **Already aborted signal:** rejects at once with its reason; `body` never runs.
 * - A child cancelled with `job.cancel()` does not fail the scope.
 *
 * Nested scopes nest through signals: pass the outer child's `signal` to the inner
 * `scope`, and cancelling the outer scope cancels the inner one; an inner failure
 * rejects the inner call, which fails the outer child that awaited it.
 *
 * @throws TypeError (synchronously) if `body` is not a function or `options.signal` is
 *   not an `AbortSignal`.
 * @example
 * ```ts
 * const total = await scope(async (s) => {
 *   const a = s.async((signal) => fetchPart(1, signal));
 *   const b = s.async((signal) => fetchPart(2, signal));
 *   return (await a) + (await b);
 * });
 * ```
 */
export function scope<R>(
  body: (scope: Scope) => R | PromiseLike<R>,
  options?: ScopeOptions,
): Promise<R> {
  assertFunction('body', body);
  const signal = options?.signal;
  assertSignal(signal);
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new ScopeCore(false, true, signal, undefined).run(body);
}

/**
 * Like {@link scope}, but a failing child does **not** cancel its siblings or the
 * scope. Kotlin's `supervisorScope`.
 *
 * How child errors surface (nothing is ever unhandled):
 * - a `launch`ed child's error goes to `options.onError` at once;
 * - an `async` child's error goes to whoever awaits its {@link Deferred}; if nobody has
 *   by the time the scope settles, it goes to `onError` then;
 * - without `onError`, those unhandled errors reject the call once everything has
 *   settled — with the first one, later ones suppressed by it — instead of being lost
 *   (Kotlin sends them to the global exception handler, which crashes by default).
 *
 * The body is not a child: if it throws, the scope fails and every child is cancelled,
 * as in Kotlin. Cancellation (signal, `cancel`) works as for {@link scope}.
 *
 * @throws TypeError (synchronously) if `body` or `options.onError` is not a function,
 *   or `options.signal` is not an `AbortSignal`.
 * @example
 * ```ts
 * await supervisorScope(async (s) => {
 *   for (const url of urls) s.launch((signal) => crawl(url, signal));
 * }, { onError: (error) => console.warn('crawl failed', error) });
 * ```
 */
export function supervisorScope<R>(
  body: (scope: Scope) => R | PromiseLike<R>,
  options?: SupervisorScopeOptions,
): Promise<R> {
  assertFunction('body', body);
  const signal = options?.signal;
  assertSignal(signal);
  const onError = options?.onError;
  if (onError !== undefined) assertFunction('onError', onError);
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new ScopeCore(true, true, signal, onError).run(body);
}

/**
 * Makes a scope without a body, to be ended with `await using` (or by calling
 * `[Symbol.asyncDispose]()` yourself): at block exit it is cancelled, every child is
 * awaited, and the first child failure (if any) is thrown. The scope is the same as the
 * one {@link scope} hands to its body, except that nothing waits for it until it is
 * disposed: a failing child still aborts `scope.signal` (unless `supervisor`), and its
 * error is held for disposal.
 *
 * - **Already aborted signal:** the scope starts cancelled; its children never run.
 * - **Disposal** cancels the scope first, so from the moment it starts, `launch` and
 *   `async` return a child that is already cancelled and never runs (as in any
 *   cancelled scope: a child still winding down, or an event handler firing during
 *   shutdown, may call them without failing). Once disposal has finished — every child
 *   settled, the returned promise about to settle — the scope has settled and accepts
 *   no more children: `launch` and `async` throw `InvalidStateError`. That is the same
 *   rule as for the scope of a {@link scope} body: a cancelled scope hands back
 *   cancelled children, a settled one throws.
 *
 * @throws TypeError if `options.signal` is not an `AbortSignal` or `options.onError` not
 *   a function.
 * @example
 * ```ts
 * {
 *   await using s = createScope();
 *   s.launch((signal) => heartbeat(socket, signal));
 *   await handle(socket);
 * } // heartbeat cancelled and awaited here
 * ```
 */
export function createScope(options?: CreateScopeOptions): Scope {
  const signal = options?.signal;
  assertSignal(signal);
  const onError = options?.onError;
  if (onError !== undefined) assertFunction('onError', onError);
  return new ScopeCore(options?.supervisor === true, false, signal, onError);
}

/** The channel `produce` returns: cancelling it also cancels the producer. */
class ProducerChannel<T> extends Channel<T> {
  readonly #onCancel: (cause: unknown) => void;

  constructor(options: ProduceOptions<T> | undefined, onCancel: (cause: unknown) => void) {
    super(options?.capacity ?? 0, options);
    this.#onCancel = onCancel;
  }

  override cancel(reason?: unknown): void {
    // One reason object for both, so that the producer's rejected `send` carries its
    // own cancellation reason and ends it as cancelled rather than failed.
    const cause = reason === undefined ? abortError('channel') : reason;
    super.cancel(cause);
    this.#onCancel(cause);
  }
}

/**
 * Starts `producer` as a child of `scope` and returns the channel it sends to, as a
 * `ReceiveChannel`. Kotlin's `produce`.
 *
 * - **Producer returns:** the channel is closed normally (values already sent are
 *   still received).
 * - **Producer throws:** the channel is closed with that error (receivers get that very
 *   object after draining) and the scope fails with it, as for any child. A producer
 *   that throws (or rejects with) `undefined` is still a failure, not a normal end: the
 *   channel is closed with, and the scope fails with, one `Error` whose message says the
 *   producer failed with undefined and whose own `cause` property is `undefined`.
 * - **Consumer cancels the channel** (`cancel`, `consume`, `consumeEach`): the
 *   producer's `signal` aborts with the cancel reason; its pending `send` rejects with
 *   the same reason, and rethrowing it ends the producer as *cancelled*, which does not
 *   fail the scope.
 * - **Scope cancelled or failing:** the producer's signal aborts; the channel is then
 *   closed with whatever the producer throws (typically that reason).
 * - **Scope already cancelled or failing when `produce` is called:** the producer never
 *   runs (as for `launch`), and the channel is returned already closed with the scope's
 *   abort reason (`scope.signal.reason`: the cancellation reason or the first failure),
 *   so a `receive` or `for await` on it throws that reason at once instead of waiting
 *   forever, and the scope settles as usual.
 *
 * The producer starts at once, like `scope.launch`; with the default capacity 0 its
 * first `send` waits for the first receiver.
 *
 * @throws TypeError / RangeError for an invalid capacity or channel option, as
 *   `new Channel` does; TypeError if `producer` is not a function.
 * @throws DOMException named `InvalidStateError` if the scope has already settled.
 * @example
 * ```ts
 * await scope(async (s) => {
 *   const numbers = produce(s, async (out, signal) => {
 *     for (let i = 0; i < 3; i++) await out.send(i, { signal });
 *   });
 *   for await (const n of numbers.iterate({ signal: s.signal })) console.log(n); // 0, 1, 2
 * });
 * ```
 */
export function produce<T>(
  scope: Scope,
  producer: (out: SendChannel<T>, signal: AbortSignal) => unknown,
  options?: ProduceOptions<T>,
): ReceiveChannel<T> {
  assertFunction('producer', producer);
  // The producer starts inside `launch`, before its job is known here.
  const producing: { job?: Job; started: boolean } = { started: false };
  const channel = new ProducerChannel<T>(options, (cause) => producing.job?.cancel(cause));
  const job = scope.launch(async (signal) => {
    producing.started = true;
    try {
      await producer(channel, signal);
    } catch (error) {
      // `close(undefined)` would be a normal close: a silent, clean end.
      const cause = failureCause('producer', error);
      channel.close(cause);
      throw cause;
    }
    channel.close();
  });
  producing.job = job;
  // A scope that is already cancelled or failing creates the job cancelled without
  // running the block, so nothing above would ever close the channel.
  if (!producing.started) {
    if (job.isCompleted) closeUnstarted(channel, scope.signal);
    else {
      void job.join().then(() => {
        if (!producing.started) closeUnstarted(channel, scope.signal);
      });
    }
  }
  return channel;
}

/** Closes the channel of a producer that never ran with its scope's abort reason. */
function closeUnstarted(channel: SendChannel<never>, signal: AbortSignal): void {
  channel.close(signal.aborted ? failureCause('scope', signal.reason) : abortError('producer'));
}
