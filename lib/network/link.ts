/**
 * What each network channel end needs from its connection ({@link Link}), and the frame
 * type strings of the protocol (docs/protocol.md has the full description).
 *
 * @module
 */

/** The protocol's name, the first element of the hello frame. */
export const PROTOCOL_NAME = 'sluice';
/**
 * The highest protocol version this implementation speaks (2: the `contract` frame; 3:
 * binary messages). An end whose session cannot carry binary messages announces
 * {@link TEXT_VERSION}.
 */
export const PROTOCOL_VERSION = 3;
/** The version an end announces when its session carries text messages only. */
export const TEXT_VERSION = 2;

/** `["open", id, name, capacity]`: the receiving end announces its buffer for `name`. */
export const OPEN = 'open';
/** `["v", id]` (the value `undefined`) or `["v", id, value]`: one value. */
export const VALUE = 'v';
/**
 * `["b", id]`: version 3: the header of a binary message carrying one value's bytes
 * (never a frame of a text message; see wire.ts).
 */
export const BINARY = 'b';
/** `["ack", id, taken]`: how many values the receiving application has taken in all. */
export const ACK = 'ack';
/** `["pull", id, limit]`: rendezvous: how many values the sender may have sent in all. */
export const PULL = 'pull';
/** `["close", id]` or `["close", id, cause]`: the sender closed its end. */
export const CLOSE = 'close';
/** `["closed", id]`: the receiving end has the close (and every value before it). */
export const CLOSED = 'closed';
/** `["cancel", id, taken, reason]`: the receiving end cancelled. */
export const CANCEL = 'cancel';
/** `["withdraw", id, seq]`: rendezvous: the sender's `send` of value `seq` was aborted. */
export const WITHDRAW = 'withdraw';
/** `["withdrawn", id, seq]`: value `seq` was not taken and has been discarded. */
export const WITHDRAWN = 'withdrawn';

/**
 * `["contract", name, version, [[channel, "s" | "r"], …]]` or `["contract"]` (none): what
 * this end declared, sent once after the peer's hello announced version 2 or later.
 */
export const CONTRACT = 'contract';

/**
 * The version of an end that resumes (docs/protocol.md, "Resume"): endpoints announce it;
 * plain `channels()` announces {@link PROTOCOL_VERSION} and never resumes.
 */
export const PROTOCOL_VERSION_RESUME = 4;
/** `["resume"]` (a new session, please) or `["resume", token, received]`: client, after the hellos. */
export const RESUME = 'resume';
/** `["session", token]` or `["session"]` (not resumable): the server's answer to `["resume"]`. */
export const SESSION = 'session';
/** `["resumed", received]`: the server accepted a resume; it received `received` frames. */
export const RESUMED = 'resumed';
/** `["recv", count]`: this end received `count` frames of the session in all. */
export const RECV = 'recv';
/** The close code of a refused resume: an unknown, expired or foreign token. */
export const RESUME_REFUSED = 3410;

/** `["bye"]`: goodbye: this end's acks are all sent, it takes and sends nothing more. */
export const BYE = 'bye';

/** The connection as the channel ends see it; implemented by the channel session. */
export interface Link {
  /** Include stacks in encoded causes. */
  readonly sendStacks: boolean;
  /** Frames can still be sent (the session's outgoing is open). */
  readonly writable: boolean;
  /**
   * The session does not take messages now (its buffer is at the high-water mark and a
   * batch waits for it): values must not leave, their sends wait. Each outbound end is
   * paused when this starts and resumed when it ends.
   */
  readonly congested: boolean;
  /**
   * A `send` wrote its value without waiting: the promise it returns, already resolved
   * except every `YIELD_EVERY`th time (counted per connection, the session's own
   * constant), when it resolves after a macrotask (so that
   * `for (;;) await send(v)` lets timers and I/O run whatever the peer grants).
   */
  sentDirectly(): Promise<void>;
  /**
   * Sends a frame, in order: at once if it is the first of this macrotask, else in the
   * batch sent at the end of the macrotask (or at once when the batch is large); `false`
   * if frames can no longer be sent.
   */
  write(frame: string): boolean;
  /**
   * Whether `Uint8Array` values travel as bytes: `true` once both hellos said version 3 or
   * later, `false` when one end speaks a lower version (then such a value cannot be sent),
   * `undefined` until the peer's hello has arrived.
   */
  readonly bytes: boolean | undefined;
  /**
   * Sends the pending frames, then one value's bytes as a binary message to channel `id`
   * (only when {@link Link.bytes} is `true`); `false` if frames can no longer be sent.
   */
  writeBytes(id: number, bytes: Uint8Array): boolean;
  /** The `EncodeError` for bytes this connection cannot carry (`bytes` is `false`). */
  bytesRefused(value: unknown): Error;
  /**
   * Hands the pending batch to the session now; `false` if the session no longer takes
   * messages (the frames are lost), `true` if it took them (or queued them).
   */
  flush(): boolean;
  /** The peer broke the protocol: close with 1002 and `message`. */
  violation(message: string): void;
  /** A value failed its channel's schema: close with 1007. */
  invalid(error: Error, reason: string): void;
  /** Something went wrong on this end (a bug, a schema that broke its contract): close with 1011. */
  broken(error: Error): void;
  /** The inbound end took values: send an ack now-ish (`urgent`) or soon. */
  scheduleAck(flush: AckSource, urgent: boolean): void;
}

/** An inbound end with an ack to send. */
export interface AckSource {
  /** Already in the session's list of ends with an ack to send. */
  ackQueued: boolean;
  /** Sends the ack if one is due. */
  flushAck(): void;
}

/** `n` is a count in a frame: a safe integer ≥ 0. */
export function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
