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
import type { ReceiveChannel, SendChannel } from './channel-types.js';
import { Channel } from './channel.js';
import { ClosedSendError } from './errors.js';
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
 * goes to one of them. A value the channel handed over in the very turn the stream was
 * cancelled can no longer be enqueued and is dropped (the channel's `onUndelivered`
 * is not reachable from here).
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
  return new ReadableStream<T>(
    {
      async pull(controller): Promise<void> {
        const result = await channel.receiveCatching();
        if (result.ok) controller.enqueue(result.value);
        else if ('cause' in result) controller.error(result.cause);
        else controller.close();
      },
      cancel(reason: unknown): void {
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
 *   (receivers get the same object after draining).
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
    // cancelled, and then close() below changes nothing.
    end();
    channel.close(error);
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
 *   and cancels its source.
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
  let controller: WritableStreamDefaultController | undefined;
  return new WritableStream<T>({
    start(streamController): void {
      controller = streamController;
      unwatch = channel.onClose((cause) => {
        streamController.error(cause === undefined ? new ClosedSendError() : cause);
      });
    },
    write(chunk): Promise<void> {
      return channel.send(chunk, { signal: controller?.signal });
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
