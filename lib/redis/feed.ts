/**
 * One topic's delivery on one node: the publications of a Redis topic handed to its local
 * listeners once each, in offset order, whatever order pub/sub and publish replies bring
 * them in, and whatever pub/sub lost.
 *
 * ## Algorithm
 * The feed knows the last position it delivered (`#epoch`, `#offset`). A publication
 * (from pub/sub, or from a local publish's reply) with the next offset is delivered at
 * once; an older one is a duplicate and ignored; anything else (a gap, another epoch)
 * is held and a refill starts. A refill reads the stream (`READ_SCRIPT`, in batches)
 * from the next offset: it delivers what it finds, then the held publications that
 * follow on. While it runs, arrivals are held (bounded in bytes: past the bound they are
 * dropped and the refill reads once more, since the stream has them). If the stream no
 * longer has the next offset, or the epoch changed, the listeners get a
 * `DiscontinuityError` naming exactly what is gone and the feed goes on from the topic's
 * position. Refills run one at a time; a request during one makes it read once more.
 *
 * @module
 */
import { DiscontinuityError } from '../errors.js';
import type { DiscontinuityListener, PublicationListener } from '../topics/backend.js';
import type { Position, Publication } from '../topics/position.js';

/** What one read of a topic gives (see `READ_SCRIPT`). */
export interface ReadResult {
  readonly epoch: string;
  readonly head: number;
  readonly oldest: number;
  /** Retained publications from the requested offset on: offset and encoded value. */
  readonly entries: readonly (readonly [offset: number, data: string])[];
}

/** What a feed needs from its backend. */
export interface FeedHost {
  /** Reads `limit` entries from `from` on, if the topic is in `epoch`; see `READ_SCRIPT`. */
  read(
    topic: string,
    epoch: string,
    from: number,
    limit: number,
    delivered: Position | undefined,
  ): Promise<ReadResult>;
  readonly decode: (data: string) => unknown;
  readonly report: (error: unknown) => void;
  readonly batch: number;
  readonly maxPendingBytes: number;
}

interface Entry {
  readonly listener: PublicationListener;
  readonly onDiscontinuity: DiscontinuityListener | undefined;
}

interface Held {
  readonly publication: Publication<unknown>;
  readonly bytes: number;
}

interface Waiter {
  readonly position: Position;
  readonly resolve: () => void;
}

/** Epochs remembered as gone, to ignore late publications of them. */
const GONE_KEPT = 8;

export class Feed {
  readonly topic: string;
  readonly entries: Set<Entry> = new Set<Entry>();
  readonly #host: FeedHost;
  #epoch = '';
  #offset = 0;
  #known = false;
  #running = false;
  #again = false;
  #closed = false;
  #held: Held[] = [];
  #heldBytes = 0;
  readonly #gone: string[] = [];
  readonly #waiters: Waiter[] = [];

  constructor(host: FeedHost, topic: string) {
    this.#host = host;
    this.topic = topic;
  }

  /** `false` once closed (a getter: it changes while a refill awaits). */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Whether a publication at this position would be ignored (delivered already, or gone). */
  isStale(epoch: string, offset: number): boolean {
    return (
      (this.#known && epoch === this.#epoch && offset <= this.#offset) || this.#gone.includes(epoch)
    );
  }

  /** A publication arrived (pub/sub or a publish reply); `bytes`: its encoded size. */
  offer(publication: Publication<unknown>, bytes: number): void {
    if (this.#closed) return;
    const { epoch, offset } = publication.position;
    if (this.isStale(epoch, offset)) return;
    if (!this.#running && epoch === this.#epoch && offset === this.#offset + 1) {
      this.#deliver(publication);
      this.#settle();
      return;
    }
    this.#hold(publication, bytes);
    this.check();
  }

  /** Resolves once the feed delivered `position`, or moved past it (another epoch). */
  delivered(position: Position): Promise<void> {
    if (this.#closed || this.#reached(position)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push({ position, resolve });
      if (position.epoch !== this.#epoch) this.check();
    });
  }

  /** Reads the stream from the next offset (at start, after a reconnect, on the timer). */
  check(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#run();
  }

  /** No more deliveries; pending `delivered` promises resolve. */
  close(): void {
    this.#closed = true;
    this.#held = [];
    this.#heldBytes = 0;
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  /** Another read was asked for during this one (a getter: it changes while one awaits). */
  get #more(): boolean {
    return this.#again;
  }

  async #run(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.#refill();
        this.#drainHeld();
        this.#settle();
      } while (this.#more && this.isOpen);
    } catch (error) {
      // Redis unreachable: the next check (reconnect, timer, a gap) tries again.
      this.#host.report(error);
    } finally {
      this.#running = false;
    }
    // After a whole refill, a publish of an epoch the feed is not in is of a gone one.
    this.#settle(true);
  }

