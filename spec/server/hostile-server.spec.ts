// The server's own defences against clients and handlers that do not play along: a
// shutdown deadline that holds whatever handlers do, the connection limit (503 before the
// upgrade) and the handshake timeout (a slowloris is cut while real clients are served).
// Small counts; `npm run soak` runs the heavy versions against the built package.
import { createServer } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { ServerClosedError, ShutdownTimeoutError, serve } from '../../lib/server/index.js';
import type { ServerSession } from '../../lib/server/index.js';
import { connect } from '../../lib/websocket/index.js';
import { deferred, rejection, settlesWithin, sleep, useServers, waitFor } from './helpers.js';
import { rawClient } from './raw-client.js';
import { TRANSPORT, serveOn } from './transport.js';

/** A TCP connection to the server, its received bytes, and when it closed. */
interface TcpPeer {
  readonly socket: Socket;
  readonly received: () => string;
  readonly ended: Promise<number>;
}

function tcp(port: number): Promise<TcpPeer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    const ended = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve({ socket, received: () => data, ended });
    });
  });
}

function upgradeRequest(path: string, port: number): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\n\r\n'
  );
}

/** Records how late a 10 ms interval fires while `body` runs; returns the worst delay. */
async function worstTimerDelay(body: () => Promise<void>): Promise<number> {
  let worst = 0;
  let last = performance.now();
  const interval = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 10);
    last = now;
  }, 10);
  try {
    await body();
  } finally {
    clearInterval(interval);
  }
  return worst;
}

