/**
 * `Mutex` and `Semaphore`, as in `kotlinx.coroutines.sync`: FIFO, abortable waits, and a
 * handle for each hold that works with `using` / `await using`.
 *
 * ## Algorithm
 * One pool of permits (1 for a mutex) and one FIFO list of waiters. Invariant: waiters
 * exist only while no permit is free. A release hands its permit **directly** to the
 * oldest waiter (resolving it in the same synchronous step), so a `tryLock`/`tryAcquire`
 * arriving in between cannot barge ahead of a waiter: the order is strictly first come,
 * first served. An aborted waiter is unlinked in the same step that rejects it, so it can
 * never also be handed a permit; once a waiter has been handed one, a later abort changes
 * nothing (the caller owns the permit and must release it). The abort listener is removed
 * whenever a waiter completes.
 *
 * @module
 */
import type { WaitOptions } from './channel-types.js';
import { MutexNotLockedError, PermitNotHeldError } from './errors.js';
import { assertFunction, assertSignal, describeValue } from './internal/describe-value.js';

/** A parked `lock()` / `acquire()`: a node of the pool's intrusive FIFO list. */
class Waiting {
  next: Waiting | null = null;
  prev: Waiting | null = null;
  resolve: (handle: object) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;

  constructor(resolve: (handle: object) => void, reject: (error: unknown) => void) {
    this.resolve = resolve;
    this.reject = reject;
  }
}

/** The permits and the waiters; hands out handles made by `make`. */
class Pool<H extends object> {
  readonly total: number;
  available: number;
  #head: Waiting | null = null;
  #tail: Waiting | null = null;
  /** The handles still holding a permit, oldest first. */
  readonly held = new Set<H>();
  readonly #make: () => H;

  constructor(total: number, make: () => H) {
    this.total = total;
    this.available = total;
    this.#make = make;
  }

  get hasWaiters(): boolean {
    return this.#head !== null;
  }

  tryTake(): H | undefined {
    if (this.available === 0) return undefined;
    this.available--;
    const handle = this.#make();
    this.held.add(handle);
    return handle;
  }

  take(signal: AbortSignal | undefined): Promise<H> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const handle = this.tryTake();
    if (handle !== undefined) return Promise.resolve(handle);
    return new Promise<H>((resolve, reject) => {
      const waiting = new Waiting(resolve as (handle: object) => void, reject);
      const tail = this.#tail;
      waiting.prev = tail;
      if (tail === null) this.#head = waiting;
      else tail.next = waiting;
      this.#tail = waiting;
      if (signal !== undefined) {
        const onAbort = (): void => {
          this.#abort(waiting, signal);
        };
        waiting.signal = signal;
        waiting.onAbort = onAbort;
        signal.addEventListener('abort', onAbort);
      }
    });
  }

  /** Releases the permit of `handle`, which must be in `held`. */
  give(handle: H): void {
    this.held.delete(handle);
    const waiting = this.#head;
    if (waiting === null) {
      this.available++;
      return;
    }
    this.#unlink(waiting);
    this.#detach(waiting);
    const next = this.#make();
    this.held.add(next);
    waiting.resolve(next);
  }

  #abort(waiting: Waiting, signal: AbortSignal): void {
    if (waiting.onAbort === null) return; // handed a permit in the same turn
    this.#detach(waiting);
    this.#unlink(waiting);
    waiting.reject(signal.reason);
  }

  #unlink(waiting: Waiting): void {
    const { prev, next } = waiting;
    if (prev === null) this.#head = next;
    else prev.next = next;
    if (next === null) this.#tail = prev;
    else next.prev = prev;
    waiting.prev = null;
    waiting.next = null;
  }

  #detach(waiting: Waiting): void {
    const onAbort = waiting.onAbort;
    if (onAbort !== null) {
      (waiting.signal as AbortSignal).removeEventListener('abort', onAbort);
      waiting.onAbort = null;
      waiting.signal = null;
    }
  }
}

/**
 * Where the runtime lacks `Symbol.dispose`, a method declared under that key lands under
 * the string key `'undefined'`; remove it rather than expose a bogus method.
 */
