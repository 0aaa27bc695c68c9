/**
 * The resume handshake of channel endpoints (docs/protocol.md, "Resume"): the hellos,
 * then the client's `resume` and the server's `session` or `resumed`, read before the
 * channel session starts (a server must know whether a connection continues a session
 * before it runs a handler). The frames that arrive after them are handed on as
 * `leftover` (text frames and binary messages, in order: a binary message, one
 * `Uint8Array` value of protocol version 3, is handed on whole). A peer of protocol
 * version 3 or lower gets that protocol, without resume.
 *
 * @module
 */
import { ProtocolError } from '../errors.js';
import type { Frame } from '../websocket/codec.js';
import type { Session } from '../websocket/session.js';
import { PROTOCOL_NAME, PROTOCOL_VERSION_RESUME, RESUME, RESUMED, isCount } from './link.js';

/** The longest resume token accepted (ours are 32 characters). */
const MAX_TOKEN_LENGTH = 64;

/** The session of an endpoint: text messages, and binary ones (`raw()`). */
type WireSession = Session<Frame, Frame>;

/** Reads frames one by one from a session's messages (a binary message is one frame). */
class FrameReader {
  readonly #session: WireSession;
  #queue: Frame[] = [];

  constructor(session: WireSession) {
    this.#session = session;
  }

  /** The next frame, or `undefined` once the connection has ended. */
  async next(): Promise<Frame | undefined> {
    while (this.#queue.length === 0) {
      const result = await this.#session.incoming.receiveCatching();
      if (!result.ok) return undefined;
      const message: unknown = result.value;
      // A binary message is handed on whole; anything else that is not text, or an empty
      // frame: the channel session reports it (1002).
      this.#queue =
        typeof message === 'string' ? message.split('\n') : [message as Uint8Array<ArrayBuffer>];
    }
    return this.#queue.shift();
  }

  /** The frames read from the last message and not handed out. */
  rest(): Frame[] {
    return this.#queue.splice(0);
  }
}

