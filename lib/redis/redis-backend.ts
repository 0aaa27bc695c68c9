/**
 * `RedisBackend`: a {@link TopicBackend} on Redis, so that `Topic`s of the same name in
 * several processes are one topic. One Lua script per publish assigns the next offset of
 * the topic's epoch, appends to a stream (the history) and publishes on pub/sub (the fast
 * path); each node subscribes only to topics it has listeners for and refills from the
 * stream whenever pub/sub may have lost something. The design is in docs/redis.md.
 *
 * @module
 */
import { ClosedSendError } from '../errors.js';
import { describeValue } from '../internal/describe-value.js';
import type {
  DiscontinuityListener,
  History,
  PublicationListener,
  Retention,
  TopicBackend,
} from '../topics/backend.js';
import { newEpoch } from '../topics/position.js';
import type { Position, Publication } from '../topics/position.js';
import { Feed } from './feed.js';
import type { FeedHost, ReadResult } from './feed.js';
import { PUBLISH_SCRIPT, READ_SCRIPT, sha1 } from './scripts.js';

/**
 * What the backend uses of a node-redis (`redis` v6) client: `createClient()` returns
 * one. Described structurally so that `sluice/redis` does not import `redis` itself.
 */
export interface RedisClient {
  /** Sends one command; resolves with its reply. */
  sendCommand(args: readonly string[]): Promise<unknown>;
  /** A new client with the same options, not connected yet. */
  duplicate(): RedisClient;
  /** Connects (node-redis then reconnects by itself, as its `reconnectStrategy` says). */
  connect(): Promise<unknown>;
  /** Subscribes `listener` to a pub/sub channel. */
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => unknown,
  ): Promise<unknown>;
  /** Unsubscribes `listener` from a channel. */
  unsubscribe(
    channel: string,
    listener: (message: string, channel: string) => unknown,
  ): Promise<unknown>;
  /** node-redis emits `'error'` on a dropped connection, `'ready'` once (re)connected. */
  on(event: 'error' | 'ready', listener: (error: unknown) => void): unknown;
  /** Removes a listener added with `on`. */
  off(event: 'error' | 'ready', listener: (error: unknown) => void): unknown;
  /** Closes at once, rejecting pending commands. */
  destroy(): unknown;
}

/** Options of {@link redisBackend}. */
export interface RedisBackendOptions {
  /**
   * The user's node-redis client, connected (`await client.connect()`) before the first
   * publish: publishes and reads go through it. The backend also `duplicate()`s it once
   * for pub/sub and connects, watches and closes that duplicate itself. Give the client
   * an `'error'` listener: node-redis without one takes the process down when Redis
   * drops the connection (the backend attaches one to its duplicate).
   */
  readonly client: RedisClient;
  /**
   * Prepended to every key and channel name: `<prefix>{<topic>}:meta`, `:stream`,
   * `:p:<producer>`, and the channel `<prefix>{<topic>}:pub`.
   * @default 'sluice:'
   */
  readonly prefix?: string | undefined;
  /**
   * Milliseconds between position checks of the topics with local listeners: each
   * reads the topic's position and refills what pub/sub did not bring (the tail of a
   * quiet topic after a lost message). `Infinity` turns the timer off.
   * @default 1000
   */
  readonly checkInterval?: number | undefined;
  /**
   * Bytes of publications (encoded size) one topic holds while it refills from the
   * stream; beyond them, what it holds is dropped and read again from the stream.
   * @default 8388608 (8 MiB)
   */
  readonly maxPendingBytes?: number | undefined;
  /**
   * Stream entries read per `READ_SCRIPT` call (a refill or `history` reads in batches,
   * so that neither Redis nor this process is held long).
   * @default 1000
   */
  readonly batch?: number | undefined;
  /**
   * How many times a publish is sent again when its reply was lost with the connection
   * or Redis was not ready (`LOADING` after a restart, `BUSY`, `TRYAGAIN`, `MASTERDOWN`),
   * after a backoff of 10 ms doubling to 1 s. The same producer id and sequence go with
   * it, so it lands once.
   * @default 10
   */
  readonly publishRetries?: number | undefined;
  /** Turns a value into the string stored and published. @default JSON.stringify */
  readonly encode?: ((value: unknown) => string) | undefined;
  /** Turns a stored string back into a value. @default JSON.parse */
  readonly decode?: ((data: string) => unknown) | undefined;
  /**
   * Told of connection errors and failed background reads (the backend retries them);
   * never of what `publish`, `history` or `position` reject with.
   * @default ignore them
   */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** Sequences of a producer remembered per topic for dedupe (see docs/redis.md). */
const DEDUPE_WINDOW = 1024;
/** How long a producer's dedupe record lives after its last publish, in ms. */
const DEDUPE_TTL = 600_000;

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected ${name} to be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

function optionalFunction<F>(name: string, value: unknown, fallback: F): F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') {
    throw new TypeError(`Expected ${name} to be a function, got ${describeValue(value)}`);
  }
  return value as F;
}

