/**
 * A `Suite` for a benchmark file that runs on its own: `benchmarks/<name>.bench.ts`
 * measures its peers itself, prints its progress to stderr and its results (markdown
 * or plain text) to stdout, and exits with a non-zero code when a run fails. The runner
 * starts it in a child process, forwards its progress and keeps its stdout for the
 * report as it is (figures are not re-parsed, so nothing is lost in translation).
 *
 * The contract a file must keep to be added with one line in `benchmarks/run.ts`:
 * - `node --import tsx benchmarks/<name>.bench.ts` runs the full benchmark;
 * - `--runs N` sets the number of fresh processes per figure (the runner passes it on
 *   when the user gave one);
 * - some arguments (`quick`) make a short smoke run;
 * - progress on stderr, results on stdout, exit code 0 only when every run verified.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { fenced } from './report.js';
import type { Suite, SuiteOutcome } from './suite.js';

const BENCHMARKS = dirname(dirname(fileURLToPath(import.meta.url)));
const ROOT = dirname(BENCHMARKS);

/** One bench file, as `benchmarks/run.ts` lists it. */
export interface BenchFileOptions {
  /** The file is `benchmarks/<name>.bench.ts`; the name selects it on the command line. */
  readonly name: string;
  readonly title: string;
  /**
   * Arguments for `--quick`: a short run that still exercises every implementation.
   * @default ['--runs', '1']
   */
  readonly quick?: readonly string[];
  /** Its stdout is markdown (tables) rather than plain text. @default false */
  readonly markdown?: boolean;
  /** See `Suite.optIn`. */
  readonly optIn?: string;
  /** The child is killed after this long. @default 30 minutes (5 with `--quick`) */
  readonly timeoutMs?: number;
}

/** The arguments the runner passes to a bench file. */
export function benchFileArgs(
  quick: readonly string[],
  options: { readonly quick: boolean; readonly runs: number | undefined },
): string[] {
  const args = options.quick ? [...quick] : [];
  if (options.runs !== undefined) {
    const at = args.indexOf('--runs');
    if (at >= 0) args.splice(at, 2);
    args.push('--runs', String(options.runs));
  }
  return args;
}

/**
 * The results section for a bench file's output: markdown as it is, anything else in a
 * fenced block; a failure says how the process ended and shows the end of its stderr.
 */
export function benchFileBody(
  stdout: string,
  markdown: boolean,
  failure: string | null,
  stderrTail: string,
): string {
  const out = stdout.trim();
  const parts: string[] = [];
  if (out !== '') parts.push(markdown ? out : fenced(out));
  if (failure !== null) {
    parts.push(`**ERROR**: ${failure}`);
    if (stderrTail.trim() !== '') parts.push(fenced(stderrTail.trim()));
  }
  return parts.join('\n\n');
}

/**
 * The part of a failed child's stderr worth showing: from the first line that names an
 * error (up to 12 lines), else the last 8 lines.
 */
export function stderrExcerpt(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const first = lines.findIndex((line) => /\b[A-Z]?\w*Error\b/.test(line));
  return (first >= 0 ? lines.slice(first, first + 12) : lines.slice(-8)).join('\n');
}

/** A suite that runs `benchmarks/<name>.bench.ts` as a child process. */
export function benchFile(options: BenchFileOptions): Suite {
  const file = `benchmarks/${options.name}.bench.ts`;
  return {
    name: options.name,
    title: options.title,
    ...(options.optIn === undefined ? {} : { optIn: options.optIn }),
    async run({ quick, runs, progress }): Promise<SuiteOutcome> {
      const args = benchFileArgs(options.quick ?? ['--runs', '1'], { quick, runs });
      const started = progress.elapsedSeconds;
      const command = ['node --import tsx', file, ...args].join(' ');
      progress.line(options.name, command);
      const timeoutMs = options.timeoutMs ?? (quick ? 5 : 30) * 60_000;
      const { stdout, stderr, failure } = await new Promise<{
        stdout: string;
        stderr: string;
        failure: string | null;
      }>((resolve) => {
        // In the runner's process group, so that Ctrl-C ends it too. The processes it
        // starts itself end when their pipes to it close.
        const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          err = (err + chunk).slice(-4000);
          progress.forward(options.name, chunk);
        });
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.on('error', (error) => {
          clearTimeout(timer);
          resolve({ stdout: out, stderr: err, failure: `could not start: ${error.message}` });
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          progress.endLine();
          const failure = timedOut
            ? `killed after ${timeoutMs / 60_000} minutes`
            : code === 0
              ? null
              : `exited with ${code === null ? `signal ${String(signal)}` : `code ${code}`}`;
          resolve({ stdout: out, stderr: err, failure });
        });
      });
      const seconds = progress.elapsedSeconds - started;
      progress.line(options.name, failure === null ? 'done' : `FAILED: ${failure}`);
      return {
        report: {
          name: options.name,
          title: options.title,
          command,
          seconds,
          failed: failure !== null,
          sections: [
            {
              title: '',
              body: benchFileBody(
                stdout,
                options.markdown ?? false,
                failure,
                stderrExcerpt(stderr),
              ),
            },
          ],
        },
      };
    },
  };
}
