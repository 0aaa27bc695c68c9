/**
 * `Subscription<T>`: one subscriber of a topic, with its own bounded buffer and overflow
 * policy, received from like a channel (`receive`, `receiveCatching`, `tryReceive`,
 * `for await`, `cancel`, `await using`).
 *
 * ## Algorithm
 * The buffer holds publications (shared objects, one per publish for every subscriber).
 * Gaps take no room: offsets are contiguous, so what was missed is derived when the next
 * event is taken. `#last` is the offset accounted for (received, or reported missed);
 * `#seen` the highest offset this subscriber was offered. Taking looks, in order, at a
 * pending start gap (a discontinuity continued from the oldest), the buffer's head (a
 * gap first if its offset is beyond `#last + 1`), then `#seen` (a gap for values
 * dropped at the tail); only then can the subscription end. So every offset up to
 * `#seen` is received or reported exactly once, in order.
 *
 * Subscribing `since` a position starts by catching up: live publications are buffered
 * (under the policy) while the backend reads the history; the retained values older than
 * the first buffered one are then put in front of it.
 *
 * A full `'suspend'` subscriber offered a publication (one the topic could not hold back:
 * another `Topic` or process published it through a shared backend) goes **behind**: it
 * stops taking publications from the topic, and `#seen` (its last value) is where it
 * stands. Once it has room for half its capacity it reads the history after `#seen`, at
 * most what fits, and appends it; when that reaches the topic's head (the last offset the
 * topic handed out, compared in the same synchronous step: every later one will be
 * offered to it) it joins the live feed again, otherwise it reads again when it has room. History that is
 * gone (past retention, another epoch) ends it with a `DiscontinuityError` after what it
 * holds. So its buffer never holds more than its capacity, and each offset reaches it
 * once, in order.
 *
 * @module
 */
import type { ReceiveIterator, ReceiveResult, WaitOptions } from '../channel-types.js';
import { assertSignal } from '../internal/describe-value.js';
import { ClosedReceiveError, DiscontinuityError, SubscriberOverflowError } from '../errors.js';
import { Deque } from '../internal/deque.js';
import { ChannelIterator, wrap } from '../channel.js';
import {
  CATCHING,
  ITERATE,
  RECEIVE,
  Waiter,
  WaiterList,
  detachAbort as settle,
  promiseFor,
} from '../internal/waiter.js';
import type { WaiterKind } from '../internal/waiter.js';
import type { History } from './backend.js';
import type { Gap, Position, Publication, TopicEvent } from './position.js';

/**
 * What a full subscription does with one more publication.
 * - `'suspend'`: `publish` waits until this subscriber has room (the slowest subscriber
 *   with this policy sets the pace for every publisher of the topic). With a shared
 *   backend (`sluice/redis`, or a `MemoryBackend` shared by several `Topic` objects) the
 *   publishers of other nodes and `Topic` objects cannot be held back: a full subscriber
 *   then stops taking publications, falls behind, and once it has room catches up from
 *   the retained history (`retention`), in order and exactly once, then takes live ones
 *   again. Its buffer never holds more than its capacity. If it fell further behind than
 *   the retention, it receives what it holds, then ends with a `DiscontinuityError`
 *   naming the missing offsets (never a silent skip). Publishers of its own `Topic` wait
 *   while it is behind. Unlike Kotlin's `SUSPEND` (one process, every emitter waits),
 *   because a remote publisher cannot be made to wait for a local reader.
 * - `'drop-oldest'`: the oldest value it holds is dropped; it gets the new one.
 * - `'drop-latest'`: the new value is dropped; it keeps what it holds.
 * - `'close'`: it stops receiving; after what it holds it ends with a
 *   `SubscriberOverflowError` carrying the position to resume `since`.
 *
 * A drop is never silent: the subscriber receives a {@link Gap} where values are missing.
 */
export type TopicOverflow = 'suspend' | 'drop-oldest' | 'drop-latest' | 'close';

/** What a subscription whose `since` can no longer be honoured does. */
export type OnDiscontinuity = 'error' | 'oldest';

export const SUSPEND = 0;
export const DROP_OLDEST = 1;
export const DROP_LATEST = 2;
export const CLOSE = 3;
export type Policy = typeof SUSPEND | typeof DROP_OLDEST | typeof DROP_LATEST | typeof CLOSE;

