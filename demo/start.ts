/**
 * `npm start`: runs the chat demo until Ctrl+C (SIGINT) or SIGTERM, then shuts down
 * cleanly — the pages and bots get 1001 (`'Going away'`) and start reconnecting.
 * Environment: `PORT` (default 8080; 0 picks a free port), `DEMO_HOST` (default
 * 127.0.0.1; not `HOST`, which some shells set to the machine's name), `DEMO_BOT=0` to run
 * without the bot.
 *
 * @module
 */
import { startDemo } from './server.js';

function port(text: string | undefined): number {
  if (text === undefined || text === '') return 8080;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new RangeError(`Expected PORT to be an integer from 0 to 65535, got ${text}`);
  }
  return value;
}

const log = (line: string): void => {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
};

try {
  const demo = await startDemo({
    port: port(process.env['PORT']),
    host: process.env['DEMO_HOST'] || '127.0.0.1',
    bot: process.env['DEMO_BOT'] !== '0',
    log,
  });
  console.log(`sluice chat demo: ${demo.url}`);
  console.log(
    'Open it in two browser tabs; Ctrl+C stops the server (start it again to watch the pages reconnect).',
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.log(`${signal} again: exiting at once`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: closing connections (1001 Going away)…`);
    demo.close().then(
      () => {
        log('stopped');
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      },
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (error) {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE') {
    console.error(
      `Port ${process.env['PORT'] ?? 8080} is in use: try PORT=8081 npm start, or PORT=0 for any free port.`,
    );
  } else {
    console.error(error);
  }
  process.exitCode = 1;
}
