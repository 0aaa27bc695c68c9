/**
 * Topics across the wire: {@link serveTopics} lets the peer of a channel session subscribe
 * to this end's topics, and {@link remoteTopic} is the subscriber's side, which follows a
 * topic across connections (resubscribing `since` its last position after a reconnect).
 *
 * ## How it works
 * Both sides speak over network channels (docs/protocol.md section 9). The subscriber
 * sends a request `{ topic, since?, overflow?, capacity?, onDiscontinuity? }` on the
 * channel `'sluice.topics'` and opens `'sluice.topic:<name>'`, whose capacity is its
 * credit window. The serving side subscribes to the topic for that peer, with the
 * requested policy and capacity (bounded by {@link ServeTopicsOptions}), and forwards
 * each event on `'sluice.topic:<name>'`: when the peer reads slowly its credits run out,
 * the forwarder waits, and the subscription's buffer on the serving side fills, so the
 * policy is applied there, for that peer alone (a drop becomes a gap the peer receives).
 * The subscription's end travels as a last event (`{ type: 'end', … }`), so that a
 * `DiscontinuityError` or `SubscriberOverflowError` is re-created with its positions.
 *
 * @module
 */
import { Channel } from '../channel.js';
import type { ReceiveChannel } from '../channel-types.js';
import {
  ClosedSendError,
  ConnectionLostError,
  DiscontinuityError,
  SessionExpiredError,
  SubscriberOverflowError,
} from '../errors.js';
import { describeValue } from '../internal/describe-value.js';
import type { Position, TopicEvent } from '../topics/position.js';
import { validatePosition } from '../topics/position.js';
import type { OnDiscontinuity, TopicOverflow } from '../topics/subscription.js';
import type { Topic } from '../topics/topic.js';
import type { ChannelSession, NetworkChannel } from './channels.js';

/** The channel a subscriber's requests travel on. */
export const TOPICS_CHANNEL = 'sluice.topics';
/** The prefix of the channel a topic's events travel on. */
export const TOPIC_PREFIX = 'sluice.topic:';
/** The longest topic name a request may carry, in characters. */
const MAX_NAME = 256;
const OVERFLOWS: readonly TopicOverflow[] = ['suspend', 'drop-oldest', 'drop-latest', 'close'];

/** What a subscriber asks for (subscriber → server, on `'sluice.topics'`). */
interface TopicRequest {
  readonly topic: string;
  readonly since?: Position;
  readonly overflow?: TopicOverflow;
  readonly capacity?: number;
  readonly onDiscontinuity?: OnDiscontinuity;
}

/** How a served subscription ended, when it did not end normally. */
type EndError =
  | {
      readonly kind: 'discontinuity';
      readonly since: Position;
      readonly position: Position;
      readonly oldest: number;
    }
  | { readonly kind: 'overflow'; readonly position: Position; readonly capacity: number }
  | { readonly kind: 'refused'; readonly message: string };

/** What travels on `'sluice.topic:<name>'` (server → subscriber). */
type WireEvent<T> = TopicEvent<T> | { readonly type: 'end'; readonly error: EndError };

// ------------------------------------------------------------------------- serving

/** Where {@link serveTopics} finds the topic a peer asks for by name. */
export type TopicSource =
  ReadonlyMap<string, Topic<unknown>> | ((name: string) => Topic<unknown> | undefined);

