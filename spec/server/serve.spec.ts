import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import WebSocket from 'ws';
import { TimeoutError, WebSocketCloseError } from '../../lib/errors.js';
import { ServerClosedError, route, serve } from '../../lib/server/index.js';
import type { ServerRequest, ServerSession } from '../../lib/server/index.js';
import { HandshakeError, connect, text } from '../../lib/websocket/index.js';
import type { CloseReason } from '../../lib/websocket/index.js';
import { deferred, rejection, sleep, useServers, waitFor } from './helpers.js';
import { nextClose, rawClient, rawHttp } from './raw-client.js';
import { TRANSPORT, serveOn } from './transport.js';

describe('serve()', function () {
  this.timeout(20_000);
  const { start } = useServers();

  const echo = async (session: ServerSession<unknown, unknown>): Promise<void> => {
    for await (const message of session.incoming) await session.outgoing.send(message);
  };

  describe('routes', () => {
    it('runs the handler of the requested path and listens on 127.0.0.1', async () => {
      const server = await start({}, { '/echo': echo });
      expect(server.url).to.equal(`ws://127.0.0.1:${server.port}`);
      const client = await connect<{ n: number }>(`${server.url}/echo`);
      await client.outgoing.send({ n: 1 });
      expect(await client.incoming.receive()).to.deep.equal({ n: 1 });
      expect(await client.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    });

    it('answers an unknown path with HTTP 404 and no upgrade', async () => {
      let ran = false;
      const server = await start(
        {},
        {
          '/a': () => {
            ran = true;
          },
        },
      );
      const error = await rejection(connect(`${server.url}/b`));
      expect(error).to.be.instanceOf(HandshakeError);
      expect(error).to.include({ status: 404 });
      expect(ran).to.equal(false);
      expect(server.sessions).to.equal(0);
    });

    it('answers a plain HTTP request with 426 on a route and 404 elsewhere', async () => {
      const server = await start({}, { '/a': echo });
      const known = await fetch(`http://127.0.0.1:${server.port}/a`);
      expect(known.status).to.equal(426);
      expect(known.headers.get('upgrade')).to.equal('websocket');
      await known.text();
      const unknown = await fetch(`http://127.0.0.1:${server.port}/b`);
      expect(unknown.status).to.equal(404);
      await unknown.text();
    });

    it('gives the handler the request: path, query, headers, remote address', async () => {
      const seen = deferred<ServerRequest>();
      const server = await start(
        {},
        {
          '/who': (session) => {
            seen.resolve(session.request);
          },
        },
      );
      const client = await connect(`${server.url}/who?room=7&x=1`, {
        socketOptions: { headers: { 'x-user': 'ada' } },
      });
      const request = await seen.promise;
      expect(request.path).to.equal('/who');
      expect(request.query.get('room')).to.equal('7');
      expect(request.headers['x-user']).to.equal('ada');
      expect(request.remoteAddress).to.match(/127\.0\.0\.1$/);
      expect(await client.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    });

    it("attaches to an existing http.Server whose plain routes keep working (transport 'bun': refused)", async () => {
      const http = createServer((_request, response) => response.end('plain'));
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      const port = (http.address() as AddressInfo).port;
      if (TRANSPORT === 'bun') {
        // Bun.serve listens itself: there is no http.Server to attach to.
        const error = await rejection(serveOn({ server: http }, { '/ws': echo }));
        expect(error).to.be.instanceOf(TypeError);
        expect((error as Error).message).to.equal(
          "Expected either server (an http.Server) or transport 'bun' (Bun.serve listens itself), got both",
        );
        await new Promise((resolve) => http.close(resolve));
        return;
      }
      const server = await serveOn({ server: http }, { '/ws': echo });
      expect(server.port).to.equal(port);
      const reply = await fetch(`http://127.0.0.1:${port}/page`);
      expect(await reply.text()).to.equal('plain');
      const client = await connect<string>(`${server.url}/ws`);
      await client.outgoing.send('x');
      expect(await client.incoming.receive()).to.equal('x');
      await server.close();
      expect(await client.closed).to.deep.equal({
        code: 1001,
        reason: 'Going away',
        wasClean: true,
      });
      expect(http.listening).to.equal(true);
      await new Promise((resolve) => http.close(resolve));
    });

    it('rejects invalid options and routes with TypeError/RangeError "Expected …, got …"', async () => {
      const cases: [unknown, unknown, ErrorConstructor, RegExp][] = [
        [null, {}, TypeError, /^Expected options to be an object, got null/],
        [{ port: -1 }, {}, RangeError, /^Expected port to be an integer from 0 to 65535, got -1/],
        [{ port: '80' }, {}, TypeError, /^Expected port/],
        [{ maxMessageSize: 0 }, {}, RangeError, /^Expected maxMessageSize/],
        [{ pingInterval: -5 }, {}, RangeError, /^Expected pingInterval/],
        [{ pongTimeout: Infinity }, {}, RangeError, /^Expected pongTimeout/],
        [{ origins: 'x' }, {}, TypeError, /^Expected origins to be an array of strings/],
        [{ authorize: 1 }, {}, TypeError, /^Expected authorize/],
        [{ perMessageDeflate: 'yes' }, {}, TypeError, /^Expected perMessageDeflate/],
        [{}, { chat: echo }, RangeError, /^Expected a route path starting with '\/'/],
        [
          {},
          { '/a': 5 },
          TypeError,
          /^Expected routes\['\/a'\] to be a handler function or a route, got 5/,
        ],
        [{}, 'routes', TypeError, /^Expected routes to be an object/],
        [{}, [route({ handler: echo })], TypeError, /^Expected routes\[0\] to know its path/],
      ];
      for (const [options, routes, type, message] of cases) {
        const error = await rejection(serve(options as never, routes as never));
        expect(error, JSON.stringify(options)).to.be.instanceOf(type);
        expect((error as Error).message).to.match(message);
      }
      expect(() => route({ handler: 1 as never })).to.throw(TypeError, /^Expected handler/);
      expect(() => route({ handler: echo, incomingCapacity: -1 })).to.throw(RangeError);
    });
  });

  describe('before the upgrade', () => {
    it('authorize: false → 403, a refusal → its status and headers; the handler never runs', async () => {
      let runs = 0;
      const seen: string[] = [];
      const server = await start(
        {
          authorize: async (request) => {
            seen.push(request.path);
            await sleep(1);
            const token = request.query.get('token');
            if (token === 'good') return true;
            if (token === null) return { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } };
            return false;
          },
        },
        {
          '/x': () => {
            runs++;
          },
        },
      );
      const missing = await rejection(connect(`${server.url}/x`));
      expect(missing).to.be.instanceOf(HandshakeError);
      expect(missing).to.include({ status: 401 });
      expect((missing as HandshakeError).headers['www-authenticate']).to.equal('Bearer');
      const bad = await rejection(connect(`${server.url}/x?token=bad`));
      expect(bad).to.include({ status: 403 });
      expect(runs).to.equal(0);
      expect(server.sessions).to.equal(0);
      const good = await connect(`${server.url}/x?token=good`);
      expect(await good.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      expect(runs).to.equal(1);
      expect(seen).to.deep.equal(['/x', '/x', '/x']);
    });

    it('authorize throwing → 500, the error reported once to onError', async () => {
      const failure = new Error('db down');
      const errors: unknown[] = [];
      const server = await start(
        {
          authorize: () => {
            throw failure;
          },
          onError: (error, session) => errors.push(error, session),
        },
        { '/x': echo },
      );
      expect(await rejection(connect(`${server.url}/x`))).to.include({ status: 500 });
      expect(errors).to.deep.equal([failure, undefined]);
    });

    it('origins: a listed Origin connects, another gets 403, none (not a browser) passes', async () => {
      const server = await start({ origins: ['https://app.example'] }, { '/x': echo });
      const forbidden = await rejection(
        connect(`${server.url}/x`, { socketOptions: { origin: 'https://evil.example' } }),
      );
      expect(forbidden).to.include({ status: 403 });
      const allowed = await connect(`${server.url}/x`, {
        socketOptions: { origin: 'https://app.example' },
      });
      await allowed.close();
      const noOrigin = await connect(`${server.url}/x`);
      await noOrigin.close();
      // The server's side may learn of the close a little after the client (Bun, Deno).
      await waitFor(() => server.sessions === 0);
    });

    it('selects the first subprotocol the route prefers that the client offers', async () => {
      const seen: string[] = [];
      const server = await start(
        { protocols: ['default.v1'] },
        {
          '/chat': route({
            protocols: ['chat.v2', 'chat.v1'],
            handler: (session) => void seen.push(session.protocol),
          }),
          '/other': (session) => void seen.push(session.protocol),
        },
      );
      const a = await connect(`${server.url}/chat`, { protocols: ['chat.v1', 'chat.v2'] });
      expect(a.protocol).to.equal('chat.v2');
      await a.closed;
      const b = await connect(`${server.url}/other`, { protocols: ['x', 'default.v1'] });
      expect(b.protocol).to.equal('default.v1');
      await b.closed;
      const c = await connect(`${server.url}/chat`);
      expect(c.protocol).to.equal('');
      await c.closed;
      expect(seen).to.deep.equal(['chat.v2', 'default.v1', '']);
    });
  });

  describe('limits and liveness', () => {
    it('maxMessageSize defaults to 1 MiB: exactly 1 MiB passes, one byte more closes with 1009', async () => {
      const closed: Promise<CloseReason>[] = [];
      const server = await start(
        {},
        {
          '/x': route({
            codec: text(),
            handler: async (session) => {
              closed.push(session.closed);
              for await (const message of session.incoming)
                await session.outgoing.send(String(message.length));
            },
          }),
        },
      );
      const client = await connect<string>(`${server.url}/x`, { codec: text() });
      await client.outgoing.send('a'.repeat(1024 * 1024));
      expect(await client.incoming.receive()).to.equal(String(1024 * 1024));
      await client.outgoing.send('a'.repeat(1024 * 1024 + 1));
      const error = await rejection(client.incoming.receive());
      expect(error).to.be.instanceOf(WebSocketCloseError);
      expect(error).to.include({ closeCode: 1009 });
      expect((await client.closed).code).to.equal(1009);
      expect((await closed[0])?.code).to.equal(1006); // ws drops after its Close 1009
      await waitFor(() => server.sessions === 0);
    });

    it('heartbeat: a peer that does not answer pings is dropped with 1006, reason recorded, signal aborted', async () => {
      const outcome = deferred<{ closed: CloseReason; reason: unknown }>();
      const errors: unknown[] = [];
      const server = await start(
        { pingInterval: 100, pongTimeout: 150, onError: (error) => errors.push(error) },
        {
          '/x': async (session) => {
            await new Promise((resolve) => session.signal.addEventListener('abort', resolve));
            outcome.resolve({ closed: await session.closed, reason: session.signal.reason });
          },
        },
      );
      const client = await connect(`${server.url}/x`, { socketOptions: { autoPong: false } });
      const { closed, reason } = await outcome.promise;
      expect(closed).to.deep.equal({
        code: 1006,
        reason: 'Heartbeat timeout: no pong within 150 ms',
        wasClean: false,
      });
      expect(reason).to.be.instanceOf(WebSocketCloseError);
      expect(reason).to.include({ closeCode: 1006, wasClean: false });
      expect((reason as Error).cause).to.be.instanceOf(TimeoutError);
      expect((await client.closed).code).to.equal(1006);
      expect(errors).to.deep.equal([]);
      await waitFor(() => server.sessions === 0);
    });

    it('heartbeat: a pong with the wrong payload does not count; a live peer stays connected', async () => {
      const server = await start({ pingInterval: 60, pongTimeout: 120 }, { '/x': echo });
      const wrong = new WebSocket(`${server.url}/x`, { autoPong: false });
      wrong.on('ping', () => wrong.pong(Buffer.from('not the payload')));
      const wrongClosed = new Promise<number>((resolve) => wrong.on('close', resolve));
      const live = await connect<number>(`${server.url}/x`);
      expect(await wrongClosed).to.equal(1006);
      await sleep(400); // several ping periods
      await live.outgoing.send(1);
      expect(await live.incoming.receive()).to.equal(1);
      expect(await live.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    });

    it("closeTimeout: a peer that never answers the Close is dropped after it (1006) (transport 'bun': not waited for, 1000 at once)", async () => {
      const closed = deferred<CloseReason>();
      const server = await start(
        { closeTimeout: 200, pingInterval: Infinity },
        {
          '/x': (session) => {
            void session.closed.then(closed.resolve);
          },
        },
      );
      const raw = await rawClient(server.port, '/x');
      const started = Date.now();
      expect(await nextClose(raw)).to.deep.equal({ code: 1000, reason: '' });
      if (TRANSPORT === 'bun') {
        // Bun ends the connection as it sends the Close: the server's side is over, with
        // the code it sent, without waiting for the peer's reply.
        expect(await closed.promise).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        expect(Date.now() - started).to.be.below(150);
        await raw.ended;
        return;
      }
      expect(await closed.promise).to.deep.equal({ code: 1006, reason: '', wasClean: false });
      const elapsed = Date.now() - started;
      expect(elapsed).to.be.within(150, 5000);
      await raw.ended;
    });
  });

  describe('handler lifecycle', () => {
    it('return: flushes everything accepted, then closes with 1000', async () => {
      const server = await start(
        {},
        {
          '/x': async (session) => {
            for (let i = 0; i < 999; i++) void session.outgoing.send(i);
            await session.outgoing.send(999);
          },
        },
      );
      const client = await connect<number>(`${server.url}/x`);
      const received: number[] = [];
      for await (const n of client.incoming) received.push(n);
      expect(received).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
      expect(await client.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    });

    it('throw: 1011 with a generic reason, the error to onError once, other sessions unaffected', async () => {
      const failure = new Error('secret detail');
      const errors: [unknown, unknown][] = [];
      const server = await start(
        { onError: (error, session) => errors.push([error, session]) },
        {
          '/fail': async (session) => {
            await session.outgoing.send('before');
            throw failure;
          },
          '/echo': echo,
        },
      );
      const healthy = await connect<string>(`${server.url}/echo`);
      const failing = await connect<string>(`${server.url}/fail`);
      expect(await failing.incoming.receive()).to.equal('before');
      const error = await rejection(failing.incoming.receive());
      expect(error).to.include({ closeCode: 1011, reason: 'Internal error' });
      expect(await failing.closed).to.deep.equal({
        code: 1011,
        reason: 'Internal error',
        wasClean: true,
      });
      expect(errors).to.have.length(1);
      expect(errors[0]?.[0]).to.equal(failure);
      expect((errors[0]?.[1] as ServerSession<unknown>).request.path).to.equal('/fail');
      await healthy.outgoing.send('still here');
      expect(await healthy.incoming.receive()).to.equal('still here');
      await healthy.close();
    });

    it('the client going away aborts the signal and is not reported', async () => {
      const errors: unknown[] = [];
      const reason = deferred<unknown>();
      const server = await start(
        { onError: (error) => errors.push(error) },
        {
          '/x': async (session) => {
            session.signal.addEventListener('abort', () => reason.resolve(session.signal.reason));
            await session.incoming.receive(); // throws when the client drops
          },
        },
      );
      const client = await connect(`${server.url}/x`);
      client.terminate();
      const abortReason = await reason.promise;
      expect(abortReason).to.be.instanceOf(WebSocketCloseError);
      expect(abortReason).to.include({ closeCode: 1006 });
      await waitFor(() => server.sessions === 0);
      expect(errors).to.deep.equal([]);
    });

    it('children of session.scope get the signal; the connection closes after they settle', async () => {
      const steps: string[] = [];
      const server = await start(
        {},
        {
          '/x': (session) => {
            session.scope.launch(async (signal) => {
              await sleep(50);
              steps.push(`child done, aborted=${signal.aborted}`);
              await session.outgoing.send('from child');
            });
            steps.push('handler returned');
          },
        },
      );
      const client = await connect<string>(`${server.url}/x`);
      expect(await client.incoming.receive()).to.equal('from child');
      expect(await client.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      expect(steps).to.deep.equal(['handler returned', 'child done, aborted=false']);
    });
  });

  describe('close()', () => {
    it('sends 1001 to every session, aborts signals with ServerClosedError, waits, and leaves nothing', async () => {
      const reasons: unknown[] = [];
      const errors: unknown[] = [];
      const server = await serveOn(
        { onError: (error) => errors.push(error) },
        {
          '/x': async (session) => {
            try {
              for await (const message of session.incoming) await session.outgoing.send(message);
            } finally {
              reasons.push(session.signal.reason);
            }
          },
        },
      );
      const clients = await Promise.all(
        Array.from({ length: 5 }, () => connect(`${server.url}/x`)),
      );
      await waitFor(() => server.sessions === 5);
      await server.close({ timeout: 5000 });
      expect(server.sessions).to.equal(0);
      for (const client of clients) {
        expect(await client.closed).to.deep.equal({
          code: 1001,
          reason: 'Going away',
          wasClean: true,
        });
      }
      expect(reasons).to.have.length(5);
      for (const reason of reasons) expect(reason).to.be.instanceOf(ServerClosedError);
      expect(errors).to.deep.equal([]);
      expect(server.close()).to.equal(server.close());
      const refused = await rejection(connect(`${server.url}/x`));
      expect(refused).to.include({ name: 'ConnectError' });
    });

    it("drops connections still open at the timeout (a peer that never answers the Close) (transport 'bun': not waited for)", async () => {
      const server = await serveOn(
        { pingInterval: Infinity, closeTimeout: 60_000 },
        { '/x': echo },
      );
      const raw = await rawClient(server.port, '/x');
      await waitFor(() => server.sessions === 1);
      const started = Date.now();
      await server.close({ timeout: 200 });
      // Bun does not wait for the peer's Close reply (see ServeOptions.transport).
      if (TRANSPORT === 'bun') expect(Date.now() - started).to.be.below(150);
      else expect(Date.now() - started).to.be.within(150, 5000);
      expect(await nextClose(raw)).to.deep.equal({ code: 1001, reason: 'Going away' });
      await raw.ended;
      expect(server.sessions).to.equal(0);
    });

    it('refuses an upgrade still in authorize with 503', async () => {
      const entered = deferred();
      const release = deferred<boolean>();
      const server = await serveOn(
        {
          authorize: () => {
            entered.resolve();
            return release.promise;
          },
        },
        { '/x': echo },
      );
      const pending = rejection(connect(`${server.url}/x`));
      await entered.promise;
      const closing = server.close();
      release.resolve(true);
      await closing;
      expect(await pending).to.include({ status: 503 });
    });

    it('rejects an invalid timeout', async () => {
      const server = await start({}, { '/x': echo });
      expect(await rejection(server.close({ timeout: -1 }))).to.be.instanceOf(RangeError);
    });
  });

  describe('malformed handshakes', () => {
    it("answers a handshake with a bad Sec-WebSocket-Version with 400, upgrading nothing (transport 'bun': 426 naming version 13)", async () => {
      const server = await start({}, { '/x': echo });
      const reply = await rawHttp(
        server.port,
        'GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n',
      );
      if (TRANSPORT === 'bun') {
        // Bun answers as RFC 6455 §4.4 suggests: 426 with the version it speaks.
        expect(reply).to.match(/^HTTP\/1\.1 426 /);
        expect(reply).to.match(/\r\nSec-WebSocket-Version: 13\r\n/i);
      } else {
        expect(reply).to.match(/^HTTP\/1\.1 400 /);
      }
      expect(server.sessions).to.equal(0);
    });
  });
});