/** A Redis error reply (a script error, NOSCRIPT, …), as opposed to a lost connection. */
function isReply(error: unknown): boolean {
  for (let proto: unknown = error; proto !== null && proto !== undefined;) {
    const name: unknown = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (name === 'ErrorReply') return true;
    proto = Object.getPrototypeOf(proto);
  }
  return false;
}

/** Error replies of a command Redis did not run, that may succeed later. */
const TRANSIENT = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN) /;

/** Whether a failed publish may be sent again: the connection was lost, or Redis was not ready. */
function isRetryable(error: unknown): boolean {
  if (isReply(error)) return TRANSIENT.test((error as Error).message);
  return !isClientClosed(error);
}

function isClientClosed(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { constructor?: { name?: unknown } }).constructor?.name === 'ClientClosedError'
  );
}

function integer(value: unknown): number {
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(number)) {
    throw new TypeError(`Expected an integer in a Redis reply, got ${describeValue(value)}`);
  }
  return number;
}

function text(value: unknown): string {
  if (typeof value !== 'string') {
    throw new TypeError(`Expected a string in a Redis reply, got ${describeValue(value)}`);
  }
  return value;
}

const PUBLISH_SHA = sha1(PUBLISH_SCRIPT);
const READ_SHA = sha1(READ_SCRIPT);

/**
 * Topics on Redis: give it to every `Topic` (`new Topic({ backend, name })`) of every
 * process that should share them. Made by {@link redisBackend}.
 *
 * - **Guarantees** as the memory backend: offsets contiguous within an epoch, retention
 *   (`count` exact, `maxAge` from Redis' clock), `history` since a position. Listeners
 *   get every publication once, in offset order, whichever process published it; when
 *   some can no longer be had (past retention, a new epoch after Redis lost its data)
 *   they get a `DiscontinuityError` naming them instead: never a silent loss.
 * - **Publish** resolves once Redis has it and this process' listeners of the topic
 *   got it. A publish whose reply is lost with the connection is sent again (up to
 *   `publishRetries`) with the same producer id and sequence, and lands once. While
 *   Redis is unreachable a publish waits in node-redis' offline queue.
 * - **Values** go through `encode`/`decode` (JSON by default): other processes get a
 *   copy; listeners in the publishing process get the value given to `publish`.
 * - **Closed** (`close()`): `publish`, `history` and `position` reject with
 *   `ClosedSendError`; listeners get nothing more; `listen` registers nothing.
 *
 * Differs from the memory backend: listeners are called after `publish`'s round trip,
 * not inside it; publications of one process under concurrent publishes keep their call
 * order unless a reply is lost and the publish retried.
 */
export class RedisBackend implements TopicBackend {
  readonly #client: RedisClient;
  readonly #sub: RedisClient;
  readonly #prefix: string;
  readonly #checkInterval: number;
  readonly #retries: number;
  readonly #encode: (value: unknown) => string;
  readonly #host: FeedHost;
  readonly #onError: (error: unknown) => void;
  readonly #feeds = new Map<string, Feed>();
  readonly #handlers = new Map<string, (message: string) => void>();
  readonly #producer = newEpoch();
  readonly #sequences = new Map<string, number>();
  readonly #onReady: () => void;
  readonly #onSubError: (error: unknown) => void;
  #timer: ReturnType<typeof setInterval> | undefined = undefined;
  readonly #connected: Promise<unknown>;
  #closed = false;

