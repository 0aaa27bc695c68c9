/**
 * `server.close()` with network channels: the shutdown says goodbye on every channel
 * session (docs/protocol.md section 7) before closing with 1001, so that every value is
 * received once or reported to `onUndelivered` once, and a reconnecting client takes the
 * 1001 as "come back later".
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { route, serve } from '../../lib/server/index.js';
import type { Server } from '../../lib/server/index.js';
import { reconnecting, text } from '../../lib/websocket/index.js';
import {
  ConnectionLostError,
  channelEndpoint,
  channels,
  contract,
  toServer,
} from '../../lib/network/index.js';
import { ServerClosedError } from '../../lib/server/index.js';
import type { ConnectionState } from '../../lib/websocket/index.js';

const TOTAL = 40;

/** Values 0 … n − 1. */
function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

describe('server.close() with network channels', () => {
  it('acknowledges what the handlers took before closing with 1001: each value the client sent is received once or reported undelivered once', async () => {
    const received: number[] = [];
    const undelivered: number[] = [];
    const errors: unknown[] = [];
    let closing: Promise<void> | undefined;
    const server: Server = await serve(
      { host: '127.0.0.1', port: 0, pingInterval: Infinity, onError: (e) => errors.push(e) },
      {
        '/up': route<string, string>({
          codec: text(),
          handler: async (session) => {
            const net = channels(session);
            const up = net.channel<number>('up', { capacity: 4 });
            for await (const value of up.incoming) {
              received.push(value);
              // In the macrotask that took the value, before its ack is due: the old
              // shutdown closed at once and dropped that ack, so the client also reported
              // the value as undelivered.
              if (received.length === 3) closing = server.close();
            }
          },
        }),
      },
    );
    const states: ConnectionState[] = [];
    const client = reconnecting(
      `${server.url}/up`,
      { codec: text(), minDelay: 20, maxDelay: 20, jitter: 0, maxAttempts: 2 },
      async (session) => {
        const net = channels(session);
        const up = net.channel<number>('up', {
          onUndelivered: (value) => undelivered.push(value),
        });
        if (session.connection > 1) return;
        for (const value of upTo(TOTAL)) {
          try {
            await up.outgoing.send(value);
          } catch (error) {
            expect(error).to.be.instanceOf(ConnectionLostError);
            expect((error as ConnectionLostError).closeReason.code).to.equal(1001);
          }
        }
        await net.closed;
      },
    );
    const watcher = (async () => {
      for await (const state of client.states()) {
        states.push(state);
        if (state.type === 'closed' && state.attempt >= 2) break;
      }
    })();
    await watcher;
    await closing;
    await client.stop();
    await client.done.catch(() => undefined);

    expect(received.length).to.be.at.least(3);
    expect([...received, ...undelivered].sort((a, b) => a - b)).to.deep.equal(upTo(TOTAL));
    expect(received).to.deep.equal(upTo(received.length));
    expect(errors).to.deep.equal([]);
    const firstClose = states.find((state) => state.type === 'closed');
    expect(firstClose?.type === 'closed' && firstClose.reason.code).to.equal(1001);
    expect(firstClose?.type === 'closed' && firstClose.reason.local).to.equal(false);
    // "Come back later": the client tried again (and found the server gone).
    expect(firstClose?.type === 'closed' && firstClose.retryIn).to.equal(20);
    expect(states.some((state) => state.type === 'connecting' && state.attempt === 2)).to.equal(
      true,
    );
  });

  it('lets the client acknowledge what it took before the 1001: each value the handler sent is received once or reported undelivered once', async () => {
    const received: number[] = [];
    const undelivered: number[] = [];
    const errors: unknown[] = [];
    let handlerEnded: unknown;
    let closing: Promise<void> | undefined;
    const server: Server = await serve(
      { host: '127.0.0.1', port: 0, pingInterval: Infinity, onError: (e) => errors.push(e) },
      {
        '/down': route<string, string>({
          codec: text(),
          handler: async (session) => {
            const net = channels(session);
            const down = net.channel<number>('down', {
              onUndelivered: (value) => undelivered.push(value),
            });
            for (const value of upTo(TOTAL)) {
              try {
                await down.outgoing.send(value);
              } catch (error) {
                handlerEnded ??= error;
              }
            }
          },
        }),
      },
    );
    const client = reconnecting(
      `${server.url}/down`,
      { codec: text(), minDelay: 20, maxDelay: 20, jitter: 0, maxAttempts: 1 },
      async (session) => {
        const net = channels(session);
        const down = net.channel<number>('down', { capacity: 4 });
        for await (const value of down.incoming) {
          received.push(value);
          // The client took it; its ack is due after this macrotask.
          if (received.length === 5) closing = server.close();
        }
      },
    );
    await client.done.catch(() => undefined);
    await closing;

    expect(received).to.deep.equal(upTo(received.length));
    expect([...received, ...undelivered].sort((a, b) => a - b)).to.deep.equal(upTo(TOTAL));
    expect(handlerEnded).to.be.instanceOf(ConnectionLostError);
    expect((handlerEnded as ConnectionLostError).closeReason.code).to.equal(1001);
    expect(errors).to.deep.equal([]);
    expect(client.state.type === 'closed' && client.state.reason.code).to.equal(1001);
  });

  it("aborts a resumable endpoint handler's signal with the connection's ServerClosedError before the goodbye ends, whether the handler read it before the shutdown or only after its session ended", async () => {
    const Idle = channelEndpoint('/idle', contract('idle', 1, { up: toServer<number>() }));
    // Per session: what the handler saw, in order.
    const seen: unknown[][] = [];
    let started = 0;
    const server: Server = await serve({ host: '127.0.0.1', port: 0, pingInterval: Infinity }, [
      Idle.handle(async ({ channels: { up }, signal, scope, closed }) => {
        const index = started++;
        const log: unknown[] = [];
        seen[index] = log;
        if (index === 0) {
          // Reads the signal (and the connection's scope) up front and listens.
          const connection = scope.signal;
          signal.addEventListener('abort', () => {
            log.push('abort', signal.reason === connection.reason, up.isClosedForReceive);
          });
        }
        // The shutdown's goodbye ends the channel without a value.
        log.push(await up.receiveCatching().then((result) => result.ok));
        await closed;
        // The other session reads it only now, after its session ended.
        log.push(signal.aborted, signal.reason instanceof ServerClosedError);
      }),
    ]);
    const clients = [0, 1].map(() =>
      Idle.reconnecting(server.url, () => new Promise(() => undefined), {
        reconnect: { maxAttempts: 1 },
      }),
    );
    while (started < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await server.close();
    await Promise.all(clients.map((client) => client.done.catch(() => undefined)));

    // Aborted at the shutdown, with the very reason of the connection's signal, while
    // the channel was still open (the goodbye had not ended it yet).
    expect(seen[0]).to.deep.equal(['abort', true, false, false, true, true]);
    expect(seen[1]).to.deep.equal([false, true, true]);
  });

  it("aborts a resumable endpoint handler's signal at the shutdown, not when the goodbye ends: a client that never answers the bye", async () => {
    const Idle = channelEndpoint('/idle', contract('idle', 1, { up: toServer<number>() }));
    let onStart: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      onStart = resolve;
    });
    let onAbort: (reason: unknown) => void = () => undefined;
    const aborted = new Promise<unknown>((resolve) => {
      onAbort = resolve;
    });
    const server: Server = await serve({ host: '127.0.0.1', port: 0, pingInterval: Infinity }, [
      Idle.handle(
        async ({ signal, closed }) => {
          signal.addEventListener('abort', () => {
            onAbort(signal.reason);
          });
          onStart();
          await closed;
        },
        // Without an answer the goodbye would last this long.
        { network: { byeTimeout: 60_000 } },
      ),
    ]);
    const ws = new WebSocket(`${server.url}/idle`);
    ws.on('error', () => undefined);
    await once(ws, 'open');
    // A raw client: asks for a resumable session, declares no contract, then stays silent.
    ws.send('["sluice",4]\n["resume"]\n["contract"]');
    await started;
    const closing = server.close();
    const reason = await aborted;
    expect(reason).to.be.instanceOf(ServerClosedError);
    expect(ws.readyState).to.equal(WebSocket.OPEN);
    ws.close();
    await closing;
  });

  it("makes a resumable handler's signal already aborted with the ServerClosedError when the handler first reads it after the shutdown ended its session", async () => {
    // The handler does not touch `signal` (nor destructure it) until its session ended:
    // the signal, made on first read, must come out aborted, with the same reason.
    const Idle = channelEndpoint('/idle', contract('idle', 1, { up: toServer<number>() }));
    const seen: unknown[] = [];
    let started = 0;
    const server: Server = await serve({ host: '127.0.0.1', port: 0, pingInterval: Infinity }, [
      Idle.handle(async (session) => {
        started++;
        await session.closed;
        const signal = session.signal;
        seen.push(signal.aborted, signal.reason instanceof ServerClosedError);
      }),
    ]);
    const client = Idle.reconnecting(server.url, () => new Promise(() => undefined), {
      reconnect: { maxAttempts: 1 },
    });
    while (started < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await server.close();
    await client.done.catch(() => undefined);
    expect(seen).to.deep.equal([true, true]);
  });
});
