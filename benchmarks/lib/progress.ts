/**
 * Progress lines for `npm run bench`, written to stderr so that stdout carries only the
 * result tables: `[0:42 channel 12/160, ~5:10 left] round 1/5 · A spsc · sluice: 414 ns/msg`.
 *
 * @module
 */
import { formatDuration } from './report.js';

/** Where progress goes: `process.stderr`, or a collector in tests. */
export interface ProgressSink {
  write(text: string): unknown;
}

/** Counts the steps of one suite and stamps every line with the elapsed time. */
export class Progress {
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  readonly #started: number;
  /** Whether the last write ended a line (forwarded output may stop mid-line). */
  #atLineStart = true;

  /**
   * @param sink - where lines go.
   * @param now - a clock in milliseconds (`performance.now` unless a test gives one).
   */
  constructor(sink: ProgressSink, now: () => number = () => performance.now()) {
    this.#sink = sink;
    this.#now = now;
    this.#started = now();
  }

  /** Seconds since this `Progress` was made. */
  get elapsedSeconds(): number {
    return (this.#now() - this.#started) / 1000;
  }

  /** One line: `[elapsed scope] text`. */
  line(scope: string, text: string): void {
    this.#write(`[${formatDuration(this.elapsedSeconds)} ${scope}] ${text}\n`);
  }

  /**
   * Step `done` of `total` (counted from 1) of a suite, with the time left estimated
   * from the average step so far.
   */
  step(scope: string, done: number, total: number, text: string): void {
    const elapsed = this.elapsedSeconds;
    const left =
      done >= total ? '' : `, ~${formatDuration((elapsed / done) * (total - done))} left`;
    this.#write(`[${formatDuration(elapsed)} ${scope} ${done}/${total}${left}] ${text}\n`);
  }

  /**
   * Passes on a child process' own output as it arrives, with `[elapsed scope]` in front
   * of each line it starts; a chunk that stops mid-line (a row of dots) is continued by
   * the next one.
   */
  forward(scope: string, chunk: string): void {
    let out = '';
    for (const piece of chunk.split(/(?<=\n)/)) {
      if (piece === '') continue;
      if (this.#atLineStart) out += `[${formatDuration(this.elapsedSeconds)} ${scope}] `;
      out += piece;
      this.#atLineStart = piece.endsWith('\n');
    }
    if (out !== '') this.#sink.write(out);
  }

  /** Ends a line left open by `forward`, so that the next line starts on its own. */
  endLine(): void {
    if (!this.#atLineStart) this.#write('\n');
  }

  #write(text: string): void {
    if (!this.#atLineStart && !text.startsWith('\n')) text = `\n${text}`;
    this.#sink.write(text);
    this.#atLineStart = text.endsWith('\n');
  }
}
