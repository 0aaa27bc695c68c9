/**
 * A Web Streams pipeline with a channel stage in the middle, showing back-pressure and
 * cancellation crossing between the two worlds:
 *
 * ```
 * endless ReadableStream ─fromReadableStream→ channel ─(a sluice stage)→ channel
 *   ─toReadableStream→ TransformStream ─pipeTo→ toWritableStream → channel → slow consumer
 * ```
 *
 * The source makes a new line only when someone asks for one (`pull`), so how many
 * lines it has made shows how far the pipeline reads ahead of the consumer: never more
 * than the buffers it declares, however slow the consumer is. When the consumer has had
 * enough it cancels its channel, and the cancellation travels all the way back to the
 * source, with the same reason.
 *
 * Run it: `node --import tsx examples/web-streams.ts`.
 */
import { pathToFileURL } from 'node:url';
import {
  Channel,
  delay,
  fromReadableStream,
  produce,
  scope,
  toReadableStream,
  toWritableStream,
} from 'sluice';

/** Options of {@link main}. */
export interface WebStreamsOptions {
  /** How many lines the consumer takes before it stops the pipeline. @default 6 */
  readonly take?: number;
  /** Milliseconds the consumer spends on each line (it is the slow end). @default 200 */
  readonly pace?: number;
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
}

/** What happened, for the test suite. */
export interface WebStreamsResult {
  /** The lines the consumer received, in order. */
  readonly received: readonly string[];
  /** How many lines the source had made when the consumer received each one. */
  readonly pulledAt: readonly number[];
  /** How many lines the source made in all. */
  readonly pulled: number;
  /** The reason the source was cancelled with, and the one the consumer gave. */
  readonly sourceCancelReason: unknown;
  readonly stopReason: unknown;
  /** What `pipeTo` rejected with. */
  readonly pipeError: unknown;
}

/**
 * The most lines that can be in flight between the source and the consumer: 1 the pump
 * of `fromReadableStream` holds + 2 in its channel + 1 the sluice stage holds + 1 in
 * `toReadableStream`'s pull + 2 in the TransformStream (its writable side's queue and the
 * chunk being transformed) + 1 `pipeTo` is writing + 1 in the `toWritableStream` queue +
 * 1 in its pending `send` + 1 in the consumer's channel. Declared buffers, not
 * measurements: the real figure may be lower.
 */
export const MAX_IN_FLIGHT = 11;

/** Builds the pipeline, lets a slow consumer take `take` lines, then stops it. */
export async function main(options: WebStreamsOptions = {}): Promise<WebStreamsResult> {
  const { take = 6, pace = 200, log = console.log } = options;

  // 1. An endless source that makes a line only on demand (high-water mark 0).
  let pulled = 0;
  let sourceCancelReason: unknown;
  const source = new ReadableStream<string>(
    {
      pull(controller) {
        pulled++;
        controller.enqueue(`line ${pulled}`);
      },
      cancel(reason) {
        sourceCancelReason = reason;
        log(`source: cancelled after making ${pulled} lines`);
      },
    },
    { highWaterMark: 0 },
  );

  const stopReason = new DOMException('The consumer has enough', 'AbortError');
  const received: string[] = [];
  const pulledAt: number[] = [];
  let pipeError: unknown;

  await scope(async (s) => {
    // 2. Into a channel that reads at most 2 lines ahead.
    const lines = fromReadableStream(source, { capacity: 2 });

    // 3. A stage written with channels: upper-cases each line. It honours its signal,
    //    and when it stops it cancels its input, which cancels the source.
    const upper = produce<string>(s, async (out, signal) => {
      try {
        for (;;) {
          const next = await lines.receiveCatching({ signal });
          if (!next.ok) return;
          await out.send(next.value.toUpperCase(), { signal });
        }
      } finally {
        lines.cancel(signal.aborted ? signal.reason : undefined);
      }
    });

    // 4. Back to Web Streams: a TransformStream numbers the lines, and `pipeTo` writes
    //    them into the consumer's channel, waiting whenever that channel is full.
    let count = 0;
    const numbered = toReadableStream(upper).pipeThrough(
      new TransformStream<string, string>({
        transform(line, controller) {
          controller.enqueue(`${++count}: ${line}`);
        },
      }),
    );
    const inbox = new Channel<string>(1);
    const piping = numbered.pipeTo(toWritableStream(inbox)).catch((error: unknown) => {
      pipeError = error;
    });

    // 5. The slow consumer.
    for (let i = 0; i < take; i++) {
      const line = await inbox.receive();
      received.push(line);
      pulledAt.push(pulled);
      log(`consumer: ${line} (the source has made ${pulled} lines so far)`);
      await delay(pace);
    }

    // 6. Enough: cancelling the consumer's channel errors the writable stream, so
    //    `pipeTo` stops and cancels the TransformStream and `toReadableStream`, which
    //    cancels the stage's channel, whose producer then cancels `lines`, which cancels
    //    the source — each with this same reason.
    log('consumer: enough');
    inbox.cancel(stopReason);
    await piping;
  });

  log(`pipeTo ended with: ${String(pipeError)}`);
  return { received, pulledAt, pulled, sourceCancelReason, stopReason, pipeError };
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
