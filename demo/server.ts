/**
 * The demo's server: one `http.Server` that serves the chat page — `index.html` and
 * `page.ts`, bundled with esbuild as the server starts — and, on the same port, the typed
 * `Chat` endpoint through `sluice/server`; plus the bot, a Node client of the same
 * endpoint. `npm start` runs it through `start.ts`; tests start it in-process. With a
 * shared topic backend (`sluice/redis`) and the other nodes' addresses as `peers`, several
 * demo processes are one chat, and a page whose node goes away carries on on another.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { DiscontinuityError, SubscriberOverflowError, withTimeoutOrUndefined } from 'sluice';
import type { TopicBackend } from 'sluice';
import { serve } from 'sluice/server';
import type { Route, Server, ServerRequest } from 'sluice/server';
import { startBot } from './bot.js';
import type { Bot } from './bot.js';
import { Chat } from './protocol.js';
import type { ClientMsg, ServerMsg } from './protocol.js';
import { MAILBOX_CAPACITY, createRoom } from './room.js';
import type { Room } from './room.js';

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /**
   * The TCP port for the page and the WebSocket endpoint; 0 picks a free one.
   * @default 8080
   */
  readonly port?: number | undefined;
  /**
   * The address to listen on. Loopback unless you say otherwise.
   * @default '127.0.0.1'
   */
  readonly host?: string | undefined;
  /**
   * Whether to start the bot (named `bot`) as a client of the new server. When it is
   * started, `startDemo` resolves only once the bot has joined the room.
   * @default true
   */
  readonly bot?: boolean | undefined;
  /**
   * Receives one line per notable event: joins, leaves, the bot's connection.
   * @default ignores them
   */
  readonly log?: ((line: string) => void) | undefined;
  /**
   * Where the chat room's history lives. A shared backend (`redisBackend` from
   * `sluice/redis`) makes every demo process using it one chat room. The demo does not
   * close it: its owner does, after `close()`.
   * @default the in-memory backend: this process alone
   */
  readonly backend?: TopicBackend | undefined;
  /**
   * The page addresses of the other demo processes sharing the room, e.g.
   * `['http://127.0.0.1:8082/']`. Pages served by them may connect here, and this
   * server's page connects to them (in turn) when its own server is gone; `/peers.json`
   * lists their WebSocket addresses for the page.
   * @default none
   */
  readonly peers?: readonly string[] | undefined;
}

/** A running demo, from {@link startDemo}. */
export interface Demo {
  /** The page's address, `http://127.0.0.1:8080/`: open it in a browser. */
  readonly url: string;
  /** The WebSocket base address, `ws://127.0.0.1:8080` (the endpoint is at `/chat`). */
  readonly wsUrl: string;
  /** The port the server listens on. */
  readonly port: number;
  /**
   * Stops the bot, closes every chat connection with 1001 (`'Going away'`) — the pages
   * then reconnect on their own once a server is back — and stops listening. Resolves
   * once the port is free and nothing of the demo is left running; calling it again
   * returns the same promise.
   */
  close(): Promise<void>;
}

/** How long a new connection may take to send its `join`. */
const JOIN_TIMEOUT = 10_000;

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

interface StaticFile {
  readonly type: string;
  readonly body: string;
}

/** Bundles `page.ts` for browsers (sluice's imports resolve through tsconfig `paths`). */
async function bundlePage(): Promise<{ js: string; map: string }> {
  const result = await esbuild.build({
    entryPoints: [here('page.ts')],
    outfile: here('page.js'), // not written: `write: false` keeps the output in memory
    write: false,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    sourcemap: 'linked',
    logLevel: 'silent',
  });
  const js = result.outputFiles.find((file) => file.path.endsWith('.js'));
  const map = result.outputFiles.find((file) => file.path.endsWith('.js.map'));
  if (js === undefined || map === undefined) throw new Error('esbuild produced no page bundle');
  return { js: js.text, map: map.text };
}

/**
 * Lets browsers connect only from pages served by this server (the Origin must match the
 * Host) or by one of its `peers` (their origins), the defence against cross-site
 * WebSocket hijacking; clients that are not browsers send no Origin and may connect.
 */