/** What the topic gives a subscription to talk back to it. */
export interface Hub<T> {
  /** The subscriber took a value: waiting publishers may have room now. */
  room(): void;
  /** The offset of the last publication the topic handed out (-1 before any). */
  head(): number;
  /** The subscriber stopped receiving: forget it. */
  detach(subscription: Subscription<T>): void;
  /**
   * The backend's history of the topic after `since`, at most `limit` publications; never
   * throws (a backend's throw is a rejection).
   */
  history(since: Position, limit: number): Promise<History<T>>;
}

/** The topic's side of a subscription (not exported by the package). */
export interface SubscriptionInternals {
  create<T>(
    capacity: number,
    policy: Policy,
    hub: Hub<T>,
    since: Position | undefined,
  ): Subscription<T>;
  offer<T>(subscription: Subscription<T>, publication: Publication<T>): void;
  /** Whether one more publication fits, with `reserved` publications on their way. */
  hasRoom<T>(subscription: Subscription<T>, reserved: number): boolean;
  /** Starts a subscription with `publication` (the current value of a state topic). */
  start<T>(subscription: Subscription<T>, publication: Publication<T>): void;
  caughtUp<T>(
    subscription: Subscription<T>,
    history: History<T>,
    since: Position,
    onDiscontinuity: OnDiscontinuity,
  ): void;
  /** Ends a subscription that will receive nothing more (after what it holds). */
  end<T>(subscription: Subscription<T>, cause: unknown, hasCause: boolean): void;
  /** The backend lost publications the topic had not handed out: ends it (see `#lost`). */
  lost<T>(subscription: Subscription<T>, error: DiscontinuityError): void;
  /** Ends a subscription at once, dropping what it holds. */
  fail<T>(subscription: Subscription<T>, cause: unknown): void;
  watch<T>(subscription: Subscription<T>, signal: AbortSignal | undefined): void;
}

// Assigned in Subscription's static block, which alone can reach its private state.
export let subscriptionInternals: SubscriptionInternals =
  undefined as unknown as SubscriptionInternals;

const END = Symbol('end');
const ITERATION_DONE: IteratorReturnResult<undefined> = Object.freeze({
  done: true as const,
  value: undefined,
});
const RESOLVED: Promise<void> = Promise.resolve();

// A subscription's iteration step (see ChannelIterator), bound in its static block.
let PULL_SUBSCRIPTION: <T>(
  subscription: Subscription<T>,
  signal: AbortSignal | undefined,
) => Promise<unknown>;

/**
 * A subscriber of a topic, made by `topic.subscribe()`. It yields {@link TopicEvent}s:
 * each publication with its position, and a {@link Gap} wherever values are missing.
 *
 * Ends (receive rejects / `for await` stops) when:
 * - the topic is closed: after every value it holds (and a gap for any dropped after
 *   them), `for await` ends, `receive` rejects with `ClosedReceiveError` — or with the
 *   topic's close cause, the same object;
 * - it is closed (`close()`): the same, after what it holds;
 * - it is cancelled (`cancel(reason)`, `await using`, the `signal` given to `subscribe`
 *   aborts): at once, what it holds is dropped, and operations reject with the reason;
 * - `overflow: 'close'` and it was full: after what it holds, with a
 *   `SubscriberOverflowError`;
 * - `since` could not be honoured: at once, with a `DiscontinuityError`.
 * - a shared backend lost publications it had not delivered yet: after what it holds,
 *   with a `DiscontinuityError` (the Redis backend past retention or after an epoch change).
 *
 * Differs from a `ReceiveChannel`: it has no `select` clauses (yet), and several
 * consumers may share it as they share a channel, each event going to one of them.
 *
 * @typeParam T - the type of the published values.
 */
