/**
 * The page side of run-in-chromium: collects every mocha result in the page, fails the
 * running test on an unhandled rejection (as mocha does in Node), records every uncaught
 * error and unhandled rejection, and hands the report to the function the runner exposed.
 * Browser-only: mocha's browser build must have been loaded and set up (`mocha.setup`).
 */
import type { BrowserTestResult, PageReport, ReportedError } from './env.js';
import { reported, result } from './mocha-results.js';

declare global {
  var __sluiceReport: ((report: PageReport) => Promise<void>) | undefined;
}

const pageErrors: ReportedError[] = [];
let phase: 'loading' | 'running' | 'done' = 'loading';

function send(results: readonly BrowserTestResult[]): void {
  const report: PageReport = { results, pageErrors, userAgent: navigator.userAgent };
  const deliver = globalThis.__sluiceReport;
  if (deliver === undefined) console.log(JSON.stringify(report, null, 2));
  else void deliver(report);
}

globalThis.addEventListener('unhandledrejection', (event: PromiseRejectionEvent) => {
  const reason: unknown = event.reason;
  pageErrors.push(reported(reason));
  if (phase !== 'running') return;
  const detail = reason instanceof Error ? (reason.stack ?? String(reason)) : String(reason);
  try {
    mocha.throwError(new Error(`unhandled rejection: ${detail}`, { cause: reason }));
  } catch {
    // throwError rethrows once it has handed the error to mocha, which fails the test.
  }
});

globalThis.addEventListener('error', (event: ErrorEvent) => {
  const error: unknown = event.error ?? event.message;
  pageErrors.push(reported(error));
  if (phase !== 'loading') return;
  // A suite module threw while being evaluated, so the entry never starts mocha: report
  // that at once instead of leaving the runner waiting.
  phase = 'done';
  const title = 'loading the browser suites';
  send([{ fullTitle: title, titlePath: [title], state: 'failed', error: reported(error) }]);
});

/**
 * Runs every suite registered so far; reports the results once mocha has ended and one
 * more macrotask has passed (so that late unhandled rejections are included).
 */
export function runRegisteredSuites(): void {
  if (phase !== 'loading') return;
  const results: BrowserTestResult[] = [];
  const failed = new Set<Mocha.Runnable>();
  const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } =
    Mocha.Runner.constants;

  class Collector extends Mocha.reporters.Base {
    constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
      super(runner, options);
      runner.on(EVENT_TEST_PASS, (test) => results.push(result(test, 'passed')));
      runner.on(EVENT_TEST_PENDING, (test) => results.push(result(test, 'pending')));
      runner.on(EVENT_TEST_FAIL, (runnable, error) => {
        // A test failed by an uncaught error fails again when it settles ("done() called
        // multiple times"): the first failure is the one that explains it.
        if (failed.has(runnable)) return;
        failed.add(runnable);
        results.push(result(runnable, 'failed', error));
      });
      runner.once(EVENT_RUN_END, () => {
        phase = 'done';
        setTimeout(() => send(results), 0);
      });
    }
  }

  mocha.reporter(Collector);
  phase = 'running';
  mocha.run();
}
