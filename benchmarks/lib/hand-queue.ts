/**
 * A minimal hand-written promise queue: the reference a channel is measured against.
 * Bounded ring buffer (or rendezvous at capacity 0), FIFO waiting senders and receivers
 * in head-indexed arrays, `close`, async iteration, and a synchronous fast path
 * (`trySend`/`tryReceive`). No abort, no cancel, no select: what is left is the cost of
 * moving a value and settling a promise.
 *
 * @module
 */

interface PendingSend<T> {
  value: T;
  resolve: () => void;
}

type Pull<T> = (result: IteratorResult<T, undefined>) => void;

const RESOLVED: Promise<void> = Promise.resolve();
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * A FIFO over an array with moving head and tail indexes, rewound to the start whenever
 * it empties; the array keeps its length (never truncated, which would free and
 * reallocate its storage each time a lone waiter comes and goes).
 */
class Fifo<T> {
  readonly #items: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  push(item: T): void {
    this.#items[this.#tail++] = item;
  }

  /** The oldest item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#head === this.#tail) return undefined;
    const items = this.#items;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === this.#tail) this.#head = this.#tail = 0;
    return item;
  }
}

export class HandQueue<T> implements AsyncIterable<T, undefined> {
  readonly #capacity: number;
  #ring: (T | undefined)[] | null = null;
  #head = 0;
  #size = 0;
  readonly #senders = new Fifo<PendingSend<T>>();
  readonly #receivers = new Fifo<Pull<T>>();
  #closed = false;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Hands `value` to a waiting receiver or buffers it; `false` when neither is possible. */
  trySend(value: T): boolean {
    if (this.#closed) throw new Error('send on a closed queue');
    const receiver = this.#receivers.shift();
    if (receiver !== undefined) {
      receiver({ done: false, value });
      return true;
    }
    if (this.#size === this.#capacity) return false;
    const ring = (this.#ring ??= new Array<T | undefined>(this.#capacity));
    ring[(this.#head + this.#size) % this.#capacity] = value;
    this.#size++;
    return true;
  }

  send(value: T): Promise<void> {
    if (this.trySend(value)) return RESOLVED;
    return new Promise((resolve) => {
      this.#senders.push({ value, resolve });
    });
  }

  /** The next value without waiting; `undefined` when it would have to wait. */
  tryReceive(): IteratorResult<T, undefined> | undefined {
    if (this.#size > 0) {
      const ring = this.#ring as (T | undefined)[];
      const value = ring[this.#head] as T;
      ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#capacity;
      this.#size--;
      const sender = this.#senders.shift();
      if (sender !== undefined) {
        ring[(this.#head + this.#size) % this.#capacity] = sender.value;
        this.#size++;
        sender.resolve();
      }
      return { done: false, value };
    }
    const sender = this.#senders.shift();
    if (sender !== undefined) {
      sender.resolve();
      return { done: false, value: sender.value };
    }
    return this.#closed ? DONE : undefined;
  }

  /** Resolves with the next value, or `{ done: true }` once closed and drained. */
  next(): Promise<IteratorResult<T, undefined>> {
    const result = this.tryReceive();
    if (result !== undefined) return Promise.resolve(result);
    return new Promise((resolve) => {
      this.#receivers.push(resolve);
    });
  }

  /** Later sends throw; waiting receivers finish (senders only wait while none do). */
  close(): void {
    this.#closed = true;
    for (let r = this.#receivers.shift(); r !== undefined; r = this.#receivers.shift()) r(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return { next: () => this.next() };
  }
}
