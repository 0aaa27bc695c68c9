/**
 * The `outgoing` half of a session: a {@link SendChannel} that encodes each value in
 * `send` (so an unencodable value rejects its own send) and hands the frame to the socket.
 *
 * ## Algorithm
 * Two routes, one order. The **direct route**: when the session's writer loop is parked
 * with nothing in hand (`Writer.tryWrite` says so), `send` calls `socket.send` itself and
 * resolves — no channel hop, so the adapter costs next to nothing per message. The
 * **queued route**: otherwise (connecting, at the high-water mark, closing, or a value may
 * already be on its way to the writer) the frame goes through `frames`, a rendezvous
 * channel the writer receives from, and `send` waits there like any channel send
 * (abortable, first-come first-served, `onUndelivered` on failure).
 *
 * Order holds because the direct route is open only while the writer is parked with no
 * value in hand, and the writer parks as a waiter of `frames` whose completion closes the
 * direct route synchronously, inside the channel operation that completes it: whatever
 * hands the parked writer a value — a queued `send`, `trySend`, a `select` running an
 * `onSend` clause, a close or cancel — closes the route in that same step, before any
 * later `send` can look at it. So a direct write never overtakes a value accepted before
 * it, and a clause needs no side effect when it is made (clauses stay inert and
 * reusable).
 *
 * **`frames` is made when first needed.** An `outgoing` whose sends all take the direct
 * route never needs a queue: `frames` is made at the first operation that does (a send
 * that must wait, a `select` clause, `onClose`, the close), and the session is told
 * (`Writer.made`) so that a writer idling without it parks on it at once, before that
 * operation hands anything over. Until then an idle writer counts as parked with nothing
 * in hand, and the direct route stays as open as it would be.
 *
 * **Yielding.** A direct write resolves its `send` with an already-resolved promise, so a
 * loop `for (;;) await outgoing.send(v)` whose socket keeps taking frames would run on
 * microtasks alone and starve timers, I/O and events (incoming messages, close, heartbeats)
 * for as long as the peer keeps up. So every {@link YIELD_EVERY}th direct write of `send`
 * (counted since `send` last yielded) resolves only after a macrotask: the frame is
 * written at once as usual, only the resolution waits. One counter increment per direct
 * send; one macrotask per {@link YIELD_EVERY} of them.
 *
 * @module
 */
import { Channel } from '../channel.js';
import type { SendChannel, SendResult, WaitOptions } from '../channel-types.js';
import { EncodeError } from '../errors.js';
import { callReporting } from '../internal/report.js';
import type { SelectClause } from '../select.js';
import { raw } from './codec.js';
import type { Codec, Frame } from './codec.js';
import { afterMacrotask } from '../internal/macrotask.js';

/** An encoded frame and the value it came from (for `onUndelivered`). */
export interface Entry<Out> {
  readonly value: Out;
  readonly data: Frame;
}

/**
 * What `Outgoing` needs from its session `S`: one object shared by every session, called
 * with the session (so that a session holds no closures for it).
 */
export interface Writer<S> {
  /**
   * Writes `data` at once if the direct route is open; `false` otherwise (the frame then
   * goes through `frames`).
   */
  tryWrite(session: S, data: Frame): boolean;
  /** The user closed `outgoing` (with `cause`, or normally). */
  closed(session: S, cause: unknown): void;
  /** `frames` was just made (see the module note); nothing has used it yet. */
  made(session: S, frames: Channel<Entry<unknown>>): void;
}

const RESOLVED: Promise<void> = Promise.resolve();
/**
 * Every this many direct writes, `send` resolves after a macrotask instead of at once
 * (see the module note): 256 small frames take roughly 0.1–1 ms to write.
 */
export const YIELD_EVERY = 256;

/** A promise resolved in a later macrotask (see `afterMacrotask`). */
function nextMacrotask(): Promise<void> {
  return new Promise<void>((resolve) => {
    afterMacrotask(resolve);
  });
}

const SEND_OK: SendResult = Object.freeze({ ok: true as const });

let codecOf: (outgoing: Outgoing<unknown>) => Codec<unknown, unknown>;

/**
 * Whether `outgoing` is the `outgoing` of a session made with the `raw()` codec, so that
 * it sends both strings (as text) and `Uint8Array`s (as binary) and its `incoming` gives
 * both. Internal: `channels()` asks it to choose its protocol version.
 */
export function carriesBytes(outgoing: unknown): boolean {
  return outgoing instanceof Outgoing && codecOf(outgoing) === raw();
}

/**
 * What an `Outgoing` needs besides its session, the same for many sessions (those of one
 * route share it): one pointer per `outgoing` instead of three fields.
 */
