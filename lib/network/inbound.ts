/**
 * The receiving end of a network channel: the `incoming` half the user holds, and the
 * credits it grants the peer.
 *
 * ## Algorithm
 * `incoming` is a local rendezvous {@link Channel}, `inner`, behind a thin facade. A value
 * that arrives is handed to a waiting receiver with `trySend`, or else parked in `inner`
 * as a *held* sender waiter: the channel then serves it exactly as a buffered value —
 * `receive`, `tryReceive`, `for await` and `select` take held values first-come
 * first-served, `isEmpty` is false while one is held — and calls the waiter's `resolve`
 * when a receiver takes it. That call is how this end counts `taken`, without touching
 * the channel's hot path: acks report it to the sender (batched: from a microtask when
 * half the window — 128 for an unlimited channel — has been taken since the last ack,
 * else after the current macrotask, from one timer shared by the connection), and the
 * sender's allowance is `capacity + taken`, so at most `capacity` values are ever held.
 *
 * A rendezvous end grants values by demand instead: when a receiver starts waiting on
 * `inner` (a hook in the channel), it pulls as many values as receivers wait beyond
 * those already granted and not yet arrived. A value that arrives after its receiver
 * gave up is held like any other, for the next receiver.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { Channel, channelInternals } from '../channel.js';
import type {
  ReceiveChannel,
  ReceiveIterator,
  ReceiveResult,
  WaitOptions,
} from '../channel-types.js';
import { DecodeError } from '../errors.js';
import { describeValue } from '../internal/describe-value.js';
import type { SelectClause } from '../internal/clauses.js';
import { SEND, Waiter } from '../internal/waiter.js';
import { decodeCause, encodeCauseJson } from './causes.js';
import type { AckSource, Link } from './link.js';
import { consumeChannel, consumeEachOf } from '../internal/consume.js';

type Validate = (
  value: unknown,
) => StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;

/** A value that arrived and waits in `inner` for a receiver. */
class Held<In> extends Waiter<In> {
  readonly inbound: Inbound<In>;
  /** The value's number among those the sender sent on this channel (1-based). */
  readonly seq: number;
  constructor(inbound: Inbound<In>, value: In, seq: number) {
    super(SEND, value);
    this.inbound = inbound;
    this.seq = seq;
    this.resolve = heldTaken;
    this.reject = heldDiscarded;
  }
}

/** A receiver took the held value. */
function heldTaken(this: Held<unknown>): void {
  this.inbound.took(this);
}

/** `inner` was cancelled: the value is discarded (the cancel frame tells the sender). */
function heldDiscarded(): void {
  // nothing to do
}

/** Work that must wait behind a value whose (asynchronous) validation is pending. */
type Queued =
  | { readonly kind: 'value'; readonly raw: unknown }
  | { readonly kind: 'close'; readonly hasCause: boolean; readonly cause: unknown }
  | { readonly kind: 'withdraw'; readonly seq: number };

/** An unlimited channel acknowledges this many values at a time. */
const UNLIMITED_BATCH = 128;

export class Inbound<In> implements AckSource {
  readonly id: number;
  readonly name: string;
  readonly capacity: number;
  readonly inner: Channel<In> = new Channel<In>(0);
  readonly facade: NetworkIncoming<In>;
  ackQueued = false;
  readonly #link: Link;
  readonly #validate: Validate | undefined;
  #arrived = 0;
  #taken = 0;
  #acked = 0;
  /** Rendezvous: how many values the sender may have sent in all. */
  #limit = 0;
  /** Rendezvous: held values in order, for `withdraw`. */
  #held: Held<In>[] | null;
  #queue: (Queued | undefined)[] | null = null;
  /** Values arrived whose validation has not finished (they are still coming). */
  #validating = 0;
  #closedBySender = false;
  /**
   * The sender's close was applied to `inner` (after every value before it) and `closed`
   * was written: the sender counts the values left here as delivered.
   */
  #closeConfirmed = false;
  /** Cancelled here: nothing more is acknowledged or pulled, arriving values are dropped. */
  #cancelled = false;
  /** The connection ended. */
  #lost = false;
  /** This end can no longer write frames: no ack can report a value taken from now on. */
  #stopped = false;
  /** Taking the held values out of `inner` to drop them (they are not counted as taken). */
  #dropping = false;
  /** Arriving (or validated) values are dropped. */
  #discarding = false;
  /**
   * While a resumable session is suspended: the values that had arrived and were not
   * taken, with their numbers, out of reach of receivers (an ack for them could not reach
   * the sender before an expiry); `null` otherwise.
   */
  #frozen: [In, number][] | null = null;
  /** How many values taken make an ack due at once: half the window (1 for rendezvous). */
  readonly #batch: number;

