// The reconnecting client in Node: the browser-safe state-machine cases (also run in
// Chromium from reconnecting.cases.ts), then cases against real `ws` servers on 127.0.0.1
// (restarts, abrupt kills, a server that counts concurrent connections) and exact timing
// with fake timers.
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { ConnectError, WebSocketCloseError } from '../../lib/errors.js';
import { reconnecting } from '../../lib/websocket/index.js';
import type {
  ConnectionState,
  ReconnectingClient,
  WebSocketConstructor,
  WebSocketLike,
} from '../../lib/websocket/index.js';
import {
  FAST,
  ScriptedWorld,
  brief,
  collect,
  defineReconnectingCases,
  rejection,
  until,
} from './reconnecting.cases.js';

defineReconnectingCases();

/** A `ws` server that can be stopped and restarted on the same port and counts connections. */
class CountingServer {
  port = 0;
  /** Connections open right now, and the most there ever were at once. */
  live = 0;
  maxLive = 0;
  accepted = 0;
  readonly clients = new Set<WebSocket>();
  /** What to do with the n-th connection (1-based); default: echo. */
  behave: (ws: WebSocket, n: number) => void = (ws) => {
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  };
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  readonly #sockets = new Set<Socket>();

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  async start(): Promise<void> {
    const http = createServer((_request, response) => response.writeHead(426).end());
    const wss = new WebSocketServer({ server: http });
    http.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    wss.on('connection', (ws) => {
      this.clients.add(ws);
      this.live++;
      this.maxLive = Math.max(this.maxLive, this.live);
      ws.on('close', () => {
        this.clients.delete(ws);
        this.live--;
      });
      this.behave(ws, ++this.accepted);
    });
    await new Promise<void>((resolve) => http.listen(this.port, '127.0.0.1', resolve));
    this.port = (http.address() as AddressInfo).port;
    this.#http = http;
    this.#wss = wss;
  }

  /** Kills every connection without a Close frame and stops listening. */
  async stop(): Promise<void> {
    const http = this.#http;
    const wss = this.#wss;
    if (http === undefined || wss === undefined) return;
    this.#http = undefined;
    this.#wss = undefined;
    for (const ws of wss.clients) ws.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      wss.close(() => resolve());
    });
    await new Promise<void>((resolve, reject) => {
      http.close((error) => (error ? reject(error) : resolve()));
    });
    await until(() => this.live === 0, 'the server saw every connection close');
  }
}

/** `ws`, counting the client sockets that have not yet fired `close`. */
function countingClient(): {
  WebSocket: WebSocketConstructor;
  live: () => number;
  max: () => number;
} {
  let live = 0;
  let max = 0;
  const Counting = function (url: string, protocols?: string | string[]): WebSocketLike {
    const socket = new WebSocket(url, protocols);
    live++;
    max = Math.max(max, live);
    socket.on('close', () => live--);
    return socket;
  } as unknown as WebSocketConstructor;
  return { WebSocket: Counting, live: () => live, max: () => max };
}

const netKinds = (): string[] =>
  process
    .getActiveResourcesInfo()
    .filter((kind) => kind === 'TCPSocketWrap' || kind === 'TCPServerWrap' || kind === 'Timeout');