function sameOrigin(peers: ReadonlySet<string>): (request: ServerRequest) => boolean {
  return (request) => {
    const { origin, host } = request.headers;
    if (origin === undefined) return true;
    if (typeof origin !== 'string') return false;
    return (typeof host === 'string' && origin === `http://${host}`) || peers.has(origin);
  };
}

/** The chat: every connection joins `room`, and leaves it when the connection ends. */
/**
 * Who joins first after a start: the bot, whose name is `botName`, before any page. A page
 * that reconnected in the few milliseconds between the server listening and the bot's
 * join would otherwise join unseen by the bot (it greets those who join after it). Pages
 * wait until `ready` settles (the bot joined, or it never will).
 */
interface JoinGate {
  readonly botName: string | undefined;
  readonly ready: Promise<unknown>;
}

function chatRoute(
  room: Room,
  log: (line: string) => void,
  gate: JoinGate,
): Route<ClientMsg, ServerMsg> {
  return Chat.handle(async (session) => {
    const { incoming, outgoing } = session;
    const first = await withTimeoutOrUndefined(JOIN_TIMEOUT, (signal) =>
      incoming.receiveCatching({ signal }),
    );
    if (first?.ok === false) return; // gone before joining
    if (first?.value.type !== 'join') {
      await session.close(1008, 'Expected a join message first');
      return;
    }
    if (first.value.name !== gate.botName) await gate.ready;
    const { name, welcome, events, missed } = await room.join(first.value.name, first.value.since);
    // The subscription's pump: a child of the connection's scope, so the connection closes
    // only once it has finished, and it stops when the connection does.
    session.scope.launch(async (signal) => {
      try {
        await outgoing.send(welcome, { signal });
        if (missed) await outgoing.send({ type: 'missed' }, { signal });
        for await (const item of events.iterate({ signal })) {
          // Every member's policy is 'close': a gap comes only first, when its `since`
          // is older than the history kept.
          if (item.type === 'gap') {
            await outgoing.send({ type: 'missed' }, { signal });
            continue;
          }
          const { event } = item.value;
          // Not its own join or leave (a member that comes back sees its old one).
          if (event.type !== 'message' && event.name === name) continue;
          await outgoing.send({ ...event, at: item.position }, { signal });
        }
      } catch (error) {
        if (error instanceof SubscriberOverflowError) {
          log(`${name} dropped: too slow (${MAILBOX_CAPACITY} messages unread)`);
          room.leave(name);
          void session.close(1008, 'Too slow');
        } else if (error instanceof DiscontinuityError) {
          // A shared backend lost the room's history under it (Redis restarted without
          // its data): the page reconnects, joins since its position and is told.
          log(`${name} reconnects: the room's history was lost`);
          void session.close(1012, 'Room history lost');
        }
        // Otherwise the connection is over: nothing more can reach this client.
      } finally {
        events.cancel();
      }
    });
    try {
      for await (const message of incoming) {
        if (message.type === 'say') room.say(name, message.text);
        // A second `join` on the same connection is ignored: one name per connection.
      }
    } finally {
      room.leave(name);
    }
  });
}

function staticFiles(
  html: string,
  page: { js: string; map: string },
  peers: readonly string[],
): Map<string, StaticFile> {
  const htmlFile = { type: 'text/html; charset=utf-8', body: html };
  const peerSockets = peers.map((peer) => peer.replace(/^http/, 'ws'));
  return new Map([
    ['/', htmlFile],
    ['/index.html', htmlFile],
    ['/page.js', { type: 'text/javascript; charset=utf-8', body: page.js }],
    ['/page.js.map', { type: 'application/json', body: page.map }],
    ['/peers.json', { type: 'application/json', body: JSON.stringify(peerSockets) }],
  ]);
}

function listen(http: HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
}

async function closeHttp(http: HttpServer): Promise<void> {
  http.closeAllConnections();
  await new Promise<void>((resolve) => {
    http.close(() => {
      resolve();
    });
  });
}

