/**
 * `Topic<T>`: one value to many subscribers, each with its own bounded buffer and
 * overflow policy, every value with a position `{ epoch, offset }` so that a subscriber
 * can tell exactly what it missed and resume `since` where it stopped. The history lives
 * in a {@link TopicBackend} (in memory by default); nothing here knows which.
 *
 * ## Algorithm
 * A publish is atomic: it waits (FIFO among publishers) until every `'suspend'`
 * subscriber has room, then hands the value to the backend, which assigns its position
 * and calls this topic's listener; the listener offers it to every subscriber, whose
 * policy decides (hold, drop, end). Nothing is published before that moment, so an
 * aborted or rejected publish leaves no trace and offsets have no holes. While a publish
 * is on its way through an asynchronous backend, it holds a slot of room in every
 * `'suspend'` subscriber.
 *
 * @module
 */
import { ClosedSendError } from '../errors.js';
import type { DiscontinuityError } from '../errors.js';
import { assertSignal, describeValue } from '../internal/describe-value.js';
import {
  SEND,
  Waiter,
  WaiterList,
  detachAbort as unwatch,
  promiseFor,
} from '../internal/waiter.js';
import type { History, Retention, TopicBackend } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { validatePosition } from './position.js';
import type { Position, Publication } from './position.js';
import {
  CLOSE,
  DROP_LATEST,
  DROP_OLDEST,
  SUSPEND,
  Subscription,
  subscriptionInternals as internals,
} from './subscription.js';
import type { Hub, OnDiscontinuity, Policy, TopicOverflow } from './subscription.js';

/** Options of the {@link Topic} constructor. */
export interface TopicOptions {
  /**
   * Where the history lives. Topics that share a backend and a `name` share their
   * history and see each other's publications.
   * @default a new `MemoryBackend` of this topic alone
   */
  readonly backend?: TopicBackend | undefined;
  /**
   * The topic's name in the backend.
   * @default 'topic'
   */
  readonly name?: string | undefined;
  /** How much history is kept for subscribers that resume `since` a position. */
  readonly retention?: Retention | undefined;
}