export class Subscription<T> implements AsyncIterable<TopicEvent<T>, undefined, undefined> {
  readonly #capacity: number;
  readonly #policy: Policy;
  readonly #hub: Hub<T>;
  readonly #buffer = new Deque<Publication<T>>();
  readonly #receivers = new WaiterList<TopicEvent<T>>();
  #waiting = 0;
  /** Epoch of the offsets below; `undefined` until the first publication or history. */
  #epoch: string | undefined = undefined;
  /** Offset accounted for: received or reported missed. -1 until known. */
  #last = -1;
  /** Highest offset offered to this subscription. */
  #seen = -1;
  #startGap: Gap | null = null;
  /** `'suspend'` only: full when a publication came, it reads the history after `#seen`. */
  #behind = false;
  /** A history read for catching up (`#behind`) is on its way. */
  #reading = false;
  /** Ended while catching up: the history beyond this offset came after the end. */
  #cutoff = Infinity;
  #since: Position | undefined;
  #catchingUp: boolean;
  /** Still offered publications by the topic. */
  #accepting = true;
  #ended = false;
  #cause: unknown = undefined;
  #hasCause = false;
  #signal: AbortSignal | undefined = undefined;
  #onAbort: (() => void) | null = null;

  static {
    PULL_SUBSCRIPTION = <T>(subscription: Subscription<T>, signal: AbortSignal | undefined) =>
      subscription.#receive(ITERATE, signal);
    subscriptionInternals = {
      create: (capacity, policy, hub, since) => new Subscription(capacity, policy, hub, since),
      offer: (subscription, publication) => {
        subscription.#offer(publication);
      },
      hasRoom: (subscription, reserved) => subscription.#hasRoom(reserved),
      start: (subscription, publication) => {
        subscription.#epoch = publication.position.epoch;
        subscription.#last = publication.position.offset - 1;
        subscription.#seen = subscription.#last;
        subscription.#offer(publication);
      },
      caughtUp: (subscription, history, since, onDiscontinuity) => {
        subscription.#caughtUp(history, since, onDiscontinuity);
      },
      end: (subscription, cause, hasCause) => {
        subscription.#end(cause, hasCause);
      },
      lost: (subscription, error) => {
        subscription.#lost(error);
      },
      fail: (subscription, cause) => {
        subscription.#fail(cause);
      },
      watch: (subscription, signal) => {
        subscription.#watchSubscription(signal);
      },
    };
  }

  private constructor(capacity: number, policy: Policy, hub: Hub<T>, since: Position | undefined) {
    this.#capacity = capacity;
    this.#policy = policy;
    this.#hub = hub;
    this.#since = since;
    this.#catchingUp = since !== undefined;
  }

