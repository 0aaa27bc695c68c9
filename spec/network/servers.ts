/**
 * Node-side peers for the network channel specs (Node only), all on 127.0.0.1, any free
 * port:
 * - {@link startPairServer}: hands out the two `ws` sockets of fresh connections (client
 *   and server side), the two ends of a Node↔Node network pair;
 * - {@link startRelay}: pairs two WebSockets that ask for the same `?pair=ID` and forwards
 *   every frame verbatim between them (and the close), so that two browser sockets in one
 *   page are the two ends of one connection;
 * - {@link startUpDown}: a sluice server whose route puts network channels on each
 *   connection and echoes 'up' on 'down' (the genuine Chromium↔Node test).
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import { delay } from '../../lib/index.js';
import { describeValue } from '../../lib/internal/describe-value.js';
import { route, serve } from '../../lib/server/index.js';
import { raw, text } from '../../lib/websocket/index.js';
import { ConnectionLostError, channels } from '../../lib/network/index.js';
import type { ChannelSession } from '../../lib/network/index.js';
import { UP_CAPACITY } from './pair.js';
import type { SocketPair } from './pair.js';

/** Something listening, with its URL and how to shut it down. */
export interface Listening {
  /** `ws://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** Closes every connection and the server; resolves once nothing is left open. */
  close(): Promise<void>;
}

/** A plain `ws` server on `127.0.0.1` with a handler per connection, and its shutdown. */
async function listen(onConnection: (socket: WebSocket, url: URL) => void): Promise<Listening> {
  const sockets = new Set<Socket>();
  const http = createServer((_request, response) => {
    response.writeHead(426).end();
  });
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket, request) => {
    onConnection(socket, new URL(request.url ?? '/', 'http://peer'));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => {
        wss.close(() => resolve());
      });
      await new Promise<void>((resolve, reject) => {
        http.close((error) => (error ? reject(error) : resolve()));
      });
    },
  };
}

/** A server whose `open()` makes a connection and returns both of its sockets. */
export interface PairServer extends Listening {
  /** A fresh connection: `[client side, server side]`, the client possibly still opening. */
  open(): Promise<SocketPair>;
}

/** Starts a {@link PairServer}: each `open()` is one new Node↔Node connection. */
export async function startPairServer(): Promise<PairServer> {
  const waiting = new Map<string, (socket: WebSocket) => void>();
  let opened = 0;
  const server = await listen((socket, url) => {
    const id = url.searchParams.get('id') ?? '';
    waiting.get(id)?.(socket);
    waiting.delete(id);
  });
  return {
    ...server,
    open: async () => {
      opened += 1;
      const id = String(opened);
      const serverSide = new Promise<WebSocket>((resolve) => waiting.set(id, resolve));
      const client = new WebSocket(`${server.url}/?id=${id}`);
      return [client, await serverSide];
    },
  };
}

/** A close code that `ws` lets a server send, else undefined (then the close has none). */
function forwardableCode(code: number): number | undefined {
  return code === 1000 || (code >= 1001 && code <= 1014 && ![1004, 1005, 1006].includes(code))
    ? code
    : code >= 3000 && code <= 4999
      ? code
      : undefined;
}

/**
 * Starts a relay: the first socket of a pair (`?pair=ID`) waits for the second, what it
 * sends meanwhile is kept; then every frame one sends is sent to the other as it came
 * (text as text, binary as binary, in order). When one closes, the other is closed with
 * the same code and reason (a lost connection is dropped on the other side too).
 */
