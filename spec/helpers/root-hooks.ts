// Makes the run fail on any unhandled rejection or uncaught exception, wherever it
// happens (a test, a timer, a hook), instead of letting it scroll past as a warning.
const seen: unknown[] = [];

function record(error: unknown): void {
  seen.push(error);
}

/**
 * For tests that expect errors to be reported asynchronously as uncaught exceptions
 * (e.g. a throwing user callback rethrown from a microtask): while `body` runs and one
 * macrotask turn after it, uncaught exceptions are collected instead of failing the run
 * (mocha's own listener is detached meanwhile). Returns what was collected.
 */
export async function captureUncaught(body: () => unknown): Promise<unknown[]> {
  const captured: unknown[] = [];
  const others = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const capture = (error: unknown): void => {
    captured.push(error);
  };
  process.on('uncaughtException', capture);
  try {
    await body();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.removeListener('uncaughtException', capture);
    for (const listener of others) process.on('uncaughtException', listener);
  }
  return captured;
}

process.on('unhandledRejection', record);
process.on('uncaughtException', record);

export const mochaHooks = {
  afterEach(this: Mocha.Context): void {
    if (seen.length > 0) {
      const errors = seen.splice(0);
      const first = errors[0];
      const message = `unhandled rejection or uncaught exception during "${this.currentTest?.fullTitle() ?? '?'}": ${String(first instanceof Error ? first.stack : first)}`;
      throw new Error(message, { cause: first });
    }
  },
  afterAll(): void {
    if (seen.length > 0) {
      throw new Error(`unhandled rejection after the last test: ${String(seen[0])}`);
    }
  },
};