/** `host` as it goes into a URL: IPv6 in brackets, "any address" as loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** A value as an error message shows it: strings quoted, numbers as is, else the type. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

function checkOptions(options: unknown): asserts options is DemoOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const { port, host, bot, log, backend, peers } = options as Record<string, unknown>;
  if (
    port !== undefined &&
    (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
  ) {
    throw new RangeError(
      `Expected port to be an integer from 0 to 65535, got ${describeValue(port)}`,
    );
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw new TypeError(`Expected host to be a non-empty string, got ${describeValue(host)}`);
  }
  if (bot !== undefined && typeof bot !== 'boolean') {
    throw new TypeError(`Expected bot to be a boolean, got ${describeValue(bot)}`);
  }
  if (log !== undefined && typeof log !== 'function') {
    throw new TypeError(`Expected log to be a function, got ${describeValue(log)}`);
  }
  if (
    backend !== undefined &&
    (typeof backend !== 'object' ||
      backend === null ||
      typeof Reflect.get(backend, 'publish') !== 'function')
  ) {
    throw new TypeError(
      `Expected backend to be a TopicBackend or undefined, got ${describeValue(backend)}`,
    );
  }
  if (peers !== undefined) {
    if (!Array.isArray(peers)) {
      throw new TypeError(
        `Expected peers to be an array of http:// URLs, got ${describeValue(peers)}`,
      );
    }
    for (const peer of peers as unknown[]) {
      if (typeof peer !== 'string' || !URL.canParse(peer) || new URL(peer).protocol !== 'http:') {
        throw new TypeError(`Expected each peer to be an http:// URL, got ${describeValue(peer)}`);
      }
    }
  }
}

/**
 * Starts the chat demo: bundles the page, listens on `host:port`, serves the page at `/`
 * and the `Chat` endpoint at `/chat`, and (unless `bot: false`) starts the bot.
 *
 * Each connection must send `join` within 10 s (else it is closed with 1008); a client
 * that leaves 256 messages unread is dropped with 1008 (`'Too slow'`). Browsers may
 * connect only from pages this server served (Origin = Host; others get HTTP 403).
 *
 * @throws (rejects with) TypeError / RangeError for invalid options, naming what was
 *   expected and what was given; the listen error, e.g. `EADDRINUSE` when the port is
 *   taken. Nothing is left running then.
 * @example
 * ```ts
 * const demo = await startDemo({ port: 0 });
 * console.log(`open ${demo.url}`);
 * await demo.close(); // pages see 1001 and keep trying to reconnect
 * ```
 */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  checkOptions(options);
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((): void => undefined);
  const [html, page] = await Promise.all([readFile(here('index.html'), 'utf8'), bundlePage()]);
  const peers = (options.peers ?? []).map((peer) => new URL(peer).origin);
  const files = staticFiles(html, page, peers);

  const http = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const file = files.get(new URL(request.url ?? '/', 'http://localhost').pathname);
    if (file === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found');
      return;
    }
    response.writeHead(200, {
      'content-type': file.type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    response.end(request.method === 'HEAD' ? undefined : file.body);
  });
  await listen(http, options.port ?? 8080, host);
  const { port } = http.address() as AddressInfo;
  const origin = `${urlHost(host)}:${port}`;

  let server: Server | undefined;
  let bot: Bot | undefined;
  let closing: Promise<void> | undefined;
  let openGate: () => void = () => undefined;
  const withBot = options.bot ?? true;
  const gate: JoinGate = {
    botName: withBot ? 'bot' : undefined,
    ready: withBot
      ? new Promise<void>((resolve) => {
          openGate = resolve;
        })
      : Promise.resolve(),
  };
  const room = createRoom({ log, backend: options.backend });
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      openGate();
      await bot?.stop();
      await server?.close({ timeout: 2_000 });
      room.close();
      await closeHttp(http);
    })());

  try {
    server = await serve({ server: http, authorize: sameOrigin(new Set(peers)) }, [
      chatRoute(room, log, gate),
    ]);
    if (withBot) {
      bot = startBot(`ws://${origin}`, {
        name: 'bot',
        log: (line) => {
          log(`[bot] ${line}`);
        },
      });
      await bot.joined.finally(openGate);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { url: `http://${origin}/`, wsUrl: `ws://${origin}`, port, close };
}
