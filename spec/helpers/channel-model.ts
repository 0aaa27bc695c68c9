/**
 * A reference model of the `Channel` contract, for the model-based property tests: plain
 * arrays and one method per operation, written from DESIGN.md ("Channel") and the doc
 * comments of `lib/channel-types.ts`, not from the implementation. Every operation is
 * atomic and takes effect synchronously; only the settling of promises is deferred, so the
 * model says at each instant which operations are settled and how.
 *
 * The invariants it keeps by construction: receivers wait only when nothing is buffered
 * and no sender waits; senders wait only with `'suspend'` and a full buffer (or no
 * receiver, for a rendezvous).
 *
 * @module
 */

/** The overflow policies, as in `OverflowPolicy`. */
export type Overflow = 'suspend' | 'drop-oldest' | 'drop-latest';

/** Stands for "no cause" (a normal close), so that `undefined` and `null` stay causes. */
export const NO_CAUSE: unique symbol = Symbol('no cause');

/**
 * Stands for the `DOMException` named `AbortError` that `cancel()` makes when it is given
 * no reason: the model cannot know that object, the checker binds it on first sight.
 */
export const DEFAULT_CANCEL_REASON: unique symbol = Symbol('default cancel reason');

/** How a failed operation must reject. */
export type ExpectedError =
  | { readonly type: 'ClosedSendError' }
  | { readonly type: 'ClosedReceiveError' }
  | { readonly type: 'reason'; readonly reason: unknown };

/** What `trySend` must return; `cause` is `NO_CAUSE` when the result has none. */
export type ExpectedSendResult =
  { readonly ok: true } | { readonly ok: false; readonly closed: boolean; readonly cause: unknown };

/** What `tryReceive` / `receiveCatching` must return; `cause` as above. */
export type ExpectedReceiveResult =
  | { readonly ok: true; readonly value: number }
  | { readonly ok: false; readonly closed: boolean; readonly cause: unknown };

/** The operations that return a promise. */
export type OpKind = 'send' | 'receive' | 'receiveCatching';

/** Where a promise-returning operation stands, according to the model. */
export type Expected =
  | { readonly state: 'pending' }
  | { readonly state: 'fulfilled'; readonly value: number | ExpectedReceiveResult | undefined }
  | { readonly state: 'rejected'; readonly error: ExpectedError };

/** One promise-returning operation, numbered in call order. */
export interface ModelOp {
  readonly id: number;
  readonly kind: OpKind;
  /** The value carried, for a `send`. */
  readonly value: number | undefined;
  outcome: Expected;
}

/** The part of an `AbortSignal` the model reads. */
export interface SignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
}

interface SendWaiter {
  readonly op: ModelOp;
  readonly value: number;
  readonly signal: SignalLike | undefined;
}

interface ReceiveWaiter {
  readonly op: ModelOp;
  readonly signal: SignalLike | undefined;
}

const PENDING: Expected = { state: 'pending' };

/** The reference model of one channel. */
export class ChannelModel {
  /** Buffered values, oldest first. */
  readonly buffer: number[] = [];
  /** Every promise-returning operation, by id. */
  readonly ops: ModelOp[] = [];
  /** Values handed to `onUndelivered`, in order. */
  readonly undelivered: number[] = [];
  /** Values taken by receivers, in the order they were taken. */
  readonly taken: number[] = [];
  /** The argument of each `onClose` notification (`NO_CAUSE` for a normal close). */
  readonly closeNotifications: unknown[] = [];

  readonly #senders: SendWaiter[] = [];
  readonly #receivers: ReceiveWaiter[] = [];
  #closed = false;
  #cancelled = false;
  #cause: unknown = NO_CAUSE;

  constructor(
    readonly capacity: number,
    readonly overflow: Overflow,
  ) {}

  get isClosedForSend(): boolean {
    return this.#closed;
  }

  get isClosedForReceive(): boolean {
    return this.#cancelled || (this.#closed && !this.#hasValue());
  }

  get isEmpty(): boolean {
    return !this.isClosedForReceive && !this.#hasValue();
  }

  /** The number of operations still waiting. */
  get waiting(): number {
    return this.#senders.length + this.#receivers.length;
  }

  send(value: number, signal?: SignalLike): ModelOp {
    const op = this.#newOp('send', value);
    if (signal?.aborted === true) {
      this.#reject(op, { type: 'reason', reason: signal.reason });
      this.undelivered.push(value);
    } else if (this.#closed) {
      this.#reject(op, this.#sendError());
      this.undelivered.push(value);
    } else if (this.#offer(value)) {
      this.#fulfil(op, undefined);
    } else {
      this.#senders.push({ op, value, signal });
    }
    return op;
  }

