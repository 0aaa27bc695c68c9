/**
 * What an idle server connection holds (issue 18) and the lazily made handler scope: a
 * handler that never reads `signal` or `scope` gets no scope, yet every outcome is the
 * one `scope(() => handler(session))` gives.
 */
import { expect } from 'chai';
import { WebSocketCloseError } from '../../lib/errors.js';
import { suppressedErrors } from '../../lib/scope.js';
import type { ServerSession } from '../../lib/server/index.js';
import { MemorySocket } from '../../lib/server/memory-socket.js';
import { ServerSessionImpl, startHandler } from '../../lib/server/server-session.js';
import { connect } from '../../lib/websocket/index.js';
import { wrap } from '../../lib/websocket/session.js';
import { deferred, useServers, waitFor } from './helpers.js';

const REQUEST = Object.freeze({
  path: '/',
  query: new URLSearchParams(),
  headers: {},
  remoteAddress: '',
});

describe('an idle server connection', function () {
  this.timeout(20_000);
  const { start } = useServers();

  it('reads signal after the handler returned: not aborted by the later close, as a settled scope', async () => {
    const seen = deferred<ServerSession<unknown, unknown>>();
    const server = await start(
      {},
      {
        '/x': (session) => {
          seen.resolve(session);
        },
      },
    );
    const client = await connect(`${server.url}/x`);
    const session = await seen.promise;
    expect(await client.closed).to.deep.include({ code: 1000 });
    await waitFor(() => server.sessions === 0);
    expect(session.signal.aborted).to.equal(false);
    expect(session.signal).to.equal(session.scope.signal);
    expect(() => session.scope.launch(() => undefined)).to.throw(DOMException, /already settled/);
  });

  it('reads signal after the handler threw: aborted with that error, reported once with 1011', async () => {
    const errors: unknown[] = [];
    const seen = deferred<ServerSession<unknown, unknown>>();
    const boom = new Error('boom');
    const server = await start(
      { onError: (error) => errors.push(error) },
      {
        '/x': (session) => {
          seen.resolve(session);
          throw boom;
        },
      },
    );
    const client = await connect(`${server.url}/x`);
    expect(await client.closed).to.deep.include({ code: 1011, reason: 'Internal error' });
    const session = await seen.promise;
    await waitFor(() => server.sessions === 0);
    expect(errors).to.deep.equal([boom]);
    expect(session.signal.aborted).to.equal(true);
    expect(session.signal.reason).to.equal(boom);
  });

  it('a handler that ends after the connection did, without reading signal, is cancelled: its error is suppressed by the close', async () => {
    const errors: unknown[] = [];
    const seen = deferred<ServerSession<unknown, unknown>>();
    const late = new Error('late');
    const server = await start(
      { onError: (error) => errors.push(error) },
      {
        '/x': async (session) => {
          seen.resolve(session);
          // Ends normally when the client closes; then fails.
          for await (const message of session.incoming) expect(message).to.equal(undefined);
          throw late;
        },
      },
    );
    const client = await connect(`${server.url}/x`);
    await client.close(1000);
    const session = await seen.promise;
    await waitFor(() => server.sessions === 0);
    expect(errors).to.deep.equal([]);
    const reason: unknown = session.signal.reason;
    expect(session.signal.aborted).to.equal(true);
    expect(reason).to.be.instanceOf(WebSocketCloseError);
    expect(reason).to.include({ closeCode: 1000 });
    expect(suppressedErrors(reason)).to.deep.equal([late]);
  });

  it('signal read while the handler is being called, children of its scope awaited before the close', async () => {
    const steps: string[] = [];
    const server = await start(
      {},
      {
        '/x': (session) => {
          const { signal } = session; // before the handler's promise exists
          session.scope.launch(async () => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            steps.push(`child, aborted=${signal.aborted}`);
          });
          steps.push('handler returns');
        },
      },
    );
    const client = await connect(`${server.url}/x`);
    expect(await client.closed).to.deep.include({ code: 1000 });
    expect(steps).to.deep.equal(['handler returns', 'child, aborted=false']);
  });

  it('holds at most 4,500 bytes of heap per idle connection (session, handler and end; no socket)', async function () {
    const gc = globalThis.gc;
    if (gc === undefined) this.skip();
    const n = 2000;
    const settle = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
      }
      return process.memoryUsage().heapUsed;
    };
    const idle = async (session: ServerSession<unknown, unknown>): Promise<void> => {
      for await (const message of session.incoming) await session.outgoing.send(message);
    };
    const host = { report: (error: unknown) => console.error(error) };
    // What the measure leaves out: a socket pair and the client side of each connection.
    const pairs = Array.from({ length: n }, () => MemorySocket.pair('', 1 << 20));
    const clients = pairs.map(([client]) => wrap(client));
    const before = await settle();
    const sessions = pairs.map(([, socket]) => {
      const session = new ServerSessionImpl<unknown, unknown>(socket, {}, REQUEST);
      startHandler(session, idle, host, undefined);
      return session;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const perConnection = ((await settle()) - before) / n;
    for (const client of clients) void client.close();
    await Promise.all(sessions.map((session) => session.closed));
    expect(perConnection).to.be.below(4500);
  });
});
