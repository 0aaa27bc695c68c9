/**
 * The chat bot: a Node client of the `Chat` endpoint, kept connected by sluice's
 * `reconnecting` client — restart the server and it comes back on its own, as the pages
 * do. It greets everyone who joins and answers messages that mention it (`@bot ping`).
 *
 * @module
 */
import { reconnecting } from 'sluice/websocket';
import type { ReconnectingClient } from 'sluice/websocket';
import { Chat, MAX_NAME_LENGTH, MAX_TEXT_LENGTH, NAME_PATTERN } from './protocol.js';
import type { ClientMsg, ServerMsg } from './protocol.js';

/** Options of {@link startBot}. */
export interface BotOptions {
  /**
   * The name to join with (a taken name gets a number: `bot2`). Letters, digits, `_`, `-`.
   * @default 'bot'
   */
  readonly name?: string | undefined;
  /**
   * Receives one line per join and per lost connection.
   * @default ignores them
   */
  readonly log?: ((line: string) => void) | undefined;
}

/** A running bot, from {@link startBot}. */
export interface Bot {
  /**
   * Resolves with the name the bot got once it has joined the first time; rejects if the
   * bot ends before that (stopped, or the server refused it for good).
   */
  readonly joined: Promise<string>;
  /** The bot's connection: its `state` and `states()` show every (re)connection. */
  readonly client: ReconnectingClient;
  /**
   * Leaves the chat (close 1000) and stops reconnecting; resolves once all is closed and
   * logged. Rejects only with an error thrown by `log`.
   */
  stop(): Promise<void>;
}

/**
 * The bot's greeting for someone who joined.
 *
 * @example
 * ```ts
 * greeting('bot', 'ada'); // 'Welcome, ada! Say "@bot help" to see what I can do.'
 * ```
 */
export function greeting(me: string, name: string): string {
  return `Welcome, ${name}! Say "@${me} help" to see what I can do.`;
}

/** `text` backwards, keeping each user-perceived character (emoji, accents) whole. */
function reverse(text: string): string {
  const graphemes = Array.from(new Intl.Segmenter().segment(text), ({ segment }) => segment);
  return graphemes.reverse().join('');
}

const nameChar = String.raw`[\p{L}\p{N}_-]`;

/**
 * What the bot (named `me`) answers to `text` from `from`, or `undefined` when the text
 * does not mention `@me`. The command is the first word after the mention (or before it,
 * when nothing follows): `ping`, `who`, `time`, `reverse <text>`, `help`. Answers are cut
 * to the longest message the server accepts.
 *
 * @example
 * ```ts
 * answer('bot', 'ada', 'hey @bot ping', ['bot', 'ada']); // 'pong, ada'
 * answer('bot', 'ada', 'hello all', ['bot', 'ada']); // undefined
 * ```
 */
export function answer(
  me: string,
  from: string,
  text: string,
  members: readonly string[],
): string | undefined {
  const escaped = me.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const mention = new RegExp(`(?<!${nameChar})@${escaped}(?!${nameChar})`, 'iu');
  const found = mention.exec(text);
  if (found === null) return undefined;
  const mentions = new RegExp(mention.source, 'giu');
  const after = text
    .slice(found.index + found[0].length)
    .replace(mentions, ' ')
    .trim();
  const rest = after || text.slice(0, found.index).trim();
  const [command = '', ...words] = rest.split(/\s+/);
  let reply: string;
  switch (command.toLowerCase()) {
    case 'ping':
      reply = `pong, ${from}`;
      break;
    case 'who':
      reply = `here: ${members.join(', ')}`;
      break;
    case 'time':
      reply = `it is ${new Date().toISOString().slice(11, 19)} UTC here`;
      break;
    case 'reverse':
      reply = words.length === 0 ? 'reverse what?' : reverse(words.join(' '));
      break;
    case '':
    case 'help':
      reply = `${from}, try: @${me} ping, @${me} who, @${me} time, @${me} reverse <text>`;
      break;
    default:
      reply = `Sorry ${from}, I don't know "${command}". Try "@${me} help".`;
  }
  return reply.slice(0, MAX_TEXT_LENGTH);
}

