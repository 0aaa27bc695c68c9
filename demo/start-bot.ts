/**
 * `npm run start:bot -- [url] [name]`: one more bot, in its own process, for a demo
 * server that is already running (`npm start`). Restart the server and watch it reconnect
 * on its own, as the pages do. Defaults: `ws://127.0.0.1:$PORT` (8080) and `bot2`; an
 * `http://` URL (as `npm start` prints it) works too. Stops on Ctrl+C or SIGTERM.
 *
 * @module
 */
import { startBot } from './bot.js';

const url = (process.argv[2] ?? `ws://127.0.0.1:${process.env['PORT'] || 8080}`).replace(
  /^http/,
  'ws',
);
const name = process.argv[3] ?? 'bot2';
const log = (line: string): void => {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
};

const bot = startBot(url, { name, log });
log(`connecting to ${url} as ${name}…`);
const stop = (): void => {
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  void bot.stop().then(() => {
    log('stopped');
  });
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
bot.client.done.then(
  () => undefined,
  (error: unknown) => {
    console.error('the bot gave up:', error);
    process.exitCode = 1;
    stop();
  },
);
