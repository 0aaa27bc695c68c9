/**
 * Resumable network channels (docs/protocol.md, "Resume"; issue 16): a channel endpoint's
 * session survives a lost connection — values both ways at every capacity are delivered
 * once and in order across cuts made here (a `node:net` proxy that drops the TCP
 * connection) — and when it cannot resume (window passed, server restarted, store
 * eviction, foreign token) it ends with `SessionExpiredError` and exact accounting.
 */
import { expect } from 'chai';
import { createServer, connect as connectTcp } from 'node:net';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import {
  ConnectionLostError,
  ProtocolError,
  SessionExpiredError,
  channelEndpoint,
  channels,
  contract,
  remoteTopic,
  serveTopics,
  toClient,
  toServer,
} from '../../lib/network/index.js';
import { Topic } from '../../lib/index.js';
import type { ChannelRouteOptions } from '../../lib/network/index.js';
import { route, serve } from '../../lib/server/index.js';
import type { Server, ServeOptions } from '../../lib/server/index.js';
import { connect, text } from '../../lib/websocket/index.js';
import { startCutProxy } from './cut-proxy.js';
import type { CutProxy } from './cut-proxy.js';

const FAST = { minDelay: 5, maxDelay: 5, jitter: 0, minUptime: 0 } as const;

function echoEndpoint(capacity: number) {
  return channelEndpoint(
    `/echo${String(capacity)}`,
    contract('echo', 1, {
      up: toServer<number>({ capacity }),
      down: toClient<number>({ capacity }),
    }),
  );
}

async function startServer(
  routes: Parameters<typeof serve>[1],
  options: Partial<ServeOptions> = {},
): Promise<{ server: Server; errors: unknown[]; port: number }> {
  const errors: unknown[] = [];
  const server = await serve(
    {
      host: '127.0.0.1',
      port: 0,
      pingInterval: Infinity,
      onError: (error) => errors.push(error),
      ...options,
    },
    routes,
  );
  return { server, errors, port: server.port };
}

/** Resolves once `signal` has aborted (at once if it already has). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Resolves once `check()` is true (polled every few ms), or rejects after `ms`. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('Timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A raw protocol client on `ws`: frames in and out, for the protocol-level cases. */
interface RawClient {
  readonly ws: WebSocket;
  /** Frames received so far, parsed. */
  readonly frames: unknown[][];
  /** Resolves with the next frame not yet handed out (waits for one). */
  next(): Promise<unknown[]>;
  send(...frames: unknown[][]): void;
  readonly closed: Promise<{ code: number; reason: string }>;
}

async function rawClient(url: string): Promise<RawClient> {
  const ws = new WebSocket(url);
  const frames: unknown[][] = [];
  let read = 0;
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    for (const frame of data.toString().split('\n')) frames.push(JSON.parse(frame) as unknown[]);
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      wake?.();
    });
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      resolve();
    });
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    async next() {
      while (read >= frames.length) {
        if (ws.readyState === WebSocket.CLOSED) throw new Error('closed');
        await new Promise<void>((resolve) => (wake = resolve));
      }
      return frames[read++] as unknown[];
    },
    send(...out) {
      ws.send(out.map((frame) => JSON.stringify(frame)).join('\n'));
    },
    closed,
  };
}

/** Frames of the session stream among `frames` (after `session`/`resumed`, no `recv`). */
function streamFrames(frames: readonly unknown[][]): number {
  return frames.filter((f) => !['sluice', 'session', 'resumed', 'recv'].includes(f[0] as string))
    .length;
}

