import { createServer } from 'node:net';
import { expect } from 'chai';
import { MemoryBackend, SubscriberOverflowError } from '../../lib/index.js';
import { HandshakeError, connect } from '../../lib/websocket/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { answer, startBot } from '../../demo/bot.js';
import { Chat } from '../../demo/protocol.js';
import type { ClientMsg, ServerMsg } from '../../demo/protocol.js';
import { HISTORY, MAILBOX_CAPACITY, createRoom } from '../../demo/room.js';
import { startDemo } from '../../demo/server.js';
import { ticks } from '../helpers/async.js';
import type { Demo } from '../../demo/server.js';

type ChatSession = Session<ServerMsg, ClientMsg>;

/** A server message without its position `at` (checked separately where it matters). */
function withoutAt(message: ServerMsg): unknown {
  return Object.fromEntries(Object.entries(message).filter(([key]) => key !== 'at'));
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

  it('relays messages to every member in order, with their positions; a taken name gets a number', async () => {
    const demo = await start({ bot: false });
    const ada = await join(demo, 'ada');
    const welcome = await ada.incoming.receive();
    if (welcome.type !== 'welcome') expect.fail(`Expected a welcome, got ${welcome.type}`);
    const { epoch } = welcome.at;
    expect(welcome).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
      at: { epoch, offset: 1 }, // its own join
    });
    const other = await join(demo, 'ada');
    expect(await other.incoming.receive()).to.deep.equal({
      type: 'welcome',
      name: 'ada2',
      members: ['ada', 'ada2'],
      at: { epoch, offset: 2 },
    });
    expect(await ada.incoming.receive()).to.deep.equal({
      type: 'joined',
      name: 'ada2',
      at: { epoch, offset: 2 },
    });
    await ada.outgoing.send({ type: 'say', text: '  one  ' }); // trimmed by the schema
    await other.outgoing.send({ type: 'say', text: 'two' });
    const expected: ServerMsg[] = [
      { type: 'message', from: 'ada', text: 'one', at: { epoch, offset: 3 } },
      { type: 'message', from: 'ada2', text: 'two', at: { epoch, offset: 4 } },
    ];
    expect(await receiveN(ada, 2)).to.deep.equal(expected);
    expect(await receiveN(other, 2)).to.deep.equal(expected);
    await other.close();
    expect(await ada.incoming.receive()).to.deep.equal({
      type: 'left',
      name: 'ada2',
      at: { epoch, offset: 5 },
    });
  });

  it('a member who joins again since its position keeps its name and gets what it missed, once, in order', async () => {
    const demo = await start({ bot: false });
    const ada = await join(demo, 'ada');
    const welcome = await ada.incoming.receive();
    if (welcome.type !== 'welcome') expect.fail(`Expected a welcome, got ${welcome.type}`);
    const { epoch } = welcome.at;
    const bob = await join(demo, 'bob');
    await bob.incoming.receive(); // welcome
    await ada.outgoing.send({ type: 'say', text: 'one' });
    const seen = await receiveN(ada, 2); // joined bob, one
    expect(seen.at(-1)).to.deep.equal({
      type: 'message',
      from: 'ada',
      text: 'one',
      at: { epoch, offset: 3 },
    });
    await ada.close(); // ada leaves: offset 4
    await bob.outgoing.send({ type: 'say', text: 'two' });
    await bob.outgoing.send({ type: 'say', text: 'three' });
    await receiveN(bob, 4); // one, left ada, two, three
    const back = await connect<ServerMsg, ClientMsg>(`${demo.wsUrl}${Chat.path}`, {
      codec: Chat.clientCodec,
    });
    sessions.push(back);
    await back.outgoing.send({ type: 'join', name: 'ada', since: { epoch, offset: 3 } });
    expect(await receiveN(back, 3)).to.deep.equal([
      // It was not counted as here any more: a plain join, under the same name.
      { type: 'welcome', name: 'ada', members: ['bob', 'ada'], at: { epoch, offset: 3 } },
      // Its own leave (offset 4) and join (offset 7) are not shown to it.
      { type: 'message', from: 'bob', text: 'two', at: { epoch, offset: 5 } },
      { type: 'message', from: 'bob', text: 'three', at: { epoch, offset: 6 } },
    ]);
    expect(await bob.incoming.receive()).to.deep.equal({
      type: 'joined',
      name: 'ada',
      at: { epoch, offset: 7 },
    });
    await bob.outgoing.send({ type: 'say', text: 'four' });
    expect(await back.incoming.receive()).to.deep.equal({
      type: 'message',
      from: 'bob',
      text: 'four',
      at: { epoch, offset: 8 },
    });
  });

  it('a member who joins since a position of another epoch is told it missed events, then gets the new ones', async () => {
    const demo = await start({ bot: false });
    const session = await connect<ServerMsg, ClientMsg>(`${demo.wsUrl}${Chat.path}`, {
      codec: Chat.clientCodec,
    });
    sessions.push(session);
    await session.outgoing.send({
      type: 'join',
      name: 'ada',
      since: { epoch: 'gone', offset: 41 },
    });
    const [welcome, missed] = await receiveN(session, 2);
    if (welcome?.type !== 'welcome') expect.fail(`Expected a welcome, got ${welcome?.type}`);
    const { epoch } = welcome.at;
    expect(epoch).not.to.equal('gone');
    // The room's position when it came (its own join, offset 1, is not shown to it).
    expect(welcome).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
      at: { epoch, offset: 0 },
    });
    expect(missed).to.deep.equal({ type: 'missed' });
    await session.outgoing.send({ type: 'say', text: 'hi' });
    expect(await session.incoming.receive()).to.deep.equal({
      type: 'message',
      from: 'ada',
      text: 'hi',
      at: { epoch, offset: 2 },
    });
  });

  it('a member whose since is older than the history kept is told it missed events, then gets the oldest kept on', async () => {
    const room = createRoom();
    const ada = await room.join('ada'); // offset 1
    for (let i = 1; i <= HISTORY + 1; i++) room.say('ada', `m${i}`); // offsets 2 … 1002
    const { epoch } = ada.welcome.at;
    const back = await room.join('bob', { epoch, offset: 1 });
    expect(back.missed).to.equal(false); // same epoch: the gap comes as the first event
    const first = await back.events.receive();
    // Offsets 1003 (bob's join) back to 4 are kept: 2 and 3 are gone.
    expect(first).to.deep.equal({
      type: 'gap',
      from: { epoch, offset: 2 },
      to: { epoch, offset: 3 },
      count: 2,
    });
    const second = await back.events.receive();
    expect(second.type === 'publication' && second.value.event).to.deep.equal({
      type: 'message',
      from: 'ada',
      text: 'm3',
    });
    room.close();
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
    expect(withoutAt(await own.incoming.receive())).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
    });
  });

  it("accepts pages of its peers (their origins), lists the peers' sockets at /peers.json, and nothing else", async () => {
    const demo = await start({ bot: false, peers: ['http://127.0.0.1:1/', 'http://localhost:2'] });
    const peers = await fetch(`${demo.url}peers.json`);
    expect(peers.headers.get('content-type')).to.equal('application/json');
    expect(await peers.json()).to.deep.equal(['ws://127.0.0.1:1', 'ws://localhost:2']);
    const url = `${demo.wsUrl}${Chat.path}`;
    const fromPeer = await connect<ServerMsg, ClientMsg>(url, {
      codec: Chat.clientCodec,
      socketOptions: { origin: 'http://localhost:2' },
    });
    sessions.push(fromPeer);
    await fromPeer.outgoing.send({ type: 'join', name: 'ada' });
    expect((await fromPeer.incoming.receive()).type).to.equal('welcome');
    for (const origin of ['http://localhost:3', 'https://127.0.0.1:1']) {
      const refused = await connect(url, { socketOptions: { origin } }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect((refused as HandshakeError).status).to.equal(403, origin);
    }
    const alone = await start({ bot: false });
    expect(await (await fetch(`${alone.url}peers.json`)).json()).to.deep.equal([]);
  });

  it('starts the bot, which greets each newcomer and answers @bot', async () => {
    const demo = await start(); // resolves once the bot has joined
    const ada = await join(demo, 'ada');
    const [welcome, greeting] = await receiveN(ada, 2);
    expect(withoutAt(welcome!)).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['bot', 'ada'],
    });
    expect(withoutAt(greeting!)).to.deep.equal({
      type: 'message',
      from: 'bot',
      text: 'Welcome, ada! Say "@bot help" to see what I can do.',
    });
    await ada.outgoing.send({ type: 'say', text: '@bot ping' });
    expect((await receiveN(ada, 2)).map(withoutAt)).to.deep.equal([
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
    const backend = await failure({ backend: 42 });
    expect(backend).to.be.instanceOf(TypeError);
    expect((backend as Error).message).to.equal(
      'Expected backend to be a TopicBackend or undefined, got 42',
    );
    const peers = await failure({ peers: 'http://127.0.0.1:8082' });
    expect(peers).to.be.instanceOf(TypeError);
    expect((peers as Error).message).to.equal(
      'Expected peers to be an array of http:// URLs, got "http://127.0.0.1:8082"',
    );
    const peer = await failure({ peers: ['ws://127.0.0.1:8082'] });
    expect(peer).to.be.instanceOf(TypeError);
    expect((peer as Error).message).to.equal(
      'Expected each peer to be an http:// URL, got "ws://127.0.0.1:8082"',
    );
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
  it('rooms sharing a backend are one room: each counts the others’ members, and a member may come back on another', async () => {
    const backend = new MemoryBackend();
    const lines: string[] = [];
    const a = createRoom({ backend, log: (line) => lines.push(`A: ${line}`) });
    const b = createRoom({ backend, log: (line) => lines.push(`B: ${line}`) });
    const ada = await a.join('ada');
    await ticks();
    expect(b.names).to.deep.equal(['ada']);
    // A taken name is taken on every node.
    const other = await b.join('ada');
    expect(other.name).to.equal('ada2');
    await ticks();
    expect(a.names).to.deep.equal(['ada', 'ada2']);
    a.say('ada', 'hello');
    // ada's node is gone without a word (no `left`): she comes back on B since her position.
    const { epoch } = ada.welcome.at;
    const back = await b.join('ada', { epoch, offset: 1 });
    expect(back.welcome).to.deep.equal({
      type: 'welcome',
      name: 'ada',
      members: ['ada', 'ada2'],
      at: { epoch, offset: 1 },
    });
    expect(back.missed).to.equal(false);
    const got: unknown[] = [];
    for (let r = back.events.tryReceive(); r.ok; r = back.events.tryReceive()) {
      if (r.value.type === 'publication') got.push(r.value.value.event);
    }
    // What she missed, and no new join: B counted her as here already.
    expect(got).to.deep.equal([
      { type: 'joined', name: 'ada2' },
      { type: 'message', from: 'ada', text: 'hello' },
    ]);
    b.leave('ada');
    await ticks();
    expect([a.names, b.names]).to.deep.equal([['ada2'], ['ada2']]);
    expect(lines).to.deep.equal([
      'A: ada joined (1 here)',
      'B: ada2 joined (2 here)',
      'B: ada is back (2 here)',
      'B: ada left (1 here)',
    ]);
    a.close();
    b.close();
  });

  it('ends a member whose subscription is full (too slow) with SubscriberOverflowError; the others lose nothing', async () => {
    const lines: string[] = [];
    const room = createRoom({ log: (line) => lines.push(line) });
    const slow = await room.join('slow');
    const fast = await room.join('fast');
    const { epoch } = slow.welcome.at;
    expect(slow.welcome).to.deep.equal({
      type: 'welcome',
      name: 'slow',
      members: ['slow'],
      at: { epoch, offset: 1 },
    });
    expect(fast.welcome).to.deep.equal({
      type: 'welcome',
      name: 'fast',
      members: ['slow', 'fast'],
      at: { epoch, offset: 2 },
    });
    // slow holds: joined fast, then 255 messages: full.
    for (let i = 1; i <= MAILBOX_CAPACITY - 1; i++) room.say('fast', `m${i}`);
    room.say('fast', 'one too many');
    const toSlow: unknown[] = [];
    const error = await (async () => {
      try {
        for await (const event of slow.events) {
          if (event.type === 'publication') toSlow.push(event.value.event);
        }
      } catch (failure) {
        return failure;
      }
      return undefined;
    })();
    expect(error).to.be.instanceOf(SubscriberOverflowError);
    expect(toSlow).to.have.length(MAILBOX_CAPACITY);
    expect(toSlow[0]).to.deep.equal({ type: 'joined', name: 'fast' });
    expect(toSlow.at(-1)).to.deep.equal({ type: 'message', from: 'fast', text: 'm255' });
    // fast reads as it goes: it has every message, and sees slow leave.
    const toFast: unknown[] = [];
    const readFast = (): void => {
      for (let r = fast.events.tryReceive(); r.ok; r = fast.events.tryReceive()) {
        if (r.value.type === 'publication') toFast.push(r.value.value.event);
      }
    };
    readFast();
    room.leave('slow'); // what the slow member's handler does
    room.leave('slow'); // and its cleanup: already gone, nothing happens
    expect(room.names).to.deep.equal(['fast']);
    readFast();
    expect(toFast).to.have.length(256 + 1);
    expect(toFast.slice(-2)).to.deep.equal([
      { type: 'message', from: 'fast', text: 'one too many' },
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
