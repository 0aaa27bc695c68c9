// A session over a Node `ws` socket listens to `ws`'s own 'close' and 'error' events
// (no `addEventListener` wrapper per connection) and must report every close exactly as
// `ws`'s WHATWG `CloseEvent` does: the same code, reason and `wasClean`. Each case drives
// a server-side `ws` socket from a hand-written client and compares the session's
// `closed` with a `ws` `addEventListener('close')` listener on the same socket.
//
// Every case runs twice: on a plain `ws` socket, where the session adds listeners, and on
// a socket of `sluice/server`'s class (server-socket.ts), which hands its events to the
// session from `emit` and gets no listener from it at all.
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { WebSocketServer } from 'ws';
import type { WebSocket as WsSocket } from 'ws';
import { WebSocketCloseError } from '../../lib/errors.js';
import type { CloseReason } from '../../lib/errors.js';
import { serverSocketClass } from '../../lib/server/server-socket.js';
import { text, wrap } from '../../lib/websocket/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { SINK, SocketSession } from '../../lib/websocket/session.js';
import type { SinkSocket } from '../../lib/websocket/session.js';
import { waitFor } from '../server/helpers.js';
import { closeOf, encodeFrame, nextClose, rawClient } from '../server/raw-client.js';
import type { RawClient } from '../server/raw-client.js';

const CLOSE = 8;
const TEXT = 1;

function closePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const bytes = Buffer.alloc(2 + Buffer.byteLength(reason));
  bytes.writeUInt16BE(code, 0);
  bytes.write(reason, 2);
  return bytes;
}

interface Connected {
  readonly client: RawClient;
  readonly ws: WsSocket;
  readonly session: Session<string>;
  /** What `ws`'s own `CloseEvent` said, for the same socket. */
  readonly reference: Promise<CloseReason>;
}

