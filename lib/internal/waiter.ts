/**
 * Waiters: a suspended `send` or `receive` (or, later, a `select` clause) parked on a
 * channel. They form intrusive doubly-linked FIFO lists, so enqueueing, taking the
 * oldest, and removing an aborted waiter from the middle are all O(1) with no node
 * objects besides the waiter itself.
 *
 * @module
 */

/** What a waiter wants: how a delivered value or a close is reported to it. */
export type WaiterKind = typeof RECEIVE | typeof CATCHING | typeof ITERATE | typeof SEND;
/** `receive()`: resolves with the value, rejects when closed. */
export const RECEIVE = 0;
/** `receiveCatching()`: resolves with a `ReceiveResult`, never rejects on close. */
export const CATCHING = 1;
/** An async iterator's `next()`: resolves with an `IteratorResult`. */
export const ITERATE = 2;
/** `send()`: carries `value`; resolves with `undefined` once the value is taken. */
export const SEND = 3;

export class Waiter<T> {
  /** The waiter after this one in its list (not `next`: a channel's iterator is a waiter). */
  later: Waiter<T> | null = null;
  /** The waiter before this one in its list. */
  earlier: Waiter<T> | null = null;
  /** For senders: the value being sent; cleared when taken. */
  value: T | undefined;
  readonly kind: WaiterKind;
  resolve: (result: unknown) => void;
  /** The abort listener registered for this waiter, if any; removed on completion. */
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;
  /**
   * True for the reusable waiter of `iterate({ signal })`: its abort listener stays
   * registered while values are delivered (one listener per iteration, not per value)
   * and is removed when the iteration ends (closed, cancelled, aborted, `return()`).
   * `false` on the prototype, so only a waiter that sets it carries the field: every
   * field of a parked waiter costs 8 bytes on a 64-bit engine without pointer compression.
   */
  declare keep: boolean;

  constructor(kind: WaiterKind, value: T | undefined) {
    this.kind = kind;
    this.value = value;
    this.resolve = noop;
  }

  /**
   * Rejects the waiter's promise through its resolve function: resolving with a
   * rejected promise rejects it with the same reason (two microtasks later). Keeping
   * only `resolve` lets the engine free the promise's reject function, and a method
   * instead of a field keeps the node small — rejection is the rare path (close,
   * cancel, abort). Waiters settled by other means assign their own `reject`.
   */
  reject(error: unknown): void {
    this.resolve(Promise.reject(error));
  }
}
Object.defineProperty(Waiter.prototype, 'keep', { value: false, writable: true });

let captured: (result: unknown) => void = noop;
function noop(): void {
  // placeholder until a promise's resolve function is captured
}
function capture(resolve: (result: never) => void): void {
  // The waiter's owner resolves it only with a value of the promise's type.
  captured = resolve as (result: unknown) => void;
}

/**
 * Creates the promise a waiter settles and stores how to settle it on the waiter. One
 * shared executor instead of a closure per call: this is the hot path of every
 * suspended send and receive.
 */
export function promiseFor<R>(waiter: Waiter<unknown>): Promise<R> {
  const promise = new Promise<R>(capture);
  waiter.resolve = captured;
  captured = noop;
  return promise;
}

/** A FIFO of waiters with O(1) removal of any member. */
export class WaiterList<T> {
  head: Waiter<T> | null = null;
  tail: Waiter<T> | null = null;

  push(waiter: Waiter<T>): void {
    const tail = this.tail;
    waiter.earlier = tail;
    if (tail === null) this.head = waiter;
    else tail.later = waiter;
    this.tail = waiter;
  }

  /** Removes and returns the oldest waiter, or `null` when empty. */
  shift(): Waiter<T> | null {
    const head = this.head;
    if (head !== null) {
      const next = head.later;
      this.head = next;
      if (next === null) this.tail = null;
      else next.earlier = null;
      head.later = null;
    }
    return head;
  }

  /** Removes `waiter`, which must be a member of this list. */
  remove(waiter: Waiter<T>): void {
    const { earlier: prev, later: next } = waiter;
    if (prev === null) this.head = next;
    else prev.later = next;
    if (next === null) this.tail = prev;
    else next.earlier = prev;
    waiter.earlier = null;
    waiter.later = null;
  }
}

/** Detaches a completing waiter from its abort signal (removes the listener, if any). */
export function detachAbort(waiter: Waiter<unknown>): void {
  const onAbort = waiter.onAbort;
  if (onAbort !== null) {
    (waiter.signal as AbortSignal).removeEventListener('abort', onAbort);
    waiter.onAbort = null;
    waiter.signal = null;
  }
}
