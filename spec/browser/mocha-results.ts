/**
 * Mocha results as plain JSON, for the runners that bring them back to Node from another
 * runtime: the page harness (Chromium) and the Bun/Deno harness. Browser-safe: no Node
 * built-ins; the Mocha types are the global ones of `@types/mocha`.
 */
import type { BrowserTestResult, ReportedError } from './env.js';

/** `JSON.stringify` as it really is: `undefined` for `undefined`, functions and symbols. */
const stringify: (value: unknown) => string | undefined = JSON.stringify;

/** An error, or anything thrown, as it can cross to Node. */
export function reported(error: unknown): ReportedError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack ?? String(error) };
  }
  let text = String(error);
  if (typeof error !== 'string') {
    try {
      text = stringify(error) ?? text;
    } catch {
      // Cycles and bigints: String() it is.
    }
  }
  return { name: 'NonError', message: text, stack: text };
}

/** One test or hook as mocha ran it, with its error if it failed. */
export function result(
  runnable: Mocha.Runnable,
  state: BrowserTestResult['state'],
  error?: unknown,
): BrowserTestResult {
  const duration = runnable.duration;
  return {
    fullTitle: runnable.fullTitle(),
    titlePath: runnable.titlePath(),
    state,
    ...(duration === undefined ? {} : { duration }),
    ...(error === undefined ? {} : { error: reported(error) }),
  };
}
