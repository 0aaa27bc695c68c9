import { createServer } from 'node:net';
import { expect } from 'chai';
import { SubscriberOverflowError } from '../../lib/index.js';
import { HandshakeError, connect } from '../../lib/websocket/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { answer, startBot } from '../../demo/bot.js';
import { Chat } from '../../demo/protocol.js';
import type { ClientMsg, ServerMsg } from '../../demo/protocol.js';
import { MAILBOX_CAPACITY, createRoom } from '../../demo/room.js';
import { startDemo } from '../../demo/server.js';
import type { Demo } from '../../demo/server.js';

type ChatSession = Session<ServerMsg, ClientMsg>;

/** A chat message without its `id` (checked separately where it matters). */
function withoutId(message: ServerMsg): unknown {
  if (message.type !== 'message') return message;
  return { type: message.type, from: message.from, text: message.text };
}

async function receiveN(session: ChatSession, n: number): Promise<ServerMsg[]> {
  const received: ServerMsg[] = [];
  for (let i = 0; i < n; i++) received.push(await session.incoming.receive());
  return received;
}

/** Whether a TCP server can listen on `port` right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => {
      resolve(false);
    });
    probe.listen(port, '127.0.0.1', () => {
      probe.close(() => {
        resolve(true);
      });
    });
  });
}

describe('demo server (startDemo)', function () {
  this.timeout(30_000);
  const demos: Demo[] = [];
  const sessions: ChatSession[] = [];

  async function start(options: Parameters<typeof startDemo>[0] = {}): Promise<Demo> {
    const demo = await startDemo({ port: 0, ...options });
    demos.push(demo);
    return demo;
  }

  async function join(demo: Demo, name: string): Promise<ChatSession> {
    const session = await connect<ServerMsg, ClientMsg>(`${demo.wsUrl}${Chat.path}`, {
      codec: Chat.clientCodec,
    });
    sessions.push(session);
    await session.outgoing.send({ type: 'join', name });
    return session;
  }

  afterEach(async () => {
    for (const session of sessions.splice(0)) await session.close();
    for (const demo of demos.splice(0)) await demo.close();
  });

  it('serves the page at / and its bundle at /page.js; anything else is 404, POST is 405', async () => {
    const demo = await start({ bot: false });
    expect(demo.url).to.equal(`http://127.0.0.1:${demo.port}/`);
    expect(demo.wsUrl).to.equal(`ws://127.0.0.1:${demo.port}`);
    const page = await fetch(demo.url);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(await page.text()).to.include('<script type="module" src="/page.js"></script>');
    const bundle = await fetch(`${demo.url}page.js`);
    expect(bundle.status).to.equal(200);
    const code = await bundle.text();
    expect(code).to.include('reconnecting').and.to.include('//# sourceMappingURL=page.js.map');
    expect(code).not.to.match(/from ['"](?:ws|node:|sluice)/); // everything bundled
    expect((await fetch(`${demo.url}page.js.map`)).status).to.equal(200);
    const missing = await fetch(`${demo.url}nope`);
    expect([missing.status, await missing.text()]).to.deep.equal([404, 'Not found']);
    const post = await fetch(demo.url, { method: 'POST' });
    expect([post.status, post.headers.get('allow')]).to.deep.equal([405, 'GET, HEAD']);
  });

  it('relays messages to every member in order, with growing ids; a taken name gets a number', async () => {
    const demo = await start({ bot: false });
    const ada = await join(demo, 'ada');
    expect(await ada.incoming.receive()).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
    });
    const other = await join(demo, 'ada');
    expect(await other.incoming.receive()).to.deep.equal({
      type: 'welcome',
      name: 'ada2',
      members: ['ada', 'ada2'],
    });
    expect(await ada.incoming.receive()).to.deep.equal({ type: 'joined', name: 'ada2' });
    await ada.outgoing.send({ type: 'say', text: '  one  ' }); // trimmed by the schema
    await other.outgoing.send({ type: 'say', text: 'two' });
    const expected: ServerMsg[] = [
      { type: 'message', id: 1, from: 'ada', text: 'one' },
      { type: 'message', id: 2, from: 'ada2', text: 'two' },
    ];
    expect(await receiveN(ada, 2)).to.deep.equal(expected);
    expect(await receiveN(other, 2)).to.deep.equal(expected);
    await other.close();
    expect(await ada.incoming.receive()).to.deep.equal({ type: 'left', name: 'ada2' });
  });

  it('closes with 1008 a connection whose first message is not a join', async () => {
    const demo = await start({ bot: false });
    const session = await connect<ServerMsg, ClientMsg>(`${demo.wsUrl}${Chat.path}`, {
      codec: Chat.clientCodec,
    });
    sessions.push(session);
    await session.outgoing.send({ type: 'say', text: 'hi' });
    expect(await session.closed).to.deep.equal({
      code: 1008,
      reason: 'Expected a join message first',
      wasClean: true,
    });
  });

  it('closes with 1007 a connection that sends an invalid message (a name with a space)', async () => {
    const demo = await start({ bot: false });
    const session = await join(demo, 'ada lovelace');
    expect(await session.closed).to.deep.equal({
      code: 1007,
      reason: 'Invalid payload',
      wasClean: true,
    });
  });

  it('refuses browsers from other origins with 403 and accepts its own', async () => {
    const demo = await start({ bot: false });
    const url = `${demo.wsUrl}${Chat.path}`;
    const refused = await connect(url, {
      socketOptions: { origin: 'http://evil.example' },
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).to.be.instanceOf(HandshakeError);
    expect((refused as HandshakeError).status).to.equal(403);
    const own = await connect<ServerMsg, ClientMsg>(url, {
      codec: Chat.clientCodec,
      socketOptions: { origin: `http://127.0.0.1:${demo.port}` },
    });
    sessions.push(own);
    await own.outgoing.send({ type: 'join', name: 'ada' });
    expect(await own.incoming.receive()).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
    });
  });

  it('starts the bot, which greets each newcomer and answers @bot', async () => {
    const demo = await start(); // resolves once the bot has joined
    const ada = await join(demo, 'ada');
    const [welcome, greeting] = await receiveN(ada, 2);
    expect(welcome).to.deep.equal({ type: 'welcome', name: 'ada', members: ['bot', 'ada'] });
    expect(withoutId(greeting!)).to.deep.equal({
      type: 'message',
      from: 'bot',
      text: 'Welcome, ada! Say "@bot help" to see what I can do.',
    });
    await ada.outgoing.send({ type: 'say', text: '@bot ping' });
    expect((await receiveN(ada, 2)).map(withoutId)).to.deep.equal([
      { type: 'message', from: 'ada', text: '@bot ping' },
      { type: 'message', from: 'bot', text: 'pong, ada' },
    ]);
  });

  it('close() sends 1001 to every client, frees the port, and returns the same promise twice', async () => {
    const demo = await start({ bot: false });
    const ada = await join(demo, 'ada');
    await ada.incoming.receive();
    const closing = demo.close();
    expect(demo.close()).to.equal(closing);
    expect(await ada.closed).to.deep.equal({ code: 1001, reason: 'Going away', wasClean: true });
    await closing;
    expect(await portIsFree(demo.port)).to.equal(true);
    const again = await start({ bot: false, port: demo.port });
    expect(again.port).to.equal(demo.port);
  });

  it('rejects invalid options with RangeError/TypeError saying what was expected', async () => {
    const failure = (options: unknown): Promise<unknown> =>
      startDemo(options as never).then(
        () => {
          throw new Error('expected a rejection');
        },
        (error: unknown) => error,
      );
    const port = await failure({ port: -1 });
    expect(port).to.be.instanceOf(RangeError);
    expect((port as Error).message).to.equal(
      'Expected port to be an integer from 0 to 65535, got -1',
    );
    const host = await failure({ host: '' });
    expect(host).to.be.instanceOf(TypeError);
    expect((host as Error).message).to.equal('Expected host to be a non-empty string, got ""');
    const bot = await failure({ bot: 'yes' });
    expect((bot as Error).message).to.equal('Expected bot to be a boolean, got "yes"');
  });

  it('rejects with EADDRINUSE when the port is taken, leaving nothing running', async () => {
    const demo = await start({ bot: false });
    const error = await startDemo({ port: demo.port, bot: false }).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect((error as { code?: unknown }).code).to.equal('EADDRINUSE');
  });
});

describe('demo room', () => {
  it('ends a member whose subscription is full (too slow) with SubscriberOverflowError; the others lose nothing', async () => {
    const lines: string[] = [];
    const room = createRoom((line) => lines.push(line));
    const slow = room.join('slow');
    const fast = room.join('fast');
    expect(slow.welcome).to.deep.equal({ type: 'welcome', name: 'slow', members: ['slow'] });
    expect(fast.welcome).to.deep.equal({
      type: 'welcome',
      name: 'fast',
      members: ['slow', 'fast'],
    });
    // slow holds: joined fast, then 255 messages: full.
    for (let i = 1; i <= MAILBOX_CAPACITY - 1; i++) room.say('fast', `m${i}`);
    room.say('fast', 'one too many');
    const toSlow: unknown[] = [];
    const error = await (async () => {
      try {
        for await (const event of slow.events) {
          if (event.type === 'publication') toSlow.push(event.value);
        }
      } catch (failure) {
        return failure;
      }
      return undefined;
    })();
    expect(error).to.be.instanceOf(SubscriberOverflowError);
    expect(toSlow).to.have.length(MAILBOX_CAPACITY);
    expect(toSlow[0]).to.deep.equal({ type: 'joined', name: 'fast' });
    expect(toSlow.at(-1)).to.deep.equal({ type: 'message', id: 255, from: 'fast', text: 'm255' });
    // fast reads as it goes: it has every message, and sees slow leave.
    const toFast: unknown[] = [];
    const readFast = (): void => {
      for (let r = fast.events.tryReceive(); r.ok; r = fast.events.tryReceive()) {
        if (r.value.type === 'publication') toFast.push(r.value.value);
      }
    };
    readFast();
    room.leave('slow'); // what the slow member's handler does
    room.leave('slow'); // and its cleanup: already gone, nothing happens
    expect(room.names).to.deep.equal(['fast']);
    readFast();
    expect(toFast).to.have.length(256 + 1);
    expect(toFast.slice(-2)).to.deep.equal([
      { type: 'message', id: 256, from: 'fast', text: 'one too many' },
      { type: 'left', name: 'slow' },
    ]);
    expect(lines).to.deep.equal([
      'slow joined (1 here)',
      'fast joined (2 here)',
      'slow left (1 here)',
    ]);
  });
});

describe('demo bot', function () {
  this.timeout(30_000);

  it('answers only messages that mention it, with each command', () => {
    const members = ['bot', 'ada', 'bob'];
    expect(answer('bot', 'ada', 'hello everyone', members)).to.equal(undefined);
    expect(answer('bot', 'ada', 'mail me at x@bot.example', members)).to.equal(undefined);
    expect(answer('bot', 'ada', '@bot2 ping', members)).to.equal(undefined);
    expect(answer('bot', 'ada', '@bot ping', members)).to.equal('pong, ada');
    expect(answer('bot', 'ada', 'PING @Bot', members)).to.equal('pong, ada');
    expect(answer('bot', 'ada', 'hey @bot ping @bot', members)).to.equal('pong, ada');
    expect(answer('bot', 'bob', '@bot who', members)).to.equal('here: bot, ada, bob');
    expect(answer('bot', 'ada', '@bot reverse abc 👍🏽x', members)).to.equal('x👍🏽 cba');
    expect(answer('bot', 'ada', '@bot reverse', members)).to.equal('reverse what?');
    expect(answer('bot', 'ada', '@bot', members)).to.equal(
      'ada, try: @bot ping, @bot who, @bot time, @bot reverse <text>',
    );
    expect(answer('bot', 'ada', '@bot dance', members)).to.equal(
      'Sorry ada, I don\'t know "dance". Try "@bot help".',
    );
    expect(answer('bot', 'ada', '@bot time', members)).to.match(/^it is \d\d:\d\d:\d\d UTC here$/);
    expect(answer('bot', 'ada', `@bot reverse ${'x'.repeat(600)}`, members)).to.have.length(500);
  });

  it('rejects a name the server would refuse, and a URL that is not a string', () => {
    expect(() => startBot('ws://127.0.0.1:1', { name: 'two words' })).to.throw(
      RangeError,
      'Expected name to be 1–24 letters, digits, _ or -, got "two words"',
    );
    expect(() => startBot(42 as never)).to.throw(
      TypeError,
      'Expected baseUrl to be a string or a URL, got number',
    );
  });

  it('joined rejects when the bot is stopped before it could join', async () => {
    const bot = startBot('ws://127.0.0.1:9', { name: 'bot' }); // nothing listens on port 9
    await bot.stop();
    const error = await bot.joined.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect((error as Error).message).to.equal('The bot stopped before it joined');
  });
});
