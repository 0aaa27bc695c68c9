/**
 * What Node and the page share: the test environment handed into the page (`env`
 * injection) and the shape of the results the page reports back. Browser-safe: types and
 * one reader, no Node built-ins.
 */

/** A JSON value: what can cross from Node into the page and back. */
export type JsonValue =
  string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Where a shared suite runs. Suites may assert platform differences explicitly. */
export type Platform = 'node' | 'chromium' | 'bun' | 'deno';

/**
 * The environment a shared suite receives: the platform, plus whatever the Node side
 * passed in (e.g. `peerUrl` of a WebSocket peer server it started).
 */
export interface TestEnv {
  readonly platform: Platform;
  readonly [key: string]: JsonValue | undefined;
}

/** Name of the global the runner sets in the page before any suite module is evaluated. */
export const ENV_GLOBAL = '__SLUICE_TEST_ENV__';

declare global {
  var __SLUICE_TEST_ENV__: TestEnv | undefined;
}

/** The environment injected by the runner; throws when there is none (not in the page). */
export function injectedEnv(): TestEnv {
  const env = globalThis.__SLUICE_TEST_ENV__;
  if (env === undefined) {
    throw new Error(`Expected globalThis.${ENV_GLOBAL} to be set by run-in-chromium`);
  }
  return env;
}

/** Reads a string entry of the environment, failing clearly when it is missing. */
export function envString(env: TestEnv, key: string): string {
  const value = env[key];
  if (typeof value !== 'string') {
    throw new TypeError(`Expected env.${key} to be a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** An error as it crossed from the page: enough to report it in Node. */
export interface ReportedError {
  readonly name: string;
  readonly message: string;
  readonly stack: string;
}

/** One test (or failed hook) as mocha ran it in the page. */
export interface BrowserTestResult {
  /** Mocha's full title: the describe titles and the test title, joined by spaces. */
  readonly fullTitle: string;
  readonly titlePath: readonly string[];
  readonly state: 'passed' | 'failed' | 'pending';
  /** Milliseconds; absent for pending tests. */
  readonly duration?: number;
  readonly error?: ReportedError;
}

/** What the page sends back once mocha has finished. */
export interface PageReport {
  readonly results: readonly BrowserTestResult[];
  /** Uncaught errors and unhandled rejections seen in the page, whenever they happened. */
  readonly pageErrors: readonly ReportedError[];
  readonly userAgent: string;
}

/** Name of the function the runner exposes to the page for the final report. */
export const REPORT_BINDING = '__sluiceReport';
