// Node-only behaviour of the WebSocket adapter: `ws`'s pause()/resume() under a full
// `incoming`, wrapping server-side `ws` sockets (what sluice/server builds on), and
// asynchronous schemas keeping message order.
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocketServer } from 'ws';
import type { WebSocket as WsSocket } from 'ws';
import { z } from 'zod';
import net from 'node:net';
import { captureUncaught } from '../helpers/root-hooks.js';
import { connect, json, text, wrap } from '../../lib/websocket/index.js';
import { startPeerServer } from './peer-server.js';
import type { PeerServer } from './peer-server.js';

describe('WebSocket adapter in Node', function () {
  this.timeout(20_000);
  let peer: PeerServer;

  before(async () => {
    peer = await startPeerServer();
  });

  after(async () => {
    await peer.close();
  });

  it('pauses a ws socket while incoming is full and loses nothing', async () => {
    const socket = new (await import('ws')).WebSocket(`${peer.url}/flood?n=20000&size=64`);
    const session = wrap(socket, { codec: text(), incomingCapacity: 4 });
    // Nobody reads yet: the flood fills incoming and the socket is paused.
    for (let i = 0; i < 500 && !socket.isPaused; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(socket.isPaused).to.equal(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(socket.isPaused, 'still paused while nobody reads').to.equal(true);
    let count = 0;
    for await (const message of session.incoming) {
      expect(message).to.have.length(64);
      count++;
    }
    expect(socket.isPaused).to.equal(false);
    expect(count).to.equal(20_000);
    expect(await session.closed).to.deep.equal({ code: 1000, reason: 'flooded', wasClean: true });
  });

  it('wraps server-side ws sockets with the same semantics', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss.once('listening', resolve));
    const { port } = wss.address() as AddressInfo;
    const serverSide = new Promise<WsSocket>((resolve) => wss.once('connection', resolve));
    const client = await connect<string, string>(`ws://127.0.0.1:${port}`, { codec: text() });
    const server = wrap<string, string>(await serverSide, { codec: text() });
    await client.outgoing.send('hello');
    expect(await server.incoming.receive()).to.equal('hello');
    await server.outgoing.send('world');
    expect(await client.incoming.receive()).to.equal('world');
    const serverClosed = server.closed;
    expect(await client.close(4005, 'bye')).to.deep.equal({
      code: 4005,
      reason: 'bye',
      wasClean: true,
    });
    expect(await serverClosed).to.deep.equal({ code: 4005, reason: 'bye', wasClean: true });
    expect(await server.incoming.receiveCatching()).to.deep.include({ ok: false, closed: true });
    await new Promise((resolve) => wss.close(resolve));
  });

  it('keeps message order with an asynchronous schema', async () => {
    const schema = z.object({ i: z.number() }).refine(async (v) => {
      await new Promise((resolve) => setTimeout(resolve, v.i % 3));
      return true;
    });
    const session = await connect(`${peer.url}/send?n=50&code=1000`, { codec: json(schema) });
    const received: number[] = [];
    for await (const message of session.incoming) received.push(message.i);
    expect(received).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
  });
  // An abort while opening drops the socket; `ws` may still emit 'error' on it later (the
  // aborted handshake, a reset). The session's error listener stays, so nothing is uncaught.
  for (const when of ['before the TCP connection', 'after the request, before a reply']) {
    it(`connect() aborted ${when}, then the server resets: nothing uncaught`, async () => {
      const sockets: net.Socket[] = [];
      let requested = (): void => undefined;
      const request = new Promise<void>((resolve) => (requested = resolve));
      const server = net.createServer((socket) => {
        sockets.push(socket);
        socket.on('error', () => undefined);
        socket.once('data', () => requested());
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const reason = new Error('stop');
      const uncaught = await captureUncaught(async () => {
        const controller = new AbortController();
        const outcome = connect(`ws://127.0.0.1:${port}/`, { signal: controller.signal }).then(
          () => 'opened',
          (error: unknown) => error,
        );
        if (when.startsWith('after')) await request;
        controller.abort(reason);
        expect(await outcome).to.equal(reason);
        await new Promise((resolve) => setTimeout(resolve, 30));
        for (const socket of sockets) socket.resetAndDestroy();
        await new Promise((resolve) => setTimeout(resolve, 50));
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
      expect(uncaught).to.deep.equal([]);
      if (when.startsWith('after')) expect(sockets).to.have.length(1);
    });
  }
});