  trySend(value: number): ExpectedSendResult {
    if (this.#closed) return { ok: false, closed: true, cause: this.#cause };
    return this.#offer(value) ? { ok: true } : { ok: false, closed: false, cause: NO_CAUSE };
  }

  receive(catching: boolean, signal?: SignalLike): ModelOp {
    const op = this.#newOp(catching ? 'receiveCatching' : 'receive', undefined);
    if (signal?.aborted === true) {
      this.#reject(op, { type: 'reason', reason: signal.reason });
      return op;
    }
    const value = this.#take();
    if (value !== undefined) {
      this.#fulfil(op, catching ? { ok: true, value } : value);
    } else if (this.#closed) {
      this.#settleClosed(op);
    } else {
      this.#receivers.push({ op, signal });
    }
    return op;
  }

  tryReceive(): ExpectedReceiveResult {
    const value = this.#take();
    if (value !== undefined) return { ok: true, value };
    return { ok: false, closed: this.#closed, cause: this.#closed ? this.#cause : NO_CAUSE };
  }

  /** `close(cause)`; pass `NO_CAUSE` for `close()`. */
  close(cause: unknown): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#cause = cause;
    this.closeNotifications.push(cause);
    // Receivers wait only when nothing is left to take: they see the close now. Waiting
    // senders are not affected (their values are still delivered).
    for (const receiver of this.#receivers.splice(0)) this.#settleClosed(receiver.op);
    return true;
  }

  /** `cancel(reason)`; pass `DEFAULT_CANCEL_REASON` for `cancel()`. */
  cancel(reason: unknown): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    if (!this.#closed) {
      this.#closed = true;
      this.#cause = reason;
      this.closeNotifications.push(reason);
    }
    this.undelivered.push(...this.buffer.splice(0));
    for (const sender of this.#senders.splice(0)) {
      this.#reject(sender.op, { type: 'reason', reason });
      this.undelivered.push(sender.value);
    }
    // A waiting receiver can only exist if the channel was open, so its cause is `reason`.
    for (const receiver of this.#receivers.splice(0)) {
      if (receiver.op.kind === 'receiveCatching') this.#settleClosed(receiver.op);
      else this.#reject(receiver.op, { type: 'reason', reason });
    }
  }

  /** Call after `signal` was aborted: withdraws every operation waiting with it. */
  abort(signal: SignalLike): void {
    const senders = this.#senders.filter((s) => s.signal === signal);
    const receivers = this.#receivers.filter((r) => r.signal === signal);
    for (const sender of senders) {
      this.#senders.splice(this.#senders.indexOf(sender), 1);
      this.#reject(sender.op, { type: 'reason', reason: signal.reason });
      this.undelivered.push(sender.value);
    }
    for (const receiver of receivers) {
      this.#receivers.splice(this.#receivers.indexOf(receiver), 1);
      this.#reject(receiver.op, { type: 'reason', reason: signal.reason });
    }
  }

  #hasValue(): boolean {
    return this.buffer.length > 0 || this.#senders.length > 0;
  }

  #newOp(kind: OpKind, value: number | undefined): ModelOp {
    const op: ModelOp = { id: this.ops.length, kind, value, outcome: PENDING };
    this.ops.push(op);
    return op;
  }

  #fulfil(op: ModelOp, value: number | ExpectedReceiveResult | undefined): void {
    op.outcome = { state: 'fulfilled', value };
  }

  #reject(op: ModelOp, error: ExpectedError): void {
    op.outcome = { state: 'rejected', error };
  }

  #sendError(): ExpectedError {
    return this.#cause === NO_CAUSE
      ? { type: 'ClosedSendError' }
      : { type: 'reason', reason: this.#cause };
  }

  /** A receiver that finds the channel closed and drained. */
  #settleClosed(op: ModelOp): void {
    if (op.kind === 'receiveCatching') {
      this.#fulfil(op, { ok: false, closed: true, cause: this.#cause });
    } else if (this.#cause === NO_CAUSE) {
      this.#reject(op, { type: 'ClosedReceiveError' });
    } else {
      this.#reject(op, { type: 'reason', reason: this.#cause });
    }
  }

  /** Accepts `value` without waiting if it can (the channel is open). */
  #offer(value: number): boolean {
    const receiver = this.#receivers.shift();
    if (receiver !== undefined) {
      this.taken.push(value);
      this.#fulfil(
        receiver.op,
        receiver.op.kind === 'receiveCatching' ? { ok: true, value } : value,
      );
      return true;
    }
    if (this.buffer.length < this.capacity) {
      this.buffer.push(value);
      return true;
    }
    switch (this.overflow) {
      case 'suspend':
        return false;
      case 'drop-oldest':
        this.undelivered.push(this.buffer.shift()!);
        this.buffer.push(value);
        return true;
      case 'drop-latest':
        this.undelivered.push(value);
        return true;
    }
  }

  /** Takes the next value, if there is one; a waiting sender then moves up. */
  #take(): number | undefined {
    let value = this.buffer.shift();
    const sender = this.#senders.shift();
    if (sender !== undefined) {
      this.#fulfil(sender.op, undefined);
      if (value === undefined) value = sender.value;
      else this.buffer.push(sender.value);
    }
    if (value !== undefined) this.taken.push(value);
    return value;
  }
}