  /** The buffer size given to `subscribe`: how many values it holds for the receiver. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The overflow policy given to `subscribe`. */
  get overflow(): TopicOverflow {
    return (['suspend', 'drop-oldest', 'drop-latest', 'close'] as const)[this.#policy];
  }

  /**
   * Where this subscriber stands: the position of the last event it received (a
   * publication's position, a gap's `to`) — subscribe again `since` it to continue
   * exactly after. Before anything was received: the `since` it was given, or the
   * position just before the first publication it will get, or `undefined` while that
   * is not known yet (nothing was published since it subscribed).
   */
  get position(): Position | undefined {
    return this.#epoch === undefined || this.#catchingUp
      ? this.#since
      : { epoch: this.#epoch, offset: this.#last };
  }

  /** `true` once it has ended: a `receive` would reject (closed and drained, or cancelled). */
  get isClosedForReceive(): boolean {
    return this.#ended && !this.#catchingUp && this.#peek() === END;
  }

  /** `true` when a `receive` would have to wait (as for a channel, an ended one is not empty). */
  get isEmpty(): boolean {
    return this.#peek() === null;
  }

  /**
   * Takes the next event, waiting while there is none.
   *
   * - **Empty:** waits; waiting receivers are served first-come first-served.
   * - **Ended:** events it holds are still received; then rejects with
   *   `ClosedReceiveError`, or with the cause it ended with (the topic's close cause, the
   *   cancel reason, a `SubscriberOverflowError`, a `DiscontinuityError`), the same object.
   * - **Aborted** while waiting: rejects with `signal.reason` and takes nothing; the
   *   subscription goes on (abort the `signal` given to `subscribe` to end it).
   *
   * @throws (as a rejection) TypeError if `signal` is neither an `AbortSignal` nor
   *   `undefined`; nothing is taken.
   * @example
   * ```ts
   * const topic = new Topic<string>();
   * const sub = topic.subscribe();
   * await topic.publish('hi');
   * const event = await sub.receive(); // { type: 'publication', value: 'hi', position }
   * ```
   */
  receive(options?: WaitOptions): Promise<TopicEvent<T>> {
    return this.#receive(RECEIVE, options?.signal) as Promise<TopicEvent<T>>;
  }

  /**
   * Like `receive`, but an ended subscription resolves with `{ ok: false, closed: true,
   * cause? }` instead of rejecting. Rejects only when aborted (with `signal.reason`), or
   * with a TypeError for a `signal` that is not an `AbortSignal`.
   */
  receiveCatching(options?: WaitOptions): Promise<ReceiveResult<TopicEvent<T>>> {
    return this.#receive(CATCHING, options?.signal) as Promise<ReceiveResult<TopicEvent<T>>>;
  }

  /**
   * Takes the next event if there is one now: `{ ok: true, value }`, `{ ok: false,
   * closed: false }` when it would have to wait, `{ ok: false, closed: true, cause? }`
   * once ended and drained. Never throws.
   */
  tryReceive(): ReceiveResult<TopicEvent<T>> {
    const event = this.#take();
    if (event === null) return { ok: false, closed: false };
    if (event === END) return this.#closedResult();
    this.#took();
    return { ok: true, value: event };
  }

  /**
   * Stops receiving new publications: what it holds is still received (with a gap for
   * values dropped after it), then it ends normally. Publishers no longer wait for it.
   *
   * @returns `true` if this call ended it, `false` if it had already ended.
   */
  close(): boolean {
    if (this.#ended) return false;
    this.#end(undefined, false);
    return true;
  }

  /**
   * Unsubscribes at once: what it holds is dropped (no gap is reported for it), waiting
   * receivers and later ones reject with `reason` (a `receiveCatching` resolves closed
   * with it). If it had already ended, the first cause stays, but what it still holds is
   * dropped all the same. A second call does nothing more.
   *
   * @param reason - defaults to a `DOMException` named `AbortError`.
   */
  cancel(reason?: unknown): void {
    this.#fail(
      reason === undefined
        ? new DOMException('The subscription was cancelled', 'AbortError')
        : reason,
    );
  }

  /**
   * `for await (const event of subscription)`: receives until it ends. A normal end
   * (the topic or the subscription closed) ends the loop; any other end throws its
   * cause. Leaving the loop early does **not** cancel the subscription (use `await
   * using`, `cancel`, or the `signal` given to `subscribe`).
   */
  [Symbol.asyncIterator](): AsyncIterator<TopicEvent<T>, undefined, undefined> {
    return new ChannelIterator<TopicEvent<T>, Subscription<T>>(this, PULL_SUBSCRIPTION, undefined);
  }

  /**
   * Like `for await (const event of subscription)`, but the loop can be stopped from
   * outside: it ends by throwing `signal.reason` (the same object) when `signal` aborts,
   * as a channel's `iterate({ signal })` does. Nothing is lost: an event taken is yielded,
   * one not taken stays in the subscription; the abort does not cancel the subscription.
   * Closed or ended: as `for await`. An already aborted signal throws at the first step.
   *
   * Differs from a channel's `iterate` in cost only: the abort listener is added each
   * time the loop waits (and removed when it is served), not once per iteration.
   *
   * @throws TypeError if `signal` is neither an `AbortSignal` nor `undefined`.
   * @example
   * ```ts
   * for await (const event of topic.subscribe().iterate({ signal })) console.log(event);
   * ```
   */
  iterate(options?: WaitOptions): ReceiveIterator<TopicEvent<T>> {
    const signal = options?.signal;
    assertSignal(signal);
    return new ChannelIterator<TopicEvent<T>, Subscription<T>>(this, PULL_SUBSCRIPTION, signal);
  }

  /** Cancels the subscription (`cancel()`), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.cancel();
    return RESOLVED;
  }

  // --------------------------------------------------------------- internals

  #hasRoom(reserved: number): boolean {
    if (!this.#accepting) return true;
    // Behind: its backlog is in the history; the topic's own publishers wait for it.
    if (this.#behind) return false;
    const held = this.#buffer.length;
    const free = this.#capacity - held + (held === 0 && !this.#catchingUp ? this.#waiting : 0);
    return free > reserved;
  }

  #offer(publication: Publication<T>): void {
    if (!this.#accepting) return;
    const offset = publication.position.offset;
    if (this.#epoch === undefined && !this.#catchingUp) {
      this.#epoch = publication.position.epoch;
      this.#last = offset - 1;
      this.#seen = offset - 1;
    }
    if (offset <= this.#seen || this.#behind) return;
    const buffer = this.#buffer;
    if (buffer.length >= this.#capacity && (this.#waiting === 0 || this.#catchingUp)) {
      switch (this.#policy) {
        case DROP_OLDEST:
          buffer.shift();
          break;
        case DROP_LATEST:
          this.#seen = offset;
          return;
        case CLOSE: {
          const tail = buffer.at(buffer.length - 1).position;
          this.#end(new SubscriberOverflowError(tail, this.#capacity), true);
          return;
        }
        default:
          // 'suspend': the topic waited for room; a value it could not hold back (another
          // publisher of a shared backend) is read from the history later.
          this.#behind = true;
          return;
      }
    }
    buffer.push(publication);
    this.#seen = offset;
    if (this.#waiting > 0) this.#serve();
  }

  /**
   * The next event without taking it (`null`: none yet, `END`: ended and drained). Gaps
   * are computed here, so peeking and taking agree.
   */
  #peek(): TopicEvent<T> | null | typeof END {
    if (this.#catchingUp) return null;
    if (this.#startGap !== null) return this.#startGap;
    const buffer = this.#buffer;
    if (buffer.length > 0) {
      const head = buffer.peek();
      return head.position.offset > this.#last + 1 ? this.#gap(head.position.offset - 1) : head;
    }
    if (this.#seen > this.#last) return this.#gap(this.#seen);
    return this.#ended && !this.#behind ? END : null;
  }

  #gap(to: number): Gap {
    const epoch = this.#epoch as string;
    const from = this.#last + 1;
    return {
      type: 'gap',
      from: { epoch, offset: from },
      to: { epoch, offset: to },
      count: to - from + 1,
    };
  }

  /** Takes the next event (see `#peek`); the caller then calls `#took()`. */
  #take(): TopicEvent<T> | null | typeof END {
    const event = this.#peek();
    if (event === null || event === END) return event;
    if (event === this.#startGap) {
      this.#startGap = null;
    } else if (event.type === 'gap') {
      this.#last = event.to.offset;
    } else {
      this.#buffer.shift();
      this.#last = event.position.offset;
    }
    return event;
  }

  /** After an event was handed out: publishers waiting for room may go on. */
  #took(): void {
    if (this.#policy !== SUSPEND) return;
    if (this.#behind) this.#catchUp();
    else if (this.#accepting) this.#hub.room();
  }

  /** How many more publications it can hold now (waiting receivers count when it is empty). */
  #room(): number {
    const held = this.#buffer.length;
    return this.#capacity - held + (held === 0 ? this.#waiting : 0);
  }

  /**
   * Behind: reads the history after `#seen` once there is room for half the capacity (at
   * least one); one read at a time, for at most a full buffer (the receiver may take
   * more while it is on its way; what does not fit then is read again later).
   */
  #catchUp(): void {
    if (!this.#behind || this.#reading || this.#catchingUp) return;
    if (this.#room() < Math.max(1, Math.ceil(this.#capacity / 2))) return;
    this.#reading = true;
    const since: Position = { epoch: this.#epoch as string, offset: this.#seen };
    // The hub turns a backend's synchronous throw into a rejection.
    this.#hub.history(since, Math.max(1, this.#capacity + this.#waiting)).then(
      (history) => {
        this.#caughtUpBehind(history, since);
      },
      (error: unknown) => {
        this.#reading = false;
        if (!this.#behind) return;
        this.#behind = false;
        this.#endWith(error);
      },
    );
  }

  /** A catch-up read came back: append what follows on, join the live feed if at the head. */
  #caughtUpBehind(history: History<T>, since: Position): void {
    this.#reading = false;
    // Cancelled, or ended by a discontinuity, meanwhile.
    if (!this.#behind) return;
    const { position, oldest } = history;
    if (position.epoch !== since.epoch || oldest > since.offset + 1) {
      this.#behind = false;
      this.#endWith(new DiscontinuityError(since, position, oldest));
      return;
    }
    const room = this.#room();
    let taken = 0;
    for (const publication of history.publications) {
      const offset = publication.position.offset;
      if (offset <= this.#seen) continue;
      if (offset !== this.#seen + 1 || offset > this.#cutoff || taken >= room) break;
      this.#buffer.push(publication);
      this.#seen = offset;
      taken++;
    }
    const target = this.#ended ? this.#cutoff : this.#hub.head();
    if (this.#seen >= target) {
      // Every later publication will be offered to it.
      this.#behind = false;
    } else if (taken === 0 && room > 0) {
      // Nothing after its position although the topic is ahead: never a silent skip, nor
      // a loop of empty reads.
      this.#behind = false;
      this.#endWith(
        new DiscontinuityError(
          since,
          position,
          history.publications[0]?.position.offset ?? position.offset + 1,
        ),
      );
      return;
    }
    this.#serve();
    if (this.#behind) this.#catchUp();
    else if (this.#accepting) this.#hub.room();
  }

  /**
   * The backend lost publications before the topic handed them out (`error.since` is the
   * last it handed out). Behind, this subscriber stands further back: everything after
   * its own position up to `error.oldest` is gone, so it ends with an error naming that.
   */
  #lost(error: DiscontinuityError): void {
    if (this.#behind && !this.#ended) {
      this.#behind = false;
      const since: Position = { epoch: this.#epoch as string, offset: this.#seen };
      this.#end(new DiscontinuityError(since, error.position, error.oldest), true);
      return;
    }
    this.#end(error, true);
  }

  /** Ends after what it holds with `cause`, replacing a normal end's (values are missing). */
  #endWith(cause: unknown): void {
    if (this.#ended) {
      this.#cause = cause;
      this.#hasCause = true;
      this.#serve();
      return;
    }
    this.#end(cause, true);
  }

  #receive(kind: WaiterKind, signal: AbortSignal | undefined): Promise<unknown> {
    try {
      assertSignal(signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const event = this.#take();
    if (event === END) return this.#closedOutcome(kind);
    if (event !== null) {
      this.#took();
      return Promise.resolve(wrap(kind, event));
    }
    const waiter = new Waiter<TopicEvent<T>>(kind, undefined);
    const promise = promiseFor(waiter);
    this.#receivers.push(waiter);
    this.#waiting++;
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (waiter.onAbort === null) return;
        settle(waiter);
        this.#receivers.remove(waiter);
        this.#waiting--;
        waiter.reject(signal.reason);
      };
      waiter.signal = signal;
      waiter.onAbort = onAbort;
      signal.addEventListener('abort', onAbort);
    }
    // A receiver waiting on an empty subscription is room, for a capacity of 0.
    if (this.#capacity === 0) this.#took();
    return promise;
  }

  /** Hands events to waiting receivers, in order, while there are events. */
  #serve(): void {
    while (this.#receivers.head !== null) {
      const event = this.#take();
      if (event === null) return;
      const waiter = this.#receivers.shift() as Waiter<TopicEvent<T>>;
      this.#waiting--;
      settle(waiter);
      if (event === END) {
        this.#failWaiter(waiter);
        continue;
      }
      waiter.resolve(wrap(waiter.kind, event));
      // After the hand-over, so that a publisher let through serves the next receivers.
      this.#took();
    }
  }

  #closedOutcome(kind: WaiterKind): Promise<unknown> {
    if (kind === RECEIVE || (kind === ITERATE && this.#hasCause)) {
      return Promise.reject(this.#receiveError());
    }
    return Promise.resolve(kind === ITERATE ? ITERATION_DONE : this.#closedResult());
  }

  #failWaiter(waiter: Waiter<TopicEvent<T>>): void {
    if (waiter.kind === RECEIVE || (waiter.kind === ITERATE && this.#hasCause)) {
      waiter.reject(this.#receiveError());
    } else {
      waiter.resolve(waiter.kind === ITERATE ? ITERATION_DONE : this.#closedResult());
    }
  }

  #receiveError(): unknown {
    return this.#hasCause ? this.#cause : new ClosedReceiveError();
  }

  #closedResult(): { readonly ok: false; readonly closed: true; readonly cause?: unknown } {
    return this.#hasCause
      ? { ok: false, closed: true, cause: this.#cause }
      : { ok: false, closed: true };
  }

  #caughtUp(history: History<T>, since: Position, onDiscontinuity: OnDiscontinuity): void {
    if (!this.#catchingUp) return;
    this.#catchingUp = false;
    const { position, oldest } = history;
    const sameEpoch = since.epoch === position.epoch && since.offset <= position.offset;
    if (!sameEpoch || since.offset + 1 < oldest) {
      if (onDiscontinuity === 'error') {
        this.#fail(new DiscontinuityError(since, position, oldest), true);
        return;
      }
      if (!sameEpoch) {
        this.#startGap = {
          type: 'gap',
          from: { epoch: position.epoch, offset: 1 },
          to: { epoch: position.epoch, offset: oldest - 1 },
          count: oldest - 1,
          previous: since,
        };
      }
    }
    this.#epoch = position.epoch;
    this.#last = sameEpoch ? since.offset : oldest - 1;
    // The retained values older than the first live one go in front of it.
    const live = this.#buffer;
    const first = live.length > 0 ? live.peek().position.offset : Infinity;
    const merged = new Deque<Publication<T>>();
    for (const publication of history.publications) {
      const offset = publication.position.offset;
      if (offset > this.#last && offset < first && offset <= this.#cutoff) {
        merged.push(publication);
        if (offset > this.#seen) this.#seen = offset;
      }
    }
    while (live.length > 0) merged.push(live.shift());
    const end = Math.min(position.offset, this.#cutoff);
    if (this.#policy === SUSPEND && this.#capacity !== Infinity) {
      // At most what fits; the rest (and live values it could not take) is read later.
      const room = this.#capacity + this.#waiting;
      // What is older than the oldest retained is missed (a gap, with 'oldest').
      this.#seen = Math.max(this.#last, Math.min(oldest - 1, end));
      while (merged.length > 0 && live.length < room) {
        const publication = merged.shift();
        live.push(publication);
        this.#seen = publication.position.offset;
      }
      while (merged.length > 0) merged.shift();
      if (this.#behind || this.#seen < end) this.#behind = this.#seen < this.#cutoff;
      this.#serve();
      this.#catchUp();
      return;
    }
    while (merged.length > 0) live.push(merged.shift());
    // Everything up to the history's position was there to be had: what is not held is
    // reported as missed.
    if (this.#seen < end) this.#seen = end;
    this.#serve();
  }

  /** No more publications; what it holds stays receivable. */
  #end(cause: unknown, hasCause: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#catchingUp || this.#behind) {
      const head = Math.max(this.#seen, this.#hub.head());
      if (head >= 0) this.#cutoff = head;
      // Behind: it still reads up to the cutoff (what was published before the end).
      if (this.#behind && this.#seen >= this.#cutoff) this.#behind = false;
    }
    this.#accepting = false;
    if (hasCause) {
      this.#cause = cause;
      this.#hasCause = true;
    }
    this.#unwatchSubscription();
    this.#hub.detach(this);
    this.#serve();
  }

  /** Ends at once, dropping what it holds; `override` replaces an earlier cause. */
  #fail(cause: unknown, override = false): void {
    if (!this.#ended || override) {
      this.#cause = cause;
      this.#hasCause = true;
    }
    this.#catchingUp = false;
    this.#behind = false;
    this.#startGap = null;
    while (this.#buffer.length > 0) this.#buffer.shift();
    this.#seen = this.#last;
    this.#end(cause, true);
    // Already ended while catching up: its receivers waited for the history.
    this.#serve();
  }

  #watchSubscription(signal: AbortSignal | undefined): void {
    if (signal === undefined) return;
    if (signal.aborted) {
      this.#fail(signal.reason);
      return;
    }
    const onAbort = (): void => {
      this.#fail(signal.reason);
    };
    this.#signal = signal;
    this.#onAbort = onAbort;
    signal.addEventListener('abort', onAbort);
  }

  #unwatchSubscription(): void {
    if (this.#onAbort !== null) {
      (this.#signal as AbortSignal).removeEventListener('abort', this.#onAbort);
      this.#onAbort = null;
      this.#signal = undefined;
    }
  }
}

if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(Subscription.prototype, 'undefined');
}