  constructor(
    link: Link,
    id: number,
    name: string,
    capacity: number,
    schema: StandardSchemaV1<unknown, In> | undefined,
  ) {
    this.#link = link;
    this.id = id;
    this.name = name;
    this.capacity = capacity;
    this.#batch = capacity === Infinity ? UNLIMITED_BATCH : Math.max(1, Math.floor(capacity / 2));
    this.#validate = schema === undefined ? undefined : schema['~standard'].validate;
    this.facade = new NetworkIncoming<In>(this);
    this.#held = capacity === 0 ? [] : null;
    if (capacity === 0) {
      channelInternals.onReceiverWaits(this.inner, () => {
        this.#demand();
      });
    }
  }

  // ------------------------------------------------------------- the peer's frames

  /** `["v", id, value]`; returns an error message if it breaks the protocol. */
  value(raw: unknown): string | undefined {
    if (this.#closedBySender) return `Received a value on channel '${this.name}' after its close`;
    const capacity = this.capacity;
    if (
      capacity === 0
        ? this.#arrived >= this.#limit
        : capacity !== Infinity && this.#arrived >= capacity + this.#taken
    ) {
      return `Received a value on channel '${this.name}' beyond the allowance it had granted`;
    }
    this.#arrived++;
    if (this.#discarding) return undefined;
    if (this.#queue !== null) {
      this.#validating++;
      this.#queue.push({ kind: 'value', raw });
      return undefined;
    }
    const validate = this.#validate;
    if (validate === undefined) {
      this.#accept(raw as In, this.#arrived);
      return undefined;
    }
    let result: ReturnType<Validate>;
    try {
      result = validate(raw);
    } catch (error) {
      this.#invalid(raw, undefined, error);
      return undefined;
    }
    if (result instanceof Promise) {
      this.#queue = [];
      this.#validating = 1;
      this.#runQueue(result, this.#arrived, raw).catch((error: unknown) => {
        // Not expected (the loop guards every step); never leave it unhandled.
        this.#discarding = true;
        this.#link.broken(error instanceof Error ? error : new Error(String(error)));
      });
    } else {
      this.#checked(result, raw, this.#arrived);
    }
    return undefined;
  }

