/**
 * `ts-chan` with working types. Its published `.d.ts` files use extensionless relative
 * imports, which TypeScript's `nodenext` resolution cannot follow, so `Chan` would
 * arrive untyped; this module re-exports it through the interface the benchmark uses.
 *
 * @module
 */
import * as tsChan from 'ts-chan';

/** The subset of ts-chan's `Chan<T>` that the benchmark calls. */
export interface TsChan<T> extends AsyncIterable<T> {
  /** `true` skips the yield to the macrotask queue in `send`/`recv`. */
  setUnsafe(unsafe: boolean): this;
  /** Sends without waiting; `false` when no receiver waits and the buffer is full. */
  trySend(value: T): boolean;
  send(value: T): Promise<void>;
  /** Receives without waiting; `undefined` when nothing is available. */
  tryRecv(): IteratorResult<T, T | undefined> | undefined;
  recv(): Promise<IteratorResult<T, T | undefined>>;
  close(): void;
}

type TsChanConstructor = new <T>(capacity?: number) => TsChan<T>;

const exported: unknown = tsChan.Chan;
if (typeof exported !== 'function') throw new Error('ts-chan no longer exports Chan');

export const Chan = exported as TsChanConstructor;