export interface OutgoingShared<Out> {
  readonly codec: Codec<unknown, Out>;
  readonly onUndelivered: ((value: Out) => void) | undefined;
  readonly writer: Writer<unknown>;
}

export class Outgoing<Out> implements SendChannel<Out> {
  static {
    codecOf = (outgoing) => outgoing.#shared.codec;
  }

  /** Made when first needed (see the module note). */
  #frames: Channel<Entry<Out>> | null = null;
  /** What every `outgoing` of a session's kind shares: codec, `onUndelivered`, writer. */
  readonly #shared: OutgoingShared<Out>;
  readonly #session: unknown;
  /** Direct writes of `send` since it last yielded (see the module note). */
  #direct = 0;

  constructor(shared: OutgoingShared<Out>, session: unknown) {
    this.#shared = shared;
    this.#session = session;
  }

  /** The channel the writer receives queued frames from, made now if it was not. */
  get frames(): Channel<Entry<Out>> {
    return this.#frames ?? this.#makeFrames();
  }

  /** `frames` if it was made, else `null` (an idle writer then has nothing to take). */
  get framesIfMade(): Channel<Entry<Out>> | null {
    return this.#frames;
  }

  #makeFrames(): Channel<Entry<Out>> {
    const onUndelivered = this.#shared.onUndelivered;
    const frames = new Channel<Entry<Out>>(0, {
      onUndelivered:
        onUndelivered &&
        ((entry) => {
          onUndelivered(entry.value);
        }),
    });
    this.#frames = frames;
    this.#shared.writer.made(this.#session, frames as Channel<Entry<unknown>>);
    return frames;
  }

  send(value: Out, options?: WaitOptions): Promise<void> {
    const made = this.#frames;
    if ((made !== null && made.isClosedForSend) || options?.signal?.aborted === true) {
      // Rejects as a channel does, and hands the value to onUndelivered.
      return this.frames.send({ value, data: '' }, options);
    }
    let data: Frame;
    try {
      data = this.#encode(value);
    } catch (error) {
      this.undelivered(value);
      return Promise.reject(error);
    }
    if (this.#shared.writer.tryWrite(this.#session, data)) {
      if (++this.#direct < YIELD_EVERY) return RESOLVED;
      // Written already; only the resolution waits, so it cannot fail any more (an abort
      // or close meanwhile changes nothing: the socket has the frame).
      this.#direct = 0;
      return nextMacrotask();
    }
    return this.frames.send({ value, data }, options);
  }

  trySend(value: Out): SendResult {
    const made = this.#frames;
    if (made !== null && made.isClosedForSend) return made.trySend({ value, data: '' });
    const data = this.#encode(value);
    if (this.#shared.writer.tryWrite(this.#session, data)) return SEND_OK;
    return this.frames.trySend({ value, data });
  }

  close(cause?: unknown): boolean {
    if (!this.frames.close(cause)) return false;
    this.#shared.writer.closed(this.#session, cause);
    return true;
  }

  get isClosedForSend(): boolean {
    const made = this.#frames;
    return made !== null && made.isClosedForSend;
  }

  onClose(handler: (cause: unknown) => void): () => void {
    return this.frames.onClose(handler);
  }

  onSend(value: Out): SelectClause<undefined>;
  onSend<R>(value: Out, handler: () => R | PromiseLike<R>): SelectClause<R>;
  onSend<R>(value: Out, handler?: () => R | PromiseLike<R>): SelectClause<R | undefined> {
    // Inert, like any clause: nothing happens until a select runs it (see the module note).
    const frames = this.frames;
    const entry = { value, data: frames.isClosedForSend ? '' : this.#encode(value) };
    return handler === undefined ? frames.onSend(entry) : frames.onSend(entry, handler);
  }

  /** Hands `value` to `onUndelivered` (a throwing callback is reported, not thrown). */
  undelivered(value: Out): void {
    const onUndelivered = this.#shared.onUndelivered;
    if (onUndelivered !== undefined) callReporting(onUndelivered, value);
  }

  #encode(value: Out): Frame {
    try {
      return this.#shared.codec.encode(value);
    } catch (error) {
      if (error instanceof EncodeError) throw error;
      throw new EncodeError('The codec could not encode the value', value, { cause: error });
    }
  }
}

/**
 * Polls `check` with a backing-off timer (1 ms doubling to 16 ms) until it returns true
 * or `stop` is called (which resolves the promise too).
 */
export function poll(check: () => boolean): { promise: Promise<void>; stop: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolve: () => void = () => undefined;
  let delay = 1;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  const tick = (): void => {
    timer = undefined;
    if (check()) {
      resolve();
      return;
    }
    timer = setTimeout(tick, delay);
    delay = Math.min(delay * 2, 16);
  };
  tick();
  return {
    promise,
    stop: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      resolve();
    },
  };
}