  /** `["close", id, cause?]`; returns an error message if it breaks the protocol. */
  close(hasCause: boolean, json: unknown): string | undefined {
    if (this.#closedBySender) return `Received a second close for channel '${this.name}'`;
    let cause: unknown = undefined;
    if (hasCause) {
      const decoded = decodeCause(json);
      if (decoded === undefined)
        return `Received a malformed close cause for channel '${this.name}'`;
      cause = decoded.cause;
    }
    this.#closedBySender = true;
    // `closed` goes out only once the close is applied: behind values still being
    // validated, it is not sent if one of them fails (the sender then reports them).
    if (this.#queue !== null) this.#queue.push({ kind: 'close', hasCause, cause });
    else this.#applyClose(hasCause, cause);
    return undefined;
  }

  /** `["withdraw", id, seq]`; returns an error message if it breaks the protocol. */
  withdraw(seq: number): string | undefined {
    if (this.capacity !== 0 || seq < 1 || seq > this.#arrived) {
      return `Received a withdraw of a value channel '${this.name}' never received`;
    }
    if (this.#queue !== null) this.#queue.push({ kind: 'withdraw', seq });
    else this.#applyWithdraw(seq);
    return undefined;
  }

  /** The connection ended with `error`. */
  lost(error: unknown): void {
    if (this.#lost) return;
    this.#lost = true;
    // Frozen values were not taken: the sender reports them.
    this.#frozen = null;
    if (this.#cancelled) return;
    // Values of a buffered channel that the sender closed stay receivable, as in a local
    // closed channel (the sender counts them as delivered once it saw `closed`).
    if (this.#closeConfirmed && this.capacity !== 0) return;
    this.#discarding = true;
    this.#held = null;
    this.inner.cancel(error);
  }

  /**
   * This end can no longer write (its own close, a failure it closes the connection for,
   * or the peer's Close): an ack could not report a value taken from now on, so nothing
   * more may be taken. Held values are dropped (the sender reports them), later ones are
   * discarded; receivers keep waiting until `lost` ends `incoming` with the connection's
   * error. A buffered channel whose close was confirmed keeps its values: its sender
   * already counts them as delivered.
   */
  stopWriting(): void {
    if (this.#stopped || this.#cancelled || this.#lost) return;
    this.#stopped = true;
    this.#frozen = null;
    if (this.#closeConfirmed && this.capacity !== 0) return;
    this.#discarding = true;
    this.#held = null;
    const inner = this.inner;
    this.#dropping = true;
    while (inner.tryReceive().ok) {
      // dropped
    }
    this.#dropping = false;
  }

  /**
   * The resumable session lost its connection: the values held here are taken out of
   * reach until {@link Inbound.thaw}, so that none is taken whose ack might never reach
   * the sender (if the session expires instead, the sender reports them, exactly once).
   * Not for a buffered channel whose close was confirmed (the sender already counts its
   * values as delivered), nor once `inner` is closed (its receivers would see the end).
   */
  freeze(): void {
    if (this.#frozen !== null || this.#discarding || this.#stopped) return;
    if (this.inner.isClosedForSend) return;
    const seqs = this.#held?.map((held) => held.seq);
    const frozen: [In, number][] = [];
    const inner = this.inner;
    this.#dropping = true;
    for (;;) {
      const result = inner.tryReceive();
      if (!result.ok) break;
      frozen.push([result.value, seqs?.[frozen.length] ?? 0]);
    }
    this.#dropping = false;
    if (this.#held !== null) this.#held = [];
    this.#frozen = frozen;
  }

  /** The session resumed: the frozen values are receivable again, in order. */
  thaw(): void {
    const frozen = this.#frozen;
    this.#frozen = null;
    if (frozen === null) return;
    for (const [value, seq] of frozen) this.#accept(value, seq);
  }

  // ------------------------------------------------------------- the user's calls

  /** A receiver took a value (`held` when it had been parked). */
  took(held?: Held<In>): void {
    if (this.#dropping) return;
    this.#taken++;
    const list = this.#held;
    if (held !== undefined && list !== null) {
      const index = list[0] === held ? 0 : list.indexOf(held);
      if (index >= 0) list.splice(index, 1);
    }
    if (this.#cancelled || this.#lost) return;
    // Every take is acknowledged: at once when a batch is due, else after this macrotask
    // (the sender may be out of credit, and it retains the value until acknowledged).
    this.#link.scheduleAck(this, this.#taken - this.#acked >= this.#batch);
  }

  flushAck(): void {
    this.ackQueued = false;
    if (this.#cancelled || this.#lost || this.#taken === this.#acked) return;
    this.#acked = this.#taken;
    this.#link.write(`["ack",${this.id},${this.#taken}]`);
  }

  cancel(reason?: unknown): void {
    const cause =
      reason === undefined ? new DOMException('The channel was cancelled', 'AbortError') : reason;
    const first = !this.#cancelled;
    this.#cancelled = true;
    this.#discarding = true;
    this.#held = null;
    this.#frozen = null;
    this.inner.cancel(cause);
    if (first && !this.#lost) {
      this.#acked = this.#taken;
      this.#link.write(
        `["cancel",${this.id},${this.#taken},${encodeCauseJson(cause, this.#link.sendStacks)}]`,
      );
    }
  }

  // ------------------------------------------------------------------- internals

  #accept(value: In, seq: number): void {
    if (this.#discarding) return;
    if (this.#frozen !== null) {
      // Validated while suspended: out of reach too.
      this.#frozen.push([value, seq]);
      return;
    }
    const inner = this.inner;
    if (inner.trySend(value).ok) {
      this.took();
      return;
    }
    const held = new Held(this, value, seq);
    this.#held?.push(held);
    channelInternals.enqueue(inner, held);
  }

  #applyClose(hasCause: boolean, cause: unknown): void {
    if (this.#cancelled) {
      // The sender learns nothing new from `closed` here (the cancel told it), but it
      // expects the answer.
      this.#link.write(`["closed",${this.id}]`);
      return;
    }
    // A value before the close failed its schema, or the connection ended: the close never
    // reaches `inner`, which ends with the connection.
    if (this.#discarding) return;
    if (hasCause) this.inner.close(cause);
    else this.inner.close();
    // Sent at once, not left in the batch: the close counts as confirmed (its values stay
    // receivable at the end of the connection) only if the frame reached the session.
    this.#closeConfirmed = this.#link.write(`["closed",${this.id}]`) && this.#link.flush();
  }

  #applyWithdraw(seq: number): void {
    const list = this.#held;
    if (this.#discarding || list === null) return;
    const index = list.findIndex((held) => held.seq === seq);
    // Not held: a receiver took it, and the ack says so.
    if (index < 0) return;
    const held = list[index] as Held<In>;
    list.splice(index, 1);
    channelInternals.dequeue(this.inner, held);
    this.#link.write(`["withdrawn",${this.id},${seq}]`);
  }

  /** Rendezvous: pull as many values as receivers wait beyond those already coming. */
  #demand(): void {
    if (this.#discarding || this.#closedBySender || !this.#link.writable) return;
    const waiting = channelInternals.waitingReceivers(this.inner);
    const coming = this.#limit - this.#arrived + this.#validating;
    if (waiting <= coming) return;
    this.#limit += waiting - coming;
    this.#link.write(`["pull",${this.id},${this.#limit}]`);
  }

  /**
   * Delivers a validated value; `false` (and the connection fails) if it is invalid (1007)
   * or the schema returned something that is not a result (1011: a bug on this end).
   */
  #checked(result: StandardSchemaV1.Result<unknown>, raw: unknown, seq: number): boolean {
    const issues: unknown =
      typeof result === 'object' && (result as unknown) !== null ? result.issues : null;
    if (issues !== undefined && !Array.isArray(issues)) {
      this.#link.broken(
        new TypeError(
          `Expected the schema of channel '${this.name}' to return a Standard Schema result ({ value } or { issues }), got ${describeValue(result)}`,
        ),
      );
      this.#discarding = true;
      return false;
    }
    if (result.issues !== undefined) {
      this.#invalid(raw, result.issues, undefined);
      return false;
    }
    this.#accept(result.value as In, seq);
    return true;
  }

  #invalid(
    raw: unknown,
    issues: readonly StandardSchemaV1.Issue[] | undefined,
    cause: unknown,
  ): void {
    this.#discarding = true;
    const first = issues?.[0]?.message ?? 'the schema threw';
    const message = `Received a value on channel '${this.name}' that does not match its schema: ${first}`;
    // Bytes as they arrived; else it came from JSON, so it encodes again (`undefined` as nothing).
    const text: unknown = raw instanceof Uint8Array ? raw : JSON.stringify(raw);
    const data = typeof text === 'string' || text instanceof Uint8Array ? text : '';
    const error = new DecodeError(message, {
      data,
      closeCode: 1007,
      issues,
      ...(issues === undefined ? { cause } : {}),
    });
    this.#link.invalid(error, `Invalid value on channel '${this.name}'`);
  }

  /**
   * Works through the queue behind an asynchronous validation, in order. A value that
   * fails stops it (the connection fails, and the work after it is dropped); while the
   * channel discards (cancelled, lost), values are skipped but closes and withdrawals
   * still apply.
   */
  async #runQueue(
    first: Promise<StandardSchemaV1.Result<unknown>>,
    firstSeq: number,
    firstRaw: unknown,
  ): Promise<void> {
    const queue = this.#queue as (Queued | undefined)[];
    let pending: Promise<StandardSchemaV1.Result<unknown>> | undefined = first;
    let seq = firstSeq;
    let raw = firstRaw;
    let index = 0;
    try {
      for (;;) {
        if (pending !== undefined) {
          let result: StandardSchemaV1.Result<unknown>;
          try {
            result = await pending;
          } catch (error) {
            this.#validating--;
            if (this.#discarding) {
              pending = undefined;
              continue;
            }
            this.#invalid(raw, undefined, error);
            break;
          }
          this.#validating--;
          pending = undefined;
          if (!this.#discarding && !this.#checked(result, raw, seq)) break;
        }
        if (index >= queue.length) break;
        const item = queue[index] as Queued;
        queue[index++] = undefined;
        if (item.kind === 'close') {
          this.#applyClose(item.hasCause, item.cause);
        } else if (item.kind === 'withdraw') {
          this.#applyWithdraw(item.seq);
        } else {
          seq++;
          raw = item.raw;
          if (this.#discarding) {
            this.#validating--;
            continue;
          }
          let result: ReturnType<Validate>;
          try {
            result = (this.#validate as Validate)(raw);
          } catch (error) {
            this.#invalid(raw, undefined, error);
            break;
          }
          if (result instanceof Promise) {
            pending = result;
          } else {
            this.#validating--;
            if (!this.#checked(result, raw, seq)) break;
          }
        }
      }
    } catch (error) {
      // A bug of ours (or a schema result whose getters throw): fail this connection.
      this.#discarding = true;
      this.#link.broken(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#queue = null;
      this.#validating = 0;
    }
  }
}

/**
 * The `incoming` half of a network channel: a {@link ReceiveChannel} of the values the
 * peer sent on this name, in order.
 */
export class NetworkIncoming<In> implements ReceiveChannel<In> {
  readonly #inbound: Inbound<In>;
  readonly #inner: Channel<In>;

  constructor(inbound: Inbound<In>) {
    this.#inbound = inbound;
    this.#inner = inbound.inner;
  }

  receive(options?: WaitOptions): Promise<In> {
    return this.#inner.receive(options);
  }

  tryReceive(): ReceiveResult<In> {
    return this.#inner.tryReceive();
  }

  receiveCatching(options?: WaitOptions): Promise<ReceiveResult<In>> {
    return this.#inner.receiveCatching(options);
  }

  cancel(reason?: unknown): void {
    this.#inbound.cancel(reason);
  }

  get isClosedForReceive(): boolean {
    return this.#inner.isClosedForReceive;
  }

  get isEmpty(): boolean {
    return this.#inner.isEmpty;
  }

  [Symbol.asyncIterator](): AsyncIterator<In, undefined, undefined> {
    return this.#inner[Symbol.asyncIterator]();
  }

  iterate(options?: WaitOptions): ReceiveIterator<In> {
    return this.#inner.iterate(options);
  }

  consume<R>(block: (channel: this) => R | PromiseLike<R>, options?: WaitOptions): Promise<R> {
    return consumeChannel(this, block, options?.signal);
  }

  consumeEach(action: (value: In) => unknown, options?: WaitOptions): Promise<void> {
    return consumeEachOf(this, action, options?.signal);
  }

  onReceive(): SelectClause<In>;
  onReceive<R>(handler: (value: In) => R | PromiseLike<R>): SelectClause<R>;
  onReceive<R>(handler?: (value: In) => R | PromiseLike<R>): SelectClause<In | R> {
    return handler === undefined ? this.#inner.onReceive() : this.#inner.onReceive(handler);
  }

  onReceiveCatching(): SelectClause<ReceiveResult<In>>;
  onReceiveCatching<R>(handler: (result: ReceiveResult<In>) => R | PromiseLike<R>): SelectClause<R>;
  onReceiveCatching<R>(
    handler?: (result: ReceiveResult<In>) => R | PromiseLike<R>,
  ): SelectClause<ReceiveResult<In> | R> {
    return handler === undefined
      ? this.#inner.onReceiveCatching()
      : this.#inner.onReceiveCatching(handler);
  }
}
