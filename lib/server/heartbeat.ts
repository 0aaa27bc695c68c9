/**
 * The ping/pong heartbeat: every `interval` the server pings each client with a fresh
 * payload and expects a pong carrying the same payload within `timeout` (RFC 6455 §5.5.3:
 * a pong echoes the ping's application data). A client that stays silent is reported
 * through `onTimeout`, which fails the connection. Unsolicited or stale pongs are ignored.
 *
 * ## One timer per server
 * Each connection is a {@link HeartbeatEntry} waiting either for its next ping (due
 * `interval` after it joined or after its last pong) or for the pong that answers its
 * last ping (due `timeout` after the ping). Since `interval` and `timeout` are the same
 * for every connection of a server, entries join each of the two waits in the order of
 * their due times: two intrusive linked lists, ordered by construction, with one timer
 * for the earliest head. A connection costs a few fields instead of a timer, its
 * callback closures and their contexts; every step (join, pong, leave) is O(1). The
 * timing seen by each connection is the same as with a timer of its own.
 *
 * ## Paused connections
 * A connection whose session paused reading (its `incoming` is full) cannot read a pong:
 * TCP delivers it behind the messages nobody reads yet. So each ping tells the entry's
 * {@link Liveness} (`pinged`), and a paused session reads again until the pong arrives,
 * within its byte budget (`incomingMaxBytes`); if the budget fills first it pauses
 * again. A missing pong cuts the connection only if reading was never paused (without
 * reading) since the ping: the heartbeat never cuts a connection because sluice itself
 * stopped reading it. A dead peer is still cut within `interval + timeout` of the
 * moment its session reads: at once when the bytes it had sent before dying fit in the
 * budget, else once the handler has taken enough of them.
 *
 * @module
 */

/** The part of a server-side `ws` socket the heartbeat uses. */
export interface PingableSocket {
  readonly readyState: number;
  ping(data: Uint8Array): void;
  on(event: 'pong', listener: (this: this, data: Uint8Array) => void): unknown;
  off(event: 'pong', listener: (this: this, data: Uint8Array) => void): unknown;
}

/** What the heartbeat asks of a connection's session (see "Paused connections"). */
export interface Liveness {
  /** A ping was just sent: a paused session reads until the pong (within its budget). */
  pinged(): void;
  /**
   * `performance.now()` when reading last stopped being paused without reading,
   * `Infinity` while it is, `-Infinity` if it never was.
   */
  readonly unreadUntil: number;
}

/** Timing of a {@link Heartbeat}, in milliseconds. */
export interface HeartbeatTiming {
  readonly interval: number;
  readonly timeout: number;
}

const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** An entry's wait: not scheduled, waiting to ping, waiting for the pong. */
const IDLE = 0;
const PING = 1;
const PONG = 2;
const PAYLOAD_BYTES = 8;

/** One connection's place in its server's {@link Heartbeat}. */
export class HeartbeatEntry<S extends PingableSocket = PingableSocket> {
  readonly socket: S;
  /** Neighbours in the list of {@link HeartbeatEntry.wait}. */
  prev: HeartbeatEntry | null = null;
  next: HeartbeatEntry | null = null;
  /** When the current wait ends (`performance.now()` clock). */
  due = 0;
  /** Pings sent so far; the last one's payload is this count as a big-endian float64. */
  count = 0;
  wait: typeof IDLE | typeof PING | typeof PONG = IDLE;
  /** When the last ping was sent (`performance.now()` clock). */
  pingedAt = 0;
  /** A ping found the socket closing (not closed): the next one drops it. */
  closingSeen = false;
  readonly liveness: Liveness | undefined;

  constructor(socket: S, liveness?: Liveness) {
    this.socket = socket;
    this.liveness = liveness;
  }
}

/** A linked list of entries in the order of their due times. */
class Queue {
  head: HeartbeatEntry | null = null;
  tail: HeartbeatEntry | null = null;

  push(entry: HeartbeatEntry): void {
    entry.prev = this.tail;
    entry.next = null;
    if (this.tail === null) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
  }

  remove(entry: HeartbeatEntry): void {
    if (entry.prev === null) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === null) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = null;
  }
}

function matches(data: Uint8Array, count: number): boolean {
  return (
    data.byteLength === PAYLOAD_BYTES &&
    new DataView(data.buffer, data.byteOffset, PAYLOAD_BYTES).getFloat64(0) === count
  );
}

/**
 * The heartbeat of one server's connections. `find` maps a socket back to its entry (for
 * its pongs); `onTimeout` runs at most once per entry, with a message for the close
 * reason, after the entry has left. A socket for which `forwardsPongs` is true gets no
 * 'pong' listener: its owner calls {@link Heartbeat.pong} with each of its pongs.
 */
export class Heartbeat<S extends PingableSocket, E extends HeartbeatEntry<S>> {
  readonly #timing: HeartbeatTiming;
  readonly #find: (socket: S) => E | undefined;
  readonly #onTimeout: (entry: E, message: string) => void;
  readonly #pings = new Queue();
  readonly #pongs = new Queue();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When `#timer` fires. */
  #timerDue = 0;
  /** `#fire` is running: it re-arms the timer once it is done. */
  #firing = false;
  /** The one 'pong' listener of every socket (`this` is the socket). */
  readonly #onPong: (this: S, data: Uint8Array) => void;
  readonly #forwardsPongs: (socket: S) => boolean;

