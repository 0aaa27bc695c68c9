import { expect } from 'chai';
import { routeSpec } from '../../lib/websocket/route.js';
import { testConversation } from '../../lib/server/index.js';
import type { Route } from '../../lib/server/index.js';
import { withWebSocket } from '../../lib/websocket/index.js';
import { defineConversationCases } from './conversation.cases.js';
import type { Runner } from './conversation.cases.js';
import { rejection, useServers, waitFor } from './helpers.js';
import { serveOn } from './transport.js';

describe('server conformance: the same conversations over a real socket and in memory', function () {
  this.timeout(20_000);

  describe('over 127.0.0.1 (serve + connect)', () => {
    useServers();
    const real: Runner = async (handler, client, options = {}) => {
      const errors: unknown[] = [];
      const server = await serveOn(
        { onError: options.onError ?? ((error) => errors.push(error)) },
        { '/c': handler as Route },
      );
      try {
        const result = await withWebSocket(`${server.url}/c`, { ...options.client }, client);
        await waitFor(() => server.sessions === 0);
        if (errors.length > 0) throw errors[0];
        return result;
      } finally {
        await server.close();
      }
    };
    defineConversationCases(real);
  });

  describe('in memory (testConversation)', () => {
    useServers();
    defineConversationCases((handler, client, options = {}) =>
      testConversation(handler, client, options),
    );
  });
});

describe('testConversation()', () => {
  it('gives the handler the request and protocol it was told', async () => {
    const seen = await testConversation(
      (session) => {
        void session.outgoing.send([
          session.request.path,
          session.request.query.get('a'),
          session.request.headers['x-k'],
          session.protocol,
        ]);
      },
      async ({ incoming }) => incoming.receive(),
      {
        request: { path: '/p', query: { a: '1' }, headers: { 'X-K': 'v' } },
        protocol: 'proto',
      },
    );
    expect(seen).to.deep.equal(['/p', '1', 'v', 'proto']);
  });

  it('rejects with the handler error when there is no onError, after the conversation', async () => {
    const failure = new Error('x');
    const error = await rejection(
      testConversation(
        () => {
          throw failure;
        },
        async (session) => session.closed,
      ),
    );
    expect(error).to.equal(failure);
  });

  it('rejects with the client error (the handler sees 4000)', async () => {
    const failure = new Error('client');
    let closed: unknown;
    const error = await rejection(
      testConversation(
        async (session) => {
          closed = await session.closed;
        },
        () => {
          throw failure;
        },
      ),
    );
    expect(error).to.equal(failure);
    expect(closed).to.deep.equal({ code: 4000, reason: 'Application error', wasClean: true });
  });

  it('closes with 1009 for a message over maxMessageSize, as serve does', async () => {
    const closed = await testConversation<string, string, unknown>(
      async (session) => {
        for await (const m of session.incoming) expect(m).to.be.a('string');
      },
      async (session) => {
        await session.outgoing.send('x'.repeat(100));
        return session.closed;
      },
      { maxMessageSize: 50 },
    );
    expect(closed).to.deep.equal({ code: 1009, reason: '', wasClean: true });
  });

  it('rejects invalid arguments with TypeError', async () => {
    expect(await rejection(testConversation(5 as never, () => undefined))).to.be.instanceOf(
      TypeError,
    );
    expect(await rejection(testConversation(() => undefined, 'x' as never))).to.be.instanceOf(
      TypeError,
    );
    expect(routeSpec({})).to.equal(undefined);
  });
});