export async function startRelay(): Promise<Listening> {
  const first = new Map<
    string,
    { socket: WebSocket; held: [RawData, boolean][]; stopHolding(): void }
  >();
  return listen((socket, url) => {
    const id = url.searchParams.get('pair') ?? '';
    const alone = first.get(id);
    if (alone === undefined) {
      const held: [RawData, boolean][] = [];
      const hold = (data: RawData, isBinary: boolean): void => void held.push([data, isBinary]);
      const forget = (): void => void first.delete(id);
      first.set(id, {
        socket,
        held,
        stopHolding: () => {
          socket.off('message', hold);
          socket.off('close', forget);
        },
      });
      socket.on('message', hold);
      socket.on('close', forget);
      return;
    }
    first.delete(id);
    const other = alone.socket;
    // Only our own listeners: `ws` has its own on the socket (e.g. the server's client set).
    alone.stopHolding();
    for (const [data, isBinary] of alone.held) socket.send(data, { binary: isBinary });
    const forward = (from: WebSocket, to: WebSocket): void => {
      from.on('message', (data, isBinary) => to.send(data, { binary: isBinary }));
      from.on('close', (code, reason) => {
        if (to.readyState !== WebSocket.OPEN) return;
        if (code === 1006) to.terminate();
        else to.close(forwardableCode(code), reason);
      });
    };
    forward(other, socket);
    forward(socket, other);
  });
}

/** Milliseconds the Node side waits before echoing each value. */
export const ECHO_DELAY = 5;

/**
 * Starts a sluice server with two routes. `/bytes` (raw codec) inverts every byte of each
 * `Uint8Array` sent on its channel 'bytes' and sends it back. `/updown` puts network
 * channels on each connection (text codec):
 * - 'control' (capacity Infinity): answers 'ping' with 'pong'; 'go' starts the echo;
 * - 'up' (capacity {@link UP_CAPACITY}): nothing is taken before 'go'; then each value is
 *   echoed on 'down' as `echo <value>`, {@link ECHO_DELAY} ms after it was taken;
 * - when 'up' closes normally, 'down' is closed normally; when it closes with a cause,
 *   the cause as it arrived is described on 'control'
 *   (`{"className","name","message","isError"}`)
 *   and 'down' is closed with `new RangeError('node closed down')`.
 */
export async function startUpDown(): Promise<Listening> {
  const server = await serve(
    { pingInterval: Infinity },
    {
      '/updown': route<string, string>({
        codec: text(),
        handler: async (session) => {
          const net = channels(session);
          try {
            await upDown(net);
          } catch (error) {
            // The page went away mid-conversation (a failing test): nothing to report here,
            // the page's test says what went wrong.
            if (!(error instanceof ConnectionLostError)) throw error;
          } finally {
            await net.closed;
          }
        },
      }),
      // Binary values (protocol version 3): each Uint8Array on 'bytes' comes back on
      // 'bytes' with every byte inverted (x ^ 0xff), until the page closes it.
      '/bytes': route({
        codec: raw(),
        handler: async (session) => {
          const net = channels(session);
          const bytes = net.channel<Uint8Array>('bytes', { capacity: 4 });
          try {
            for await (const value of bytes.incoming) {
              await bytes.outgoing.send(value.map((byte) => byte ^ 0xff));
            }
            bytes.outgoing.close();
          } catch (error) {
            if (!(error instanceof ConnectionLostError)) throw error;
          } finally {
            await net.closed;
          }
        },
      }),
    },
  );
  return { url: server.url, close: () => server.close() };
}

/** The Node side of one '/updown' connection; see {@link startUpDown}. */
async function upDown(net: ChannelSession): Promise<void> {
  const control = net.channel<string>('control', { capacity: Infinity });
  const up = net.channel<string, never>('up', { capacity: UP_CAPACITY });
  const down = net.channel<never, string>('down');
  for await (const command of control.incoming) {
    if (command === 'ping') await control.outgoing.send('pong');
    if (command === 'go') break;
  }
  let cause: unknown;
  try {
    for await (const value of up.incoming) {
      await delay(ECHO_DELAY);
      await down.outgoing.send(`echo ${value}`);
    }
  } catch (error) {
    if (error instanceof ConnectionLostError) throw error;
    cause = error;
  }
  if (cause === undefined) {
    down.outgoing.close();
    return;
  }
  const described = {
    className: cause instanceof Error ? cause.constructor.name : typeof cause,
    name: cause instanceof Error ? cause.name : typeof cause,
    message: cause instanceof Error ? cause.message : describeValue(cause),
    isError: cause instanceof Error,
  };
  await control.outgoing.send(JSON.stringify(described));
  down.outgoing.close(new RangeError('node closed down'));
}
