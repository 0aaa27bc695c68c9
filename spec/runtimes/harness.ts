/**
 * The runtime side of run-in-runtime: the first module of the bundle that Bun or Deno
 * runs. While it is evaluated it sets mocha's `describe`/`it` globals and the test
 * environment (so that the suite modules evaluated after it can declare their suites),
 * then `runRegisteredSuites()` runs them with Node's mocha (resolved by the runtime from
 * node_modules, not bundled) and writes every result as JSON to the file the runner named.
 * Runs in Bun and Deno through their Node compatibility (`node:fs`, `process`).
 */
import { writeFileSync } from 'node:fs';
import Mocha from 'mocha';
import type { BrowserTestResult, PageReport, TestEnv } from '../browser/env.js';
import { reported, result } from '../browser/mocha-results.js';
import { mochaHooks } from '../helpers/root-hooks.js';
import { REPORT_FILE_VARIABLE, TEST_ENV_VARIABLE, TEST_TIMEOUT_VARIABLE } from './variables.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`Expected ${name} to be set`);
  return value;
}

const reportFile = required(REPORT_FILE_VARIABLE);
globalThis.__SLUICE_TEST_ENV__ = JSON.parse(required(TEST_ENV_VARIABLE)) as TestEnv;

const mocha = new Mocha({
  ui: 'bdd',
  timeout: Number(process.env[TEST_TIMEOUT_VARIABLE] ?? 20_000),
  // Prints nothing: the results go to the report file.
  reporter: Mocha.reporters.Base,
});
// What `mocha` does per spec file in Node: the bdd interface puts its globals here.
mocha.suite.emit('pre-require', globalThis, '', mocha);
// Unhandled rejections and uncaught exceptions fail the test, as in `npm test`.
mocha.rootHooks(mochaHooks);

function runtimeName(): string {
  const { versions } = process as { versions: Record<string, string | undefined> };
  if (versions['bun'] !== undefined) return `Bun ${versions['bun']}`;
  if (versions['deno'] !== undefined) return `Deno ${versions['deno']}`;
  return `Node ${process.version}`;
}

function writeReport(results: readonly BrowserTestResult[]): void {
  const report: PageReport = { results, pageErrors: [], userAgent: runtimeName() };
  writeFileSync(reportFile, JSON.stringify(report));
}

/** Reports a suite module that threw while it was evaluated, as one failed result. */
export function reportLoadFailure(error: unknown): void {
  const title = 'loading the suites';
  writeReport([{ fullTitle: title, titlePath: [title], state: 'failed', error: reported(error) }]);
}

/**
 * Runs every suite declared so far and writes the {@link PageReport} (`userAgent`: the
 * runtime and its version) once mocha has ended. Mocha's own listeners report uncaught
 * errors as failed tests; the root hooks turn unhandled rejections into failures.
 */
export function runRegisteredSuites(): void {
  const results: BrowserTestResult[] = [];
  const failed = new Set<Mocha.Runnable>();
  const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING } = Mocha.Runner.constants;
  const runner = mocha.run(() => writeReport(results));
  runner.on(EVENT_TEST_PASS, (test) => results.push(result(test, 'passed')));
  runner.on(EVENT_TEST_PENDING, (test) => results.push(result(test, 'pending')));
  runner.on(EVENT_TEST_FAIL, (runnable, error) => {
    // The first failure of a runnable explains it; a second is "done() called twice".
    if (failed.has(runnable)) return;
    failed.add(runnable);
    results.push(result(runnable, 'failed', error));
  });
}
