/**
 * Types for the parts of `medium` (an untyped CommonJS package) the benchmark uses.
 * A medium channel is thenable: awaiting it takes a value.
 */
declare module 'medium' {
  export const CLOSED: unique symbol;
  export interface MediumChannel<T> {
    readonly isClosed: boolean;
    then<R1 = T | typeof CLOSED, R2 = never>(
      onfulfilled?: ((value: T | typeof CLOSED) => R1 | PromiseLike<R1>) | null,
      onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
    ): Promise<R1 | R2>;
  }
  /** A channel with a fixed buffer of `capacity` (none when omitted: rendezvous). */
  export function chan<T>(capacity?: number): MediumChannel<T>;
  /** Resolves `true` once the value is buffered or taken, `false` if the channel is closed. */
  export function put<T>(channel: MediumChannel<T>, value: T): Promise<boolean>;
  /** Resolves with the next value, or `CLOSED`. */
  export function take<T>(channel: MediumChannel<T>): Promise<T | typeof CLOSED>;
  export function close<T>(channel: MediumChannel<T>): MediumChannel<T>;
}