  async #refill(): Promise<void> {
    const host = this.#host;
    if (!this.#known) {
      const start = await host.read(this.topic, '', 0, 0, undefined);
      if (this.#closed) return;
      this.#epoch = start.epoch;
      this.#offset = start.head;
      this.#known = true;
      return;
    }
    for (;;) {
      const since: Position = { epoch: this.#epoch, offset: this.#offset };
      const read = await host.read(this.topic, since.epoch, since.offset + 1, host.batch, since);
      if (this.#closed) return;
      if (read.epoch !== since.epoch || read.oldest > since.offset + 1) {
        if (read.epoch !== since.epoch) {
          this.#gone.push(since.epoch);
          if (this.#gone.length > GONE_KEPT) this.#gone.shift();
        }
        this.#epoch = read.epoch;
        this.#offset = read.head;
        const error = new DiscontinuityError(
          since,
          { epoch: read.epoch, offset: read.head },
          read.oldest,
        );
        for (const entry of [...this.entries]) {
          try {
            entry.onDiscontinuity?.(error);
          } catch (thrown) {
            host.report(thrown);
          }
        }
        return;
      }
      for (const [offset, data] of read.entries) {
        if (offset !== this.#offset + 1) continue;
        this.#deliver({
          type: 'publication',
          value: host.decode(data),
          position: { epoch: read.epoch, offset },
        });
      }
      this.#settle();
      if (read.entries.length < host.batch || this.#offset >= read.head) return;
    }
  }

  #hold(publication: Publication<unknown>, bytes: number): void {
    if (this.#heldBytes + bytes > this.#host.maxPendingBytes) {
      // The stream has them: drop what is held and read once more after this refill.
      this.#held = [];
      this.#heldBytes = 0;
      this.#again = true;
      return;
    }
    this.#held.push({ publication, bytes });
    this.#heldBytes += bytes;
  }

  /** Delivers the held publications that follow on; a gap among them asks for a refill. */
  #drainHeld(): void {
    if (this.#held.length === 0) return;
    const held = this.#held.sort(
      (a, b) => a.publication.position.offset - b.publication.position.offset,
    );
    this.#held = [];
    this.#heldBytes = 0;
    for (const item of held) {
      const { epoch, offset } = item.publication.position;
      if (this.isStale(epoch, offset)) continue;
      if (epoch === this.#epoch && offset === this.#offset + 1) {
        this.#deliver(item.publication);
      } else {
        this.#held.push(item);
        this.#heldBytes += item.bytes;
        this.#again = true;
      }
    }
  }

  #deliver(publication: Publication<unknown>): void {
    this.#offset = publication.position.offset;
    for (const entry of [...this.entries]) {
      try {
        entry.listener(publication);
      } catch (error) {
        this.#host.report(error);
      }
    }
  }

  #reached(position: Position): boolean {
    return position.epoch === this.#epoch && position.offset <= this.#offset;
  }

  /**
   * Resolves the waiters delivered: those at the front, in order (publish replies come
   * in offset order, so this is all of them but for a retried publish); with `all`
   * (after a whole refill), every one delivered and those of other epochs too.
   */
  #settle(all = false): void {
    const waiters = this.#waiters;
    if (!all) {
      let count = 0;
      while (count < waiters.length && this.#reached((waiters[count] as Waiter).position)) count++;
      if (count > 0) for (const waiter of waiters.splice(0, count)) waiter.resolve();
      return;
    }
    let kept = 0;
    for (const waiter of waiters) {
      const { position } = waiter;
      const gone = this.#known && !this.#running && position.epoch !== this.#epoch;
      if (gone || this.#reached(position)) waiter.resolve();
      else waiters[kept++] = waiter;
    }
    waiters.length = kept;
  }
}
