/**
 * Positions in a topic's history, and what a subscriber receives: a publication (a value
 * with its position) or a gap (the positions it missed). Offsets are contiguous within an
 * epoch, so a subscriber can always tell exactly what it did not get.
 *
 * @module
 */
import { describeValue } from '../internal/describe-value.js';

/**
 * Where a value stands in a topic's history: `offset` counts the topic's publications
 * (the first is 1; 0 is the position of a topic nothing was published to yet), and
 * `epoch` names the history that offset belongs to. Offsets are contiguous within an
 * epoch; a new epoch means the history before it is gone (a new process for the memory
 * backend, lost data for a shared one), so offsets of two epochs cannot be compared.
 */
export interface Position {
  /** Names one history of the topic: random, fixed for as long as that history lives. */
  readonly epoch: string;
  /** The publication's number in the epoch, from 1; 0 before the first publication. */
  readonly offset: number;
}

/** A published value, as a subscriber receives it. */
export interface Publication<T> {
  /** Tells a publication from a {@link Gap}. */
  readonly type: 'publication';
  /** The value given to `publish`. */
  readonly value: T;
  /** Its position: `publish` resolved with the same one. */
  readonly position: Position;
}

/**
 * Values a subscriber missed, reported where they would have been: between the last
 * event it received and the next one. Dropped by its overflow policy (`'drop-oldest'`,
 * `'drop-latest'`), or no longer retained when it subscribed `since` a position with
 * `onDiscontinuity: 'oldest'`. Every missed value is in exactly one gap.
 */
export interface Gap {
  /** Tells a gap from a {@link Publication}. */
  readonly type: 'gap';
  /** The first position missed. */
  readonly from: Position;
  /** The last position missed (the same epoch as `from`). */
  readonly to: Position;
  /** How many values were missed: `to.offset - from.offset + 1` (0 only with `previous`). */
  readonly count: number;
  /**
   * Present only when the gap starts in another epoch: the `since` position the
   * subscriber gave, in a history that is gone. How many values followed it there is
   * unknown; `count` counts only the missed values of the current epoch.
   */
  readonly previous?: Position;
}

/** What a subscription yields: a publication, or a gap reporting missed values. */
export type TopicEvent<T> = Publication<T> | Gap;

/** A fresh random epoch: 16 hex digits from the platform's CSPRNG (browsers and Node). */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let epoch = '';
  for (const byte of bytes) epoch += byte.toString(16).padStart(2, '0');
  return epoch;
}

/** Throws a `TypeError` unless `value` is a {@link Position}; returns it. */
export function validatePosition(name: string, value: unknown): Position {
  const ok =
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'epoch') === 'string' &&
    Number.isSafeInteger(Reflect.get(value, 'offset')) &&
    (Reflect.get(value, 'offset') as number) >= 0;
  if (!ok) {
    throw new TypeError(
      `Expected ${name} to be a position { epoch: string, offset: non-negative integer }, got ${describeValue(value)}`,
    );
  }
  return value as Position;
}