/** Options of {@link Topic.subscribe}. */
export interface SubscribeOptions {
  /**
   * How many values it holds for its receiver: a non-negative integer or `Infinity`. 0
   * (with `'suspend'` only) makes each publish wait until this subscriber receives.
   * @default 64
   */
  readonly capacity?: number | undefined;
  /**
   * What happens when it is full and another value is published; see {@link TopicOverflow}.
   * With a shared backend, `'suspend'` holds back only this `Topic`'s publishers: a full
   * subscriber falls behind the others (publishers on other nodes) and catches up from the
   * retained history once it has room, never holding more than `capacity`; past the
   * retention it ends with a `DiscontinuityError` naming what it missed.
   * @default 'suspend'
   */
  readonly overflow?: TopicOverflow | undefined;
  /**
   * Receive every value published after this position first (exactly once, in order),
   * then the new ones. If values after it are no longer retained, or it is of another
   * epoch, see `onDiscontinuity`.
   * @default undefined: only values published from now on
   */
  readonly since?: Position | undefined;
  /**
   * When `since` cannot be honoured: `'error'` ends the subscription with a
   * `DiscontinuityError` naming the gap; `'oldest'` continues from the oldest retained
   * value and reports what is missing as a {@link Gap} first.
   * @default 'error'
   */
  readonly onDiscontinuity?: OnDiscontinuity | undefined;
  /** Aborting it cancels the subscription with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
}

const POLICIES: Readonly<Record<TopicOverflow, Policy>> = {
  suspend: SUSPEND,
  'drop-oldest': DROP_OLDEST,
  'drop-latest': DROP_LATEST,
  close: CLOSE,
};

function validateCapacity(capacity: unknown): number {
  if (capacity === undefined) return 64;
  if (
    typeof capacity !== 'number' ||
    (capacity !== Infinity && !(Number.isSafeInteger(capacity) && capacity >= 0))
  ) {
    const message = `Expected capacity to be a non-negative integer or Infinity, got ${describeValue(capacity)}`;
    throw typeof capacity === 'number' ? new RangeError(message) : new TypeError(message);
  }
  return capacity;
}

function validatePolicy(overflow: unknown, capacity: number): Policy {
  if (overflow === undefined) return SUSPEND;
  const policy = typeof overflow === 'string' ? POLICIES[overflow as TopicOverflow] : undefined;
  if (policy === undefined || !Object.hasOwn(POLICIES, overflow as string)) {
    const message = `Expected overflow to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got ${describeValue(overflow)}`;
    throw typeof overflow === 'string' ? new RangeError(message) : new TypeError(message);
  }
  if (policy !== SUSPEND && capacity === 0) {
    throw new RangeError(
      `Expected a capacity of at least 1 with overflow '${overflow as string}', got 0`,
    );
  }
  return policy;
}

function validateRetention(retention: unknown): Retention {
  if (retention === undefined) return { count: 100, maxAge: Infinity };
  if (typeof retention !== 'object' || retention === null) {
    throw new TypeError(
      `Expected retention to be an object or undefined, got ${describeValue(retention)}`,
    );
  }
  const count: unknown = Reflect.get(retention, 'count') ?? 100;
  const maxAge: unknown = Reflect.get(retention, 'maxAge') ?? Infinity;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(
      `Expected retention.count to be a non-negative integer, got ${describeValue(count)}`,
    );
  }
  if (typeof maxAge !== 'number' || !(maxAge > 0)) {
    throw new RangeError(
      `Expected retention.maxAge to be a positive number of milliseconds or Infinity, got ${describeValue(maxAge)}`,
    );
  }
  return { count, maxAge };
}

/**
 * A topic: `publish` sends one value to every current subscriber, and each
 * `subscribe()` gets its own bounded buffer with its own overflow policy.
 *
 * - **Positions:** `publish` resolves with the value's `{ epoch, offset }`; offsets are
 *   contiguous within an epoch (the first is 1). Every subscriber gets each value with
 *   its position, and a {@link Gap} wherever it missed values: a drop is never silent.
 * - **Retention:** the latest `retention.count` values (default 100), and with
 *   `retention.maxAge` only the younger ones, are kept for `subscribe({ since })`.
 * - **Per subscriber:** one slow subscriber affects the others only if its policy is
 *   `'suspend'` (then this topic's publishers wait for it); with a drop policy it loses
 *   values (and is told), with `'close'` it is ended and can resume `since` its position.
 *   Publishers it cannot hold back (other `Topic`s or processes on a shared backend)
 *   make a full `'suspend'` subscriber fall behind instead: it catches up from the
 *   retained history, in order and once, or past it ends with a `DiscontinuityError`.
 * - **Shared backend** (`sluice/redis`): when the backend reports publications it can no
 *   longer deliver (past retention, or a new epoch after the store lost its data), every
 *   current subscriber gets what it holds, then ends with that `DiscontinuityError`
 *   (`since`: its last position); it may subscribe again `since` it. Never a silent loss.
 *
 * Differs from Kotlin's `SharedFlow` and Effect's `PubSub`, where one buffer and one
 * policy serve every subscriber (one slow subscriber slows or drops for all), and from
 * Go, which has no broadcast: a policy belongs to the subscriber here.
 *
 * @typeParam T - the type of the published values.
 * @throws TypeError / RangeError for invalid options ("Expected …, got …").
 * @example
 * ```ts
 * const prices = new Topic<number>({ retention: { count: 1000 } });
 * const sub = prices.subscribe({ capacity: 16, overflow: 'drop-oldest' });
 * const { offset } = await prices.publish(101.5); // offset 1
 * for await (const event of sub) {
 *   if (event.type === 'gap') console.log(`missed ${event.count}`);
 *   else console.log(event.value, event.position.offset);
 * }
 * ```
 */
export class Topic<T> {
  readonly #backend: TopicBackend;
  readonly #name: string;
  readonly #retention: Retention;
  readonly #subscribers = new Set<Subscription<T>>();
  /** The `'suspend'` subscribers among them: those a publish waits for. */
  readonly #suspending = new Set<Subscription<T>>();
  readonly #publishers = new WaiterList<T>();
  /** Publishes handed to the backend and not yet settled, while `#suspending` is not empty. */
  #reserved = 0;
  /**
   * While a publication is handed to the subscribers: a subscriber that makes room then
   * must not let the next publisher through before every subscriber has this one.
   */
  #fanningOut = false;
  /** The offset of the last publication handed to the subscribers (-1 before any). */
  #head = -1;
  #closed = false;
  #cause: unknown = undefined;
  #hasCause = false;
  readonly #unlisten: () => void;
  readonly #hub: Hub<T>;

