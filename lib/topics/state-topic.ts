/**
 * `StateTopic<T>`: a topic that keeps its latest value, and gives it to every new
 * subscriber first (Kotlin's `StateFlow`), with its position.
 *
 * @module
 */
import type { Position, Publication } from './position.js';
import { subscriptionInternals as internals } from './subscription.js';
import type { Subscription } from './subscription.js';
import { Topic } from './topic.js';
import type { SubscribeOptions, TopicOptions } from './topic.js';
import { MemoryBackend } from './memory-backend.js';

/**
 * A topic with a current value: `publish` sets it, `value` reads it, and a new
 * subscriber receives it first (as a publication with its position), then every later
 * one. The initial value is published when the topic is made (offset 1 on a fresh
 * backend).
 *
 * Subscriptions default to capacity 1 and `'drop-oldest'` (conflated, as a `StateFlow`
 * collector): a slow subscriber skips to the latest value and receives a gap for the
 * values it skipped. Any other capacity or policy may be asked for.
 *
 * Differs from Kotlin's `StateFlow`: a value equal to the current one is still published
 * (it gets a position, and subscribers see it), because equality of arbitrary values is
 * the caller's to define; and skipped values are reported as gaps, not hidden.
 *
 * @typeParam T - the type of the state.
 * @example
 * ```ts
 * const presence = new StateTopic<string[]>([]);
 * await presence.publish(['ana']);
 * const sub = presence.subscribe();
 * (await sub.receive()); // { type: 'publication', value: ['ana'], position: { offset: 2, … } }
 * ```
 */
export class StateTopic<T> extends Topic<T> {
  #latest: Publication<T> | undefined = undefined;
  #value: T;
  readonly #unlisten: () => void;

  /**
   * @param initial - the value until the first `publish`; published at once.
   * @throws TypeError / RangeError for invalid options, as `Topic`.
   */
  constructor(initial: T, options?: TopicOptions) {
    const backend = options?.backend ?? new MemoryBackend();
    super({ ...options, backend });
    this.#value = initial;
    this.#unlisten = backend.listen(options?.name ?? 'topic', (publication) => {
      this.#latest = publication as Publication<T>;
      this.#value = this.#latest.value;
    });
    // Its failure (a closed topic cannot be: it was just made) surfaces on `position()`.
    this.publish(initial).catch(() => undefined);
  }

  /** The latest published value (the initial one before any other was published). */
  get value(): T {
    return this.#value;
  }

  /** The position of the latest value, once known (the memory backend: at once). */
  get latest(): Position | undefined {
    return this.#latest?.position;
  }

  /**
   * Subscribes as `Topic.subscribe` does, but without `since` the subscription starts
   * with the current value (unless the topic is closed). Defaults: capacity 1,
   * `'drop-oldest'`.
   */
  override subscribe(options?: SubscribeOptions): Subscription<T> {
    const subscription = super.subscribe({
      ...options,
      capacity: options?.capacity ?? 1,
      overflow: options?.overflow ?? 'drop-oldest',
    });
    const latest = this.#latest;
    if (options?.since === undefined && latest !== undefined && !this.isClosed) {
      internals.start(subscription, latest);
    }
    return subscription;
  }

  override close(cause?: unknown): boolean {
    if (!super.close(cause)) return false;
    this.#unlisten();
    return true;
  }
}
