// Makes the run fail on any unhandled rejection or uncaught exception, wherever it
// happens (a test, a timer, a hook), instead of letting it scroll past as a warning.
const seen: unknown[] = [];

function record(error: unknown): void {
  seen.push(error);
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
