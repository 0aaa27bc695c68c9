/**
 * Shared state synced both ways (fritz2's `syncWith`): the serving end holds the
 * authoritative copy in a {@link SharedState} (a `StateTopic` changed only through one
 * reducer, in server order); each client holds a {@link SyncedState}, which shows its own
 * changes at once and converges on the server's order.
 *
 * ## How it works
 * One channel per state, `'sluice.state:<name>'`, opened by both ends. Client → server:
 * `{ id, change }`. Server → client: the state as the topic publishes it
 * (`{ type: 'state', value, position }`: the current one first, then later ones,
 * conflated: a slow client skips to the latest, which holds every change before it), and
 * for each of this client's changes `{ type: 'ack', id, offset }` (the offset of the
 * state that first includes it) or `{ type: 'nack', id, message }` (the reducer threw).
 * The client's value is the last state received with its changes not yet in it applied
 * on top, in the order it made them: a change is in a state once it was acked at an
 * offset at most that state's.
 *
 * @module
 */
import { Channel } from '../channel.js';
import type { ReceiveChannel } from '../channel-types.js';
import { ConnectionLostError } from '../errors.js';
import { describeValue } from '../internal/describe-value.js';
import type { Position } from '../topics/position.js';
import { StateTopic } from '../topics/state-topic.js';
import type { Retention } from '../topics/backend.js';
import type { ChannelSession, NetworkChannel } from './channels.js';

/** The prefix of the channel a state travels on. */
export const STATE_PREFIX = 'sluice.state:';

/** The reducer of a shared state: the next state after `change`; throw to refuse it. */
export type Reducer<S, C> = (state: S, change: C, origin: string | undefined) => S;

type ToServer<C> = { readonly id: number; readonly change: C };
type ToClient<S> =
  | { readonly type: 'state'; readonly value: S; readonly position: Position }
  | { readonly type: 'ack'; readonly id: number; readonly offset: number }
  | { readonly type: 'nack'; readonly id: number; readonly message: string };

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new TypeError(
      `Expected name to be a state name of 1 to 256 characters, got ${describeValue(name)}`,
    );
  }
  return name;
}

function checkReducer(apply: unknown): void {
  if (typeof apply !== 'function') {
    throw new TypeError(`Expected apply to be a function, got ${describeValue(apply)}`);
  }
}

/** Options of {@link SharedState}. */
export interface SharedStateOptions<S, C> {
  /** The state's name: a client's `syncState(name, …)` finds it by it. */
  readonly name: string;
  /** The reducer every change goes through, one at a time, in server order. */
  readonly apply: Reducer<S, C>;
  /** The history kept by its topic. @default { count: 100 } */
  readonly retention?: Retention | undefined;
}

/**
 * The authoritative copy of a shared state: changed only by `apply`, one change at a
 * time, in the order this end receives them (server order), and published on its
 * {@link SharedState.topic} after each change. `serve(network)` lets one connection's
 * client follow it and send changes.
 *
 * - **Conflicts:** resolved by server order: every client ends with the state of the
 *   changes applied in the order the server took them (last writer wins, or whatever
 *   the reducer decides).
 * - **Refused change:** a reducer that throws leaves the state as it was; the client's
 *   `update` rejects with an `Error` carrying the message (not the stack).
 * - **Bounds:** a client's changes wait in a buffer of 16 on this end (its credits); the
 *   state it is sent is conflated (the latest only), so a slow client holds one state here.
 *
 * @typeParam S - the state (JSON). @typeParam C - a change (JSON).
 */
export class SharedState<S, C> {
  readonly #topic: StateTopic<S>;
  readonly #name: string;
  readonly #apply: Reducer<S, C>;
  #queue: Promise<unknown> = Promise.resolve();

  /** @throws TypeError / RangeError for invalid options ("Expected …, got …"). */
  constructor(initial: S, options: SharedStateOptions<S, C>) {
    this.#name = checkName(options.name);
    checkReducer(options.apply);
    this.#apply = options.apply;
    this.#topic = new StateTopic<S>(initial, { retention: options.retention ?? { count: 100 } });
  }

