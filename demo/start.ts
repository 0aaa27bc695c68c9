/**
 * `npm start`: runs the chat demo until Ctrl+C (SIGINT) or SIGTERM, then shuts down
 * cleanly — the pages and bots get 1001 (`'Going away'`) and start reconnecting.
 * Environment: `PORT` (default 8080; 0 picks a free port), `DEMO_HOST` (default
 * 127.0.0.1; not `HOST`, which some shells set to the machine's name), `DEMO_BOT=0` to run
 * without the bot.
 *
 * Across nodes: with `REDIS_URL` set (e.g. `redis://127.0.0.1:6379`) the chat room lives in
 * Redis (`sluice/redis`), so every demo process using it is one chat; `DEMO_PEERS` lists
 * the other processes' page addresses, comma-separated (`http://127.0.0.1:8082`), so that
 * a page moves to one of them when its own process is gone. Without `REDIS_URL` nothing
 * of Redis is loaded.
 *
 * @module
 */
import type { TopicBackend } from 'sluice';
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

/** The Redis backend on `url`, and how to let go of it. */
async function redis(url: string): Promise<{ backend: TopicBackend; close(): Promise<void> }> {
  const [{ createClient }, { redisBackend }] = await Promise.all([
    import('redis'),
    import('sluice/redis'),
  ]);
  const client = createClient({ url });
  // Without a listener, a lost connection would take the process down.
  client.on('error', (error: unknown) => {
    log(`redis: ${error instanceof Error ? error.message : String(error)}`);
  });
  await client.connect();
  const backend = redisBackend({ client });
  return {
    backend,
    async close() {
      await backend.close();
      await client.close();
    },
  };
}

const peers = (process.env['DEMO_PEERS'] ?? '')
  .split(',')
  .map((peer) => peer.trim())
  .filter((peer) => peer !== '');

try {
  const redisUrl = process.env['REDIS_URL'] ?? '';
  const shared = redisUrl === '' ? undefined : await redis(redisUrl);
  const demo = await startDemo({
    port: port(process.env['PORT']),
    host: process.env['DEMO_HOST'] || '127.0.0.1',
    bot: process.env['DEMO_BOT'] !== '0',
    log,
    backend: shared?.backend,
    peers,
  }).catch(async (error: unknown) => {
    await shared?.close();
    throw error;
  });
  console.log(`sluice chat demo: ${demo.url}`);
  if (shared !== undefined) {
    console.log(
      `The room is shared through Redis at ${redisUrl}${peers.length > 0 ? ` with ${peers.join(', ')}` : ''}.`,
    );
  }
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
    demo
      .close()
      .then(() => shared?.close())
      .then(
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