describe('reconnecting() with real ws servers', () => {
  let server: CountingServer;
  let client: ReconnectingClient | undefined;
  let baseline: string[];

  before(() => {
    baseline = netKinds();
  });

  beforeEach(async () => {
    server = new CountingServer();
    await server.start();
  });

  afterEach(async () => {
    await client?.stop();
    client = undefined;
    await server.stop();
  });

  after(async () => {
    // Nothing may outlive the suite: no socket, no server, no timer.
    for (let i = 0; i < 50 && netKinds().length > baseline.length; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(netKinds().sort()).to.deep.equal([...baseline].sort());
  });

  it('reconnects through a server restart with fresh channels, one connection at a time', async () => {
    const echoed: unknown[][] = [];
    const states: ConnectionState[] = [];
    client = reconnecting<string>(
      server.url,
      { ...FAST, minDelay: 10, maxDelay: 40, minUptime: 0 },
      async ({ incoming, outgoing, connection }) => {
        const mine: unknown[] = [];
        echoed.push(mine);
        await outgoing.send(`hello ${connection}`);
        for await (const message of incoming) mine.push(message);
      },
    );
    const all = client.states();
    const record = (async () => {
      for await (const state of all) states.push(state);
    })();
    await until(() => echoed[0]?.length === 1, 'the first echo');
    await server.stop();
    await until(
      () => states.filter((s) => s.type === 'closed' && !s.reason.opened).length >= 2,
      'two refused attempts',
    );
    await server.start();
    await until(() => echoed[1]?.length === 1, 'the second echo');
    await client.stop();
    await record;
    expect(echoed).to.deep.equal([['hello 1'], ['hello 2']]);
    expect(server.maxLive).to.equal(1);
    const closes = states.flatMap((s) => (s.type === 'closed' ? [s.reason] : []));
    expect(closes[0]).to.include({ code: 1006, wasClean: false, opened: true, local: false });
    expect(closes[0]?.error).to.be.instanceOf(WebSocketCloseError);
    for (const refused of closes.slice(1, -1)) {
      expect(refused).to.include({ code: 1006, opened: false, local: false });
      expect(refused.error).to.be.instanceOf(ConnectError);
    }
    expect(closes.at(-1)).to.include({ code: 1000, opened: true, local: true, error: undefined });
    expect(states.filter((s) => s.type === 'open')).to.have.length(2);
  });

  it('sees a connection killed without a Close frame as 1006 and reconnects; stops after 1000', async () => {
    server.behave = (ws, n) => {
      if (n === 1) setTimeout(() => ws.terminate(), 10);
      else ws.close(1000, 'done');
    };
    client = reconnecting(
      server.url,
      { ...FAST, minDelay: 5, minUptime: 60_000 },
      async ({ incoming }) => {
        await incoming.receiveCatching();
      },
    );
    const states = collect(client);
    expect(await client.done).to.deep.equal({
      code: 1000,
      reason: 'done',
      wasClean: true,
      attempt: 2,
      opened: true,
      local: false,
      error: undefined,
    });
    expect(brief(await states)).to.deep.equal([
      'connecting 1',
      'open 1 #1',
      'closed 1 1006 retry 5',
      'connecting 2',
      'open 2 #2',
      'closed 2 1000 retry -',
    ]);
    expect(server.accepted).to.equal(2);
  });

  it('never has two live sockets, even with zero backoff and idle timeouts that drop the socket', async () => {
    server.behave = () => undefined; // silent: every connection hits the idle timeout
    const counting = countingClient();
    let connections = 0;
    client = reconnecting(
      server.url,
      { ...FAST, minDelay: 0, maxDelay: 0, idleTimeout: 20, WebSocket: counting.WebSocket },
      async ({ incoming, connection }) => {
        connections = connection;
        await incoming.receiveCatching();
      },
    );
    await until(() => connections >= 5, 'five connections');
    await client.stop();
    expect(counting.max()).to.equal(1);
    expect(counting.live()).to.equal(0);
    expect(server.maxLive).to.be.at.most(1);
  });

  it('closes the live connection when stopped and makes no further attempt', async () => {
    client = reconnecting(server.url, FAST, async ({ incoming }) => {
      await incoming.receiveCatching();
    });
    await until(() => client?.isOpen === true, 'open');
    const closedOnServer = new Promise<number>((resolve) => {
      [...server.clients][0]?.on('close', (code) => resolve(code));
    });
    await client.stop();
    expect(await closedOnServer).to.equal(1000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(server.accepted).to.equal(1);
  });
});

describe('reconnecting() timing (fake timers)', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  /** Lets the loop's promise continuations run after the last timer of a tick. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await clock.tickAsync(0);
  };

  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 });
  });

  afterEach(() => {
    clock.uninstall();
  });

  it('starts attempt n exactly min(maxDelay, minDelay × factor^(n−2)) ms after the previous close', async () => {
    const world = new ScriptedWorld([], { kind: 'refuse' });
    const c = reconnecting(
      'ws://scripted.invalid/',
      {
        minDelay: 100,
        maxDelay: 500,
        factor: 2,
        jitter: 0,
        maxAttempts: 6,
        WebSocket: world.WebSocket,
      },
      () => undefined,
    );
    const done = rejection(c.done);
    const timed: [ConnectionState, number][] = [];
    const record = (async () => {
      for await (const state of c.states()) timed.push([state, Date.now()]);
    })();
    await settle();
    const closedAt = Date.now();
    expect(c.state).to.deep.include({ type: 'closed', retryIn: 100 });
    await clock.tickAsync(99);
    await settle();
    expect(world.times).to.have.length(1);
    await clock.tickAsync(1);
    await settle();
    expect(world.times[1]).to.equal(closedAt + 100);
    await clock.tickAsync(2000);
    await record;
    // Every wait is exactly the `retryIn` announced in the closed state before it.
    const waits: [number | undefined, number][] = [];
    timed.forEach(([state, time], i) => {
      const next = timed[i + 1];
      if (state.type === 'closed' && next !== undefined)
        waits.push([state.retryIn, next[1] - time]);
    });
    expect(waits).to.deep.equal([
      [100, 100],
      [200, 200],
      [400, 400],
      [500, 500],
      [500, 500],
    ]);
    expect(world.times).to.have.length(6);
    expect(await done).to.have.property('attempts', 6);
  });

  it('resets the attempt counter only after a connection stayed up exactly minUptime', async () => {
    const world = new ScriptedWorld([
      { kind: 'open', close: { code: 1006, wasClean: false, after: 4999 } },
      { kind: 'open', close: { code: 1006, wasClean: false, after: 5000 } },
      { kind: 'open', close: { code: 1006, wasClean: false, after: 5000 } },
    ]);
    let closes = 0;
    const c = reconnecting(
      'ws://scripted.invalid/',
      {
        minDelay: 100,
        jitter: 0,
        minUptime: 5000,
        WebSocket: world.WebSocket,
        shouldReconnect: () => ++closes < 3,
      },
      async ({ incoming }) => {
        await incoming.receiveCatching();
      },
    );
    // Each state with the (fake) time it was reached at.
    const timed: [ConnectionState, number][] = [];
    const record = (async () => {
      for await (const state of c.states()) timed.push([state, Date.now()]);
    })();
    await clock.tickAsync(20_000);
    await c.done;
    await record;
    const at = (i: number): number => timed[i]?.[1] as number;
    expect(brief(timed.map(([state]) => state))).to.deep.equal([
      'connecting 1',
      'open 1 #1',
      'closed 1 1006 retry 100',
      'connecting 2',
      'open 2 #2',
      'closed 2 1006 retry 100',
      'connecting 1',
      'open 1 #3',
      'closed 1 1006 retry -',
    ]);
    // Uptimes 4999 (a failure) and 5000 (a success); each wait exactly `retryIn`.
    expect([at(2) - at(1), at(5) - at(4), at(8) - at(7)]).to.deep.equal([4999, 5000, 5000]);
    expect([at(3) - at(2), at(6) - at(5)]).to.deep.equal([100, 100]);
    expect(world.times.slice(1)).to.deep.equal([at(3), at(6)]);
  });
});
