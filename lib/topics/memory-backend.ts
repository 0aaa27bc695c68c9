/**
 * The in-memory topic backend: each topic's history is a ring of its latest
 * publications, in this process, under a random epoch made when the topic is first used
 * (so a restart is a new epoch). Publishing is synchronous underneath: listeners are
 * called before `publish` returns.
 *
 * @module
 */
import { Deque } from '../internal/deque.js';
import type { History, PublicationListener, Retention, TopicBackend } from './backend.js';
import { newEpoch } from './position.js';
import type { Position, Publication } from './position.js';

/** Clock for age-based retention: milliseconds, as `Date.now()`. */
const now = (): number => Date.now();

class Log {
  readonly epoch = newEpoch();
  offset = 0;
  readonly entries = new Deque<Publication<unknown>>();
  readonly times = new Deque<number>();
  readonly listeners = new Set<PublicationListener>();

  /** Drops what `retention` no longer keeps, oldest first. */
  trim(count: number, maxAge: number, at: number): void {
    const { entries, times } = this;
    while (
      entries.length > 0 &&
      (entries.length > count || (maxAge !== Infinity && at - times.peek() > maxAge))
    ) {
      entries.shift();
      times.shift();
    }
  }

  position(): Position {
    return { epoch: this.epoch, offset: this.offset };
  }
}

/**
 * Keeps topics' histories in memory; the default backend of a `Topic`. Share one
 * instance between `Topic` objects to let them publish to and read the same topics.
 *
 * - `publish` assigns the next offset and calls the topic's listeners synchronously.
 * - Retention: the latest `count` publications, and with `maxAge` only those younger
 *   than that (checked at each publish and history read; no timer is ever set).
 */
export class MemoryBackend implements TopicBackend {
  readonly #logs = new Map<string, Log>();
  /** Age retention of each topic, as last given to `publish`. */
  readonly #maxAge = new Map<string, number>();

  #log(topic: string): Log {
    let log = this.#logs.get(topic);
    if (log === undefined) {
      log = new Log();
      this.#logs.set(topic, log);
    }
    return log;
  }

  publish(topic: string, value: unknown, retention: Retention): Promise<Position> {
    const log = this.#log(topic);
    const position: Position = { epoch: log.epoch, offset: ++log.offset };
    const publication: Publication<unknown> = { type: 'publication', value, position };
    const count = retention.count ?? 100;
    const maxAge = retention.maxAge ?? Infinity;
    this.#maxAge.set(topic, maxAge);
    const at = maxAge === Infinity ? 0 : now();
    if (count > 0) {
      log.entries.push(publication);
      log.times.push(at);
    }
    log.trim(count, maxAge, at);
    for (const listener of log.listeners) listener(publication);
    return Promise.resolve(position);
  }

  listen(topic: string, listener: PublicationListener): () => void {
    const log = this.#log(topic);
    // A wrapper per registration, so that the same function may listen twice.
    const own: PublicationListener = (publication) => {
      listener(publication);
    };
    log.listeners.add(own);
    return () => {
      log.listeners.delete(own);
    };
  }

  history(topic: string, since: Position, limit: number = Infinity): Promise<History<unknown>> {
    const log = this.#log(topic);
    log.trim(Infinity, this.#maxAge.get(topic) ?? Infinity, now());
    const { entries } = log;
    const oldest = entries.length === 0 ? log.offset + 1 : entries.peek().position.offset;
    const behind = since.epoch === log.epoch && since.offset <= log.offset;
    const first = behind ? Math.max(since.offset + 1, oldest) : oldest;
    const publications: Publication<unknown>[] = [];
    const last = Math.min(log.offset, first + limit - 1);
    for (let offset = first; offset <= last; offset++) {
      publications.push(entries.at(offset - oldest));
    }
    return Promise.resolve({ publications, position: log.position(), oldest });
  }

  position(topic: string): Promise<Position> {
    return Promise.resolve(this.#log(topic).position());
  }
}
