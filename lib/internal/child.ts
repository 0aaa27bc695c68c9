/**
 * One child of a scope: the object behind both `Job` and `Deferred`. It runs its block
 * at once, classifies how it ended (completed, cancelled, failed — see
 * `isCancellation`), tells its scope, and only then settles its own promise, so that
 * siblings are aborted before anyone awaiting this child resumes.
 *
 * @module
 */
import type { Deferred } from '../scope.js';
import { isCancellation } from './cancellation.js';
import { EVENT, newClause } from './clauses.js';
import type { EventOutcome, EventSource, SelectClause } from './clauses.js';
import type { ScopeCore } from './scope-core.js';

const RESOLVED: Promise<void> = Promise.resolve();
const noop = (): void => undefined;

export function abortError(what: string): DOMException {
  return new DOMException(`The ${what} was cancelled`, 'AbortError');
}

/** Runs `block` now and turns its result or synchronous throw into a promise. */
export function start<T>(
  block: (signal: AbortSignal) => T | PromiseLike<T>,
  signal: AbortSignal,
): Promise<T> {
  try {
    return Promise.resolve(block(signal));
  } catch (error) {
    return Promise.reject(error);
  }
}

const JOINED: EventOutcome = Object.freeze({ ok: true, value: undefined });

const RUNNING = 0;
const CANCELLING = 1;
const DONE = 2;

/** A child of a scope; is both the `Job` and, for `async`, the `Deferred`. */
export class Child<T> implements Deferred<T> {
  readonly #scope: ScopeCore;
  readonly #controller = new AbortController();
  readonly #isDeferred: boolean;
  #state: typeof RUNNING | typeof CANCELLING | typeof DONE = RUNNING;
  #failed = false;
  #ok = false;
  #value: unknown = undefined;
  #observed = false;
  #promise: Promise<T> | null = null;
  #resolve: (value: unknown) => void = noop;
  #reject: (error: unknown) => void = noop;
  #joined: Promise<void> | null = null;
  #resolveJoined: () => void = noop;
  /** Select clauses waiting for this child to settle (called synchronously then). */
  #watchers: (() => void)[] | null = null;

  constructor(scope: ScopeCore, isDeferred: boolean) {
    this.#scope = scope;
    this.#isDeferred = isDeferred;
  }

  get isDeferred(): boolean {
    return this.#isDeferred;
  }

  get isObserved(): boolean {
    return this.#observed;
  }

  get isActive(): boolean {
    return this.#state === RUNNING;
  }

  get isCompleted(): boolean {
    return this.#state === DONE;
  }

  get isCancelled(): boolean {
    return this.#controller.signal.aborted || this.#failed;
  }

  cancel(reason?: unknown): void {
    this.abort(reason === undefined ? abortError('job') : reason);
  }

  /** Aborts the child's signal unless it has settled or was aborted already. */
  abort(reason: unknown): void {
    if (this.#state !== RUNNING) return;
    this.#state = CANCELLING;
    this.#controller.abort(reason);
  }

  join(): Promise<void> {
    if (this.#state === DONE) return RESOLVED;
    return (this.#joined ??= new Promise<void>((resolve) => {
      this.#resolveJoined = resolve;
    }));
  }

  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.#observed = true;
    this.#promise ??=
      this.#state !== DONE
        ? new Promise<T>((resolve, reject) => {
            this.#resolve = resolve as (value: unknown) => void;
            this.#reject = reject;
          })
        : this.#ok
          ? Promise.resolve(this.#value as T)
          : Promise.reject(this.#value);
    return this.#promise.then(onFulfilled, onRejected);
  }

  onJoin<R>(handler?: () => R | PromiseLike<R>): SelectClause<R | undefined> {
    const source: EventSource = {
      ready: () => (this.#state === DONE ? JOINED : null),
      listen: (onReady) =>
        this.#watch(() => {
          onReady(JOINED);
        }),
    };
    return newClause(EVENT, null, source, handler);
  }

  onAwait<R>(handler?: (value: T) => R | PromiseLike<R>): SelectClause<T | R> {
    const source: EventSource = {
      ready: () => (this.#state === DONE ? this.#outcome() : null),
      listen: (onReady) =>
        this.#watch(() => {
          onReady(this.#outcome());
        }),
    };
    return newClause(EVENT, null, source, handler);
  }

  /** How an `onAwait` clause ends; chosen, it counts as awaiting (the error is handled). */
  #outcome(): EventOutcome {
    this.#observed = true;
    return { ok: this.#ok, value: this.#value };
  }

  #watch(watcher: () => void): () => void {
    const watchers = (this.#watchers ??= []);
    watchers.push(watcher);
    return () => {
      const index = watchers.indexOf(watcher);
      if (index >= 0) watchers.splice(index, 1);
    };
  }

  /** Runs the block (the caller made sure the scope is still active). */
  run(block: (signal: AbortSignal) => T | PromiseLike<T>): void {
    const signal = this.#controller.signal;
    start(block, signal).then(
      (value) => {
        this.#settle(!signal.aborted, signal.aborted ? signal.reason : value);
      },
      (error: unknown) => {
        if (isCancellation(error, signal)) {
          this.#settle(false, signal.reason);
        } else {
          this.#failed = true;
          this.#settle(false, error);
        }
      },
    );
  }

  /** The failure (meaningful once it has settled as failed). */
  get error(): unknown {
    return this.#value;
  }

  /** Settles without running: the scope was already cancelled when the child was made. */
  settleCancelled(reason: unknown): void {
    this.abort(reason);
    this.#settle(false, reason);
  }

  #settle(ok: boolean, value: unknown): void {
    this.#state = DONE;
    this.#ok = ok;
    this.#value = value;
    // Report a failure first, so that siblings are aborted before anyone awaiting this
    // child resumes.
    if (this.#failed) this.#scope.childFailed(this, value);
    if (ok) this.#resolve(value);
    else this.#reject(value);
    this.#resolveJoined();
    const watchers = this.#watchers;
    if (watchers !== null) {
      this.#watchers = null;
      // A select's watcher withdraws the select's other registrations; copy first.
      for (const watcher of watchers.slice()) watcher();
    }
    this.#resolve = noop;
    this.#reject = noop;
    this.#resolveJoined = noop;
    this.#scope.childSettled(this);
  }
}
