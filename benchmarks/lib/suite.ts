/**
 * What `benchmarks/run.ts` knows about a benchmark: a `Suite` runs one benchmark file
 * (in child processes) and hands back its sections for stdout and `results.md`, plus
 * the chart data when it has some.
 *
 * @module
 */
import type { BarChartSpec } from './chart.js';
import type { Progress } from './progress.js';
import type { SuiteReport } from './report.js';

/** The runner's options that every suite honours. */
export interface SuiteOptions {
  /** A short run to check the runner itself: figures are not worth reading. */
  readonly quick: boolean;
  /** `--runs N` as given on the command line; `undefined` keeps each suite's default. */
  readonly runs: number | undefined;
  readonly progress: Progress;
}

/** A suite's result: its report, and a chart when it draws one. */
export interface SuiteOutcome {
  readonly report: SuiteReport;
  /** The chart and one sentence on what it shows (its alt text and caption). */
  readonly chart?: { readonly spec: BarChartSpec; readonly caption: string };
}

/** One benchmark as the runner sees it. */
export interface Suite {
  /** The name on the command line (`npm run bench -- <name>`) and in the report. */
  readonly name: string;
  /** What it measures, in one line. */
  readonly title: string;
  /**
   * Left out of a plain `npm run bench` (run it by name or with `--all`), with why.
   * Only for suites that are slow or heavy on the machine.
   */
  readonly optIn?: string;
  /**
   * Runs the suite once. A failed benchmark run does not reject: it shows in the report
   * (`report.failed` and an ERROR in its section).
   */
  run(options: SuiteOptions): Promise<SuiteOutcome>;
}

/** A command line the runner cannot follow: it prints the message and its usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