function dropUndefinedSymbolKey(prototype: object): void {
  if (typeof Symbol.dispose !== 'symbol' || typeof Symbol.asyncDispose !== 'symbol') {
    Reflect.deleteProperty(prototype, 'undefined');
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/** Awaits `block()` while `held` holds; releases it however `block` ends. */
async function runHolding<R>(
  held: { [Symbol.dispose](): void },
  block: () => R | PromiseLike<R>,
): Promise<R> {
  try {
    return await block();
  } finally {
    held[Symbol.dispose]();
  }
}

/**
 * `withLock`/`withPermit`: runs `block` holding a permit of `pool`. A free permit is
 * taken at once, without waiting for a promise (the uncontended path costs no extra
 * microtask); otherwise it waits as `lock()`/`acquire()` do.
 */
function withHold<H extends { [Symbol.dispose](): void }, R>(
  pool: Pool<H>,
  block: () => R | PromiseLike<R>,
  options: WaitOptions | undefined,
): Promise<R> {
  const signal = options?.signal;
  try {
    assertFunction('block', block);
    assertSignal(signal);
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal?.aborted !== true) {
    const held = pool.tryTake();
    if (held !== undefined) return runHolding(held, block);
  }
  return pool.take(signal).then((held) => runHolding(held, block));
}

// ------------------------------------------------------------------------- Mutex

/**
 * A hold of a {@link Mutex}: what `lock()` resolves with and `tryLock()` returns. Release
 * it with `unlock()`, or let `using` / `await using` do it at the end of the block.
 */
export interface MutexLock extends Disposable, AsyncDisposable {
  /**
   * Releases this hold: the oldest waiting `lock()` (if any) gets the mutex at once.
   *
   * @throws MutexNotLockedError if this hold was already released (by this method or by
   *   `mutex.unlock()`).
   */
  unlock(): void;
  /** `true` until this hold is released. */
  readonly isHeld: boolean;
  /**
   * Releases this hold if it is still held; does nothing otherwise (so an early
   * `unlock()` and `using` mix).
   */
  [Symbol.dispose](): void;
  /** As `[Symbol.dispose]()`, for `await using`; resolves at once. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** One permit of a pool, held until released; the base of both kinds of handle. */
class Hold {
  readonly #pool: Pool<Hold>;

  constructor(pool: Pool<Hold>) {
    this.#pool = pool;
  }

  get isHeld(): boolean {
    return this.#pool.held.has(this);
  }

  /** Releases this hold, or throws `error()` if it was released already. */
  protected free(error: () => Error): void {
    if (!this.#pool.held.has(this)) throw error();
    this.#pool.give(this);
  }

  [Symbol.dispose](): void {
    if (this.#pool.held.has(this)) this.#pool.give(this);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this[Symbol.dispose]();
    return RESOLVED;
  }
}
dropUndefinedSymbolKey(Hold.prototype);

class Lock extends Hold implements MutexLock {
  unlock(): void {
    this.free(
      () => new MutexNotLockedError('Expected this lock to be held, got one already unlocked'),
    );
  }
}

/**
 * Mutual exclusion for async code: at most one holder at a time, the others wait in
 * FIFO order. Kotlin's `Mutex`, with `{ signal }` for cancellation and a handle per hold.
 *
 * Not reentrant (as in Kotlin and Go): a holder that calls `lock()` again waits for
 * itself forever. There is no owner token: the handle that `lock()` gives is the proof of
 * ownership, and `mutex.unlock()` (Kotlin's form) releases whichever hold is current.
 *
 * @example
 * ```ts
 * const mutex = new Mutex();
 * let counter = 0;
 * await Promise.all([1, 2, 3].map(() => mutex.withLock(async () => {
 *   const seen = counter;
 *   await delay(1);
 *   counter = seen + 1; // no lost update
 * })));
 * {
 *   await using lock = await mutex.lock();
 *   counter++;
 * } // unlocked here
 * ```
 */
export class Mutex {
  readonly #pool: Pool<Lock>;

  constructor() {
    const pool: Pool<Lock> = new Pool(1, () => new Lock(pool));
    this.#pool = pool;
  }

  /** `true` while somebody holds the mutex. */
  get isLocked(): boolean {
    return this.#pool.available === 0;
  }

  /**
   * Locks the mutex, waiting while somebody else holds it; resolves with the hold.
   *
   * - **Free:** resolves at once (no waiter is ahead, by the invariant).
   * - **Held:** waits; waiters get the mutex first-come first-served, handed over
   *   directly by `unlock`, so a `tryLock` in between cannot take it from them.
   * - **Aborted** while waiting: rejects with `signal.reason` and never gets the mutex;
   *   the waiters behind move up. An already aborted signal rejects at once, even if the
   *   mutex is free. An abort after the mutex was handed over changes nothing: the
   *   promise resolves with the hold, which the caller must release.
   *
   * @throws never synchronously; TypeError (as a rejection) if `signal` is not an
   *   `AbortSignal`.
   */
  lock(options?: WaitOptions): Promise<MutexLock> {
    const signal = options?.signal;
    try {
      assertSignal(signal);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#pool.take(signal);
  }

  /**
   * Locks the mutex if it is free, without waiting: the hold, or `undefined` when it is
   * held (`using lock = mutex.tryLock()` accepts both). Never throws.
   */
  tryLock(): MutexLock | undefined {
    return this.#pool.tryTake();
  }

  /**
   * Releases the current hold (Kotlin's `unlock()`); the oldest waiter gets the mutex at
   * once. The hold's own handle then counts as released.
   *
   * @throws MutexNotLockedError if the mutex is not locked.
   */
  unlock(): void {
    const [current] = this.#pool.held;
    if (current === undefined) throw new MutexNotLockedError();
    this.#pool.give(current);
  }

  /**
   * Runs `block` while holding the mutex and releases it however `block` ends; resolves
   * or rejects as `block` does.
   *
   * - **Aborted** while waiting for the mutex: rejects with `signal.reason` and `block`
   *   never runs. The signal does not reach into `block` (pass it yourself).
   *
   * @throws TypeError (as a rejection) if `block` is not a function or `signal` is not an
   *   `AbortSignal`.
   */
  withLock<R>(block: () => R | PromiseLike<R>, options?: WaitOptions): Promise<R> {
    return withHold(this.#pool, block, options);
  }
}

// --------------------------------------------------------------------- Semaphore

/**
 * One permit of a {@link Semaphore}: what `acquire()` resolves with and `tryAcquire()`
 * returns. Release it with `release()`, or let `using` / `await using` do it.
 */
export interface SemaphorePermit extends Disposable, AsyncDisposable {
  /**
   * Releases this permit: the oldest waiting `acquire()` (if any) gets it at once.
   *
   * @throws PermitNotHeldError if this permit was already released (by this method or
   *   by `semaphore.release()`).
   */
  release(): void;
  /** `true` until this permit is released. */
  readonly isHeld: boolean;
  /** Releases this permit if it is still held; does nothing otherwise. */
  [Symbol.dispose](): void;
  /** As `[Symbol.dispose]()`, for `await using`; resolves at once. */
  [Symbol.asyncDispose](): Promise<void>;
}

class Permit extends Hold implements SemaphorePermit {
  release(): void {
    this.free(
      () => new PermitNotHeldError('Expected this permit to be held, got one already released'),
    );
  }
}

/**
 * At most `permits` holders at a time; the others wait in FIFO order. Kotlin's
 * `Semaphore`, with `{ signal }` for cancellation and a handle per permit.
 *
 * @throws TypeError if `permits` is not a number; RangeError if it is not a positive
 *   safe integer (Kotlin requires at least 1 as well: a semaphore of 0 would block
 *   everyone forever).
 * @example
 * ```ts
 * const downloads = new Semaphore(4);
 * const urls = ['a', 'b', 'c'];
 * const pages = await Promise.all(
 *   urls.map((url) => downloads.withPermit(() => fetch(url).then((r) => r.text()))),
 * ); // never more than 4 fetches at once
 * ```
 */
export class Semaphore {
  readonly #pool: Pool<Permit>;

  constructor(permits: number) {
    if (typeof permits !== 'number') {
      throw new TypeError(
        `Expected permits to be a positive integer, got ${describeValue(permits)}`,
      );
    }
    if (!Number.isSafeInteger(permits) || permits < 1) {
      throw new RangeError(`Expected permits to be a positive integer, got ${String(permits)}`);
    }
    const pool: Pool<Permit> = new Pool(permits, () => new Permit(pool));
    this.#pool = pool;
  }

  /** The number of permits the semaphore was made with. */
  get permits(): number {
    return this.#pool.total;
  }

  /** How many permits are free now (0 whenever somebody waits). */
  get availablePermits(): number {
    return this.#pool.available;
  }

  /**
   * Takes a permit, waiting while none is free; resolves with it.
   *
   * - **Free permit:** resolves at once.
   * - **None free:** waits; waiters are served first-come first-served, each released
   *   permit handed directly to the oldest, so `tryAcquire` cannot barge ahead.
   * - **Aborted** while waiting: rejects with `signal.reason` and never gets a permit (no
   *   permit is lost either: one released meanwhile went to the next waiter or back to
   *   the pool). An already aborted signal rejects at once, even with permits free.
   *
   * @throws never synchronously; TypeError (as a rejection) if `signal` is not an
   *   `AbortSignal`.
   */
  acquire(options?: WaitOptions): Promise<SemaphorePermit> {
    const signal = options?.signal;
    try {
      assertSignal(signal);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#pool.take(signal);
  }

  /** Takes a permit if one is free, without waiting; `undefined` otherwise. Never throws. */
  tryAcquire(): SemaphorePermit | undefined {
    return this.#pool.tryTake();
  }

  /**
   * Releases one permit (Kotlin's `release()`): the oldest still held, whose handle then
   * counts as released. The oldest waiter, if any, gets it at once.
   *
   * @throws PermitNotHeldError if no permit is held.
   */
  release(): void {
    const [oldest] = this.#pool.held;
    if (oldest === undefined) {
      throw new PermitNotHeldError(
        `Expected a permit to be held, got none (all ${this.#pool.total} are available)`,
      );
    }
    this.#pool.give(oldest);
  }

  /**
   * Runs `block` while holding a permit and releases it however `block` ends; resolves
   * or rejects as `block` does. Aborted while waiting: rejects with `signal.reason` and
   * `block` never runs.
   *
   * @throws TypeError (as a rejection) if `block` is not a function or `signal` is not an
   *   `AbortSignal`.
   */
  withPermit<R>(block: () => R | PromiseLike<R>, options?: WaitOptions): Promise<R> {
    return withHold(this.#pool, block, options);
  }
}