  /** The state's name. */
  get name(): string {
    return this.#name;
  }

  /** The current authoritative state. */
  get value(): S {
    return this.#topic.value;
  }

  /** The topic the states are published on (subscribe to watch it on this end). */
  get topic(): StateTopic<S> {
    return this.#topic;
  }

  /**
   * Applies `change` after every change already taken, and resolves with the position of
   * the resulting state. Rejects with the reducer's error (the state is unchanged), or as
   * the topic's `publish` when the state was closed.
   */
  update(change: C, origin?: string): Promise<Position> {
    const next = this.#queue.then(() =>
      this.#topic.publish(this.#apply(this.#topic.value, change, origin)),
    );
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Serves this state to the client of `network` until the connection ends (resolves
   * then; never rejects): the current state first, then each later one (conflated), and
   * the answers to its changes, which are applied with `origin` as the reducer's third
   * argument (who the connection is, for the reducer to decide).
   */
  async serve(network: ChannelSession, options?: { readonly origin?: string }): Promise<void> {
    const origin = options?.origin;
    const channel: NetworkChannel<ToServer<C>, ToClient<S>> = network.channel(
      STATE_PREFIX + this.#name,
      { capacity: 16 },
    );
    const subscription = this.#topic.subscribe({ capacity: 1, overflow: 'drop-oldest' });
    // One writer, so that states and answers keep their order on the wire. While the
    // client does not read, `out` fills (16), then the subscription conflates the states
    // and this end stops taking changes (so the client's credits stop too).
    const out = new Channel<ToClient<S>>(16);
    // The client cancelled, or the connection ended: everything here stops.
    channel.outgoing.onClose(() => {
      subscription.cancel();
      out.cancel();
      channel.incoming.cancel();
    });
    const write = (async () => {
      try {
        for await (const message of out) await channel.outgoing.send(message);
      } finally {
        out.cancel();
        subscription.cancel();
      }
    })();
    const states = (async () => {
      for await (const event of subscription) {
        if (event.type === 'publication') {
          await out.send({ type: 'state', value: event.value, position: event.position });
        }
      }
    })();
    const changes = (async () => {
      for await (const message of channel.incoming) {
        const id: unknown = (message as Partial<ToServer<C>> | null)?.id;
        if (typeof id !== 'number' || !Object.hasOwn(message, 'change')) {
          const reason = `Expected a change { id: number, change }, got ${describeValue(message)}`;
          await network.close(4400, reason.slice(0, 120));
          return;
        }
        let answer: ToClient<S>;
        try {
          const { offset } = await this.update(message.change, origin);
          answer = { type: 'ack', id, offset };
        } catch (error) {
          const text = error instanceof Error ? error.message : String(error);
          answer = { type: 'nack', id, message: text };
        }
        await out.send(answer);
      }
    })();
    await Promise.allSettled([states, changes, write]);
    await network.closed;
  }
}

// ------------------------------------------------------------------------ the client

/** Options of {@link syncState}. */
export interface SyncStateOptions<S, C> {
  /** The value shown until the server's state arrives. */
  readonly initial: S;
  /** The same reducer as the server's (without an origin): to show own changes at once. */
  readonly apply: (state: S, change: C) => S;
}

