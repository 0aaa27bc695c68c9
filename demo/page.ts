/**
 * The chat page (browser only; bundled by the demo server with esbuild). It talks to the
 * `Chat` endpoint through sluice's `reconnecting` client: one handler run per connection
 * with fresh channels, and `states()` to show the connection — connecting, open, closed,
 * with the attempt — in the header. No framework: a few DOM calls.
 *
 * Across nodes: the page remembers the position of the last room event it got, and each
 * new connection joins `since` it, so nothing is missed or shown twice. When the server
 * lists peers (`/peers.json`: other demo processes sharing the room), each connection
 * after a lost one goes to the next address in turn: its own server, then the peers.
 *
 * @module
 */
import type { Position, SendChannel } from 'sluice';
import { reconnecting } from 'sluice/websocket';
import type { ConnectionState, ReconnectingClient } from 'sluice/websocket';
import { Chat, MAX_NAME_LENGTH, NAME_PATTERN } from './protocol.js';
import type { ClientMsg, ServerMsg } from './protocol.js';

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`Expected #${id} to be a ${type.name}`);
  return element;
}

const status = byId('status', HTMLOutputElement);
const you = byId('you', HTMLSpanElement);
const joinSection = byId('join', HTMLElement);
const joinForm = byId('join-form', HTMLFormElement);
const nameInput = byId('name', HTMLInputElement);
const chat = byId('chat', HTMLElement);
const messages = byId('messages', HTMLUListElement);
const membersList = byId('members', HTMLUListElement);
const sayForm = byId('say', HTMLFormElement);
const textInput = byId('text', HTMLInputElement);
const sendButton = byId('send', HTMLButtonElement);

/** The name the server gave us (it may add a number to the one we asked for). */
let me = '';
/** The current connection's `outgoing`, once it has joined; `undefined` while offline. */
let outgoing: SendChannel<ClientMsg> | undefined;
let members: string[] = [];
/** The position of the last room event received: the next connection joins `since` it. */
let position: Position | undefined;

function append(item: HTMLLIElement): void {
  const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
  messages.append(item);
  if (atBottom) messages.scrollTop = messages.scrollHeight;
}

function notice(text: string): void {
  const item = document.createElement('li');
  item.className = 'notice';
  item.textContent = text;
  append(item);
}

function showMessage(from: string, text: string): void {
  const item = document.createElement('li');
  item.className = from === me ? 'message mine' : 'message';
  item.dataset['from'] = from;
  const fromSpan = document.createElement('span');
  fromSpan.className = 'from';
  fromSpan.textContent = from;
  const textSpan = document.createElement('span');
  textSpan.className = 'text';
  textSpan.textContent = text;
  item.append(fromSpan, textSpan);
  append(item);
}

function showMembers(): void {
  membersList.replaceChildren(
    ...members.map((name) => {
      const item = document.createElement('li');
      item.textContent = name === me ? `${name} (you)` : name;
      return item;
    }),
  );
}

function setOnline(channel: SendChannel<ClientMsg> | undefined): void {
  outgoing = channel;
  textInput.disabled = channel === undefined;
  sendButton.disabled = channel === undefined;
  if (channel !== undefined) textInput.focus();
}

function receive(message: ServerMsg, connection: number, out: SendChannel<ClientMsg>): void {
  switch (message.type) {
    case 'welcome':
      position = message.at;
      me = message.name;
      you.textContent = `you are ${me}`;
      members = [...message.members];
      showMembers();
      notice(connection === 1 ? `You joined as ${me}.` : `You are back as ${me}.`);
      setOnline(out);
      break;
    case 'joined':
      position = message.at;
      if (!members.includes(message.name)) members.push(message.name);
      showMembers();
      notice(`${message.name} joined`);
      break;
    case 'left':
      position = message.at;
      members = members.filter((name) => name !== message.name);
      showMembers();
      notice(`${message.name} left`);
      break;
    case 'message':
      position = message.at;
      showMessage(message.from, message.text);
      break;
    case 'missed':
      notice('Some messages from while you were away are no longer kept.');
      break;
  }
}

function describe(state: ConnectionState, everOpened: boolean): string {
  switch (state.type) {
    case 'connecting':
      return `${everOpened ? 'reconnecting' : 'connecting'}… (attempt ${state.attempt})`;
    case 'open':
      return `open (connection ${state.connection})`;
    case 'closed': {
      const { code, reason, opened } = state.reason;
      const why = opened ? `${code}${reason && ` ${reason}`}` : 'no answer';
      if (state.retryIn === undefined) return `closed (${why})`;
      const seconds = (state.retryIn / 1000).toFixed(1);
      return `closed (${why}), retrying in ${seconds} s (attempt ${state.attempt})`;
    }
  }
}

/** Shows every state in the header, and a notice when the connection is lost or back. */
async function showStates(client: ReconnectingClient): Promise<void> {
  let connections = 0;
  for await (const state of client.states()) {
    if (state.type === 'open') connections = state.connection;
    status.dataset['state'] = state.type;
    status.dataset['attempt'] = String(state.attempt);
    status.dataset['connection'] = String(connections);
    status.textContent = describe(state, connections > 0);
    if (state.type === 'open' && state.connection > 1) notice('Reconnected.');
    if (state.type === 'closed' && state.reason.opened) {
      const { code, reason } = state.reason;
      notice(`Disconnected (${code}${reason && ` ${reason}`}); reconnecting on its own…`);
    }
  }
}

/** The other servers sharing the room, as the page's server lists them (none if it cannot). */
async function peers(): Promise<string[]> {
  try {
    const response = await fetch('/peers.json');
    const list: unknown = await response.json();
    return Array.isArray(list) ? list.filter((url) => typeof url === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * A WebSocket constructor for `reconnecting` that sends each attempt after the first to
 * the next of `bases` in turn (the path stays): with one base, the plain `WebSocket`.
 */
function rotating(bases: readonly string[]): typeof WebSocket {
  let next = 0;
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      const base = bases[next % bases.length] ?? '';
      next += 1;
      const { pathname, search } = new URL(url);
      super(`${base}${pathname}${search}`, protocols);
    }
  };
}

async function join(name: string): Promise<ReconnectingClient> {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const own = `${scheme}://${location.host}`;
  return reconnecting<ServerMsg, ClientMsg>(
    `${own}${Chat.path}`,
    {
      codec: Chat.clientCodec,
      minDelay: 500,
      maxDelay: 5_000,
      WebSocket: rotating([own, ...(await peers())]),
    },
    async ({ incoming, outgoing: out, connection }) => {
      await out.send(
        position === undefined ? { type: 'join', name } : { type: 'join', name, since: position },
      );
      try {
        for await (const message of incoming) receive(message, connection, out);
      } finally {
        if (outgoing === out) setOnline(undefined);
        members = []; // unknown while offline; the next welcome lists them again
        showMembers();
      }
    },
  );
}

async function say(out: SendChannel<ClientMsg>, text: string): Promise<void> {
  try {
    await out.send({ type: 'say', text });
  } catch {
    // The connection went away as we sent: the message did not leave, give it back.
    if (textInput.value === '') textInput.value = text;
    notice(`Not sent (connection lost): ${text}`);
  }
}

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (name.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(name)) {
    nameInput.setCustomValidity('Letters, digits, _ or - only');
    nameInput.reportValidity();
    return;
  }
  joinSection.hidden = true;
  chat.hidden = false;
  void join(name).then(showStates);
});

nameInput.addEventListener('input', () => {
  nameInput.setCustomValidity('');
});

sayForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (text === '' || outgoing === undefined) return;
  textInput.value = '';
  void say(outgoing, text);
});