/** Logs every lost connection and failed attempt, until the client ends. */
async function logClosings(client: ReconnectingClient, log: (line: string) => void): Promise<void> {
  for await (const state of client.states()) {
    if (state.type !== 'closed') continue;
    const { code, reason, opened } = state.reason;
    const what = opened
      ? `connection closed (${code}${reason && ` ${reason}`})`
      : 'could not connect';
    const next =
      state.retryIn === undefined
        ? 'stopped'
        : `retrying in ${(state.retryIn / 1000).toFixed(1)} s`;
    log(`${what}; ${next}`);
  }
}

/**
 * Starts a bot that joins the chat at `baseUrl` (`ws://127.0.0.1:8080`) and stays there:
 * after a lost connection or a server restart it reconnects with backoff (0.25 s, doubling
 * up to 5 s) and joins again, until `stop()`.
 *
 * @throws TypeError if `baseUrl` is not a string or URL; RangeError for a name that is not
 *   1–24 letters, digits, `_` or `-`.
 * @example
 * ```ts
 * const bot = startBot('ws://127.0.0.1:8080', { name: 'bot' });
 * console.log(`joined as ${await bot.joined}`);
 * await bot.stop();
 * ```
 */
export function startBot(baseUrl: string | URL, options: BotOptions = {}): Bot {
  if (typeof baseUrl !== 'string' && !(baseUrl instanceof URL)) {
    throw new TypeError(`Expected baseUrl to be a string or a URL, got ${typeof baseUrl}`);
  }
  const wanted = options.name ?? 'bot';
  if (wanted.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(wanted)) {
    throw new RangeError(
      `Expected name to be 1–${MAX_NAME_LENGTH} letters, digits, _ or -, got ${JSON.stringify(wanted)}`,
    );
  }
  const log = options.log ?? ((): void => undefined);
  let resolveJoined: (name: string) => void = () => undefined;
  const joined = new Promise<string>((resolve) => {
    resolveJoined = resolve;
  });

  const url = `${String(baseUrl).replace(/\/+$/, '')}${Chat.path}`;
  const client = reconnecting<ServerMsg, ClientMsg>(
    url,
    { codec: Chat.clientCodec, minDelay: 250, maxDelay: 5_000 },
    async ({ incoming, outgoing }) => {
      await outgoing.send({ type: 'join', name: wanted });
      let me = wanted;
      const members: string[] = [];
      const say = (text: string): Promise<void> => outgoing.send({ type: 'say', text });
      for await (const message of incoming) {
        switch (message.type) {
          case 'welcome':
            me = message.name;
            members.splice(0, members.length, ...message.members);
            log(`joined as ${me}; here: ${members.join(', ')}`);
            resolveJoined(me);
            break;
          case 'joined':
            members.push(message.name);
            await say(greeting(me, message.name));
            break;
          case 'left': {
            const index = members.indexOf(message.name);
            if (index >= 0) members.splice(index, 1);
            break;
          }
          case 'message': {
            if (message.from === me) break;
            const reply = answer(me, message.from, message.text, members);
            if (reply !== undefined) await say(reply);
            break;
          }
        }
      }
    },
  );

  const logging = logClosings(client, log);
  logging.catch(() => undefined); // a throwing `log` is reported by stop()
  const ended = client.done.then(
    () => Promise.reject(new Error('The bot stopped before it joined')),
    (error: unknown) => Promise.reject(error),
  );
  const bot: Bot = {
    joined: Promise.race([joined, ended]),
    client,
    stop: async () => {
      await client.stop();
      await logging; // its last line is out before stop() resolves
    },
  };
  bot.joined.catch(() => undefined); // a caller that never awaits it sees no unhandled rejection
  ended.catch(() => undefined);
  return bot;
}