  constructor(options?: TopicOptions) {
    const name: unknown = options?.name ?? 'topic';
    if (typeof name !== 'string') {
      throw new TypeError(`Expected name to be a string, got ${describeValue(name)}`);
    }
    const backend: unknown = options?.backend === undefined ? new MemoryBackend() : options.backend;
    if (
      typeof backend !== 'object' ||
      backend === null ||
      typeof Reflect.get(backend, 'publish') !== 'function'
    ) {
      throw new TypeError(
        `Expected backend to be a TopicBackend or undefined, got ${describeValue(backend)}`,
      );
    }
    this.#name = name;
    this.#backend = backend as TopicBackend;
    this.#retention = validateRetention(options?.retention);
    this.#hub = {
      head: () => this.#head,
      room: () => {
        if (this.#publishers.head !== null && !this.#fanningOut) this.#pump();
      },
      history: (since, limit) => this.#history(since, limit) as Promise<History<T>>,
      detach: (subscription) => {
        this.#subscribers.delete(subscription);
        if (
          this.#suspending.delete(subscription) &&
          this.#publishers.head !== null &&
          !this.#fanningOut
        ) {
          this.#pump();
        }
      },
    };
    this.#unlisten = this.#backend.listen(
      name,
      (publication) => {
        this.#fanOut(publication as Publication<T>);
      },
      (error) => {
        this.#discontinuity(error);
      },
    );
  }

