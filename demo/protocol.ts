/**
 * The chat's protocol, shared by the server, the browser page and the bot: one typed
 * endpoint, so a message of the wrong shape on either end is a compile error. The server
 * also validates what clients send (a Standard Schema, here valibot): a malformed message
 * closes that connection with 1007 before the room sees it.
 *
 * @module
 */
import * as v from 'valibot';
import { endpoint } from 'sluice/websocket';
import type { Endpoint } from 'sluice/websocket';

/** The longest name, in characters. */
export const MAX_NAME_LENGTH = 24;
/** The longest message, in characters. */
export const MAX_TEXT_LENGTH = 500;
/** Names are letters, digits, `_` and `-`: they can be mentioned as `@name`. */
export const NAME_PATTERN: RegExp = /^[\p{L}\p{N}_-]+$/u;

/** What a client sends: first `join` (once per connection), then any number of `say`. */
export type ClientMsg =
  | { readonly type: 'join'; readonly name: string }
  | { readonly type: 'say'; readonly text: string };

/** What the server sends to a client. */
export type ServerMsg =
  /** The answer to `join`: the name you got (a taken name gets a number) and who is here. */
  | { readonly type: 'welcome'; readonly name: string; readonly members: readonly string[] }
  /** Someone else joined. */
  | { readonly type: 'joined'; readonly name: string }
  /** Someone left (closed the page, lost the connection). */
  | { readonly type: 'left'; readonly name: string }
  /** A chat message, to everyone including its sender; `id` grows by one per message. */
  | { readonly type: 'message'; readonly id: number; readonly from: string; readonly text: string };

const name = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1),
  v.maxLength(MAX_NAME_LENGTH),
  v.regex(NAME_PATTERN),
);
const text = v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(MAX_TEXT_LENGTH));

/** Validates (and trims) what a client sends. */
const clientMsg = v.variant('type', [
  v.object({ type: v.literal('join'), name }),
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
