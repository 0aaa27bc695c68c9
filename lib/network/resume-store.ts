/**
 * The sessions of one channel endpoint route that a client may resume, by token: live
 * ones (a client may come back before this end noticed the loss) and suspended ones,
 * which wait at most `window` ms for their client. The suspended ones are bounded by
 * count and bytes (their replay logs): past either bound the oldest is expired first.
 * Every expiry (window, eviction, shutdown) ends the session's channels with a
 * `SessionExpiredError`, with the accounting of a lost connection.
 *
 * @module
 */
import { SessionExpiredError } from '../errors.js';
import type { ResumableSession } from './channels.js';

/** The resume settings of a route (see `ChannelRouteOptions.resume`). */
export interface ResumeSettings {
  readonly window: number;
  readonly maxSessions: number;
  readonly maxBytes: number;
}

interface Entry {
  readonly session: ResumableSession;
  readonly identity: string | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes counted against `maxBytes` while suspended. */
  bytes: number;
}

/** One route's resumable sessions; internal. */
export class SessionStore {
  readonly #settings: ResumeSettings;
  readonly #sessions = new Map<string, Entry>();
  /** The suspended ones, oldest suspension first (a Map keeps insertion order). */
  readonly #suspended = new Map<string, Entry>();
  #bytes = 0;

  constructor(settings: ResumeSettings) {
    this.#settings = settings;
  }

  /** Suspended sessions now (for tests and the docs' accounting). */
  get suspendedCount(): number {
    return this.#suspended.size;
  }

  /** Registers a new resumable session; it leaves the store when it ends. */
  add(token: string, identity: string | undefined, session: ResumableSession): void {
    const entry: Entry = { session, identity, timer: undefined, bytes: 0 };
    this.#sessions.set(token, entry);
    session.onSuspend = () => {
      this.#suspend(token, entry);
    };
    void session.closed.then(() => {
      this.#unsuspend(token, entry);
      this.#sessions.delete(token);
    });
  }

  /**
   * The session of `token` for a client of `identity`, taken out of the suspended ones
   * (its window stops); `undefined` if there is none, it ended, or it belongs to another
   * identity (a foreign token: the session is left alone).
   */
  take(token: string, identity: string | undefined): ResumableSession | undefined {
    const entry = this.#sessions.get(token);
    if (entry === undefined || entry.identity !== identity || entry.session.ended) return undefined;
    this.#unsuspend(token, entry);
    return entry.session;
  }

  #suspend(token: string, entry: Entry): void {
    const { window, maxSessions, maxBytes } = this.#settings;
    entry.bytes = entry.session.replayBytes;
    this.#bytes += entry.bytes;
    this.#suspended.set(token, entry);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      entry.session.expire(
        new SessionExpiredError(
          `The session was not resumed within its window (${String(window)} ms)`,
          { code: 1006, reason: '', wasClean: false },
        ),
      );
    }, window);
    // Oldest first, each one an expiry; the one just suspended goes too if alone too big.
    for (const [oldToken, oldest] of this.#suspended) {
      if (this.#suspended.size <= maxSessions && this.#bytes <= maxBytes) break;
      this.#unsuspend(oldToken, oldest);
      oldest.session.expire(
        new SessionExpiredError(
          `The server evicted the suspended session (at most ${String(maxSessions)} sessions and ${String(maxBytes)} bytes are kept)`,
          { code: 1006, reason: '', wasClean: false },
        ),
      );
    }
  }

  #unsuspend(token: string, entry: Entry): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (this.#suspended.delete(token)) this.#bytes -= entry.bytes;
    entry.bytes = 0;
  }
}
