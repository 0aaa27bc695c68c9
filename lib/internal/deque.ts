/**
 * A growable ring buffer: O(1) `push`, `shift` and `peek`, storage allocated on the
 * first push and doubled when full (never `Array.prototype.shift`). Slots are cleared on
 * removal so the deque never keeps a taken value alive.
 *
 * @module
 */
/** Shared by every deque that has never held a value (an idle channel allocates none). */
const EMPTY: never[] = [];

export class Deque<T> {
  #items: (T | undefined)[] = EMPTY;
  #head = 0;
  #size = 0;
  /** Capacity of the backing array; a power of two once allocated. */
  #mask = -1;

  get length(): number {
    return this.#size;
  }

  push(value: T): void {
    if (this.#size === this.#mask + 1) this.#grow();
    this.#items[(this.#head + this.#size) & this.#mask] = value;
    this.#size++;
  }

  /** The oldest value without removing it; the caller checks `length` first. */
  peek(): T {
    return this.#items[this.#head] as T;
  }

  /** The value `index` places after the oldest (0: the oldest); the caller checks the range. */
  at(index: number): T {
    return this.#items[(this.#head + index) & this.#mask] as T;
  }

  /** Removes and returns the oldest value; the caller checks `length` first. */
  shift(): T {
    const items = this.#items;
    const head = this.#head;
    const value = items[head] as T;
    items[head] = undefined;
    this.#head = (head + 1) & this.#mask;
    this.#size--;
    return value;
  }

  #grow(): void {
    const old = this.#items;
    const oldCapacity = this.#mask + 1;
    const capacity = oldCapacity === 0 ? 8 : oldCapacity * 2;
    const items = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.#size; i++) items[i] = old[(this.#head + i) & this.#mask];
    this.#items = items;
    this.#head = 0;
    this.#mask = capacity - 1;
  }
}
