// Names of the environment variables through which run-in-runtime.ts talks to harness.ts
// (shared by both sides; no imports, so that Node can read them without running the harness).

/** Where the child writes its JSON report. */
export const REPORT_FILE_VARIABLE = 'SLUICE_REPORT_FILE';
/** The test environment (`TestEnv`) as JSON. */
export const TEST_ENV_VARIABLE = 'SLUICE_TEST_ENV';
/** Mocha's per-test timeout, in milliseconds. */
export const TEST_TIMEOUT_VARIABLE = 'SLUICE_TEST_TIMEOUT';
