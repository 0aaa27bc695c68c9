/**
 * The chat room on the server: a sluice `Topic` of what happens in it (joins, leaves,
 * messages) and who is here. Each member subscribes with its own bounded buffer and
 * `overflow: 'close'`: a client that stops reading cannot hold up the others, and once
 * its buffer is full its subscription ends with a `SubscriberOverflowError`, on which its
 * connection is closed (1008) instead.
 *
 * @module
 */
import { Topic } from 'sluice';
import type { Subscription } from 'sluice';
import type { ServerMsg } from './protocol.js';

/** How many messages may wait for one client before it counts as too slow. */
export const MAILBOX_CAPACITY = 256;

/** What the room's topic carries: everything but the `welcome`, which is per member. */
export type RoomEvent = Exclude<ServerMsg, { readonly type: 'welcome' }>;

/** A member who joined: the name it got, the welcome to send first, and its subscription. */
export interface Membership {
  readonly name: string;
  readonly welcome: ServerMsg;
  readonly events: Subscription<RoomEvent>;
}

/**
 * The members of one chat and the topic between them; one per server. `join` and `say`
 * publish synchronously through the topic's memory backend, and no subscriber suspends,
 * so every member sees the same events in the same order.
 *
 * @example
 * ```ts
 * const room = createRoom();
 * const { name, welcome, events } = room.join('ada');
 * room.say(name, 'hello'); // events: { type: 'message', id: 1, from: 'ada', … }
 * room.leave(name); // the others get { type: 'left', … }
 * ```
 */
export interface Room {
  /** The members' names, in the order they joined. */
  readonly names: readonly string[];
  /** The topic every member subscribes to. */
  readonly topic: Topic<RoomEvent>;
  /**
   * Adds a member: it gets `wanted` if that is free, else `wanted2`, `wanted3`, …; the
   * others get `joined`. Its subscription receives every later event.
   */
  join(wanted: string): Membership;
  /** Publishes a message from `from` to every member, the sender included, with the next id. */
  say(from: string, text: string): void;
  /** Removes `name` (if still here) and tells the others. */
  leave(name: string): void;
}

/** Makes a room; `log` receives one line per join and leave. */
export function createRoom(log: (line: string) => void = () => undefined): Room {
  const topic = new Topic<RoomEvent>({ retention: { count: 0 } });
  const members = new Set<string>();
  let lastId = 0;
  const publish = (event: RoomEvent): void => {
    // Never waits (no 'suspend' subscriber) and cannot fail while the room is open.
    void topic.publish(event);
  };
  return {
    get names() {
      return [...members];
    },
    topic,
    join(wanted) {
      let name = wanted;
      for (let n = 2; members.has(name); n++) name = `${wanted}${n}`;
      const welcome: ServerMsg = { type: 'welcome', name, members: [...members, name] };
      publish({ type: 'joined', name }); // before subscribing: the others only
      const events = topic.subscribe({ capacity: MAILBOX_CAPACITY, overflow: 'close' });
      members.add(name);
      log(`${name} joined (${members.size} here)`);
      return { name, welcome, events };
    },
    say(from, text) {
      lastId += 1;
      publish({ type: 'message', id: lastId, from, text });
    },
    leave(name) {
      if (!members.delete(name)) return;
      log(`${name} left (${members.size} here)`);
      publish({ type: 'left', name });
    },
  };
}