  constructor(options: RedisBackendOptions) {
    if (typeof options !== 'object' || (options as unknown) === null) {
      throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
    }
    const client: unknown = options.client;
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof Reflect.get(client, 'sendCommand') !== 'function' ||
      typeof Reflect.get(client, 'duplicate') !== 'function'
    ) {
      throw new TypeError(
        `Expected client to be a node-redis client (with sendCommand and duplicate), got ${describeValue(client)}`,
      );
    }
    const prefix: unknown = options.prefix ?? 'sluice:';
    if (typeof prefix !== 'string') {
      throw new TypeError(`Expected prefix to be a string, got ${describeValue(prefix)}`);
    }
    const checkInterval: unknown = options.checkInterval ?? 1000;
    if (typeof checkInterval !== 'number' || !(checkInterval > 0)) {
      throw new RangeError(
        `Expected checkInterval to be a positive number of milliseconds or Infinity, got ${describeValue(checkInterval)}`,
      );
    }
    const maxPendingBytes = positiveInteger('maxPendingBytes', options.maxPendingBytes, 8 << 20);
    const batch = positiveInteger('batch', options.batch, 1000);
    const retries: unknown = options.publishRetries ?? 10;
    if (typeof retries !== 'number' || !Number.isSafeInteger(retries) || retries < 0) {
      throw new RangeError(
        `Expected publishRetries to be a non-negative integer, got ${describeValue(retries)}`,
      );
    }
    this.#encode = optionalFunction('encode', options.encode, JSON.stringify);
    const decode = optionalFunction<(data: string) => unknown>(
      'decode',
      options.decode,
      JSON.parse,
    );
    this.#onError = optionalFunction<(error: unknown) => void>(
      'onError',
      options.onError,
      () => {},
    );
    this.#client = client as RedisClient;
    this.#prefix = prefix;
    this.#checkInterval = checkInterval;
    this.#retries = retries;
    this.#host = {
      read: (topic, epoch, from, limit, delivered) =>
        this.#read(topic, epoch, from, limit, delivered),
      decode,
      report: (error) => {
        this.#report(error);
      },
      batch,
      maxPendingBytes,
    };
    this.#sub = this.#client.duplicate();
    this.#onSubError = (error) => {
      this.#report(error);
    };
    this.#onReady = () => {
      // (Re)connected: node-redis has resubscribed before 'ready'; what pub/sub lost
      // meanwhile is in the stream.
      for (const feed of this.#feeds.values()) feed.check();
    };
    this.#sub.on('error', this.#onSubError);
    this.#sub.on('ready', this.#onReady);
    this.#connected = this.#sub.connect().catch((error: unknown) => {
      this.#report(error);
    });
  }

  /** `true` once `close()` was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Publishes `value` to `topic`: one `PUBLISH_SCRIPT` call, then (if this process
   * listens to the topic) waits until the listeners got it.
   *
   * - Connection lost before the reply, or Redis not ready (`LOADING`, `BUSY`,
   *   `TRYAGAIN`, `MASTERDOWN`): sent again after a backoff (10 ms doubling to 1 s), at
   *   most `publishRetries` times, landing once (producer id and sequence); then
   *   rejects with the last error.
   * - Rejects with any other Redis error reply, e.g. a full memory (`OOM`), unretried.
   * - Closed backend: rejects with `ClosedSendError`.
   *
   * @throws (as a rejection) TypeError if `encode` does not return a string.
   */
  async publish(topic: string, value: unknown, retention: Retention): Promise<Position> {
    if (this.#closed) throw this.#closedError();
    const count = retention.count ?? 100;
    const maxAge = retention.maxAge ?? Infinity;
    const payload: unknown = this.#encode(value);
    if (typeof payload !== 'string') {
      throw new TypeError(
        `Expected encode to return a string, got ${describeValue(payload)} for ${describeValue(value)}`,
      );
    }
    const sequence = (this.#sequences.get(topic) ?? 0) + 1;
    this.#sequences.set(topic, sequence);
    const args = [
      newEpoch(),
      payload,
      String(count),
      maxAge === Infinity ? '-1' : String(Math.ceil(maxAge)),
      this.#key(topic, 'pub'),
      String(sequence),
      String(DEDUPE_WINDOW),
      String(DEDUPE_TTL),
    ];
    const keys = [
      this.#key(topic, 'meta'),
      this.#key(topic, 'stream'),
      this.#key(topic, `p:${this.#producer}`),
    ];
    let reply: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        reply = await this.#eval(PUBLISH_SCRIPT, PUBLISH_SHA, keys, args);
        break;
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.#retries || this.isClosed) {
          throw error;
        }
        this.#report(error);
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 10 << attempt)));
      }
    }
    const [epoch, offset] = reply as unknown[];
    const position: Position = { epoch: text(epoch), offset: integer(offset) };
    const feed = this.#feeds.get(topic);
    if (feed !== undefined) {
      const publication: Publication<unknown> = { type: 'publication', value, position };
      feed.offer(publication, payload.length);
      await feed.delivered(position);
    }
    return position;
  }

  /**
   * Calls `listener` with every later publication of `topic`, from any process, once
   * each and in offset order; `onDiscontinuity` when some can no longer be had. The
   * first listener of a topic subscribes this process to its channel; the last one to
   * leave unsubscribes. A publication made after `listen` returns reaches the listener.
   * Closed backend: registers nothing.
   */
  listen(
    topic: string,
    listener: PublicationListener,
    onDiscontinuity?: DiscontinuityListener,
  ): () => void {
    if (this.#closed) return () => {};
    let feed = this.#feeds.get(topic);
    if (feed === undefined) feed = this.#open(topic);
    const entry = { listener, onDiscontinuity };
    feed.entries.add(entry);
    const opened = feed;
    return () => {
      if (!opened.entries.delete(entry) || opened.entries.size > 0) return;
      this.#drop(topic, opened);
    };
  }

  /**
   * The retained publications of `topic` after `since` (see {@link History}), at most
   * `limit` of them (all by default), read in batches of `batch`; the position is the
   * topic's when the first batch was read. Rejects with the connection's or Redis'
   * error; closed: `ClosedSendError`.
   */
  async history(
    topic: string,
    since: Position,
    limit: number = Infinity,
  ): Promise<History<unknown>> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.#history(topic, since, limit);
      if (result !== null) return result;
      if (attempt >= 3) {
        throw new Error(
          `Could not read a consistent history of topic ${describeValue(topic)}: it was trimmed or reset while being read, 4 times`,
        );
      }
    }
  }

  /**
   * The position of `topic`'s last publication (offset 0 in a fresh epoch if none; the
   * read makes that epoch). Rejects with the connection's or Redis' error; closed:
   * `ClosedSendError`.
   */
  async position(topic: string): Promise<Position> {
    const read = await this.#read(topic, '', 0, 0, undefined);
    return { epoch: read.epoch, offset: read.head };
  }

  /**
   * Stops: the position check, every subscription, the pub/sub duplicate (destroyed).
   * The user's client is left as it is. Listeners get nothing more; later calls reject
   * with `ClosedSendError`. Resolves once the duplicate is closed; idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const feed of this.#feeds.values()) feed.close();
    this.#feeds.clear();
    this.#handlers.clear();
    this.#sub.off('ready', this.#onReady);
    this.#sub.destroy();
    await this.#connected;
    this.#sub.off('error', this.#onSubError);
  }

  /** Closes the backend (`close()`), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --------------------------------------------------------------- internals

  #key(topic: string, suffix: string): string {
    return `${this.#prefix}{${topic}}:${suffix}`;
  }

  #report(error: unknown): void {
    if (this.#closed) return;
    try {
      this.#onError(error);
    } catch {
      // The user's handler failing must not break delivery.
    }
  }

  #closedError(): ClosedSendError {
    return new ClosedSendError('RedisBackend was closed');
  }

  async #eval(source: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.#client.sendCommand(['EVALSHA', sha, ...tail]);
    } catch (error) {
      if (!(isReply(error) && (error as Error).message.startsWith('NOSCRIPT'))) {
        throw error;
      }
      return await this.#client.sendCommand(['EVAL', source, ...tail]);
    }
  }

  async #read(
    topic: string,
    epoch: string,
    from: number,
    limit: number,
    delivered: Position | undefined,
  ): Promise<ReadResult> {
    if (this.#closed) throw this.#closedError();
    const reply = await this.#eval(
      READ_SCRIPT,
      READ_SHA,
      [this.#key(topic, 'meta'), this.#key(topic, 'stream')],
      [
        newEpoch(),
        epoch,
        String(from),
        String(limit),
        delivered?.epoch ?? '',
        String(delivered?.offset ?? 0),
      ],
    );
    if (!Array.isArray(reply) || reply.length < 3) {
      throw new TypeError(
        `Expected a Redis reply [epoch, head, oldest, …], got ${describeValue(reply)}`,
      );
    }
    const entries: [number, string][] = [];
    for (let i = 3; i + 1 < reply.length; i += 2) {
      entries.push([integer(reply[i]), text(reply[i + 1])]);
    }
    return {
      epoch: text(reply[0]),
      head: integer(reply[1]),
      oldest: integer(reply[2]),
      entries,
    };
  }

  /** One try at a consistent history; `null` if it changed under the batches. */
  async #history(topic: string, since: Position, limit: number): Promise<History<unknown> | null> {
    const batch = this.#host.batch;
    let asked = Math.min(batch, limit);
    const first = await this.#read(topic, since.epoch, since.offset + 1, asked, undefined);
    const { epoch, head, oldest } = first;
    const publications: Publication<unknown>[] = [];
    let read = first;
    for (;;) {
      for (const [offset, data] of read.entries) {
        if (offset > head || publications.length >= limit) break;
        const previous = publications.at(-1);
        if (previous !== undefined && offset !== previous.position.offset + 1) return null;
        publications.push({
          type: 'publication',
          value: this.#host.decode(data),
          position: { epoch, offset },
        });
      }
      const last = publications.at(-1)?.position.offset ?? 0;
      if (read.entries.length < asked || last >= head || publications.length >= limit) break;
      asked = Math.min(batch, limit - publications.length);
      read = await this.#read(topic, epoch, last + 1, asked, undefined);
      if (read.epoch !== epoch) return null;
    }
    return { publications, position: { epoch, offset: head }, oldest };
  }

  #open(topic: string): Feed {
    const feed = new Feed(this.#host, topic);
    this.#feeds.set(topic, feed);
    const decode = this.#host.decode;
    const handler = (message: string): void => {
      const space = message.indexOf(' ');
      const second = message.indexOf(' ', space + 1);
      if (space < 0 || second < 0) return;
      const epoch = message.slice(0, space);
      const offset = Number(message.slice(space + 1, second));
      if (feed.isStale(epoch, offset)) return;
      const data = message.slice(second + 1);
      let value: unknown;
      try {
        value = decode(data);
      } catch (error) {
        // Not ours to deliver as is: the refill reads it from the stream (and reports it).
        this.#report(error);
        feed.check();
        return;
      }
      feed.offer({ type: 'publication', value, position: { epoch, offset } }, data.length);
    };
    this.#handlers.set(topic, handler);
    // The start position is read at once (after it, nothing is missed); once the
    // subscription is on, a second read picks up what was published in between.
    feed.check();
    this.#sub.subscribe(this.#key(topic, 'pub'), handler).then(
      () => {
        feed.check();
      },
      (error: unknown) => {
        this.#report(error);
      },
    );
    if (this.#timer === undefined && this.#checkInterval !== Infinity) {
      this.#timer = setInterval(() => {
        for (const open of this.#feeds.values()) open.check();
      }, this.#checkInterval);
      this.#timer.unref();
    }
    return feed;
  }

  #drop(topic: string, feed: Feed): void {
    feed.close();
    if (this.#feeds.get(topic) !== feed) return;
    this.#feeds.delete(topic);
    const handler = this.#handlers.get(topic);
    this.#handlers.delete(topic);
    if (handler !== undefined && !this.#closed) {
      this.#sub.unsubscribe(this.#key(topic, 'pub'), handler).catch((error: unknown) => {
        this.#report(error);
      });
    }
    if (this.#feeds.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * Makes a {@link RedisBackend} on the user's node-redis client.
 *
 * @throws TypeError / RangeError for invalid options ("Expected …, got …").
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { Topic } from 'sluice';
 * import { redisBackend } from 'sluice/redis';
 *
 * const client = createClient({ url: process.env.REDIS_URL });
 * client.on('error', (error) => console.error(error));
 * await client.connect();
 * const backend = redisBackend({ client });
 * const room = new Topic<string>({ backend, name: 'room:1', retention: { count: 1000 } });
 * ```
 */
export function redisBackend(options: RedisBackendOptions): RedisBackend {
  return new RedisBackend(options);
}