for (const sink of [false, true]) {
  describe(`SocketSession on a Node ws socket (${sink ? "sluice/server's socket class, events from emit" : 'plain ws, listeners'})`, function () {
    let wss: WebSocketServer;
    let port: number;
    /** The pongs the sink sockets reported (with the socket they came from). */
    const pongs: [WsSocket, Uint8Array][] = [];

    before(async () => {
      // No client tracking: the socket's only 'close' listeners are the test's.
      wss = new WebSocketServer({
        host: '127.0.0.1',
        port: 0,
        clientTracking: false,
        ...(sink
          ? { WebSocket: serverSocketClass((socket, data) => pongs.push([socket, data])) }
          : {}),
      });
      await new Promise((resolve) => wss.once('listening', resolve));
      port = (wss.address() as AddressInfo).port;
    });

    const clients: RawClient[] = [];

    afterEach(() => {
      // A failed case must not leave its connection open (the server waits for it).
      for (const client of clients.splice(0)) client.socket.destroy();
    });

    after(async () => {
      await new Promise((resolve) => wss.close(resolve));
    });

    async function connected(): Promise<Connected> {
      const accepted = new Promise<WsSocket>((resolve) => wss.once('connection', resolve));
      const client = await rawClient(port);
      clients.push(client);
      const ws = await accepted;
      const reference = new Promise<CloseReason>((resolve) => {
        ws.addEventListener('close', (event) => {
          resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
        });
      });
      const session = sink
        ? new SocketSession<string, string>(ws, { codec: text() }, true)
        : wrap<string>(ws, { codec: text() });
      return { client, ws, session, reference };
    }

    if (sink) {
      it('adds no listener: the socket hands message, close and error to the session from emit', async () => {
        const { client, ws, session } = await connected();
        expect((ws as unknown as SinkSocket)[SINK]).to.equal(session);
        expect(ws.listenerCount('message')).to.equal(0);
        expect(ws.listenerCount('close')).to.equal(1); // the reference listener only
        expect(ws.listenerCount('error')).to.equal(0);
        expect(ws.listenerCount('pong')).to.equal(0);
        client.sendFrame(TEXT, Buffer.from('one'));
        client.sendFrame(TEXT, Buffer.from('two'));
        expect(await session.incoming.receive()).to.equal('one');
        expect(await session.incoming.receive()).to.equal('two');
        client.sendFrame(CLOSE, closePayload(1000));
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        expect((ws as unknown as SinkSocket)[SINK]).to.equal(null);
        // A late 'error' nobody listens to is dropped, not thrown.
        expect(ws.emit('error', new Error('late'))).to.equal(true);
        client.socket.destroy();
        await client.ended;
      });

      it("runs a listener added to the socket after the session took the message, with ws's arguments", async () => {
        const { client, ws, session } = await connected();
        const seen: unknown[][] = [];
        ws.on('message', (...args: unknown[]) => {
          // The session has the message already: its queue gives it synchronously.
          seen.push([...args, session.incoming.tryReceive()]);
        });
        client.sendFrame(TEXT, Buffer.from('hé'));
        await waitFor(() => seen.length > 0, 5000, 'the listener to see the message');
        expect(seen).to.have.length(1);
        const [data, isBinary, taken] = seen[0]!;
        expect(seen[0]).to.have.length(3);
        expect(Buffer.isBuffer(data) && data.toString()).to.equal('hé');
        expect(isBinary).to.equal(false);
        expect(taken).to.deep.equal({ ok: true, value: 'hé' });
        const errors: unknown[] = [];
        ws.on('error', (error) => errors.push(error));
        const error = new Error('reported');
        ws.emit('error', error);
        expect(errors).to.deep.equal([error]);
        client.sendFrame(CLOSE, closePayload(1000));
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        client.socket.destroy();
        await client.ended;
      });

      it("hands pongs to the server's heartbeat, with no 'pong' listener", async () => {
        const { client, ws, session } = await connected();
        pongs.length = 0;
        ws.ping(Buffer.from([1, 2, 3]));
        const ping = await client.next();
        expect(ping.opcode).to.equal(9);
        client.sendFrame(10, ping.payload);
        await waitFor(() => pongs.length > 0, 5000, 'the pong');
        expect(pongs).to.have.length(1);
        expect(pongs[0]![0]).to.equal(ws);
        expect([...pongs[0]![1]]).to.deep.equal([1, 2, 3]);
        expect(ws.listenerCount('pong')).to.equal(0);
        client.sendFrame(CLOSE, closePayload(1000));
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        client.socket.destroy();
        await client.ended;
      });
    } else
      it("listens to ws's own close and error events, without addEventListener wrappers", async () => {
        const { client, ws, session } = await connected();
        // ws's wrappers carry symbol-keyed properties (the listener they wrap); the
        // session's own listeners are plain functions.
        const wrapped = (event: 'close' | 'error'): number =>
          ws
            .listeners(event)
            .filter((listener) => Object.getOwnPropertySymbols(listener).length > 0).length;
        expect(ws.listenerCount('close')).to.equal(2); // the reference listener and the session's
        expect(wrapped('close')).to.equal(1); // the reference listener only
        expect(ws.listenerCount('error')).to.equal(1);
        expect(wrapped('error')).to.equal(0);
        client.sendFrame(CLOSE, closePayload(1000));
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        expect(wrapped('close')).to.equal(1);
        expect(ws.listenerCount('close')).to.equal(1); // the session removed its own
        expect(ws.listenerCount('error')).to.equal(1); // kept: a late 'error' must not throw
        client.socket.destroy();
        await client.ended;
      });

    it("reports a peer's Close with code and UTF-8 reason as ws does (clean)", async () => {
      const { client, session, reference } = await connected();
      client.sendFrame(CLOSE, closePayload(4001, 'café ✓'));
      expect(await nextClose(client)).to.deep.equal({ code: 4001, reason: 'café ✓' });
      client.socket.end();
      const expected = { code: 4001, reason: 'café ✓', wasClean: true };
      expect(await reference).to.deep.equal(expected);
      expect(await session.closed).to.deep.equal(expected);
      // 4001 is not a normal close: incoming ends with the close as its error.
      const error: unknown = await session.incoming.receive().catch((e: unknown) => e);
      expect(error).to.be.instanceOf(WebSocketCloseError);
      expect((error as WebSocketCloseError).closeCode).to.equal(4001);
      await client.ended;
    });

    it('reports a Close without a code as 1005, clean, as ws does', async () => {
      const { client, session, reference } = await connected();
      client.sendFrame(CLOSE, closePayload());
      expect(await nextClose(client)).to.deep.equal({ code: 1005, reason: '' });
      client.socket.end();
      const expected = { code: 1005, reason: '', wasClean: true };
      expect(await reference).to.deep.equal(expected);
      expect(await session.closed).to.deep.equal(expected);
      await client.ended;
    });

    it('reports its own Close answered by the peer as clean, as ws does', async () => {
      const { client, session, reference } = await connected();
      const closed = session.close(4003, 'done');
      const frame = await client.next();
      expect(closeOf(frame)).to.deep.equal({ code: 4003, reason: 'done' });
      client.sendFrame(CLOSE, frame.payload);
      const expected = { code: 4003, reason: 'done', wasClean: true };
      expect(await closed).to.deep.equal(expected);
      expect(await reference).to.deep.equal(expected);
      client.socket.destroy();
      await client.ended;
    });

    it('reports its own Close never answered (the peer drops TCP) as 1006, unclean', async () => {
      const { client, session, reference } = await connected();
      const closed = session.close(4003, 'done');
      expect(closeOf(await client.next())).to.deep.equal({ code: 4003, reason: 'done' });
      client.socket.destroy();
      const expected = { code: 1006, reason: '', wasClean: false };
      expect(await closed).to.deep.equal(expected);
      expect(await reference).to.deep.equal(expected);
    });

    it('reports a dropped connection as 1006, unclean, as ws does', async () => {
      const { client, session, reference } = await connected();
      client.sendFrame(TEXT, Buffer.from('last'));
      expect(await session.incoming.receive()).to.equal('last');
      client.socket.destroy();
      const expected = { code: 1006, reason: '', wasClean: false };
      expect(await reference).to.deep.equal(expected);
      expect(await session.closed).to.deep.equal(expected);
      const error: unknown = await session.incoming.receive().catch((e: unknown) => e);
      expect(error).to.be.instanceOf(WebSocketCloseError);
      expect((error as WebSocketCloseError).closeCode).to.equal(1006);
    });

    it("ends incoming with ws's protocol error as the cause (an unmasked frame)", async () => {
      const { client, session, reference } = await connected();
      client.sendFrame(TEXT, Buffer.from('x'), { mask: false });
      expect(await nextClose(client)).to.deep.equal({ code: 1002, reason: '' });
      client.socket.end();
      const expected = { code: 1006, reason: '', wasClean: false };
      expect(await reference).to.deep.equal(expected);
      expect(await session.closed).to.deep.equal(expected);
      const error: unknown = await session.incoming.receive().catch((e: unknown) => e);
      expect(error).to.be.instanceOf(WebSocketCloseError);
      const cause = (error as WebSocketCloseError).cause;
      expect(cause).to.be.instanceOf(RangeError);
      expect((cause as RangeError & { code: string }).code).to.equal('WS_ERR_EXPECTED_MASK');
      await client.ended;
    });

    it("delivers the messages that came in one write with the peer's Close and FIN, in order, before the close; the socket's own listeners see the same", async () => {
      const { client, ws, session, reference } = await connected();
      const events: string[] = [];
      ws.on('message', (data: Buffer) => events.push(`message ${data.toString()}`));
      ws.on('close', (code: number) => events.push(`close ${String(code)}`));
      client.write(
        Buffer.concat([
          encodeFrame(TEXT, Buffer.from('one')),
          encodeFrame(TEXT, Buffer.from('two')),
          encodeFrame(CLOSE, closePayload(1000)),
        ]),
      );
      client.socket.end();
      const received: string[] = [];
      for await (const message of session.incoming) received.push(message);
      const seen = await session.closed;
      expect(seen).to.deep.equal(await reference);
      expect(seen.code).to.equal(1000);
      expect(received).to.deep.equal(['one', 'two']);
      expect(events).to.deep.equal(['message one', 'message two', 'close 1000']);
      await client.ended;
    });

    it('reports a Close followed at once by a dropped connection as ws does', async () => {
      // Whether the reply got out before the drop depends on timing; whatever ws says,
      // the session says the same.
      for (let i = 0; i < 5; i++) {
        const { client, session, reference } = await connected();
        client.sendFrame(CLOSE, closePayload(4002, 'xy'));
        client.socket.destroy();
        const seen = await session.closed;
        expect(seen).to.deep.equal(await reference);
        expect([4002, 1006]).to.include(seen.code);
      }
    });
  });
}