interface Pending<C> {
  readonly id: number;
  readonly change: C;
  /** The offset of the first state that includes it, once acked. */
  offset: number | undefined;
  sent: boolean;
  readonly resolve: (position: Position) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A client's copy of a {@link SharedState}: made by {@link syncState}, followed on each
 * connection with `follow(network)`.
 *
 * - `value` is the server's last state with this client's unconfirmed changes applied on
 *   top, in the order they were made: a change shows at once, and once the server has
 *   ordered it the value is the server's.
 * - A change made while no connection is followed waits here (shown already) and is sent
 *   on the next `follow`. One sent on a connection that is lost before the server
 *   answered is withdrawn (its `update` rejects with a `ConnectionLostError`): it may or
 *   may not have been applied, and the next state received says which (at most once).
 *
 * Differs from fritz2's `syncWith`: the server's order decides, not the last local write,
 * so that every copy converges on the same state.
 */
export class SyncedState<S, C> {
  readonly #name: string;
  readonly #apply: (state: S, change: C) => S;
  #confirmed: S;
  #position: Position | undefined = undefined;
  readonly #pending: Pending<C>[] = [];
  #lastId = 0;
  readonly #watchers = new Set<Channel<S>>();
  #send: ((message: ToServer<C>) => void) | undefined = undefined;
  #closed = false;

  /** @internal use {@link syncState}. */
  constructor(name: string, options: SyncStateOptions<S, C>) {
    this.#name = checkName(name);
    checkReducer(options.apply);
    this.#apply = options.apply;
    this.#confirmed = options.initial;
  }

