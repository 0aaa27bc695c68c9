/**
 * The chat's protocol, shared by the server, the browser page and the bot: one typed
 * endpoint, so a message of the wrong shape on either end is a compile error. The server
 * also validates what clients send (a Standard Schema, here valibot): a malformed message
 * closes that connection with 1007 before the room sees it.
 *
 * @module
 */
import * as v from 'valibot';
import type { Position } from 'sluice';
import { endpoint } from 'sluice/websocket';
import type { Endpoint } from 'sluice/websocket';

/** The longest name, in characters. */
export const MAX_NAME_LENGTH = 24;
/** The longest message, in characters. */
export const MAX_TEXT_LENGTH = 500;
/** Names are letters, digits, `_` and `-`: they can be mentioned as `@name`. */
export const NAME_PATTERN: RegExp = /^[\p{L}\p{N}_-]+$/u;

/**
 * What a client sends: first `join` (once per connection), then any number of `say`. A
 * client that was in the room before (on this server or on another node sharing the room)
 * joins `since` the position of the last event it received: it keeps its name and first
 * gets every event it missed, exactly once, in order.
 */
export type ClientMsg =
  | { readonly type: 'join'; readonly name: string; readonly since?: Position | undefined }
  | { readonly type: 'say'; readonly text: string };

/** What happens in the room: what the room's topic carries, and members receive. */
export type RoomEvent =
  /** Someone else joined. */
  | { readonly type: 'joined'; readonly name: string }
  /** Someone left (closed the page, lost the connection). */
  | { readonly type: 'left'; readonly name: string }
  /** A chat message, to everyone including its sender. */
  | { readonly type: 'message'; readonly from: string; readonly text: string };

/**
 * What the server sends to a client. Every room event comes with its position `at` in
 * the room's history (its offset grows by one per event), and the welcome with the
 * position the member's events start after: the client joins again `since` the last one
 * it got.
 */
export type ServerMsg =
  /** The answer to `join`: the name you got (a taken name gets a number) and who is here. */
  | {
      readonly type: 'welcome';
      readonly name: string;
      readonly members: readonly string[];
      readonly at: Position;
    }
  | (RoomEvent & { readonly at: Position })
  /**
   * Events since the client's `since` are no longer kept (too many, or the room's history
   * was lost, e.g. a restart on the in-memory backend): it gets the later ones only.
   */
  | { readonly type: 'missed' };

const name = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1),
  v.maxLength(MAX_NAME_LENGTH),
  v.regex(NAME_PATTERN),
);
const text = v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(MAX_TEXT_LENGTH));

const position = v.object({
  epoch: v.pipe(v.string(), v.maxLength(64)),
  offset: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
});

/** Validates (and trims) what a client sends. */
const clientMsg = v.variant('type', [
  v.object({ type: v.literal('join'), name, since: v.optional(position) }),
  v.object({ type: v.literal('say'), text }),
]);

/**
 * The chat endpoint at `/chat`: the server implements it with `Chat.handle`, clients use
 * `Chat.clientCodec` with `reconnecting` (or `Chat.connect` for one connection).
 *
 * @example
 * ```ts
 * await Chat.connect('ws://127.0.0.1:8080', async ({ incoming, outgoing }) => {
 *   await outgoing.send({ type: 'join', name: 'ada' });
 *   console.log(await incoming.receive()); // { type: 'welcome', name: 'ada', members: [...] }
 * });
 * ```
 */
export const Chat: Endpoint<ClientMsg, ServerMsg> = endpoint<ClientMsg, ServerMsg>('/chat', {
  schemas: { client: clientMsg },
});
