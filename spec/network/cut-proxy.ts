/**
 * A small TCP proxy on `node:net` for the resume specs (Node only, 127.0.0.1): forwards
 * every connection to the current target port, and cuts the connections on demand —
 * `cut()` destroys both sides (each end sees the TCP connection drop: 1006), `blackhole()`
 * stops forwarding without closing (only a heartbeat or idle timeout notices).
 */
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/** The proxy, its URL and its controls. */
export interface CutProxy {
  /** `ws://127.0.0.1:<port>`. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** The port new connections are forwarded to. */
  target: number;
  /**
   * New connections forward only what the client sends once the server's hello went
   * through: the server's answers are dropped (a resume handshake the server completes
   * and the client never sees).
   */
  muteNew: boolean;
  /**
   * New connections are accepted and then forward nothing, either way: a black hole
   * during the opening handshake (the client's upgrade request never reaches the server).
   */
  holdNew: boolean;
  /** Destroys every connection open now, both sides. */
  cut(): void;
  /** Stops forwarding on every connection open now (they stay open). */
  blackhole(): void;
  /** Cuts everything and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy forwarding to `target` (a port on 127.0.0.1). */
export async function startCutProxy(target: number): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let connections = 0;
  const proxy = {
    url: '',
    target,
    muteNew: false,
    holdNew: false,
    get connections() {
      return connections;
    },
    cut(): void {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    blackhole(): void {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.on('data', () => undefined);
        b.on('data', () => undefined);
      }
    },
    close: async (): Promise<void> => {
      proxy.cut();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
  const server = createServer((client) => {
    connections++;
    const upstream = connect(proxy.target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on('error', end);
      socket.on('close', end);
    }
    if (proxy.holdNew) {
      client.on('data', () => undefined);
      upstream.on('data', () => undefined);
      return;
    }
    client.pipe(upstream);
    if (proxy.muteNew) {
      // Forward the upgrade response and the server's hello, then nothing.
      let seen = '';
      const forward = (data: Buffer): void => {
        client.write(data);
        seen += data.toString('latin1');
        if (seen.includes('["sluice",')) upstream.off('data', forward);
      };
      upstream.on('data', forward);
      upstream.on('data', () => undefined);
    } else {
      upstream.pipe(client);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `ws://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return proxy;
}
