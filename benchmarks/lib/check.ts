/**
 * The verifier every benchmark run feeds each received value through, so a fast wrong
 * answer cannot win: it counts, sums, rejects duplicates and out-of-range values, and
 * checks that each consumer sees each producer's values in the order they were sent.
 *
 * Values are `k * producers + p` for producer `p`'s `k`-th message, so the `n` values
 * of a run are exactly `0 … n - 1` whatever the number of producers.
 *
 * @module
 */

/** Producer `p`'s `k`-th value in a run with `producers` producers. */
export function valueOf(p: number, k: number, producers: number): number {
  return k * producers + p;
}

/** How many messages producer `p` sends when `n` are split among `producers`. */
export function shareOf(p: number, n: number, producers: number): number {
  return Math.floor(n / producers) + (p < n % producers ? 1 : 0);
}

export class Check {
  readonly n: number;
  readonly producers: number;
  readonly consumers: number;
  /** Messages taken by each consumer. */
  readonly counts: Float64Array;
  #sum = 0;
  #error: string | null = null;
  readonly #seen: Uint8Array;
  /** Last `k` seen per (consumer, producer); -1 before the first. */
  readonly #last: Float64Array;

  constructor(n: number, producers = 1, consumers = 1) {
    this.n = n;
    this.producers = producers;
    this.consumers = consumers;
    this.counts = new Float64Array(consumers);
    this.#seen = new Uint8Array(n);
    this.#last = new Float64Array(producers * consumers).fill(-1);
  }

  /** Records that consumer `c` received `value`. */
  take(c: number, value: number): void {
    const seen = this.#seen;
    if (seen[value] !== 0) {
      this.#fail(
        `consumer ${c} received ${String(value)}, ${seen[value] === 1 ? 'a duplicate' : 'not a value that was sent'}`,
      );
      return;
    }
    seen[value] = 1;
    const producers = this.producers;
    const p = value % producers;
    const k = (value - p) / producers;
    const slot = c * producers + p;
    const last = this.#last;
    if (k <= (last[slot] as number)) {
      this.#fail(
        `consumer ${c} received producer ${p}'s message ${k} after its message ${String(last[slot])}`,
      );
    }
    last[slot] = k;
    this.counts[c] = (this.counts[c] as number) + 1;
    this.#sum += value;
  }

  /** Records a failure seen outside `take` (a rejected send, a bad result shape). */
  fail(message: string): void {
    this.#fail(message);
  }

  /** `null` when every value arrived exactly once and in order, else what went wrong. */
  verify(): string | null {
    if (this.#error !== null) return this.#error;
    let count = 0;
    for (const c of this.counts) count += c;
    if (count !== this.n) return `received ${count} messages, expected ${this.n}`;
    const expected = (this.n * (this.n - 1)) / 2;
    if (this.#sum !== expected) return `sum of values is ${this.#sum}, expected ${expected}`;
    return null;
  }

  /** Each consumer's share of the messages, in percent. */
  shares(): number[] {
    return Array.from(this.counts, (c) => (100 * c) / this.n);
  }

  #fail(message: string): void {
    this.#error ??= message;
  }
}