describe('resumable network channels', () => {
  let proxy: CutProxy | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await proxy?.close();
    await server?.close();
    proxy = undefined;
    server = undefined;
  });

  for (const capacity of [0, 1, 16, Infinity]) {
    it(`delivers values both ways once and in order across cuts (capacity ${String(capacity)})`, async () => {
      const Echo = echoEndpoint(capacity);
      const COUNT = 60;
      const serverUndelivered: number[] = [];
      let serverRuns = 0;
      let serverResumes = -1;
      const started = await startServer([
        Echo.handle(
          async (session) => {
            const { up, down } = session.channels;
            serverRuns++;
            for await (const value of up) await down.send(value * 2);
            down.close();
            serverResumes = session.resumes;
          },
          { undelivered: { down: (v) => serverUndelivered.push(v) } },
        ),
      ]);
      server = started.server;
      proxy = await startCutProxy(started.port);
      const p = proxy;
      const clientUndelivered: number[] = [];
      const received: number[] = [];
      let sendsResolved = 0;
      let clientRuns = 0;
      let clientResumes = -1;
      const cutsAt = new Set([5, 17, 31, 44]);
      const client = Echo.reconnecting(
        p.url,
        async (session) => {
          const { up, down } = session.channels;
          clientRuns++;
          const sending = (async () => {
            for (let i = 0; i < COUNT; i++) {
              await up.send(i);
              sendsResolved++;
            }
          })();
          // Every value before the goodbye (which starts when `up` closes): each cut hits
          // a live session, and the test goes on once it resumed.
          while (received.length < COUNT) {
            received.push(await down.receive());
            if (cutsAt.has(received.length)) {
              const before = session.resumes;
              p.cut();
              await until(() => session.resumes > before);
            }
          }
          await sending;
          up.close();
          expect((await down.receiveCatching()).ok).to.equal(false);
          clientResumes = session.resumes;
        },
        { reconnect: FAST, undelivered: { up: (v) => clientUndelivered.push(v) } },
      );
      const close = await client.done;
      expect(close.code).to.equal(1000);
      expect({ clientRuns, serverRuns }).to.deep.equal({ clientRuns: 1, serverRuns: 1 });
      expect(received).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i * 2));
      expect(sendsResolved).to.equal(COUNT);
      expect(clientUndelivered).to.deep.equal([]);
      expect(serverUndelivered).to.deep.equal([]);
      expect(clientRuns).to.equal(1);
      expect(serverRuns).to.equal(1);
      expect(clientResumes).to.equal(cutsAt.size);
      await until(() => serverResumes >= 0);
      expect(serverResumes).to.equal(cutsAt.size);
      expect(p.connections).to.equal(cutsAt.size + 1);
      expect(started.errors).to.deep.equal([]);
    });
  }

  it('resumes again after a cut during the resume handshake (the server attached, the client never knew)', async () => {
    const Echo = echoEndpoint(16);
    let serverResumes = (): number => -1;
    let serverRuns = 0;
    const started = await startServer([
      Echo.handle(async (session) => {
        serverRuns++;
        serverResumes = () => session.resumes;
        for await (const value of session.channels.up) await session.channels.down.send(value * 2);
        session.channels.down.close();
      }),
    ]);
    server = started.server;
    proxy = await startCutProxy(started.port);
    const p = proxy;
    const received: number[] = [];
    let clientRuns = 0;
    let clientResumes = -1;
    const client = Echo.reconnecting(
      p.url,
      async (session) => {
        clientRuns++;
        const { up, down } = session.channels;
        await up.send(1);
        received.push(await down.receive());
        p.muteNew = true;
        p.cut();
        await until(() => serverResumes() === 1);
        p.muteNew = false;
        p.cut();
        await up.send(2);
        received.push(await down.receive());
        up.close();
        expect((await down.receiveCatching()).ok).to.equal(false);
        clientResumes = session.resumes;
      },
      { reconnect: FAST },
    );
    expect((await client.done).code).to.equal(1000);
    expect(received).to.deep.equal([2, 4]);
    expect({ clientRuns, serverRuns, clientResumes }).to.deep.equal({
      clientRuns: 1,
      serverRuns: 1,
      clientResumes: 1,
    });
    expect(serverResumes()).to.equal(2);
    expect(p.connections).to.equal(3);
  });

  it('resumes after an attempt whose opening handshake was black-holed: the attempt ends at openTimeout, the next resumes within the window', async () => {
    const Echo = echoEndpoint(16);
    let serverRuns = 0;
    const started = await startServer([
      Echo.handle(async (session) => {
        serverRuns++;
        for await (const value of session.channels.up) await session.channels.down.send(value * 2);
        session.channels.down.close();
      }),
    ]);
    server = started.server;
    proxy = await startCutProxy(started.port);
    const p = proxy;
    const received: number[] = [];
    let clientResumes = -1;
    let heldFor = -1;
    const client = Echo.reconnecting(
      p.url,
      async (session) => {
        const { up, down } = session.channels;
        await up.send(1);
        received.push(await down.receive());
        // The next connection is accepted and hangs in its opening handshake.
        p.holdNew = true;
        p.cut();
        await until(() => p.connections === 2);
        const held = Date.now();
        p.holdNew = false;
        await up.send(2);
        received.push(await down.receive());
        heldFor = Date.now() - held;
        up.close();
        expect((await down.receiveCatching()).ok).to.equal(false);
        clientResumes = session.resumes;
      },
      { reconnect: { ...FAST, openTimeout: 300 }, resume: { window: 5_000 } },
    );
    expect((await client.done).code).to.equal(1000);
    expect(received).to.deep.equal([2, 4]);
    expect({ clientResumes, serverRuns, connections: p.connections }).to.deep.equal({
      clientResumes: 1,
      serverRuns: 1,
      connections: 3,
    });
    // The held attempt lasted its openTimeout (300 ms), not the default 30 s.
    expect(heldFor).to.be.within(250, 4_000);
  });

  it('ends both ends with SessionExpiredError when the connection is lost before the token arrived', async () => {
    const Echo = echoEndpoint(16);
    const serverEnds: unknown[] = [];
    let serverRuns = 0;
    const started = await startServer([
      Echo.handle(
        async ({ channels: { up }, signal }) => {
          if (++serverRuns > 1) return;
          await aborted(signal);
          const result = up.tryReceive();
          serverEnds.push(result.ok ? result.value : result.cause);
        },
        { resume: { window: 50 } },
      ),
    ]);
    server = started.server;
    proxy = await startCutProxy(started.port);
    const p = proxy;
    p.muteNew = true; // the server's session frame (and all after its hello) is lost
    let clientRuns = 0;
    const client = Echo.reconnecting(
      p.url,
      () => {
        clientRuns++;
      },
      { reconnect: FAST },
    );
    const states = client.states();
    await until(() => p.connections === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    p.muteNew = false;
    p.cut();
    let first: unknown;
    for await (const state of states) {
      if (state.type === 'closed') {
        first ??= state.reason.error;
      }
    }
    expect((await client.done).code).to.equal(1000);
    expect(first).to.be.instanceOf(SessionExpiredError);
    expect((first as Error).message).to.equal(
      "The connection was lost before the server's resume token arrived: the session cannot resume",
    );
    await until(() => serverEnds.length === 1);
    expect(serverEnds[0]).to.be.instanceOf(SessionExpiredError);
    expect({ clientRuns, serverRuns }).to.deep.equal({ clientRuns: 1, serverRuns: 2 });
  });

  describe('expiry', () => {
    const Echo = echoEndpoint(16);

    /**
     * A client whose first session sends 0, 1, 2 (the server never takes them), loses its
     * connection (`lose`), and ends with the error its `down.receive()` rejects with; its
     * second session closes at once. Returns what each side saw.
     */
    async function expiryCase(
      routeOptions: ChannelRouteOptions<typeof Echo.contract.channels>,
      lose: (proxy: CutProxy) => Promise<void>,
      minDelay: number,
    ) {
      const serverEnds: unknown[] = [];
      let serverRuns = 0;
      const started = await startServer([
        Echo.handle(async ({ channels: { up }, signal }) => {
          if (++serverRuns > 1) return;
          await aborted(signal);
          const result = up.tryReceive();
          serverEnds.push(result.ok ? result.value : result.cause);
        }, routeOptions),
      ]);
      server = started.server;
      proxy = await startCutProxy(started.port);
      const p = proxy;
      const undelivered: number[] = [];
      const clientEnds: unknown[] = [];
      let clientRuns = 0;
      const client = Echo.reconnecting(
        p.url,
        async ({ channels: { up, down } }) => {
          if (++clientRuns > 1) return;
          for (const value of [0, 1, 2]) await up.send(value);
          await new Promise((resolve) => setTimeout(resolve, 30));
          const lost = lose(p);
          clientEnds.push(await down.receive().catch((error: unknown) => error));
          await lost;
        },
        {
          reconnect: { ...FAST, minDelay, maxDelay: minDelay },
          undelivered: { up: (v) => undelivered.push(v) },
        },
      );
      const close = await client.done;
      return { close, serverEnds, clientEnds, undelivered, clientRuns, serverRuns, started };
    }

    it('ends both ends with SessionExpiredError once the window passed, reports each value once, then starts afresh', async () => {
      const outcome = await expiryCase(
        { resume: { window: 50 } },
        async (p) => {
          p.cut();
        },
        300,
      );
      expect(outcome.close.code).to.equal(1000);
      await until(() => outcome.serverEnds.length === 1);
      expect(outcome.undelivered).to.deep.equal([0, 1, 2]);
      const [clientEnd] = outcome.clientEnds;
      expect(clientEnd).to.be.instanceOf(SessionExpiredError);
      expect((clientEnd as SessionExpiredError).code).to.equal('ERR_SESSION_EXPIRED');
      expect((clientEnd as Error).message).to.equal(
        'The server refused to resume the session (3410)',
      );
      const [serverEnd] = outcome.serverEnds;
      expect(serverEnd).to.be.instanceOf(SessionExpiredError);
      expect((serverEnd as Error).message).to.equal(
        'The session was not resumed within its window (50 ms)',
      );
      expect({ client: outcome.clientRuns, server: outcome.serverRuns }).to.deep.equal({
        client: 2,
        server: 2,
      });
    });

    it('keeps values that had arrived out of reach while suspended: after an expiry each is reported once, never also received', async () => {
      let cut = false;
      const serverGot: unknown[] = [];
      let serverRuns = 0;
      const started = await startServer([
        Echo.handle(
          async ({ channels: { up } }) => {
            if (++serverRuns > 1) return;
            await until(() => cut);
            // Suspended now: the value that arrived must not be taken (its ack could not
            // reach the client before the expiry).
            serverGot.push(await up.receive().catch((error: unknown) => error));
          },
          { resume: { window: 100 } },
        ),
      ]);
      server = started.server;
      proxy = await startCutProxy(started.port);
      const p = proxy;
      const undelivered: number[] = [];
      let clientRuns = 0;
      const client = Echo.reconnecting(
        p.url,
        async ({ channels: { up, down } }) => {
          if (++clientRuns > 1) return;
          await up.send(5);
          await new Promise((resolve) => setTimeout(resolve, 30));
          p.cut();
          await new Promise((resolve) => setTimeout(resolve, 30));
          cut = true;
          await down.receive().catch(() => undefined);
        },
        {
          reconnect: { ...FAST, minDelay: 300, maxDelay: 300 },
          undelivered: { up: (v) => undelivered.push(v) },
        },
      );
      await client.done;
      await until(() => serverGot.length === 1);
      expect(serverGot[0]).to.be.instanceOf(SessionExpiredError);
      expect(undelivered).to.deep.equal([5]);
    });

    it("expires the client's session after its own window, without a server to refuse", async () => {
      const Other = echoEndpoint(16);
      const started = await startServer([Other.handle(() => new Promise(() => undefined))]);
      server = started.server;
      proxy = await startCutProxy(started.port);
      const p = proxy;
      const undelivered: number[] = [];
      let end: unknown;
      const client = Other.reconnecting(
        p.url,
        async ({ channels: { up, down } }) => {
          await up.send(7);
          p.target = 1; // nothing listens there: every reconnect fails
          p.cut();
          end = await down.receive().catch((error: unknown) => error);
          void client.stop();
        },
        {
          resume: { window: 100 },
          reconnect: { ...FAST, minDelay: 20, maxDelay: 20 },
          undelivered: { up: (v) => undelivered.push(v) },
        },
      );
      await client.done;
      expect(end).to.be.instanceOf(SessionExpiredError);
      expect((end as Error).message).to.equal(
        'The session was not resumed within its window (100 ms)',
      );
      expect(undelivered).to.deep.equal([7]);
      await server.close({ timeout: 0 });
    });

    it('expires the session when the server restarted (the new one does not know the token)', async () => {
      const restarted = await startServer([Echo.handle(() => undefined)]);
      try {
        const outcome = await expiryCase(
          {},
          async (p) => {
            p.target = restarted.port;
            p.cut();
          },
          20,
        );
        expect(outcome.undelivered).to.deep.equal([0, 1, 2]);
        expect(outcome.clientEnds[0]).to.be.instanceOf(SessionExpiredError);
        expect((outcome.clientEnds[0] as Error).message).to.equal(
          'The server refused to resume the session (3410)',
        );
        // The first server still holds the suspended session until it shuts down.
        expect(outcome.serverEnds).to.deep.equal([]);
        await outcome.started.server.close();
        await until(() => outcome.serverEnds.length === 1);
        expect(outcome.serverEnds[0]).to.be.instanceOf(SessionExpiredError);
        expect((outcome.serverEnds[0] as Error).message).to.equal(
          'The server shut down while the session waited to resume',
        );
        expect(outcome.clientRuns).to.equal(2);
      } finally {
        await restarted.server.close();
      }
    });

    it('evicts the oldest suspended session beyond maxSessions, as an expiry; the newer one resumes', async () => {
      const ends: unknown[] = [];
      const started = await startServer([
        Echo.handle(
          async ({ channels: { up, down }, signal }) => {
            const first = await up.receive();
            await down.send(first);
            await aborted(signal);
            const result = up.tryReceive();
            ends.push(result.ok ? result.value : result.cause);
          },
          { resume: { maxSessions: 1 } },
        ),
      ]);
      server = started.server;
      const proxyA = await startCutProxy(started.port);
      const proxyB = await startCutProxy(started.port);
      try {
        const seen: Record<string, unknown[]> = { a: [], b: [] };
        const resumes: Record<string, number> = {};
        const run = (name: 'a' | 'b', p: CutProxy) =>
          Echo.reconnecting(
            p.url,
            async (session) => {
              const { up, down } = session.channels;
              const mine = seen[name] ?? [];
              if (mine.length !== 0) return;
              Object.defineProperty(resumes, name, { get: () => session.resumes });
              await up.send(name === 'a' ? 1 : 2);
              mine.push(await down.receive());
              mine.push(await down.receive().catch((error: unknown) => error));
              mine.push(session.resumes);
            },
            { reconnect: { ...FAST, minDelay: 150, maxDelay: 150 } },
          );
        const a = run('a', proxyA);
        await until(() => seen.a?.length === 1);
        const b = run('b', proxyB);
        await until(() => seen.b?.length === 1);
        proxyA.cut();
        await new Promise((resolve) => setTimeout(resolve, 50));
        proxyB.cut(); // A's session is the oldest suspended one: evicted now
        await until(() => ends.length === 1);
        expect(ends[0]).to.be.instanceOf(SessionExpiredError);
        expect((ends[0] as Error).message).to.equal(
          'The server evicted the suspended session (at most 1 sessions and 67108864 bytes are kept)',
        );
        await until(() => seen.a?.length === 3);
        expect(seen.a?.[1]).to.be.instanceOf(SessionExpiredError);
        // B resumed: end it by shutting the server down (its goodbye ends B's session).
        await until(() => resumes.b === 1);
        await started.server.close();
        await until(() => seen.b?.length === 3);
        expect(seen.b?.[1]).to.be.instanceOf(SessionExpiredError);
        expect((seen.b?.[1] as Error).message).to.equal(
          'The server went away (1001): the session cannot resume there',
        );
        expect(seen.b?.[2]).to.equal(1);
        await a.stop();
        await b.stop();
      } finally {
        await proxyA.close();
        await proxyB.close();
      }
    });
  });

  describe('tokens, identities and hostile resumes', () => {
    const Echo = echoEndpoint(16);
    const path = '/echo16';

    /** A server whose `authorize` takes the identity from `?user=`, and its handler runs. */
    async function identityServer() {
      const runs: unknown[] = [];
      const started = await startServer(
        [
          Echo.handle(async ({ channels: { up, down }, signal }) => {
            runs.push('run');
            try {
              for await (const value of up) await down.send(value);
            } catch (error) {
              runs.push(error);
            }
            await aborted(signal);
          }),
        ],
        { authorize: (request) => ({ identity: request.query.get('user') ?? '' }) },
      );
      server = started.server;
      return { runs, url: `ws://127.0.0.1:${String(started.port)}${path}` };
    }

    /** A raw client that starts a resumable session; resolves once the server's 3 frames came. */
    async function startSession(url: string): Promise<{ client: RawClient; token: string }> {
      const client = await rawClient(url);
      client.send(['sluice', 4], ['resume']);
      expect(await client.next()).to.deep.equal(['sluice', 4]);
      const session = await client.next();
      expect(session[0]).to.equal('session');
      const token = session[1] as string;
      expect(token).to.match(/^[0-9a-f]{32}$/);
      client.send(['contract'], ['open', 0, 'down', 16]);
      await until(() => streamFrames(client.frames) >= 3);
      return { client, token };
    }

    it('resumes for the same identity, refuses another identity with 3410 and leaves the session alone', async () => {
      const { runs, url } = await identityServer();
      const alice = await startSession(`${url}?user=alice`);
      alice.client.ws.terminate();
      const bob = await rawClient(`${url}?user=bob`);
      bob.send(['sluice', 4], ['resume', alice.token, 3]);
      expect(await bob.closed).to.deep.equal({
        code: 3410,
        reason: 'Session expired: unknown, expired or foreign token',
      });
      const again = await rawClient(`${url}?user=alice`);
      again.send(['sluice', 4], ['resume', alice.token, 3]);
      expect(await again.next()).to.deep.equal(['sluice', 4]);
      // The server received alice's contract and open: 2 frames of the session.
      expect(await again.next()).to.deep.equal(['resumed', 2]);
      again.send(['v', 0, 41]);
      expect(await again.next()).to.deep.equal(['v', 0, 41]);
      expect(runs).to.deep.equal(['run']);
      again.ws.terminate();
    });

    it('refuses random tokens with 3410 while the event loop keeps its timers on time', async () => {
      const { url } = await identityServer();
      let late = 0;
      let last = Date.now();
      const timer = setInterval(() => {
        const now = Date.now();
        late = Math.max(late, now - last - 10);
        last = now;
      }, 10);
      try {
        const codes: number[] = [];
        for (let batch = 0; batch < 10; batch++) {
          await Promise.all(
            Array.from({ length: 10 }, async () => {
              const client = await rawClient(`${url}?user=mallory`);
              const token = Array.from({ length: 32 }, () =>
                Math.floor(Math.random() * 16).toString(16),
              ).join('');
              client.send(['sluice', 4], ['resume', token, Math.floor(Math.random() * 1e6)]);
              codes.push((await client.closed).code);
            }),
          );
        }
        expect(codes).to.have.length(100);
        expect(new Set(codes)).to.deep.equal(new Set([3410]));
      } finally {
        clearInterval(timer);
      }
      expect(late).to.be.below(250);
    });

    it('closes with 1002 a resume that claims more frames than were sent, and expires that session', async () => {
      const { runs, url } = await identityServer();
      const alice = await startSession(`${url}?user=alice`);
      alice.client.ws.terminate();
      const liar = await rawClient(`${url}?user=alice`);
      liar.send(['sluice', 4], ['resume', alice.token, 1_000_000]);
      const closed = await liar.closed;
      expect(closed.code).to.equal(1002);
      expect(closed.reason).to.equal(
        'Expected a received count from 0 to 3 (the frames sent), got 1000000',
      );
      await until(() => runs.length === 2);
      expect(runs[1]).to.be.instanceOf(SessionExpiredError);
      expect((runs[1] as Error).cause).to.be.instanceOf(ProtocolError);
      const late = await rawClient(`${url}?user=alice`);
      late.send(['sluice', 4], ['resume', alice.token, 3]);
      expect((await late.closed).code).to.equal(3410);
    });

    it('closes with 1002 a malformed resume and a recv beyond the frames sent', async () => {
      const { url } = await identityServer();
      const malformed = await rawClient(`${url}?user=x`);
      malformed.send(['sluice', 4], ['resume', 5, 'x']);
      const closed = await malformed.closed;
      expect(closed.code).to.equal(1002);
      expect(closed.reason).to.match(/^Expected \["resume"\] or \["resume", token, received\]/);
      const alice = await startSession(`${url}?user=alice`);
      alice.client.send(['recv', 99]);
      expect(await alice.client.closed).to.deep.equal({
        code: 1002,
        reason: "Received a 'recv' of 99 frames, expected 0 to 3 (the frames sent)",
      });
    });
  });

  describe('the replay log', () => {
    it('bounds what a peer that never confirms makes this end keep: sends wait, then go on after a recv', async () => {
      const Log = channelEndpoint(
        '/log',
        contract('log', 1, { down: toClient<string>({ capacity: Infinity }) }),
      );
      const value = 'x'.repeat(100);
      let sent = 0;
      let ended: unknown;
      const started = await startServer([
        Log.handle(
          async ({ channels: { down } }) => {
            try {
              for (;;) {
                await down.send(value);
                sent++;
              }
            } catch (error) {
              ended = error;
            }
          },
          { network: { maxReplayBytes: 8192 } },
        ),
      ]);
      server = started.server;
      const client = await rawClient(`ws://127.0.0.1:${String(started.port)}/log`);
      client.send(['sluice', 4], ['resume']);
      await client.next();
      await client.next();
      client.send(['contract'], ['open', 0, 'down', null]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Each value is ["v",0,"x…x"]: 110 characters, 220 bytes; the log also holds the
      // server's contract and two opens.
      const frame = JSON.stringify(['v', 0, value]).length * 2;
      const bound = Math.floor(8192 / frame) + 1;
      const values = () => client.frames.filter((f) => f[0] === 'v').length;
      expect(sent).to.be.above(0);
      expect(sent).to.be.at.most(bound);
      expect(values()).to.equal(sent);
      const stalled = sent;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(sent).to.equal(stalled);
      client.send(['recv', streamFrames(client.frames)]);
      await until(() => sent > stalled);
      // A shutdown ends it (the raw client does not answer the goodbye: byeTimeout, 1001).
      await started.server.close();
      await until(() => ended !== undefined);
      expect(ended).to.be.instanceOf(ConnectionLostError);
      expect((ended as ConnectionLostError).closeReason.code).to.equal(1001);
      client.ws.terminate();
    });
  });

  describe('interoperability', () => {
    const Echo = echoEndpoint(1);

    it('serves a client of protocol version 2 (plain channels()) as before: no resume frames', async () => {
      const started = await startServer([
        Echo.handle(async ({ channels: { up, down } }) => {
          for await (const value of up) await down.send(value + 1);
          down.close();
        }),
      ]);
      server = started.server;
      const session = await connect(`ws://127.0.0.1:${String(started.port)}/echo1`, {
        codec: text(),
      });
      const network = channels(session, { contract: Echo.contract, side: 'client' });
      const up = network.channel<number>('up');
      const down = network.channel<number>('down', { capacity: 1 });
      await network.ready;
      await up.outgoing.send(1);
      expect(await down.incoming.receive()).to.equal(2);
      up.outgoing.close();
      expect((await down.incoming.receiveCatching()).ok).to.equal(false);
      expect((await network.close()).code).to.equal(1000);
    });

    it('runs a reconnecting endpoint client against a version-2 server: a lost connection is a new session', async () => {
      const started = await startServer({
        '/echo1': route({
          codec: text(),
          handler: async (session) => {
            const network = channels(session, { contract: Echo.contract });
            const up = network.channel<number>('up', { capacity: 1 });
            const down = network.channel<number>('down');
            for await (const value of up.incoming) await down.outgoing.send(value + 1);
          },
        }),
      });
      server = started.server;
      proxy = await startCutProxy(started.port);
      const p = proxy;
      const ends: unknown[] = [];
      const client = Echo.reconnecting(
        p.url,
        async (session) => {
          const { up, down } = session.channels;
          await up.send(ends.length);
          expect(await down.receive()).to.equal(ends.length + 1);
          expect(session.resumes).to.equal(0);
          if (ends.length === 1) {
            ends.push('second session');
            void client.stop();
            return;
          }
          p.cut();
          ends.push(await down.receive().catch((error: unknown) => error));
        },
        { reconnect: FAST },
      );
      await client.done;
      expect(ends[0]).to.be.instanceOf(ConnectionLostError);
      expect(ends[1]).to.equal('second session');
    });
  });

  describe('options', () => {
    const Echo = echoEndpoint(1);

    it("rejects bad resume options with 'Expected …, got …'", () => {
      expect(() => Echo.handle(() => undefined, { resume: 5 as never })).to.throw(
        TypeError,
        'Expected resume to be false, an object or undefined, got 5',
      );
      expect(() => Echo.handle(() => undefined, { resume: { window: 0 } })).to.throw(
        RangeError,
        'Expected resume.window to be a number of milliseconds from 1 to 2147483647, got 0',
      );
      expect(() => Echo.handle(() => undefined, { resume: { maxSessions: 1.5 } })).to.throw(
        RangeError,
        'Expected resume.maxSessions to be a non-negative integer or Infinity, got 1.5',
      );
      expect(() => Echo.handle(() => undefined, { resume: { maxBytes: -1 } })).to.throw(
        RangeError,
        'Expected resume.maxBytes to be a non-negative number, got -1',
      );
      expect(() =>
        Echo.reconnecting('ws://127.0.0.1:1', () => undefined, {
          resume: { window: 'x' as never },
        }),
      ).to.throw(
        TypeError,
        "Expected resume.window to be a number of milliseconds from 1 to 2147483647, got 'x'",
      );
      expect(() => Echo.handle(() => undefined, { network: { maxReplayBytes: 0 } })).to.throw(
        RangeError,
        'Expected network.maxReplayBytes to be a positive number of bytes or Infinity, got 0',
      );
    });

    it('answers 500 when authorize returns an identity that is not a string', async () => {
      const started = await startServer([Echo.handle(() => undefined)], {
        authorize: () => ({ identity: 5 }) as never,
      });
      server = started.server;
      const client = new WebSocket(`ws://127.0.0.1:${String(started.port)}/echo1`);
      const status = await new Promise<number | undefined>((resolve) => {
        client.on('unexpected-response', (_request, response) => {
          resolve(response.statusCode);
        });
        client.on('error', () => undefined);
      });
      expect(status).to.equal(500);
      expect(started.errors).to.have.length(1);
      expect((started.errors[0] as Error).message).to.equal(
        "Expected authorize's identity to be a string, got 5 (number)",
      );
      client.terminate();
    });
  });

  describe('topic subscriptions after an expiry', () => {
    const Feed = channelEndpoint('/feed', contract('feed', 1, {}));

    it('resubscribe since their last position in the next session: every value once, in order, no gap', async () => {
      // One topic, served by two servers (two nodes sharing its history): the client's
      // session on the first expires when the proxy sends it to the second (3410).
      const topic = new Topic<number>({ retention: { count: 100 } });
      // A route per server: each has its own store of suspended sessions.
      const serving = () =>
        Feed.handle(async ({ network }) => {
          await serveTopics(network, new Map([['prices', topic]]));
        });
      const first = await startServer([serving()]);
      const second = await startServer([serving()]);
      server = first.server;
      try {
        proxy = await startCutProxy(first.port);
        const p = proxy;
        const feed = remoteTopic<number>('prices', { capacity: 4 });
        const ends: unknown[] = [];
        let runs = 0;
        const client = Feed.reconnecting(
          p.url,
          async ({ network }) => {
            runs += 1;
            await feed.follow(network).catch((error: unknown) => ends.push(error));
          },
          { reconnect: { ...FAST, minDelay: 20, maxDelay: 20 } },
        );
        await until(() => topic.subscriberCount === 1);
        for (const value of [1, 2, 3]) await topic.publish(value);
        const seen: [number, number][] = [];
        const take = async (n: number): Promise<void> => {
          while (seen.length < n) {
            const event = await feed.events.receive();
            expect(event.type).to.equal('publication');
            if (event.type === 'publication') seen.push([event.value, event.position.offset]);
          }
        };
        await take(3);
        p.target = second.port;
        p.cut();
        for (const value of [4, 5, 6]) await topic.publish(value);
        await take(6);
        expect(seen).to.deep.equal([
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
          [5, 5],
          [6, 6],
        ]);
        expect(runs).to.equal(2);
        expect(ends).to.deep.equal([]);
        feed.close();
        await client.stop();
      } finally {
        await second.server.close();
      }
    });
  });

  describe('a connection that ends behind a backlog', () => {
    /**
     * `clients` reconnecting clients, each behind a proxy that holds what the server sends
     * (~3 MiB in messages of `size` chars), then hands every client its ~3 MiB and a FIN in one write,
     * all in the same macrotask: every value arrives once, and each session resumes on its
     * next connection for the rest (the goodbye).
     */
    async function endBehindBacklog(clients: number, size = 64 * 1024): Promise<void> {
      const Bulk = channelEndpoint(
        '/bulk',
        contract('bulk', 1, {
          up: toServer<number>({ capacity: 1 }),
          down: toClient<string>({ capacity: Infinity }),
        }),
      );
      const big = 'x'.repeat(size);
      const COUNT = Math.ceil((3 * 1024 * 1024) / size);
      let serverRuns = 0;
      const started = await startServer([
        Bulk.handle(async ({ channels: { up, down } }) => {
          serverRuns++;
          await up.receive();
          for (let i = 0; i < COUNT; i++) await down.send(`${String(i)}:${big}`);
          await up.receive();
        }),
      ]);
      server = started.server;
      // Per proxied connection, in accept order: its client socket and what it holds.
      interface Held {
        readonly client: Socket;
        holding: boolean;
        readonly chunks: Buffer[];
      }
      const connections: Held[] = [];
      const pairs = new Set<[Socket, Socket]>();
      const tcp = createServer((client) => {
        const upstream = connectTcp(started.port, '127.0.0.1');
        const pair: [Socket, Socket] = [client, upstream];
        pairs.add(pair);
        const held: Held = { client, holding: false, chunks: [] };
        connections.push(held);
        client.on('data', (chunk: Buffer) => upstream.write(chunk));
        upstream.on('data', (chunk: Buffer) => {
          if (held.holding) held.chunks.push(chunk);
          else client.write(chunk);
        });
        for (const socket of pair) {
          socket.on('error', () => undefined);
          socket.on('close', () => {
            client.destroy();
            upstream.destroy();
            pairs.delete(pair);
          });
        }
      });
      await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
      const heldBytes = (held: Held): number => held.chunks.reduce((n, c) => n + c.length, 0);
      let handlersStarted = 0;
      let released: Promise<void> | undefined;
      // Once every first connection holds all its server's values: release them together.
      const releaseAll = (): Promise<void> =>
        (released ??= (async () => {
          await until(
            () =>
              connections.length >= clients &&
              connections.slice(0, clients).every((held) => heldBytes(held) > COUNT * big.length),
            10_000,
          );
          for (const held of connections.slice(0, clients)) {
            held.holding = false;
            held.client.end(Buffer.concat(held.chunks.splice(0)));
          }
        })());
      try {
        const port = (tcp.address() as { port: number }).port;
        const runs = Array.from({ length: clients }, async () => {
          const received: number[] = [];
          const ends: unknown[] = [];
          let readResumes = (): number => -1;
          const client = Bulk.reconnecting(
            `ws://127.0.0.1:${String(port)}`,
            async (session) => {
              const { up, down } = session.channels;
              // Once every client's first connection is up (handshakes done), those
              // connections hold what the server sends from now on: it sends after `1`.
              handlersStarted++;
              await until(() => handlersStarted >= clients);
              for (const held of connections.slice(0, clients)) held.holding = true;
              await up.send(1);
              await releaseAll();
              try {
                while (received.length < COUNT) {
                  const value = await down.receive();
                  received.push(Number(value.slice(0, value.indexOf(':'))));
                }
                await up.send(2);
              } catch (error) {
                ends.push(error);
              }
              readResumes = () => session.resumes;
            },
            { reconnect: { ...FAST, minDelay: 20, maxDelay: 20 }, resume: { window: 3000 } },
          );
          const close = await client.done;
          return { received, ends, resumes: readResumes(), code: close.code };
        });
        const outcomes = await Promise.all(runs);
        const expected = {
          received: Array.from({ length: COUNT }, (_, i) => i),
          ends: [],
          resumes: 1,
          code: 1000,
        };
        expect(outcomes).to.deep.equal(Array.from({ length: clients }, () => expected));
        expect(serverRuns).to.equal(clients);
      } finally {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      }
    }

    it('resumes when the connection ends (FIN) right behind 3 MiB of messages', async () => {
      await endBehindBacklog(1);
    });

    it('resumes 6 sessions whose connections all end behind 3 MiB in the same macrotask, in messages of 600 KB: their last messages decode several read turns after each close', async function () {
      // A read turn decodes about 1 MiB across sessions, so with messages this large the
      // sessions take turns over several event-loop iterations: the client must reconnect
      // once its session has suspended, however late after the close that is, and not
      // mistake "not suspended one macrotask after the close" for the session's end (it
      // then waited for the handler, never reconnected, and the window expired).
      this.timeout(30_000);
      await endBehindBacklog(6, 600 * 1000);
    });
  });
});
