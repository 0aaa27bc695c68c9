/**
 * Read turns: one budget of received bytes per macrotask, shared by every session in the
 * process whose socket can pause (Node `ws`), so that many busy connections cannot hold
 * the event loop between them.
 *
 * ## Why
 * The event loop reads every socket that has data in one go (libuv's poll phase; each
 * read callback reads up to 32 chunks), and each message is decoded where it is read.
 * A session's own back-pressure bounds its bytes, not the work done in one turn: 200
 * connections that each complete a 1 MiB JSON message in the same turn cost 200 UTF-8
 * decodes and 200 `JSON.parse` calls before any timer runs (seconds on a loaded machine).
 *
 * ## How
 * Each received message is charged here by its size. Once the bytes charged in the
 * current macrotask reach {@link TURN_BYTES}, the session that received it pauses its
 * socket and queues for a turn. After the macrotask (`afterMacrotask`: in Node, the check
 * phase right after the poll that read the data) the budget starts again and queued
 * sessions are resumed first come, first served, while the sizes of their last messages
 * fit in one budget (at least one per turn); those whose last message was small go first. A resumed session that has nothing to read
 * costs nothing; one that reads past the budget again goes back to the end of the queue.
 * So a turn decodes about one budget, plus at most one message per socket that was
 * already reading, and every session gets its turn (round-robin by arrival).
 *
 * Internal: not exported from the package.
 *
 * @module
 */
import { Deque } from '../internal/deque.js';
import { afterMacrotask } from '../internal/macrotask.js';

/** The bytes of messages decoded per macrotask, across sessions, before sessions wait. */
export const TURN_BYTES: number = 1024 * 1024;

/**
 * A message up to this size is small: its reader is granted before the large ones, and is
 * expected to read at least this much (many small readers per turn).
 */
const MIN_RESERVE = 16 * 1024;

/** A session waiting for a turn. */
export interface Reader {
  /** The size of the last message it received: what its turn is expected to cost. */
  lastSize: number;
  /** Its turn: resume reading (unless it has finished or paused for its own reasons). */
  granted(): void;
}

let spent = 0;
let scheduled = false;
/** Readers whose last message was small (at most {@link MIN_RESERVE}), and the others. */
const small = new Deque<Reader>();
const large = new Deque<Reader>();

function nextTurn(): void {
  scheduled = false;
  spent = 0;
  let reserved = 0;
  // Small messages first (a chat beside bulk uploads waits one turn, not one per upload),
  // then at least one large reader per turn, so that neither queue can starve the other.
  while (small.length > 0 && reserved < TURN_BYTES) {
    reserved += MIN_RESERVE;
    small.shift().granted();
  }
  let first = true;
  while (large.length > 0 && (first || reserved < TURN_BYTES)) {
    first = false;
    reserved += large.peek().lastSize;
    large.shift().granted();
  }
  if (small.length > 0 || large.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  afterMacrotask(nextTurn);
}

/**
 * Charges `bytes` received in this macrotask. Returns false once the budget of the turn
 * is spent: the caller should pause its socket and {@link waitForTurn}.
 */
export function charge(bytes: number): boolean {
  spent += bytes;
  schedule();
  return spent < TURN_BYTES;
}

/** Whether the budget of this turn has bytes left. */
export function hasBudget(): boolean {
  return spent < TURN_BYTES;
}

/**
 * Runs `decode` (a message of `size` bytes) on a later turn, charged to that turn's
 * budget: for a message received once this turn's budget is spent. Resolves with what
 * `decode` returns (awaited), rejects with what it throws. Calls of one size class run in
 * call order; a small message's may run before an earlier large one's (the session
 * delivers in arrival order whatever the order of decoding).
 */
export function decodeOnTurn<T>(decode: () => T, size: number): Promise<Awaited<T>> {
  return new Promise<Awaited<T>>((resolve, reject) => {
    waitForTurn({
      lastSize: size,
      granted: () => {
        charge(size);
        try {
          resolve(decode() as Awaited<T>);
        } catch (error) {
          reject(error);
        }
      },
    });
  });
}

/** Queues `reader` to be granted a later turn (first come, first served). */
export function waitForTurn(reader: Reader): void {
  (reader.lastSize <= MIN_RESERVE ? small : large).push(reader);
  schedule();
}
