/**
 * The chat room on the server: who is here, and how one message reaches everyone. Each
 * member has a mailbox — a bounded sluice `Channel` that a child of its connection pumps
 * into the WebSocket — and the room fans out with `trySend`, which never waits: a client
 * that stops reading cannot hold up the others. When a mailbox is full, that member is
 * too slow and is dropped (its connection closed with 1008) instead.
 *
 * @module
 */
import type { SendChannel } from 'sluice';
import type { ServerMsg } from './protocol.js';

/** How many messages may wait for one client before it counts as too slow. */
export const MAILBOX_CAPACITY = 256;

interface Member {
  readonly mailbox: SendChannel<ServerMsg>;
  /** Closes the member's connection: it could not keep up. */
  readonly kick: () => void;
}

/**
 * The members of one chat and the messages between them; one per server. Every method is
 * synchronous, so each broadcast reaches all mailboxes in one step: every member sees the
 * same messages in the same order.
 *
 * @example
 * ```ts
 * const room = new Room();
 * const mailbox = new Channel<ServerMsg>(MAILBOX_CAPACITY);
 * const name = room.join('ada', mailbox, () => mailbox.cancel());
 * room.say(name, 'hello'); // mailbox: welcome, then { type: 'message', id: 1, from: 'ada', … }
 * room.leave(name, mailbox); // closes the mailbox; the others get { type: 'left', … }
 * ```
 */
export class Room {
  readonly #members = new Map<string, Member>();
  readonly #log: (line: string) => void;
  #lastId = 0;

  /** @param log - receives one line per join, leave and dropped member. */
  constructor(log: (line: string) => void = () => undefined) {
    this.#log = log;
  }

  /** The members' names, in the order they joined. */
  get names(): readonly string[] {
    return [...this.#members.keys()];
  }

  /**
   * Adds a member. It gets `wanted` if that is free, else `wanted2`, `wanted3`, … Its
   * mailbox receives `welcome` first (so nothing can overtake it), then every later
   * message; the others get `joined`.
   *
   * @param mailbox - a fresh, empty channel with room for at least one message.
   * @param kick - called at most once, if the member is dropped for being too slow.
   * @returns the name the member got.
   */
  join(wanted: string, mailbox: SendChannel<ServerMsg>, kick: () => void): string {
    let name = wanted;
    for (let n = 2; this.#members.has(name); n++) name = `${wanted}${n}`;
    mailbox.trySend({ type: 'welcome', name, members: [...this.#members.keys(), name] });
    this.#broadcast({ type: 'joined', name });
    this.#members.set(name, { mailbox, kick });
    this.#log(`${name} joined (${this.#members.size} here)`);
    return name;
  }

  /**
   * Removes `name` if `mailbox` is still its mailbox (it may have been dropped already),
   * closes the mailbox (what it holds is still delivered) and tells the others.
   */
  leave(name: string, mailbox: SendChannel<ServerMsg>): void {
    if (this.#members.get(name)?.mailbox !== mailbox) return;
    this.#members.delete(name);
    mailbox.close();
    this.#log(`${name} left (${this.#members.size} here)`);
    this.#broadcast({ type: 'left', name });
  }

  /** Sends a message from `from` to every member, the sender included, with the next id. */
  say(from: string, text: string): void {
    this.#lastId += 1;
    this.#broadcast({ type: 'message', id: this.#lastId, from, text });
  }

  #broadcast(message: ServerMsg): void {
    const dropped: string[] = [];
    for (const [name, member] of this.#members) {
      const result = member.mailbox.trySend(message);
      if (result.ok || result.closed) continue; // a closed mailbox: its member is leaving
      this.#members.delete(name);
      dropped.push(name);
      member.kick();
    }
    for (const name of dropped) {
      this.#log(`${name} dropped: too slow (${MAILBOX_CAPACITY} messages unread)`);
      this.#broadcast({ type: 'left', name });
    }
  }
}
