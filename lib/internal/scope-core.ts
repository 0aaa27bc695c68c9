/**
 * The state machine behind every kind of scope (`scope`, `supervisorScope`,
 * `createScope`). It counts what still runs — the body, if any, plus every child —
 * and settles when the count reaches zero; see the module doc of `scope.ts` for the
 * rules. Children are aborted by iterating them, not through listeners on the scope's
 * signal, so a scope with many children registers no listeners of its own.
 *
 * @module
 */
import type { Deferred, Job, Scope } from '../scope.js';
import { addSuppressed, isCancellation } from './cancellation.js';
import { abortError, Child, start } from './child.js';
import { assertFunction } from './describe-value.js';

function settledError(): DOMException {
  return new DOMException(
    'Expected an active scope, got one that has already settled or been disposed',
    'InvalidStateError',
  );
}

/** The state machine behind every kind of scope. */
export class ScopeCore implements Scope {
  readonly #controller = new AbortController();
  readonly #supervisor: boolean;
  readonly #onError: ((error: unknown, job: Job) => void) | undefined;
  readonly #parent: AbortSignal | undefined;
  readonly #hasBody: boolean;
  readonly #children = new Set<Child<unknown>>();
  /** The body (when there is one) plus the children still running. */
  #running = 0;
  /** Set once the scope settles when `#running` reaches zero. */
  #closing = false;
  #settled = false;
  /** Failures in the order they happened (in a supervisor: only unhandled ones). */
  readonly #errors: unknown[] = [];
  /** `true` when the scope was cancelled before any failure aborted it. */
  #cancelled = false;
  /** Supervisor only: failed `async` children nobody had awaited yet. */
  #unobserved: Child<unknown>[] | null = null;
  #onSettled: (() => void) | null = null;
  #disposed: Promise<void> | null = null;
  #onChildrenGone: (() => void) | null = null;

  constructor(
    supervisor: boolean,
    hasBody: boolean,
    parent: AbortSignal | undefined,
    onError: ((error: unknown, job: Job) => void) | undefined,
  ) {
    this.#supervisor = supervisor;
    this.#hasBody = hasBody;
    this.#onError = onError;
    this.#parent = parent;
    if (parent !== undefined) {
      if (parent.aborted) this.cancel(parent.reason);
      else parent.addEventListener('abort', this.#onParentAbort);
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get isActive(): boolean {
    return !this.#controller.signal.aborted && !this.#settled;
  }

  launch(block: (signal: AbortSignal) => unknown): Job {
    return this.#spawn(block, false);
  }

  async<T>(block: (signal: AbortSignal) => T | PromiseLike<T>): Deferred<T> {
    return this.#spawn(block, true);
  }

  cancel(reason?: unknown): void {
    if (this.#settled || this.#controller.signal.aborted) return;
    this.#cancelled = true;
    this.#abort(reason === undefined ? abortError('scope') : reason);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return (this.#disposed ??= this.#dispose());
  }

  /**
   * Settles a scope made without a body once its children have settled (at once when
   * it has none), without cancelling it: what disposal does, minus the cancel. Internal,
   * for `sluice/server`, which makes a handler's scope only when the handler asks for it.
   */
  seal(): void {
    if (this.#hasBody || this.#closing) return;
    this.#closing = true;
    if (this.#running === 0) this.#settle();
  }

  /** Runs `body` as this scope's body; settles once everything has settled. */
  run<R>(body: (scope: Scope) => R | PromiseLike<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let bodyValue: unknown;
      this.#closing = true;
      this.#running++;
      this.#onSettled = () => {
        const primary = this.#primary(this.#cancelled);
        if (primary.failed) reject(primary.error);
        else resolve(bodyValue as R);
      };
      const signal = this.#controller.signal;
      start(() => body(this), signal).then(
        (value) => {
          bodyValue = value;
          this.#decrement();
        },
        (error: unknown) => {
          if (!isCancellation(error, signal)) this.#fail(error);
          this.#decrement();
        },
      );
    });
  }

  /** Called by a child that failed (not cancelled), before it settles. */
  childFailed(child: Child<unknown>, error: unknown): void {
    if (!this.#supervisor) {
      this.#fail(error);
    } else if (child.isDeferred) {
      // Whoever awaits it handles it; decided when the scope settles.
      if (!child.isObserved) (this.#unobserved ??= []).push(child);
    } else {
      this.#report(error, child);
    }
  }

  childSettled(child: Child<unknown>): void {
    this.#children.delete(child);
    if (this.#children.size === 0 && this.#onChildrenGone !== null) {
      this.#onChildrenGone();
      this.#onChildrenGone = null;
    }
    this.#decrement();
  }

  async #dispose(): Promise<void> {
    this.cancel();
    if (!this.#hasBody && !this.#closing) {
      this.#closing = true;
      if (this.#running === 0) this.#settle();
    }
    if (this.#children.size > 0) {
      await new Promise<void>((resolve) => {
        this.#onChildrenGone = resolve;
      });
    }
    const primary = this.#primary(false);
    if (primary.failed) throw primary.error;
  }

  #spawn<T>(block: (signal: AbortSignal) => T | PromiseLike<T>, isDeferred: boolean): Child<T> {
    assertFunction('block', block);
    if (this.#settled) throw settledError();
    const child = new Child<T>(this, isDeferred);
    this.#running++;
    this.#children.add(child);
    const signal = this.#controller.signal;
    if (signal.aborted) child.settleCancelled(signal.reason);
    else child.run(block);
    return child;
  }

  #decrement(): void {
    if (--this.#running === 0 && this.#closing) this.#settle();
  }

  /**
   * The error that decides the outcome — the cancellation reason when `cancelled`,
   * else the first failure — with every other failure recorded as suppressed by it.
   */
  #primary(cancelled: boolean): { failed: boolean; error: unknown } {
    const errors = this.#errors;
    if (!cancelled && errors.length === 0) return { failed: false, error: undefined };
    const primary: unknown = cancelled ? this.#controller.signal.reason : errors[0];
    for (const error of errors) addSuppressed(primary, error);
    return { failed: true, error: primary };
  }

  /** Records a real failure; in a scope (not a supervisor) the first one aborts it. */
  #fail(error: unknown): void {
    this.#errors.push(error);
    if (!this.#controller.signal.aborted) this.#abort(error);
  }

  /** A supervisor's child failure: to `onError`, else kept for the outcome. */
  #report(error: unknown, job: Job): void {
    const onError = this.#onError;
    if (onError === undefined) {
      this.#errors.push(error);
      return;
    }
    try {
      onError(error, job);
    } catch (thrown) {
      this.#fail(thrown);
    }
  }

  #abort(reason: unknown): void {
    this.#controller.abort(reason);
    for (const child of this.#children) child.abort(reason);
  }

  readonly #onParentAbort = (): void => {
    this.cancel((this.#parent as AbortSignal).reason);
  };

  #settle(): void {
    const unobserved = this.#unobserved;
    this.#unobserved = null;
    if (unobserved !== null) {
      for (const child of unobserved) if (!child.isObserved) this.#report(child.error, child);
    }
    this.#settled = true;
    this.#parent?.removeEventListener('abort', this.#onParentAbort);
    const onSettled = this.#onSettled;
    this.#onSettled = null;
    onSettled?.();
  }
}

// Where the runtime lacks `Symbol.asyncDispose` the method landed under `'undefined'`.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(ScopeCore.prototype, 'undefined');
}