  /** `true` once `close` was called: `publish` rejects, subscriptions end after draining. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** How many subscriptions are receiving new values now. */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /**
   * Publishes `value` to every current subscriber, resolving with its position.
   *
   * - **Full:** waits while a `'suspend'` subscriber has no room (or is behind, catching
   *   up from the history after publications of another `Topic` on the same backend);
   *   waiting publishes are published in call order, each atomically: no subscriber gets
   *   it before all can. Drop and `'close'` subscribers never make it wait.
   * - **Closed:** rejects with `ClosedSendError`, or the topic's close cause (the same
   *   object); a publish waiting when `close` is called rejects too and publishes
   *   nothing (unlike a channel's waiting `send`, it had no position yet: the close fixes
   *   the last one, so subscribers know they have everything).
   * - **Aborted** while waiting: rejects with `signal.reason`; nothing was published.
   * - A backend that fails rejects it with the backend's error.
   *
   * @throws (as a rejection) TypeError if `signal` is neither an `AbortSignal` nor
   *   `undefined`; nothing is published.
   * @example
   * ```ts
   * const topic = new Topic<string>();
   * const { epoch, offset } = await topic.publish('hello'); // offset 1
   * ```
   */
  publish(value: T, options?: { readonly signal?: AbortSignal | undefined }): Promise<Position> {
    const signal = options?.signal;
    try {
      assertSignal(signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (this.#closed) return Promise.reject(this.#sendError());
    if (this.#publishers.head === null && this.#hasRoom()) return this.#start(value);
    const waiter = new Waiter<T>(SEND, value);
    const promise = promiseFor<Position>(waiter);
    this.#publishers.push(waiter);
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (waiter.onAbort === null) return;
        unwatch(waiter);
        this.#publishers.remove(waiter);
        waiter.reject(signal.reason);
      };
      waiter.signal = signal;
      waiter.onAbort = onAbort;
      signal.addEventListener('abort', onAbort);
    }
    return promise;
  }

  /**
   * Subscribes: the subscription receives every value published from now on (or after
   * `since`), as {@link Publication}s with their positions and {@link Gap}s for what it
   * missed. Synchronous: a value published after `subscribe` returns reaches it.
   *
   * - **Closed** topic: the subscription has already ended (normally, or with the close
   *   cause).
   * - `signal` already aborted: the subscription is already cancelled with its reason.
   *
   * @throws TypeError / RangeError for invalid options: the message names what is allowed.
   */
  subscribe(options?: SubscribeOptions): Subscription<T> {
    const capacity = validateCapacity(options?.capacity);
    const policy = validatePolicy(options?.overflow, capacity);
    const since =
      options?.since === undefined ? undefined : validatePosition('since', options.since);
    const onDiscontinuity: unknown = options?.onDiscontinuity ?? 'error';
    if (onDiscontinuity !== 'error' && onDiscontinuity !== 'oldest') {
      throw new RangeError(
        `Expected onDiscontinuity to be 'error' or 'oldest', got ${describeValue(onDiscontinuity)}`,
      );
    }
    const signal: unknown = options?.signal;
    assertSignal(signal);
    const subscription = internals.create<T>(capacity, policy, this.#hub, since);
    if (this.#closed) {
      internals.end(subscription, this.#cause, this.#hasCause);
      return subscription;
    }
    this.#subscribers.add(subscription);
    if (policy === SUSPEND) this.#suspending.add(subscription);
    if (since !== undefined) {
      // A finite 'suspend' subscriber takes at most its capacity; it reads on later.
      const limit = policy === SUSPEND && capacity !== Infinity ? Math.max(1, capacity) : undefined;
      this.#history(since, limit).then(
        (history) => {
          internals.caughtUp(subscription, history as never, since, onDiscontinuity);
        },
        (error: unknown) => {
          internals.fail(subscription, error);
        },
      );
    }
    internals.watch(subscription, signal);
    return subscription;
  }

  /** The position of the topic's last publication (offset 0 if there was none). */
  position(): Promise<Position> {
    return this.#backend.position(this.#name);
  }

  /**
   * Closes the topic: later and waiting publishes reject (`ClosedSendError`, or
   * `cause`); every subscription receives what it holds (and a gap for values it
   * dropped after that), then ends — normally, or with `cause` (the same object).
   *
   * @returns `true` if this call closed it, `false` if it was already closed.
   */
  close(cause?: unknown): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    if (cause !== undefined) {
      this.#cause = cause;
      this.#hasCause = true;
    }
    this.#unlisten();
    for (
      let waiter = this.#publishers.shift();
      waiter !== null;
      waiter = this.#publishers.shift()
    ) {
      unwatch(waiter);
      waiter.value = undefined;
      waiter.reject(this.#sendError());
    }
    for (const subscription of [...this.#subscribers]) {
      internals.end(subscription, this.#cause, this.#hasCause);
    }
    return true;
  }

  /** Closes the topic (`close()`), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  // --------------------------------------------------------------- internals

  #fanOut(publication: Publication<T>): void {
    this.#head = publication.position.offset;
    this.#fanningOut = true;
    try {
      for (const subscription of this.#subscribers) internals.offer(subscription, publication);
    } finally {
      this.#fanningOut = false;
    }
    if (this.#publishers.head !== null) this.#pump();
  }

  /**
   * The backend lost publications between the last one handed out and the next (a shared
   * backend past retention, or a new epoch): every current subscriber delivers what it
   * holds, then ends with `error`, whose `since` is the last position handed out (a
   * `'suspend'` subscriber that was behind: an error of its own, from its position).
   * Later subscribers start afresh.
   */
  #discontinuity(error: DiscontinuityError): void {
    for (const subscription of [...this.#subscribers]) internals.lost(subscription, error);
    this.#head = -1;
  }

  #hasRoom(): boolean {
    for (const subscription of this.#suspending) {
      if (!internals.hasRoom(subscription, this.#reserved)) return false;
    }
    return true;
  }

  #start(value: T): Promise<Position> {
    if (this.#suspending.size === 0) return this.#publishToBackend(value);
    // Reserved before the backend is called: a synchronous one hands the value out inside.
    this.#reserved++;
    const head = this.#head;
    const published = this.#publishToBackend(value);
    if (this.#head !== head) {
      // Handed out already (a synchronous backend): the subscribers hold it, no need to
      // reserve room until the promise settles. A `#pump` loop that called this goes on.
      this.#reserved--;
      return published;
    }
    const release = (): void => {
      this.#reserved--;
      if (this.#publishers.head !== null) this.#pump();
    };
    published.then(release, release);
    return published;
  }

  /** Lets waiting publishers through, oldest first, while every suspending subscriber has room. */
  /**
   * The backend's `publish`, a synchronous throw turned into a rejection: it must not
   * escape `#pump` (run from a subscriber's `receive`) nor keep the room reserved.
   */
  #publishToBackend(value: T): Promise<Position> {
    try {
      return this.#backend.publish(this.#name, value, this.#retention);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The backend's `history`, a synchronous throw turned into a rejection. */
  #history(since: Position, limit: number | undefined): Promise<History<unknown>> {
    try {
      return this.#backend.history(this.#name, since, limit);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #pump(): void {
    while (this.#publishers.head !== null && !this.#closed && this.#hasRoom()) {
      const waiter = this.#publishers.shift() as Waiter<T>;
      unwatch(waiter);
      const value = waiter.value as T;
      waiter.value = undefined;
      waiter.resolve(this.#start(value));
    }
  }

  #sendError(): unknown {
    return this.#hasCause
      ? this.#cause
      : new ClosedSendError('Topic was closed: no more values can be published');
  }
}

if (typeof Symbol.asyncDispose !== 'symbol') {
  Reflect.deleteProperty(Topic.prototype, 'undefined');
}
