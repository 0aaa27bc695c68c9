/**
 * Resumable network channels (docs/protocol.md, "Resume"; issue 16): a channel endpoint's
 * session survives a lost connection — values both ways at every capacity are delivered
 * once and in order across cuts made here (a `node:net` proxy that drops the TCP
 * connection) — and when it cannot resume (window passed, server restarted, store
 * eviction, foreign token) it ends with `SessionExpiredError` and exact accounting.
 */
import { expect } from 'chai';
import { WebSocket } from 'ws';
import type { ReceiveChannel, SendChannel } from '../../lib/index.js';
import {
  ConnectionLostError,
  SessionExpiredError,
  channelEndpoint,
  channels,
  contract,
  toClient,
  toServer,
} from '../../lib/network/index.js';
import type { ChannelRouteOptions } from '../../lib/network/index.js';
import { serve } from '../../lib/server/index.js';
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

/** Resolves once `check()` is true (polled every few ms), or rejects after `ms`. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('Timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
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
});