describe('serve() against hostile clients and handlers', function () {
  this.timeout(20_000);
  const { start } = useServers();

  const echo = async (session: ServerSession<unknown, unknown>): Promise<void> => {
    for await (const message of session.incoming) await session.outgoing.send(message);
  };

  describe('close({ timeout })', () => {
    it('resolves by the deadline while a handler ignores its signal, reports it, and sessions reads 0', async () => {
      const errors: { error: unknown; session: unknown; sessions: number }[] = [];
      const entered = deferred<ServerSession<unknown, unknown>>();
      const forever = deferred();
      const server = await serveOn(
        {
          pingInterval: Infinity,
          onError: (error, session) => {
            errors.push({ error, session, sessions: server.sessions });
          },
        },
        {
          '/stubborn': async (session) => {
            entered.resolve(session);
            await forever.promise; // ignores session.signal
          },
        },
      );
      const client = await connect(`${server.url}/stubborn`);
      const session = await entered.promise;
      const started = Date.now();
      const closing = server.close({ timeout: 300 });
      expect(await settlesWithin(closing, 5000), 'close() resolved').to.equal(true);
      expect(Date.now() - started).to.be.within(250, 3000);
      expect(server.sessions).to.equal(0);
      expect(session.signal.reason).to.be.instanceOf(ServerClosedError);
      expect(errors).to.have.length(1);
      const [report] = errors;
      expect(report?.error).to.be.instanceOf(ShutdownTimeoutError);
      expect(report?.error).to.include({
        name: 'ShutdownTimeoutError',
        code: 'ERR_SERVER_SHUTDOWN_TIMEOUT',
        timeout: 300,
      });
      expect(report?.session).to.equal(session);
      expect(report?.sessions).to.equal(0);
      // The client saw the 1001 Close at once; its connection was dropped at the deadline
      // (the handler never returned to complete the close).
      expect((await client.closed).code).to.be.oneOf([1001, 1006]);
      // The handler ends later against a closed connection: nothing else is reported.
      forever.resolve();
      await sleep(20);
      expect(errors).to.have.length(1);
    });

    it('counts a child of the handler that ignores the signal as still running', async () => {
      const errors: unknown[] = [];
      const forever = deferred();
      const server = await serveOn(
        { pingInterval: Infinity, onError: (error) => errors.push(error) },
        {
          '/child': (session) => {
            session.scope.launch(() => forever.promise);
          },
        },
      );
      const client = await connect(`${server.url}/child`);
      await waitFor(() => server.sessions === 1);
      await server.close({ timeout: 200 });
      expect(server.sessions).to.equal(0);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(ShutdownTimeoutError);
      forever.resolve();
      await client.closed;
    });

    it('reports only the handlers still running, not those that honoured the signal', async () => {
      const errors: unknown[] = [];
      const forever = deferred();
      const server = await serveOn(
        { pingInterval: Infinity, closeTimeout: 60_000, onError: (error) => errors.push(error) },
        {
          '/good': echo,
          '/stubborn': () => forever.promise,
        },
      );
      // The raw client never answers the Close: its connection is still open at the
      // deadline although its handler has returned.
      const silent = await rawClient(server.port, '/good');
      const good = await connect(`${server.url}/good`);
      const stubborn = await connect(`${server.url}/stubborn`);
      await waitFor(() => server.sessions === 3);
      await server.close({ timeout: 300 });
      expect(server.sessions).to.equal(0);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(ShutdownTimeoutError);
      expect(await good.closed).to.deep.equal({ code: 1001, reason: 'Going away', wasClean: true });
      await silent.ended;
      forever.resolve();
      await stubborn.closed;
    });

    it('does not report an error the abandoned handler throws later (the cancellation suppresses it)', async () => {
      const errors: unknown[] = [];
      const release = deferred();
      const thrown = deferred();
      const server = await serveOn(
        { pingInterval: Infinity, onError: (error) => errors.push(error) },
        {
          '/late': async () => {
            await release.promise;
            thrown.resolve();
            throw new Error('late');
          },
        },
      );
      const client = await connect(`${server.url}/late`);
      await waitFor(() => server.sessions === 1);
      await server.close({ timeout: 100 });
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(ShutdownTimeoutError);
      release.resolve();
      await thrown.promise;
      await sleep(20);
      expect(errors).to.have.length(1);
      expect(server.sessions).to.equal(0);
      await client.closed;
    });
  });

  describe('maxConnections', () => {
    it('answers an upgrade beyond the limit with 503 before authorize, and accepts again once one leaves', async () => {
      let authorized = 0;
      const server = await start(
        {
          maxConnections: 2,
          authorize: () => {
            authorized++;
            return true;
          },
        },
        { '/x': echo },
      );
      const a = await rawClient(server.port, '/x');
      const b = await rawClient(server.port, '/x');
      await waitFor(() => server.sessions === 2);
      const extra = await tcp(server.port);
      extra.socket.write(upgradeRequest('/x', server.port));
      await extra.ended;
      expect(extra.received()).to.match(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
      expect(authorized).to.equal(2);
      expect(server.sessions).to.equal(2);
      // The two connections are unaffected.
      a.sendFrame(1, Buffer.from('"still here"'));
      expect((await a.next()).payload.toString()).to.equal('"still here"');
      b.socket.destroy();
      await waitFor(() => server.sessions === 1);
      const c = await connect(`${server.url}/x`);
      await c.outgoing.send('c');
      expect(await c.incoming.receive()).to.equal('c');
      await c.close();
      a.socket.destroy();
      await a.ended;
    });

    it('counts upgrades still in authorize', async () => {
      const entered = deferred();
      const release = deferred<boolean>();
      const server = await start(
        {
          maxConnections: 1,
          authorize: () => {
            entered.resolve();
            return release.promise;
          },
        },
        { '/x': echo },
      );
      const first = connect(`${server.url}/x`);
      await entered.promise;
      expect(await rejection(connect(`${server.url}/x`))).to.include({
        name: 'HandshakeError',
        status: 503,
      });
      release.resolve(true);
      const client = await first;
      await client.close();
    });

    it('accepts any number with Infinity, and rejects invalid values naming what is allowed', async () => {
      const server = await start({ maxConnections: Infinity }, { '/x': echo });
      const clients = await Promise.all(
        Array.from({ length: 3 }, () => connect(`${server.url}/x`)),
      );
      await Promise.all(clients.map((client) => client.close()));
      for (const value of [0, -1, 1.5, NaN]) {
        const error = await rejection(serve({ maxConnections: value }, { '/x': echo }));
        expect(error).to.be.instanceOf(RangeError);
        expect(error).to.have.property(
          'message',
          `Expected maxConnections to be a positive integer or Infinity, got ${String(value)}`,
        );
      }
      const error = await rejection(serve({ maxConnections: '10' as unknown as number }, {}));
      expect(error).to.be.instanceOf(TypeError);
      expect(error).to.have.property(
        'message',
        "Expected maxConnections to be a positive integer or Infinity, got '10' (string)",
      );
    });
  });

  describe('handshakeTimeout', () => {
    /** The option, except on the Bun transport, which refuses it (see the first case). */
    const handshake = (ms: number): { handshakeTimeout?: number } =>
      TRANSPORT === 'bun' ? {} : { handshakeTimeout: ms };

    it("cuts a slowloris at the timeout with 408 while a real client is served and timers run on time (transport 'bun': refused; Bun cuts a silent socket itself)", async function () {
      if (TRANSPORT === 'bun') {
        const refused = await rejection(serveOn({ handshakeTimeout: 400 }, { '/x': echo }));
        expect(refused).to.be.instanceOf(TypeError);
        expect(refused).to.have.property(
          'message',
          "Expected either handshakeTimeout or transport 'bun' (Bun.serve cuts an incomplete request itself, after about 10 s), got both",
        );
        // Bun's own bound on a connection that never completes its request: closed
        // without an answer after 10-12 s, while a real client is served.
        this.timeout(30_000);
        const server = await start({}, { '/x': echo });
        const silent = await tcp(server.port);
        const opened = Date.now();
        const worst = await worstTimerDelay(async () => {
          const client = await connect<number>(`${server.url}/x`);
          await client.outgoing.send(1);
          expect(await client.incoming.receive()).to.equal(1);
          const silentEnded = await silent.ended;
          expect(silentEnded - opened).to.be.within(8000, 20_000);
          await client.outgoing.send(2);
          expect(await client.incoming.receive()).to.equal(2);
          await client.close();
        });
        expect(silent.received()).to.equal('');
        expect(worst, 'worst timer delay (ms)').to.be.below(500);
        return;
      }
      const server = await start({ handshakeTimeout: 400 }, { '/x': echo });
      const slow = await tcp(server.port);
      const silent = await tcp(server.port);
      const opened = Date.now();
      const request = upgradeRequest('/x', server.port);
      let sent = 0;
      const trickle = setInterval(() => {
        if (sent < request.length - 4) slow.socket.write(request[sent++] ?? '');
      }, 20);
      let slowEnded = 0;
      let silentEnded = 0;
      let worst: number;
      try {
        worst = await worstTimerDelay(async () => {
          const client = await connect<number>(`${server.url}/x`);
          for (let i = 0; i < 20; i++) {
            await client.outgoing.send(i);
            expect(await client.incoming.receive()).to.equal(i);
            await sleep(10);
          }
          [slowEnded, silentEnded] = await Promise.all([slow.ended, silent.ended]);
          // Still served after the cut.
          await client.outgoing.send(99);
          expect(await client.incoming.receive()).to.equal(99);
          expect(await client.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        });
      } finally {
        clearInterval(trickle);
      }
      expect(slowEnded - opened).to.be.within(350, 3000);
      expect(silentEnded - opened).to.be.within(350, 3000);
      expect(slow.received()).to.equal('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      expect(silent.received()).to.equal(
        'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
      );
      expect(worst, 'worst timer delay (ms)').to.be.below(500);
      expect(server.sessions).to.equal(0);
    });

    it('does not apply once the upgrade request is complete', async () => {
      const server = await start(handshake(300), { '/x': echo });
      const client = await rawClient(server.port, '/x');
      await sleep(600);
      client.sendFrame(1, Buffer.from('"after the timeout"'));
      expect((await client.next()).payload.toString()).to.equal('"after the timeout"');
      client.socket.destroy();
      await client.ended;
    });

    it('clears the timer of a socket that leaves during its handshake', async () => {
      const server = await start(handshake(60_000), { '/x': echo });
      const leaving = await tcp(server.port);
      leaving.socket.write('GET /x HTT');
      await sleep(20);
      leaving.socket.destroy();
      await leaving.ended;
      // The leak check of useServers() fails the suite if the 60 s timer stayed.
      await server.close();
    });

    it('stays off with Infinity, and refuses invalid values or a server of the caller', async () => {
      const server = await start(handshake(Infinity), { '/x': echo });
      const idle = await tcp(server.port);
      await sleep(50);
      expect(idle.socket.destroyed).to.equal(false);
      idle.socket.destroy();
      await idle.ended;
      for (const value of [0, -5, NaN]) {
        const error = await rejection(serve({ handshakeTimeout: value }, {}));
        expect(error).to.be.instanceOf(RangeError);
        expect(error).to.have.property(
          'message',
          `Expected handshakeTimeout to be a positive number or Infinity, got ${String(value)}`,
        );
      }
      const http = createServer();
      const error = await rejection(serve({ server: http, handshakeTimeout: 1000 }, {}));
      expect(error).to.be.instanceOf(TypeError);
      expect(error).to.have.property(
        'message',
        "Expected either server or handshakeTimeout, got both (use the server's headersTimeout)",
      );
    });
  });
});
