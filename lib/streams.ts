/**
 * Web Streams interop: a channel as a `ReadableStream` or `WritableStream`, and a
 * `ReadableStream` as a channel. Web Streams are the cross-runtime stream standard
 * (browsers, Node ≥ 18, Deno, Bun, workers), so these three functions connect sluice to
 * `fetch` bodies, compression and text codecs, and Node's `stream/web`.
 *
 * Backpressure is preserved both ways: nothing is read ahead of demand beyond the
 * buffers the two sides already declare (the channel's capacity, the stream's
 * high-water mark), and cancellation crosses over in both directions.
 *
 * @module
 */
import type { ReceiveChannel, ReceiveResult, SendChannel } from './channel-types.js';
import { Channel } from './channel.js';
import { ClosedSendError } from './errors.js';
import { failureCause } from './internal/cancellation.js';
import { describeValue } from './internal/describe-value.js';

function assertChannel(name: string, value: unknown, method: string): void {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof Reflect.get(value, method) !== 'function'
  ) {
    throw new TypeError(
      `Expected ${name} to be a ${method === 'send' ? 'SendChannel' : 'ReceiveChannel'}, got ${describeValue(value)}`,
    );
  }
}

/**
 * A `ReadableStream` that reads from `channel`, one value per read.
 *
 * - **Backpressure:** the stream's high-water mark is 0, so a value is received from
 *   the channel only when the stream's reader asks for one; values wait in the channel
 *   (where its capacity and overflow policy apply), never in the stream.
 * - **Channel closed normally:** the stream closes once the channel is drained.
 *   **Closed with a cause, or cancelled:** the stream errors with that cause (the same
 *   object), at the next read.
 * - **Stream cancelled** (`stream.cancel(reason)`, `reader.cancel`, a failed
 *   `pipeTo`): the channel is cancelled with `reason` — buffered values go to its
 *   `onUndelivered` and its producers' sends reject, as for `channel.cancel(reason)`.
 *
 * Several streams (or streams and other consumers) may share one channel: each value
 * goes to one of them.
 *
 * **Exactly once, and the one remaining gap.** A receive that is still waiting when the
 * stream is cancelled is withdrawn first (through its `AbortSignal`), before the channel
 * is cancelled: no value can be handed to it any more, so a send racing the
 * cancellation is either rejected (its value goes to `onUndelivered`) or, if the
 * channel is not a sluice `Channel` and keeps running, received by someone else — never
 * swallowed by the dead stream. What remains: a value the channel had already handed to
 * that receive (the sender's `send` has resolved) when the stream is cancelled before
 * the stream's read resumes — that is, later in the same synchronous turn as the
 * hand-over, or in a microtask queued before the read's continuation. That value has
 * left the channel and the stream is closed, so it can neither be enqueued nor go to
 * `onUndelivered` (which this function cannot reach); it is dropped. The gap needs a
 * read pending at the moment of cancellation (with `pipeTo`, one that had read ahead
 * when its destination failed); a reader that cancels while none of its reads is
 * pending never meets it.
 *
 * @throws TypeError if `channel` is not a `ReceiveChannel`.
 * @example
 * ```ts
 * const body = toReadableStream(lines).pipeThrough(new TextEncoderStream());
 * return new Response(body);
 * ```
 */