  constructor(
    timing: HeartbeatTiming,
    find: (socket: S) => E | undefined,
    onTimeout: (entry: E, message: string) => void,
    forwardsPongs: (socket: S) => boolean = () => false,
  ) {
    this.#timing = timing;
    this.#find = find;
    this.#onTimeout = onTimeout;
    this.#forwardsPongs = forwardsPongs;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- `this` below is the socket
    const heartbeat = this;
    this.#onPong = function (this: S, data: Uint8Array): void {
      heartbeat.#pong(this, data);
    };
  }

  /** Starts pinging `entry.socket`: the first ping is due after `interval`. */
  add(entry: E): void {
    if (entry.wait !== IDLE) return;
    this.#listen(entry.socket);
    this.#schedule(entry, PING, performance.now());
    this.#arm();
  }

  /** Stops pinging `entry.socket` (idempotent). */
  delete(entry: E): void {
    if (entry.wait === IDLE) return;
    this.#leave(entry);
    this.#arm();
  }

  #leave(entry: E): void {
    this.#unlink(entry);
    this.#unlisten(entry.socket);
  }

  #listen(socket: S): void {
    if (!this.#forwardsPongs(socket)) socket.on('pong', this.#onPong);
  }

  #unlisten(socket: S): void {
    if (!this.#forwardsPongs(socket)) socket.off('pong', this.#onPong);
  }

  /** A pong from `socket` (its 'pong' event): ignored unless it answers the last ping. */
  pong(socket: S, data: Uint8Array): void {
    this.#pong(socket, data);
  }

  #schedule(entry: HeartbeatEntry, wait: typeof PING | typeof PONG, now: number): void {
    entry.wait = wait;
    entry.due = now + (wait === PING ? this.#timing.interval : this.#timing.timeout);
    (wait === PING ? this.#pings : this.#pongs).push(entry);
  }

  #unlink(entry: HeartbeatEntry): void {
    (entry.wait === PING ? this.#pings : this.#pongs).remove(entry);
    entry.wait = IDLE;
  }

  #pong(socket: S, data: Uint8Array): void {
    const entry = this.#find(socket);
    if (entry === undefined || entry.wait !== PONG || !matches(data, entry.count)) return;
    this.#unlink(entry);
    this.#schedule(entry, PING, performance.now());
    this.#arm();
  }

  /** (Re)sets the timer for the earliest due time, or clears it when nothing waits. */
  #arm(): void {
    if (this.#firing) return;
    const ping = this.#pings.head;
    const pong = this.#pongs.head;
    if (ping === null && pong === null) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const due = Math.min(ping?.due ?? Infinity, pong?.due ?? Infinity);
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return; // fires first, then re-arms
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#fire();
      },
      Math.max(1, Math.ceil(due - performance.now())),
    );
  }

  /** Handles every entry whose wait has ended, earliest first. */
  #fire(): void {
    this.#firing = true;
    try {
      this.#handleDue();
    } finally {
      this.#firing = false;
    }
    this.#arm();
  }

  #handleDue(): void {
    for (;;) {
      const now = performance.now();
      const ping = this.#pings.head;
      const pong = this.#pongs.head;
      const entry = (
        ping !== null && (pong === null || ping.due <= pong.due) ? ping : pong
      ) as E | null;
      if (entry === null || entry.due > now) break;
      const socket = entry.socket;
      if (socket.readyState === CLOSED) {
        // The connection is over (its owner deletes the entry when done): nothing to do.
        this.#leave(entry);
      } else if (entry.wait === PING) {
        this.#unlink(entry);
        if (socket.readyState === OPEN) {
          const count = ++entry.count;
          const payload = new Uint8Array(PAYLOAD_BYTES);
          new DataView(payload.buffer).setFloat64(0, count);
          socket.ping(payload);
          entry.liveness?.pinged();
          entry.pingedAt = performance.now();
          this.#schedule(entry, PONG, now);
        } else if (socket.readyState === CLOSING && entry.closingSeen) {
          // Still closing a whole interval later: `ws` times its own closing handshakes
          // (`closeTimeout`), but not a peer's FIN while our writes are stuck (the socket
          // ends only once they are flushed, which a peer that stopped reading never lets
          // happen). Dropped like a dead peer.
          this.#unlisten(entry.socket);
          this.#onTimeout(
            entry,
            `Closing timeout: the connection was still closing after ${this.#timing.interval} ms`,
          );
        } else {
          if (socket.readyState === CLOSING) entry.closingSeen = true;
          this.#schedule(entry, PING, now);
        }
      } else if ((entry.liveness?.unreadUntil ?? -Infinity) > entry.pingedAt) {
        // Reading was paused (not by the peer) since the ping: the pong could not arrive.
        // Ping again after `interval` instead.
        this.#unlink(entry);
        this.#schedule(entry, PING, now);
      } else {
        this.#leave(entry);
        this.#onTimeout(entry, `Heartbeat timeout: no pong within ${this.#timing.timeout} ms`);
      }
    }
  }
}
