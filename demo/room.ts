/**
 * The chat room on the server: a sluice `Topic` of what happens in it (joins, leaves,
 * messages) and who is here. Each member subscribes with its own bounded buffer and
 * `overflow: 'close'`: a client that stops reading cannot hold up the others, and once
 * its buffer is full its subscription ends with a `SubscriberOverflowError`, on which its
 * connection is closed (1008) instead.
 *
 * The topic's history lives in its backend: in memory by default (one process), or a
 * shared one such as `sluice/redis`, with which every demo process using the same Redis is
 * one room. A member who comes back `since` a position (after a lost connection, on this
 * node or another) first gets every event it missed, from the topic's history.
 *
 * @module
 */
import { Topic } from 'sluice';
import type { Position, Subscription, TopicBackend } from 'sluice';
import type { RoomEvent, ServerMsg } from './protocol.js';

export type { RoomEvent } from './protocol.js';

/** How many messages may wait for one client before it counts as too slow. */
export const MAILBOX_CAPACITY = 256;

/** How many of the latest events the room keeps for members who come back `since`. */
export const HISTORY = 1000;

/** The topic's name in its backend (all demo processes on one Redis share it). */
export const ROOM_TOPIC = 'sluice-demo:room';

/** What the room's topic carries: an event, and which process (node) published it. */
export interface RoomEntry {
  /** The publishing room's random id: a room counts the joins and leaves of the others. */
  readonly node: string;
  readonly event: RoomEvent;
}

/** A member who joined: the name it got, the welcome to send first, and its subscription. */
export interface Membership {
  readonly name: string;
  readonly welcome: Extract<ServerMsg, { readonly type: 'welcome' }>;
  /**
   * Every event after `welcome.at`, in order. Events about the member's own name
   * (`joined`, `left`) are in it too: the server does not forward those.
   */
  readonly events: Subscription<RoomEntry>;
  /**
   * Whether the events the member asked for (`since`) could not all be had (history
   * gone): its events start at the oldest one kept instead, after a gap.
   */
  readonly missed: boolean;
}

/** Options of {@link createRoom}. */
export interface RoomOptions {
  /**
   * Receives one line per join and leave.
   * @default ignores them
   */
  readonly log?: ((line: string) => void) | undefined;
  /**
   * Where the room's history lives. A shared backend (`redisBackend` from `sluice/redis`)
   * makes the rooms of every process using it one room.
   * @default a new in-memory backend: this room alone
   */
  readonly backend?: TopicBackend | undefined;
}

/**
 * The members of one chat and the topic between them; one per server. With the memory
 * backend `say` and `leave` publish synchronously and no subscriber suspends, so every
 * member sees the same events in the same order; with a shared backend every member, on
 * every node, sees them in the order of their positions.
 *
 * Who is here, across nodes: each room counts its own members and the `joined`/`left`
 * events of the others from the moment it starts. A node that dies without a word
 * (SIGKILL) never publishes its members' `left`: they stay listed until they come back
 * somewhere and leave (a demo has no presence heartbeat).
 *
 * @example
 * ```ts
 * const room = createRoom();
 * const { name, welcome, events } = await room.join('ada');
 * room.say(name, 'hello'); // events: { type: 'message', from: 'ada', … } at offset 2
 * room.leave(name); // the others get { type: 'left', … }
 * await room.close();
 * ```
 */
export interface Room {
  /** The members' names, in the order they joined (across nodes: as far as this one knows). */
  readonly names: readonly string[];
  /** The topic every member subscribes to. */
  readonly topic: Topic<RoomEntry>;
  /**
   * Adds a member: it gets `wanted` if that is free, else `wanted2`, `wanted3`, …; the
   * others get `joined`. Its subscription receives every later event.
   *
   * With `since` (a member coming back, here or from another node) it keeps `wanted` as
   * it is, gets every event after `since` first, and the others hear of it only if this
   * node did not count it as here already. If those events are no longer kept (another
   * epoch: the history was lost; or older than {@link HISTORY} events), `missed` is true
   * and its events start after the room's current position.
   */
  join(wanted: string, since?: Position): Promise<Membership>;
  /** Publishes a message from `from` to every member, the sender included. */
  say(from: string, text: string): void;
  /** Removes `name` (if still here) and tells the others. */
  leave(name: string): void;
  /** Stops the room's topic: every member's subscription ends. */
  close(): void;
}

/** A random id for this room among the nodes sharing its topic. */
function nodeId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Makes a room. */
export function createRoom(options: RoomOptions = {}): Room {
  const log = options.log ?? ((): void => undefined);
  const node = nodeId();
  const topic = new Topic<RoomEntry>({
    name: ROOM_TOPIC,
    backend: options.backend,
    retention: { count: HISTORY },
  });
  /** Name → how many connections, on every node as far as this one knows, use it. */
  const members = new Map<string, number>();
  const add = (name: string): void => {
    members.set(name, (members.get(name) ?? 0) + 1);
  };
  const remove = (name: string): boolean => {
    const count = members.get(name);
    if (count === undefined) return false;
    if (count > 1) members.set(name, count - 1);
    else members.delete(name);
    return true;
  };
  const publish = async (event: RoomEvent): Promise<Position | undefined> => {
    // Never waits (no 'suspend' subscriber); fails only once the room is closed, or
    // when a shared backend cannot be reached (the event is lost then, and logged).
    try {
      return await topic.publish({ node, event });
    } catch (error) {
      if (!topic.isClosed) log(`could not publish ${event.type}: ${String(error)}`);
      return undefined;
    }
  };

  // With a shared backend, the other nodes' joins and leaves: a bounded buffer that drops
  // the oldest (the count is then off until those members leave), read as it fills.
  let others: Subscription<RoomEntry> | undefined;
  if (options.backend !== undefined) {
    const tracker = topic.subscribe({ capacity: 1024, overflow: 'drop-oldest' });
    others = tracker;
    void (async () => {
      for await (const entry of tracker) {
        if (entry.type !== 'publication' || entry.value.node === node) continue;
        const { event } = entry.value;
        if (event.type === 'joined') add(event.name);
        else if (event.type === 'left') remove(event.name);
      }
    })().catch(() => undefined); // ends when the room closes
  }

  return {
    get names() {
      return [...members.keys()];
    },
    topic,
    async join(wanted, since) {
      let name = wanted;
      let start = since;
      let missed = false;
      if (since !== undefined) {
        const now = await topic.position();
        if (since.epoch !== now.epoch || since.offset > now.offset) {
          missed = true;
          start = now;
        }
      }
      const back = since !== undefined && members.has(name);
      if (since === undefined) {
        for (let n = 2; members.has(name); n++) name = `${wanted}${n}`;
      }
      if (!back) add(name);
      log(`${name} ${back ? 'is back' : 'joined'} (${members.size} here)`);
      const here = [...members.keys()];
      if (!back) {
        const at = await publish({ type: 'joined', name });
        start ??= at;
      }
      start ??= await topic.position();
      const events = topic.subscribe({
        capacity: MAILBOX_CAPACITY,
        overflow: 'close',
        since: start,
        onDiscontinuity: 'oldest',
      });
      return {
        name,
        welcome: { type: 'welcome', name, members: here, at: start },
        events,
        missed,
      };
    },
    say(from, text) {
      void publish({ type: 'message', from, text });
    },
    leave(name) {
      if (!remove(name)) return;
      log(`${name} left (${members.size} here)`);
      void publish({ type: 'left', name });
    },
    close() {
      topic.close();
      others?.cancel();
    },
  };
}
