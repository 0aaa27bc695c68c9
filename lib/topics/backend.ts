/**
 * The interface between a {@link Topic} and where its history lives (Centrifugo's
 * `Broker` is the model): publish with a position, listen to publications, history since
 * a position, the current position. The in-memory backend is the default; a shared one
 * (Redis: a Lua script that assigns the next offset within an epoch, `XADD` with the
 * retention, then `PUBLISH`; history by `XRANGE`) implements the same interface, and
 * nothing above it knows which one it has.
 *
 * @module
 */
import type { DiscontinuityError } from '../errors.js';
import type { Position, Publication } from './position.js';

/** How much history a topic keeps, passed with every publish (as Centrifugo does). */
export interface Retention {
  /**
   * How many of the latest publications are kept for `since`. 0 keeps none: only a
   * subscriber's own buffer holds values then.
   * @default 100
   */
  readonly count?: number | undefined;
  /**
   * Milliseconds a publication is kept at most (besides `count`); `Infinity` keeps it
   * as long as `count` allows.
   * @default Infinity
   */
  readonly maxAge?: number | undefined;
}

/** What {@link TopicBackend.history} returns. */
export interface History<T> {
  /**
   * The retained publications after the `since` position, oldest first, contiguous; all
   * of those retained when `since` is of another epoch or ahead of the topic.
   */
  readonly publications: readonly Publication<T>[];
  /** The topic's position now: the last publication's (offset 0 when there is none). */
  readonly position: Position;
  /**
   * The offset of the oldest publication retained, in `position.epoch`; when none is
   * retained, `position.offset + 1` (the next one).
   */
  readonly oldest: number;
}

/**
 * Called by a backend with every publication of a topic, once each, in offset order,
 * including those made through other `Topic` objects or processes sharing the backend.
 */
export type PublicationListener = (publication: Publication<unknown>) => void;

/**
 * Called by a shared backend when it cannot give a listener every publication after the
 * last one it gave: they are past retention, or the topic's epoch changed (its history
 * was lost). `error.since` is the last position the listener got, `error.position` the
 * topic's position then, `error.oldest` the oldest offset still retained there. The
 * listener then goes on with publications after `error.position`. The memory backend
 * never calls it (nothing between publish and listener can be lost).
 */
export type DiscontinuityListener = (error: DiscontinuityError) => void;

/**
 * Where topics keep their history. One backend serves any number of topics, by name.
 * Values are `unknown` to the backend: a shared one serialises them.
 *
 * Contract, which the shared suite checks on every backend:
 * - `publish` assigns the next offset of the topic's current epoch (contiguous: 1, 2, …)
 *   atomically, keeps the publication as `retention` says, and calls every listener of
 *   the topic with it. The memory backend calls them synchronously, before `publish`
 *   returns; a shared one may call them later, but always in offset order.
 * - `listen` registers a listener at once: every publication made after `listen`
 *   returns reaches it.
 * - `history(topic, since)` gives the retained publications after `since` (all of them
 *   when `since` is of another epoch), the current position and the oldest retained
 *   offset (all retained when `since` is ahead of the topic too), at most `limit` of
 *   them when given; the caller decides what a discontinuity means.
 * - A topic nothing was published to has a position of offset 0 in a fresh epoch.
 */
export interface TopicBackend {
  /**
   * Appends `value` to `topic`, resolving with its position once it is published and
   * every local listener has been called.
   */
  publish(topic: string, value: unknown, retention: Retention): Promise<Position>;
  /**
   * Calls `listener` with every later publication of `topic`, and `onDiscontinuity`
   * (when given) if some can no longer be delivered; returns how to stop.
   */
  listen(
    topic: string,
    listener: PublicationListener,
    onDiscontinuity?: DiscontinuityListener,
  ): () => void;
  /**
   * The retained publications of `topic` after `since`; see {@link History}. With
   * `limit`, at most that many of them, the oldest first (a `'suspend'` subscriber that
   * catches up reads only what fits in its buffer); `position` and `oldest` are as
   * without it. A backend may return more than `limit`: the caller takes what it needs.
   */
  history(topic: string, since: Position, limit?: number): Promise<History<unknown>>;
  /** The position of `topic`'s last publication (offset 0 in its epoch if none). */
  position(topic: string): Promise<Position>;
}