/** A text frame's items; `undefined` if it is not a frame (a binary message included). */
function parse(frame: Frame): unknown[] | undefined {
  if (typeof frame !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(frame);
    return Array.isArray(value) && typeof value[0] === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Closes with 1002 (4002 where the session refuses protocol codes) and throws. */
function fail(session: WireSession, message: string): never {
  const reason = message.slice(0, 120);
  try {
    void session.close(1002, reason);
  } catch {
    // A client session (as browsers): 4000 + (code − 1000).
    void session.close(4002, reason);
  }
  throw new ProtocolError(message);
}

/** The version in a hello frame, or `undefined` if `frame` is not one. */
function helloVersion(frame: Frame): number | undefined {
  const items = parse(frame);
  const version = items?.[1];
  return items?.[0] === PROTOCOL_NAME &&
    items.length === 2 &&
    typeof version === 'number' &&
    Number.isSafeInteger(version) &&
    version >= 1
    ? version
    : undefined;
}

function send(session: WireSession, frame: string): void {
  session.outgoing.send(frame).catch(() => undefined);
}

/** What the server learnt from a new connection. */
export type ServerGreeting =
  | {
      readonly kind: 'fresh';
      readonly version: number;
      readonly leftover: readonly Frame[];
      /** The client asked for a resumable session (`["resume"]`): answer with `session`. */
      readonly wantsToken: boolean;
    }
  | {
      readonly kind: 'resume';
      readonly version: number;
      readonly token: string;
      readonly received: number;
      readonly leftover: readonly Frame[];
    }
  | { readonly kind: 'closed' };

/**
 * Sends this end's hello and reads the peer's: the version both speak and the reader of
 * the frames after it, or `undefined` when the connection ended first. Throws a
 * `ProtocolError` (after closing with 1002) when the first frame is not a hello.
 */
async function exchangeHellos(
  session: WireSession,
): Promise<{ readonly frames: FrameReader; readonly version: number } | undefined> {
  send(session, `["${PROTOCOL_NAME}",${String(PROTOCOL_VERSION_RESUME)}]`);
  const frames = new FrameReader(session);
  const hello = await frames.next();
  if (hello === undefined) return undefined;
  const peer = helloVersion(hello);
  if (peer === undefined) {
    fail(
      session,
      `Expected the hello frame ["${PROTOCOL_NAME}",${String(PROTOCOL_VERSION_RESUME)}] first`,
    );
  }
  const version = Math.min(peer, PROTOCOL_VERSION_RESUME);
  return { frames, version };
}

/**
 * The server side: sends its hello, reads the client's and, from a version-4 client, its
 * first frame. Throws a `ProtocolError` (after closing with 1002) on a malformed hello or
 * `resume` frame.
 */
export async function serverHandshake(session: WireSession): Promise<ServerGreeting> {
  const hellos = await exchangeHellos(session);
  if (hellos === undefined) return { kind: 'closed' };
  const { frames, version } = hellos;
  if (version < PROTOCOL_VERSION_RESUME) {
    return { kind: 'fresh', version, leftover: frames.rest(), wantsToken: false };
  }
  const first = await frames.next();
  if (first === undefined) return { kind: 'closed' };
  const items = parse(first);
  if (items?.[0] !== RESUME) {
    // A client that does not resume: its first frame belongs to the channel session.
    return { kind: 'fresh', version, leftover: [first, ...frames.rest()], wantsToken: false };
  }
  if (items.length === 1) {
    return { kind: 'fresh', version, leftover: frames.rest(), wantsToken: true };
  }
  const [, token, received] = items;
  if (
    items.length !== 3 ||
    typeof token !== 'string' ||
    token === '' ||
    token.length > MAX_TOKEN_LENGTH ||
    !isCount(received)
  ) {
    fail(
      session,
      `Expected ["${RESUME}"] or ["${RESUME}", token, received] (a token of 1–${String(MAX_TOKEN_LENGTH)} characters, a count), got a malformed '${RESUME}' frame`,
    );
  }
  return { kind: 'resume', version, token, received, leftover: frames.rest() };
}

/** What the client learnt from a new connection. */
export type ClientGreeting =
  | {
      readonly kind: 'fresh';
      readonly version: number;
      readonly leftover: readonly Frame[];
      /**
       * This end asked for a resumable session: the server's `["session", token]` comes
       * first (the channel session reads it; frames do not wait for it).
       */
      readonly awaitSession: boolean;
    }
  | {
      readonly kind: 'resumed';
      readonly version: number;
      /** Frames the server received of the session in all. */
      readonly received: number;
      readonly leftover: readonly Frame[];
    }
  /** The connection ended before an answer: a refused resume closes with 3410. */
  | { readonly kind: 'closed' };

/**
 * The client side: sends its hello, reads the server's, then (version 4) asks to resume
 * `resume` or, when `wantToken`, for a new resumable session, and reads the answer.
 * Throws a `ProtocolError` (after closing with 1002/4002) on a malformed answer.
 */
export async function clientHandshake(
  session: WireSession,
  resume: { readonly token: string; readonly received: number } | undefined,
  wantToken: boolean,
): Promise<ClientGreeting> {
  const hellos = await exchangeHellos(session);
  if (hellos === undefined) return { kind: 'closed' };
  const { frames, version } = hellos;
  if (version < PROTOCOL_VERSION_RESUME || (resume === undefined && !wantToken)) {
    return { kind: 'fresh', version, leftover: frames.rest(), awaitSession: false };
  }
  send(
    session,
    resume === undefined
      ? `["${RESUME}"]`
      : `["${RESUME}",${JSON.stringify(resume.token)},${String(resume.received)}]`,
  );
  if (resume === undefined) {
    // The answer (`session`) is read by the channel session: no round trip to wait for.
    return { kind: 'fresh', version, leftover: frames.rest(), awaitSession: true };
  }
  const answer = await frames.next();
  if (answer === undefined) return { kind: 'closed' };
  const items = parse(answer);
  if (items?.[0] === RESUMED && items.length === 2 && isCount(items[1])) {
    return { kind: 'resumed', version, received: items[1], leftover: frames.rest() };
  }
  fail(session, `Expected ["${RESUMED}", received] after ["${RESUME}", token, received]`);
}

/** A new resume token: 128 random bits, as 32 hexadecimal digits. */
export function newToken(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let token = '';
  for (const byte of bytes) token += byte.toString(16).padStart(2, '0');
  return token;
}