/** Options of {@link serveTopics}: what a peer may ask for. */
export interface ServeTopicsOptions {
  /**
   * The largest buffer a peer's subscription may have on this end (in values): a larger
   * request is lowered to it. Together with the topic's values (which this end makes,
   * not the peer) it bounds the memory one peer's subscription holds: at most
   * `maxCapacity` publications (shared with every other subscriber, not copied) and the
   * one being sent; the bytes in flight are bounded by the peer's credit window and the
   * session's outgoing bound.
   * @default 256
   */
  readonly maxCapacity?: number | undefined;
  /**
   * The buffer of a subscription whose request names no capacity.
   * @default 64 (or `maxCapacity` when that is smaller)
   */
  readonly capacity?: number | undefined;
  /**
   * The policy of a subscription whose request names none.
   * @default 'drop-oldest'
   */
  readonly overflow?: TopicOverflow | undefined;
  /**
   * Whether a peer may ask for `'suspend'`, which makes every publisher of the topic wait
   * for that peer's reading (a remote party setting the pace of this end). A request for
   * it is refused when this is false. With a shared backend (Redis), publishers on other
   * nodes do not wait: the peer's subscription holds at most its capacity and catches up
   * from the topic's retained history, or ends with a `DiscontinuityError` past it.
   * @default false
   */
  readonly allowSuspend?: boolean | undefined;
  /**
   * The most topics one peer may ask for on one connection (each name once; refused
   * requests count). One more closes the connection with 4400.
   * @default 64
   */
  readonly maxSubscriptions?: number | undefined;
}

function checkCount(name: string, value: unknown, fallback: number, zero: boolean): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !(value === Infinity || (Number.isSafeInteger(value) && value >= (zero ? 0 : 1)))
  ) {
    const message = `Expected ${name} to be ${zero ? 'a non-negative' : 'a positive'} integer or Infinity, got ${describeValue(value)}`;
    throw typeof value === 'number' ? new RangeError(message) : new TypeError(message);
  }
  return value;
}

function checkOverflow(name: string, value: unknown): TopicOverflow | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !OVERFLOWS.includes(value as TopicOverflow)) {
    const message = `Expected ${name} to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got ${describeValue(value)}`;
    throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
  }
  return value as TopicOverflow;
}

