/**
 * `server.close()` with network channels: the shutdown says goodbye on every channel
 * session (docs/protocol.md section 7) before closing with 1001, so that every value is
 * received once or reported to `onUndelivered` once, and a reconnecting client takes the
 * 1001 as "come back later".
 */
import { expect } from 'chai';
import { route, serve } from '../../lib/server/index.js';
import type { Server } from '../../lib/server/index.js';
import { reconnecting, text } from '../../lib/websocket/index.js';
import { ConnectionLostError, channels } from '../../lib/network/index.js';
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
});