export function toReadableStream<T>(channel: ReceiveChannel<T>): ReadableStream<T> {
  assertChannel('channel', channel, 'receiveCatching');
  // Aborted when the stream is cancelled, withdrawing a receive still waiting then.
  const receives = new AbortController();
  const signal = receives.signal;
  return new ReadableStream<T>(
    {
      async pull(controller): Promise<void> {
        let result: ReceiveResult<T>;
        try {
          result = await channel.receiveCatching({ signal });
        } catch (error) {
          if (signal.aborted) return; // withdrawn: the stream was cancelled
          throw error;
        }
        // Received but cancelled meanwhile: the one value that is lost (see above).
        if (signal.aborted) return;
        if (result.ok) controller.enqueue(result.value);
        else if ('cause' in result) controller.error(result.cause);
        else controller.close();
      },
      cancel(reason: unknown): void {
        // First withdraw our own receive, so that nothing can be handed to it any more,
        // whatever `cancel` does and however long the channel takes to act on it.
        receives.abort(reason);
        channel.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Options of {@link fromReadableStream}. */
export interface FromReadableStreamOptions {
  /**
   * Capacity of the channel, as for `new Channel(capacity)`: how many chunks are read
   * from the stream ahead of the channel's receivers.
   * @default 0 (each chunk is read only once the previous one was received)
   */
  readonly capacity?: number | undefined;
}

/**
 * A channel that receives the chunks of `stream`, in order. Takes the stream's lock
 * (`getReader()`) for good.
 *
 * - **Backpressure:** the next chunk is read only once the previous one was accepted
 *   by the channel (buffered, or, with the default capacity 0, received), so a slow
 *   receiver makes the stream's queue fill up and its source pause.
 * - **Stream ends:** the channel is closed normally; buffered chunks are still
 *   received. **Stream errors:** the channel is closed with that error as its cause
 *   (receivers get the same object after draining). A stream errored with `undefined`
 *   (`controller.error()`) closes the channel with an `Error` whose message says the
 *   stream failed with undefined and whose own `cause` property is `undefined` — closing
 *   with `undefined` itself would be a normal close, silently truncating the data.
 * - **Channel cancelled** (`cancel`, `consume`, `consumeEach`; leaving a `for await` early
 *   does not cancel): the stream is cancelled with the same reason at once, even while a
 *   read is waiting.
 *
 * @throws TypeError if `stream` is not a `ReadableStream` or is locked.
 * @throws TypeError / RangeError for an invalid capacity, as `new Channel` does.
 * @example
 * ```ts
 * const response = await fetch(url);
 * for await (const chunk of fromReadableStream(response.body!)) total += chunk.length;
 * ```
 */
export function fromReadableStream<T>(
  stream: ReadableStream<T>,
  options?: FromReadableStreamOptions,
): ReceiveChannel<T> {
  const candidate: unknown = stream;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof Reflect.get(candidate, 'getReader') !== 'function'
  ) {
    throw new TypeError(`Expected stream to be a ReadableStream, got ${describeValue(stream)}`);
  }
  const channel = new Channel<T>(options?.capacity ?? 0);
  const reader = stream.getReader();
  let ending = false;
  channel.onClose((cause) => {
    // Only cancellation closes the channel while we are still pumping.
    if (!ending) reader.cancel(cause).catch(ignore);
  });
  void pump(channel, reader, () => {
    ending = true;
  });
  return channel;
}

const ignore = (): void => undefined;

async function pump<T>(
  channel: Channel<T>,
  reader: ReadableStreamDefaultReader<T>,
  end: () => void,
): Promise<void> {
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      await channel.send(chunk.value);
    }
  } catch (error) {
    // A failed read is the stream's error; a failed send means the channel was
    // cancelled, and then close() below changes nothing. A stream errored with
    // `undefined` must not look like its normal end.
    end();
    channel.close(failureCause('stream', error));
    reader.releaseLock();
    return;
  }
  end();
  channel.close();
  reader.releaseLock();
}

/**
 * A `WritableStream` that sends each chunk written to it into `channel`.
 *
 * - **Backpressure:** a write completes when `channel.send` does (the value was
 *   buffered or, for a rendezvous channel, received); the stream's own queue holds at
 *   most one more chunk (its high-water mark is 1, the Web Streams default), so
 *   `writer.ready` and `pipeTo` wait while the channel is full.
 * - **Stream closed** (`writer.close()`, the end of a `pipeTo`): the channel is closed
 *   normally, after every earlier write was delivered.
 * - **Stream aborted** (`writer.abort(reason)`, a failed `pipeTo`): a write still
 *   waiting in `send` is withdrawn (its value goes to `onUndelivered`), and the channel
 *   is closed with `reason` as its cause (a `DOMException` named `AbortError` when no
 *   reason was given) — a `SendChannel` cannot be cancelled, and closing with a cause
 *   is how a producer reports failure.
 * - **Channel closed or cancelled by someone else:** the stream errors at once with the
 *   close cause (or a `ClosedSendError` for a normal close), so that a `pipeTo` stops
 *   and cancels its source. A write still waiting in `send` at that moment is withdrawn
 *   (its value goes to `onUndelivered`, as for an aborted send) — also after a normal
 *   `close()`, which on its own would let a waiting send wait on (see `SendChannel.send`):
 *   the stream has errored, so nobody would learn whether that chunk was delivered, and
 *   if the receivers are gone it would wait, and hold up the `pipeTo`, forever.
 *
 * @throws TypeError if `channel` is not a `SendChannel`.
 * @example
 * ```ts
 * await response.body!.pipeThrough(new TextDecoderStream()).pipeTo(toWritableStream(texts));
 * ```
 */
export function toWritableStream<T>(channel: SendChannel<T>): WritableStream<T> {
  assertChannel('channel', channel, 'send');
  let unwatch: () => void = ignore;
  // Every write's signal: aborted when the stream is aborted (the controller's signal)
  // and when someone else closes the channel, which would not disturb a waiting send.
  const writes = new AbortController();
  return new WritableStream<T>({
    start(controller): void {
      const streamSignal = controller.signal;
      const onStreamAbort = (): void => {
        writes.abort(streamSignal.reason);
      };
      streamSignal.addEventListener('abort', onStreamAbort, { once: true });
      const unwatchClose = channel.onClose((cause) => {
        const error = cause === undefined ? new ClosedSendError() : cause;
        controller.error(error);
        writes.abort(error);
      });
      unwatch = () => {
        streamSignal.removeEventListener('abort', onStreamAbort);
        unwatchClose();
      };
    },
    write(chunk): Promise<void> {
      return channel.send(chunk, { signal: writes.signal });
    },
    close(): void {
      unwatch();
      channel.close();
    },
    abort(reason: unknown): void {
      unwatch();
      channel.close(
        reason === undefined ? new DOMException('The stream was aborted', 'AbortError') : reason,
      );
    },
  });
}