  /** The server's last state with this client's unconfirmed changes on top. */
  get value(): S {
    let value = this.#confirmed;
    for (const mine of this.#pending) value = this.#apply(value, mine.change);
    return value;
  }

  /** The position of the server's last state received (`undefined` before the first). */
  get position(): Position | undefined {
    return this.#position;
  }

  /** How many of this client's changes the server's states do not include yet. */
  get pending(): number {
    return this.#pending.length;
  }

  /**
   * Applies `change` to `value` at once and sends it to the server (now, or on the next
   * `follow`); resolves with the position of the first server state that includes it.
   * Rejects (and the change is withdrawn from `value`) when the server's reducer refused
   * it (an `Error` with its message), when the connection was lost before the answer
   * (`ConnectionLostError`), or on `close()` (`ClosedSendError`-like `Error`).
   */
  update(change: C): Promise<Position> {
    if (this.#closed) {
      return Promise.reject(new Error(`Synced state '${this.#name}' was closed`));
    }
    return new Promise<Position>((resolve, reject) => {
      const mine: Pending<C> = {
        id: ++this.#lastId,
        change,
        offset: undefined,
        sent: false,
        resolve,
        reject,
      };
      this.#pending.push(mine);
      if (this.#send !== undefined) {
        mine.sent = true;
        this.#send({ id: mine.id, change });
      }
      this.#notify();
    });
  }

  /**
   * A conflated channel of values: the current one first, then the latest after each
   * change (a slow reader skips intermediate ones, never the last). Closed on `close()`;
   * cancel it to stop watching.
   */
  watch(): ReceiveChannel<S> {
    const watcher = new Channel<S>(1, { overflow: 'drop-oldest' });
    watcher.trySend(this.value);
    if (this.#closed) watcher.close();
    else {
      this.#watchers.add(watcher);
      watcher.onClose(() => this.#watchers.delete(watcher));
    }
    return watcher;
  }

  /** Resolves with the first value (from now on) that satisfies `predicate`. */
  async until(predicate: (value: S, state: this) => boolean): Promise<S> {
    const watcher = this.watch();
    try {
      for await (const value of watcher) if (predicate(value, this)) return value;
      throw new Error(`Synced state '${this.#name}' was closed first`);
    } finally {
      watcher.cancel();
    }
  }

  /**
   * Follows the server's state on `network` and sends this client's changes, until the
   * connection ends (resolves; changes left unanswered reject with the
   * `ConnectionLostError`) or `signal` aborts (rejects with its reason). One at a time.
   *
   * @throws RangeError for a second `follow` while one runs.
   */
  async follow(
    network: ChannelSession,
    options?: { readonly signal?: AbortSignal | undefined },
  ): Promise<void> {
    if (this.#send !== undefined) {
      throw new RangeError(`Expected one follow at a time of state '${this.#name}', got a second`);
    }
    if (this.#closed) return;
    const signal = options?.signal;
    signal?.throwIfAborted();
    const channel: NetworkChannel<ToClient<S>, ToServer<C>> = network.channel(
      STATE_PREFIX + this.#name,
      { capacity: 16 },
    );
    let lost: unknown = undefined;
    this.#send = (message) => {
      channel.outgoing.send(message).catch((error: unknown) => {
        lost ??= error;
      });
    };
    for (const mine of this.#pending) {
      mine.sent = true;
      this.#send({ id: mine.id, change: mine.change });
    }
    try {
      // Aborting `signal` ends the loop with its reason (no value is lost in between).
      for await (const message of channel.incoming.iterate(
        signal === undefined ? {} : { signal },
      )) {
        this.#receive(message);
      }
    } catch (error) {
      lost ??= error;
      if (signal?.aborted === true) throw signal.reason;
      if (!(error instanceof ConnectionLostError)) throw error;
    } finally {
      this.#send = undefined;
      channel.incoming.cancel();
      // Sent and unanswered: applied or not, the next state will tell; withdraw them.
      const error = lost ?? new Error(`State '${this.#name}' ended before the server answered`);
      for (const mine of this.#pending.filter((p) => p.sent && p.offset === undefined)) {
        this.#settle(mine, error);
      }
      for (const mine of this.#pending) mine.sent = false;
      this.#notify();
    }
  }

  /** Stops: changes not yet in a server state reject, watchers end, `follow` returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Error(`Synced state '${this.#name}' was closed`);
    for (const mine of [...this.#pending]) this.#settle(mine, error);
    for (const watcher of this.#watchers) watcher.close();
  }

  #receive(message: ToClient<S>): void {
    switch (message.type) {
      case 'state': {
        if (this.#position !== undefined && this.#position.epoch !== message.position.epoch) {
          // A new history: acks of the old one mean nothing there.
          for (const mine of this.#pending) mine.offset = undefined;
        }
        this.#confirmed = message.value;
        this.#position = message.position;
        for (const mine of [...this.#pending]) {
          if (mine.offset !== undefined && mine.offset <= message.position.offset) {
            this.#settle(mine, undefined);
          }
        }
        break;
      }
      case 'ack': {
        const mine = this.#pending.find((p) => p.id === message.id);
        if (mine === undefined) break;
        mine.offset = message.offset;
        if (this.#position !== undefined && message.offset <= this.#position.offset) {
          this.#settle(mine, undefined);
        }
        break;
      }
      case 'nack': {
        const mine = this.#pending.find((p) => p.id === message.id);
        if (mine !== undefined) this.#settle(mine, new Error(message.message));
        break;
      }
    }
    this.#notify();
  }

  /** Takes `mine` out of the pending changes: confirmed (no error) or withdrawn. */
  #settle(mine: Pending<C>, error: unknown): void {
    this.#pending.splice(this.#pending.indexOf(mine), 1);
    if (error === undefined) {
      mine.resolve({ epoch: (this.#position as Position).epoch, offset: mine.offset as number });
    } else mine.reject(error);
  }

  #notify(): void {
    if (this.#watchers.size === 0) return;
    const value = this.value;
    for (const watcher of this.#watchers) watcher.trySend(value);
  }
}

/**
 * Makes a client's copy of the server's {@link SharedState} named `name` (fritz2's
 * `syncWith`): follow it on each connection, update it locally, watch it.
 *
 * @throws TypeError for an invalid name or reducer ("Expected …, got …").
 * @example
 * ```ts
 * const list = syncState<Header, Patch>('list', { initial: empty, apply: applyPatch });
 * reconnecting(url, { codec: text() }, (session) => list.follow(channels(session)));
 * await list.update({ field: 'title', value: 'Groceries' }); // shown at once, resolves once ordered
 * ```
 */
export function syncState<S, C>(name: string, options: SyncStateOptions<S, C>): SyncedState<S, C> {
  return new SyncedState<S, C>(name, options);
}