/** Parses a request from the peer: throws a `TypeError`/`RangeError` naming what is wrong. */
function parseRequest(value: unknown): TopicRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected a topic request object, got ${describeValue(value)}`);
  }
  const topic: unknown = Reflect.get(value, 'topic');
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_NAME) {
    throw new TypeError(
      `Expected topic to be a name of 1 to ${MAX_NAME} characters, got ${describeValue(topic)}`,
    );
  }
  const since: unknown = Reflect.get(value, 'since');
  const onDiscontinuity: unknown = Reflect.get(value, 'onDiscontinuity');
  if (
    onDiscontinuity !== undefined &&
    onDiscontinuity !== 'error' &&
    onDiscontinuity !== 'oldest'
  ) {
    throw new RangeError(
      `Expected onDiscontinuity to be 'error' or 'oldest', got ${describeValue(onDiscontinuity)}`,
    );
  }
  const capacity = checkCount('capacity', Reflect.get(value, 'capacity'), 0, true);
  const overflow = checkOverflow('overflow', Reflect.get(value, 'overflow'));
  return {
    topic,
    ...(since === undefined ? {} : { since: validatePosition('since', since) }),
    ...(overflow === undefined ? {} : { overflow }),
    ...(Reflect.get(value, 'capacity') === undefined ? {} : { capacity }),
    ...(onDiscontinuity === undefined ? {} : { onDiscontinuity }),
  };
}

function endOf(error: unknown): EndError | undefined {
  if (error instanceof DiscontinuityError) {
    return {
      kind: 'discontinuity',
      since: error.since,
      position: error.position,
      oldest: error.oldest,
    };
  }
  if (error instanceof SubscriberOverflowError) {
    return { kind: 'overflow', position: error.position, capacity: error.capacity };
  }
  return undefined;
}

/**
 * Serves topics to the peer of `network`: the peer's {@link remoteTopic}s subscribe by
 * name, and each gets a subscription on this end with its own buffer and overflow policy
 * (applied here: a peer that reads slowly is dropped for, told of its gaps, or ended,
 * and never holds more than `maxCapacity` values here). Resolves once the connection
 * has ended (its subscriptions are cancelled then); never rejects.
 *
 * - A topic the source does not know, or a request for `'suspend'` without
 *   `allowSuspend`, is refused: the peer's `follow` rejects with an `Error` naming why.
 * - A request that is not one (wrong shape, a name asked for twice on one connection,
 *   more than `maxSubscriptions`) is a broken protocol: the connection closes with 4400
 *   and a reason "Expected …".
 * - A closed topic ends the peer's subscription as it ends a local one (after what it
 *   holds); `DiscontinuityError` and `SubscriberOverflowError` reach the peer re-created,
 *   with their positions.
 *
 * Call it once per connection, beside any other use of the same `network`.
 *
 * @throws TypeError / RangeError for invalid options ("Expected …, got …").
 * @example
 * ```ts
 * const prices = new Topic<number>({ retention: { count: 1000 } });
 * route({ handler: (session) => serveTopics(channels(session), new Map([['prices', prices]])) });
 * ```
 */
export function serveTopics(
  network: ChannelSession,
  topics: TopicSource,
  options?: ServeTopicsOptions,
): Promise<void> {
  if (typeof topics !== 'function' && !(topics instanceof Map)) {
    throw new TypeError(
      `Expected topics to be a Map of names to topics or a function, got ${describeValue(topics)}`,
    );
  }
  const maxCapacity = checkCount('maxCapacity', options?.maxCapacity, 256, true);
  const defaultCapacity = Math.min(
    checkCount('capacity', options?.capacity, 64, true),
    maxCapacity,
  );
  const defaultOverflow = checkOverflow('overflow', options?.overflow) ?? 'drop-oldest';
  const allowSuspend = options?.allowSuspend ?? false;
  if (typeof allowSuspend !== 'boolean') {
    throw new TypeError(
      `Expected allowSuspend to be a boolean, got ${describeValue(allowSuspend)}`,
    );
  }
  const maxSubscriptions = checkCount('maxSubscriptions', options?.maxSubscriptions, 64, true);
  const requests = network.channel<unknown, never>(TOPICS_CHANNEL, { capacity: 4 });
  return serveRequests(network, requests.incoming, topics, maxSubscriptions, {
    maxCapacity,
    defaultCapacity,
    defaultOverflow,
    allowSuspend,
  });
}

/** What {@link serveTopics} applies to each subscription request (checked). */
interface ServeSettings {
  readonly maxCapacity: number;
  readonly defaultCapacity: number;
  readonly defaultOverflow: TopicOverflow;
  readonly allowSuspend: boolean;
}

/**
 * The body of {@link serveTopics}: one async frame per connection and no closure, since
 * an idle connection keeps it. Serves requests until the channel ends (or one breaks the
 * protocol), then waits for every subscription and the connection's end.
 */
async function serveRequests(
  network: ChannelSession,
  requests: ReceiveChannel<unknown>,
  topics: TopicSource,
  maxSubscriptions: number,
  settings: ServeSettings,
): Promise<void> {
  // The first name and its forwarder are kept alone: a Set and an array would reserve
  // room for many at the first subscription of a connection that typically has one.
  let first: string | undefined;
  let names: Set<string> | undefined;
  let forwarders: Promise<void> | Promise<void>[] | undefined;
  try {
    for (;;) {
      const result = await requests.receiveCatching();
      if (!result.ok) break;
      let request: TopicRequest;
      try {
        request = parseRequest(result.value);
        const name = request.topic;
        if (names === undefined ? name === first : names.has(name)) {
          throw new RangeError(`Expected each topic once per connection, got '${name}' again`);
        }
        const count = names?.size ?? (first === undefined ? 0 : 1);
        if (count >= maxSubscriptions) {
          throw new RangeError(
            `Expected at most ${maxSubscriptions} topic subscriptions per connection, got one more`,
          );
        }
      } catch (error) {
        await network.close(4400, (error as Error).message.slice(0, 120));
        break;
      }
      if (first === undefined) first = request.topic;
      else (names ??= new Set([first])).add(request.topic);
      const forwarder = forward(network, topics, settings, request);
      if (forwarders === undefined) forwarders = forwarder;
      else if (Array.isArray(forwarders)) forwarders.push(forwarder);
      else forwarders = [forwarders, forwarder];
    }
  } catch {
    // `serve` fails only if the connection does; either way, wait for the forwarders.
  }
  if (Array.isArray(forwarders)) await Promise.all(forwarders);
  else await forwarders;
  await network.closed;
}

/** Refuses a subscription: the peer's `follow` rejects with `message`. */
async function refuse(
  out: NetworkChannel<never, WireEvent<unknown>>,
  message: string,
): Promise<void> {
  await out.outgoing.send({ type: 'end', error: { kind: 'refused', message } });
  out.outgoing.close();
}

/** One subscription of the peer: the topic's events to its channel, until either ends. */
async function forward(
  network: ChannelSession,
  topics: TopicSource,
  settings: ServeSettings,
  request: TopicRequest,
): Promise<void> {
  const out = network.channel<never, WireEvent<unknown>>(TOPIC_PREFIX + request.topic);
  const overflow = request.overflow ?? settings.defaultOverflow;
  const topic = typeof topics === 'function' ? topics(request.topic) : topics.get(request.topic);
  try {
    if (topic === undefined) {
      await refuse(out, `No topic named '${request.topic}' is served here`);
      return;
    }
    if (overflow === 'suspend' && !settings.allowSuspend) {
      await refuse(
        out,
        `Expected overflow 'drop-oldest', 'drop-latest' or 'close' ('suspend' is not allowed here), got 'suspend'`,
      );
      return;
    }
    const capacity = Math.max(
      Math.min(request.capacity ?? settings.defaultCapacity, settings.maxCapacity),
      overflow === 'suspend' ? 0 : 1,
    );
    const subscription = topic.subscribe({
      capacity,
      overflow,
      since: request.since,
      onDiscontinuity: request.onDiscontinuity,
    });
    // The peer cancelled, or the connection ended: stop receiving for it.
    out.outgoing.onClose(() => {
      subscription.cancel();
    });
    try {
      for await (const event of subscription) await out.outgoing.send(event);
      out.outgoing.close();
    } catch (error) {
      const end = endOf(error);
      if (end === undefined) throw error;
      await out.outgoing.send({ type: 'end', error: end });
      out.outgoing.close();
    } finally {
      subscription.cancel();
    }
  } catch {
    // The connection ended or the peer cancelled: its subscription has gone with it.
  }
}

// ----------------------------------------------------------------------- subscribing

/** Options of {@link remoteTopic}. */
export interface RemoteTopicOptions {
  /**
   * How many events this end holds for its reader, across connections; the same number is
   * the credit window of each connection's subscription (how many events may be on their
   * way). When both are full, the serving end's policy decides. In bytes, what the
   * serving peer can make this end hold is at most `2 × capacity` events, each within
   * the largest message the session accepts (its `incomingMaxBytes` / `maxMessageSize`
   * bounds), plus what the session itself buffers under those bounds.
   * @default 16
   */
  readonly capacity?: number | undefined;
  /**
   * The policy to ask the serving end for (it may refuse `'suspend'`).
   * @default the serving end's default ('drop-oldest' unless configured)
   */
  readonly overflow?: TopicOverflow | undefined;
  /**
   * The buffer to ask the serving end for (it may lower it).
   * @default the serving end's default (64)
   */
  readonly serverCapacity?: number | undefined;
  /** Start after this position (the first connection's `since`). */
  readonly since?: Position | undefined;
  /**
   * When a resubscription's `since` is no longer retained: `'error'` ends the topic with a
   * `DiscontinuityError`; `'oldest'` goes on from the oldest retained value, a gap first.
   * @default 'error'
   */
  readonly onDiscontinuity?: OnDiscontinuity | undefined;
}

function isEvent(value: unknown): value is WireEvent<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const type: unknown = Reflect.get(value, 'type');
  return type === 'publication' || type === 'gap' || type === 'end';
}

function errorOf(error: EndError): Error {
  switch (error.kind) {
    case 'discontinuity':
      return new DiscontinuityError(error.since, error.position, error.oldest);
    case 'overflow':
      return new SubscriberOverflowError(error.position, error.capacity);
    default:
      return new Error(error.message);
  }
}

/**
 * A topic served by a peer, followed across connections: `follow(network)` subscribes on
 * one connection (`since` the position of the last event this end received, after the
 * first), and its events, with their positions and gaps, come out of this one object
 * in order, whatever the connections did in between.
 *
 * Read it as a channel: `for await`, `receive`, `receiveCatching`, `tryReceive` (the
 * {@link RemoteTopic.events} channel). It ends when the serving topic is closed, with the
 * error that ended a subscription for good (`DiscontinuityError`,
 * `SubscriberOverflowError`, a refusal), or on `close()`.
 *
 * Differs from a local `Subscription`: the overflow policy is applied by the serving end
 * (this end's buffer waits, which stops the credits); an event in flight when a
 * connection drops is received again after the reconnect, as long as the topic still
 * retains it.
 *
 * @typeParam T - the type of the published values (as JSON gives them back).
 */
export class RemoteTopic<T> implements AsyncIterable<TopicEvent<T>, undefined, undefined> {
  readonly #name: string;
  readonly #capacity: number;
  readonly #request: Omit<TopicRequest, 'topic' | 'since'>;
  readonly #events: Channel<TopicEvent<T>>;
  #position: Position | undefined;
  #following = false;

  /** @internal use {@link remoteTopic}. */
  constructor(name: string, options?: RemoteTopicOptions) {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) {
      throw new TypeError(
        `Expected name to be a topic name of 1 to ${MAX_NAME} characters, got ${describeValue(name)}`,
      );
    }
    this.#name = name;
    this.#capacity = checkCount('capacity', options?.capacity, 16, false);
    if (this.#capacity === Infinity) {
      throw new RangeError('Expected capacity to be a positive integer, got Infinity');
    }
    const overflow = checkOverflow('overflow', options?.overflow);
    const serverCapacity =
      options?.serverCapacity === undefined
        ? undefined
        : checkCount('serverCapacity', options.serverCapacity, 0, true);
    const onDiscontinuity: unknown = options?.onDiscontinuity;
    if (
      onDiscontinuity !== undefined &&
      onDiscontinuity !== 'error' &&
      onDiscontinuity !== 'oldest'
    ) {
      throw new RangeError(
        `Expected onDiscontinuity to be 'error' or 'oldest', got ${describeValue(onDiscontinuity)}`,
      );
    }
    this.#request = {
      ...(overflow === undefined ? {} : { overflow }),
      ...(serverCapacity === undefined ? {} : { capacity: serverCapacity }),
      ...(onDiscontinuity === undefined ? {} : { onDiscontinuity }),
    };
    this.#position =
      options?.since === undefined ? undefined : validatePosition('since', options.since);
    this.#events = new Channel<TopicEvent<T>>(this.#capacity);
  }

  /** The topic's name on the serving end. */
  get name(): string {
    return this.#name;
  }

  /**
   * The position of the last event this end received from the network (a publication's
   * position, or a gap's `to`): the next `follow` resubscribes `since` it.
   */
  get position(): Position | undefined {
    return this.#position;
  }

  /** The events, in order, across connections: read it as any channel. */
  get events(): ReceiveChannel<TopicEvent<T>> {
    return this.#events;
  }

  /**
   * Subscribes on `network` and forwards the events until the connection ends.
   *
   * - Resolves when the connection is lost or closed, or its resumable session expired
   *   (`SessionExpiredError`: follow again on the next session's channel session), or
   *   when the topic ended normally (then `events` ends after what it holds).
   * - Rejects with `DiscontinuityError` (the `since` is no longer retained and
   *   `onDiscontinuity` is `'error'`), `SubscriberOverflowError` (`'close'` policy), or an
   *   `Error` for a refusal; `events` ends with the same error.
   * - Aborting `signal` stops following (the subscription on the serving end is
   *   cancelled) and rejects with the reason; `events` stays open.
   * - One `follow` at a time: a second while one runs throws a `RangeError`, as does a
   *   topic already followed on this `network` (one subscription per name per connection).
   *
   * @throws RangeError as said; TypeError if `network` is not a channel session.
   */
  async follow(
    network: ChannelSession,
    options?: { readonly signal?: AbortSignal | undefined },
  ): Promise<void> {
    if (this.#following) {
      throw new RangeError(`Expected one follow at a time of topic '${this.#name}', got a second`);
    }
    if (this.#events.isClosedForSend) return;
    const signal = options?.signal;
    signal?.throwIfAborted();
    const channel: NetworkChannel<unknown, never> = network.channel(TOPIC_PREFIX + this.#name, {
      capacity: this.#capacity,
    });
    this.#following = true;
    try {
      const request: TopicRequest = {
        topic: this.#name,
        ...this.#request,
        ...(this.#position === undefined ? {} : { since: this.#position }),
      };
      await requestsOf(network).outgoing.send(request);
      for (;;) {
        const result = await channel.incoming.receiveCatching(
          signal === undefined ? {} : { signal },
        );
        if (!result.ok) {
          if (!('cause' in result)) {
            this.#events.close(); // the topic was closed
            return;
          }
          // The connection ended (or a resumable session expired): follow again on the
          // next one, `since` the last position.
          if (
            result.cause instanceof ConnectionLostError ||
            result.cause instanceof SessionExpiredError
          ) {
            return;
          }
          throw result.cause;
        }
        const event = result.value;
        if (!isEvent(event)) {
          throw new TypeError(`Expected a topic event, got ${describeValue(event)}`);
        }
        if (event.type === 'end') {
          const error = errorOf(event.error);
          this.#events.close(error);
          throw error;
        }
        await this.#events.send(event as TopicEvent<T>, signal === undefined ? {} : { signal });
        this.#position = event.type === 'gap' ? event.to : event.position;
      }
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      // `close()` was called while an event was on its way in: stop following, quietly.
      if (error instanceof ClosedSendError) return;
      throw error;
    } finally {
      this.#following = false;
      channel.incoming.cancel();
    }
  }

  /** Ends `events` after what it holds (normally, or with `cause`); `follow` then stops. */
  close(cause?: unknown): boolean {
    return cause === undefined ? this.#events.close() : this.#events.close(cause);
  }

  /**
   * `for await (const event of remote)`: the events, across connections, until it ends
   * (normally after the topic closed, else throwing the error that ended it). Leaving the
   * loop early does not stop following.
   */
  [Symbol.asyncIterator](): AsyncIterator<TopicEvent<T>, undefined, undefined> {
    return this.#events[Symbol.asyncIterator]();
  }
}

const requestChannels = new WeakMap<ChannelSession, NetworkChannel<never, TopicRequest>>();

/** The one request channel of `network` (opened by the first remote topic on it). */
function requestsOf(network: ChannelSession): NetworkChannel<never, TopicRequest> {
  let channel = requestChannels.get(network);
  if (channel === undefined) {
    channel = network.channel<never, TopicRequest>(TOPICS_CHANNEL);
    requestChannels.set(network, channel);
  }
  return channel;
}

/**
 * Makes a {@link RemoteTopic}: a follower of the topic `name` served by a peer's
 * {@link serveTopics}. Call its `follow(network)` once per connection, e.g. in a
 * `reconnecting` handler; read its events as a channel.
 *
 * @throws TypeError / RangeError for an invalid name or options ("Expected …, got …").
 * @example
 * ```ts
 * const prices = remoteTopic<number>('prices', { overflow: 'drop-oldest' });
 * reconnecting(url, { codec: text() }, (session) => prices.follow(channels(session)));
 * for await (const event of prices) console.log(event);
 * ```
 */
export function remoteTopic<T>(name: string, options?: RemoteTopicOptions): RemoteTopic<T> {
  return new RemoteTopic<T>(name, options);
}
