// Binary values on network channels (protocol version 3, docs/protocol.md section 8): a
// Uint8Array travels as the bytes of a binary message, ["b",id] LF bytes; text batches
// and binary messages keep their order; a version-2 end (a text() session, or a peer
// speaking version 2) refuses bytes with an EncodeError; malformed binary messages close
// with 1002, one from a version-2 connection with 1003, an oversize one with 1009.
import { expect } from 'chai';
import WebSocket from 'ws';
import type { RawData } from 'ws';
import { route, testConversation } from '../../lib/server/index.js';
import type { ServeOptions } from '../../lib/server/index.js';
import { EncodeError, DecodeError, connect, raw, text, wrap } from '../../lib/websocket/index.js';
import type { Frame, WebSocketLike } from '../../lib/websocket/index.js';
import {
  ConnectionLostError,
  ProtocolError,
  channelEndpoint,
  channels,
  contract,
  toServer,
} from '../../lib/network/index.js';
import type { ChannelSession } from '../../lib/network/index.js';
import { deferred, rejection, sleep, useServers, waitFor } from '../server/helpers.js';

const LF = 0x0a;

/** Deterministic pseudo-random bytes (xorshift), with LFs and invalid UTF-8 mixed in. */
function randomBytes(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  // Every 7th byte an LF, every 11th a lone continuation byte (invalid UTF-8).
  for (let i = 0; i < size; i += 7) bytes[i] = LF;
  for (let i = 3; i < size; i += 11) bytes[i] = 0x80;
  return bytes;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** A peer that speaks frames by hand over a plain `ws` client (a version-2 peer, a hostile one). */
interface FakePeer {
  readonly socket: WebSocket;
  /** Text frames (each message split on LF) and binary messages, in arrival order. */
  readonly received: (string | Uint8Array)[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(...frames: string[]): void;
}

async function fakePeer(url: string): Promise<FakePeer> {
  const socket = new WebSocket(url);
  const received: (string | Uint8Array)[] = [];
  socket.on('message', (data, isBinary) => {
    if (isBinary) received.push(toBytes(data));
    else received.push(...toBytes(data).toString().split('\n'));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    received,
    closed,
    send: (...frames) => {
      socket.send(frames.join('\n'));
    },
  };
}

describe('network channels: binary values', () => {
  const servers = useServers();
  const open: ChannelSession[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((net) => net.close()));
  });

  /** A server whose connections are channel sessions made by `handler` (with the raw() codec unless `codec` says text). */
  async function serveChannels(
    handler: (net: ChannelSession) => Promise<void> | void,
    options: ServeOptions = {},
    codec: 'raw' | 'text' = 'raw',
  ): Promise<string> {
    const handle = async (net: ChannelSession): Promise<void> => {
      try {
        await handler(net);
      } finally {
        await net.closed;
      }
    };
    const server = await servers.start(options, {
      '/net':
        codec === 'raw'
          ? route({ codec: raw(), handler: (session) => handle(channels(session)) })
          : route({ codec: text(), handler: (session) => handle(channels(session)) }),
    });
    return `${server.url}/net`;
  }

  /** A client channel session over a `ws` socket whose sent messages are recorded. */
  async function client(url: string): Promise<{ net: ChannelSession; sent: Frame[] }> {
    const socket = new WebSocket(url);
    const sent: Frame[] = [];
    const send = socket.send.bind(socket);
    (socket as unknown as WebSocketLike).send = (data: Frame) => {
      sent.push(typeof data === 'string' ? data : new Uint8Array(data));
      send(data);
    };
    const net = channels(wrap<Frame, Frame>(socket as unknown as WebSocketLike, { codec: raw() }));
    open.push(net);
    return { net, sent };
  }

  describe('round trip', () => {
    it('carries exact bytes of 0 B, 1 B, 1 KiB and 64 KiB, LFs and invalid UTF-8 included', async () => {
      const values = [
        new Uint8Array(0),
        Uint8Array.of(LF),
        randomBytes(1024, 1),
        randomBytes(64 * 1024, 2),
        Uint8Array.of(0xff, 0xfe, 0xc3, LF, LF, 0x00, 0xed, 0xa0, 0x80),
      ];
      const got: Uint8Array[] = [];
      const url = await serveChannels(async (net) => {
        const echo = net.channel<Uint8Array>('echo', { capacity: 8 });
        for await (const value of echo.incoming) {
          got.push(value);
          await echo.outgoing.send(value);
        }
        echo.outgoing.close();
      });
      const { net, sent } = await client(url);
      const echo = net.channel<Uint8Array>('echo', { capacity: 8 });
      const back: Uint8Array[] = [];
      for (const value of values) {
        await echo.outgoing.send(value);
        back.push(await echo.incoming.receive());
      }
      echo.outgoing.close();
      for (const [i, value] of values.entries()) {
        for (const received of [got[i], back[i]]) {
          expect(received).to.be.instanceOf(Uint8Array);
          expect(Buffer.isBuffer(received)).to.equal(false);
          expect(hex(received as Uint8Array)).to.equal(hex(value));
        }
      }
      // Each value left as one binary message: the header, an LF, the raw bytes (no base64).
      const binary = sent.filter((message) => message instanceof Uint8Array);
      expect(binary.map((message) => hex(message as Uint8Array))).to.deep.equal(
        values.map((value) => hex(Buffer.concat([Buffer.from('["b",0]\n'), value]))),
      );
    });

    it('hands over a view into the received message: no copy beyond the session’s own', async () => {
      const url = await serveChannels(async (net) => {
        await net.channel<Uint8Array>('up', { capacity: 1 }).outgoing.send(Uint8Array.of(7, 8));
      });
      const { net } = await client(url);
      const value = await net.channel<Uint8Array>('up', { capacity: 1 }).incoming.receive();
      expect([...value]).to.deep.equal([7, 8]);
      expect(value.buffer).to.be.instanceOf(ArrayBuffer);
      expect(value.byteOffset).to.equal('["b",0]\n'.length);
      expect(value.buffer.byteLength).to.equal('["b",0]\n'.length + 2);
    });

    it('sends a Node Buffer as its bytes and receives a plain Uint8Array', async () => {
      const got = deferred<Uint8Array>();
      const url = await serveChannels(async (net) => {
        got.resolve(await net.channel<Uint8Array>('b', { capacity: 1 }).incoming.receive());
      });
      const { net } = await client(url);
      // A Buffer from the pool: a view at an offset into a larger ArrayBuffer.
      const buffer = Buffer.from('hi there');
      await net.channel<Uint8Array>('b').outgoing.send(buffer.subarray(3));
      const value = await got.promise;
      expect(Buffer.isBuffer(value)).to.equal(false);
      expect(Buffer.from(value).toString()).to.equal('there');
    });
  });

  describe('order', () => {
    it('keeps the order of text and binary values on one channel', async () => {
      const got = deferred<unknown[]>();
      const url = await serveChannels(async (net) => {
        const mixed = net.channel<unknown>('mixed', { capacity: Infinity });
        const values: unknown[] = [];
        for (let i = 0; i < 8; i++) values.push(await mixed.incoming.receive());
        got.resolve(values);
      });
      const { net } = await client(url);
      const mixed = net.channel<unknown>('mixed');
      await net.ready;
      await waitFor(() => mixed.outgoing.trySend(0).ok, 2000, 'the peer’s open');
      // One macrotask: text frames batch, and each binary message flushes them first.
      for (const value of [1, Uint8Array.of(2), Uint8Array.of(3), 4, 5, Uint8Array.of(6), 7]) {
        expect(mixed.outgoing.trySend(value)).to.deep.equal({ ok: true });
      }
      const values = (await got.promise).map((value) =>
        value instanceof Uint8Array ? `bytes ${String(value[0])}` : value,
      );
      expect(values).to.deep.equal([0, 1, 'bytes 2', 'bytes 3', 4, 5, 'bytes 6', 7]);
    });

    it('keeps the order of text and binary messages across channels', async () => {
      const done = deferred();
      const url = await serveChannels(async (net) => {
        const a = net.channel<number>('a', { capacity: Infinity });
        const b = net.channel<Uint8Array>('b', { capacity: Infinity });
        for (let i = 0; i < 3; i++) {
          await a.incoming.receive();
          await b.incoming.receive();
        }
        done.resolve();
      });
      const { net, sent } = await client(url);
      const a = net.channel<number>('a');
      const b = net.channel<Uint8Array>('b');
      await waitFor(
        () => a.outgoing.trySend(0).ok && b.outgoing.trySend(Uint8Array.of(0)).ok,
        2000,
        'the peer’s opens',
      );
      for (let i = 1; i < 3; i++) {
        expect(a.outgoing.trySend(i).ok).to.equal(true);
        expect(b.outgoing.trySend(Uint8Array.of(i)).ok).to.equal(true);
      }
      await done.promise;
      // The values in the order the client's socket sent them, whatever the grouping.
      const order: string[] = [];
      for (const message of sent) {
        if (message instanceof Uint8Array) {
          order.push(`b${String(message[message.length - 1])}`);
          continue;
        }
        for (const frame of message.split('\n')) {
          const items = JSON.parse(frame) as unknown[];
          if (items[0] === 'v') order.push(`a${String(items[2])}`);
        }
      }
      expect(order).to.deep.equal(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
    });
  });

  describe('channel semantics', () => {
    it('a rendezvous send of bytes resolves only once the receiver took them', async () => {
      const take = deferred();
      const taken = deferred<Uint8Array>();
      const url = await serveChannels(async (net) => {
        const ch = net.channel<Uint8Array>('r');
        await take.promise;
        taken.resolve(await ch.incoming.receive());
      });
      const { net } = await client(url);
      let resolved = false;
      const sending = net
        .channel<Uint8Array>('r')
        .outgoing.send(Uint8Array.of(1, 2, 3))
        .then(() => {
          resolved = true;
        });
      await sleep(50);
      expect(resolved).to.equal(false);
      take.resolve();
      expect([...(await taken.promise)]).to.deep.equal([1, 2, 3]);
      await sending;
      expect(resolved).to.equal(true);
    });

    it('a buffered peer of capacity 2 takes two values of bytes, the third send waits', async () => {
      const take = deferred();
      const values: number[] = [];
      const url = await serveChannels(async (net) => {
        const ch = net.channel<Uint8Array>('c', { capacity: 2 });
        await take.promise;
        for (let i = 0; i < 3; i++) values.push((await ch.incoming.receive())[0] as number);
      });
      const { net } = await client(url);
      const ch = net.channel<Uint8Array>('c');
      await ch.outgoing.send(Uint8Array.of(1));
      await ch.outgoing.send(Uint8Array.of(2));
      let third = false;
      const sending = ch.outgoing.send(Uint8Array.of(3)).then(() => {
        third = true;
      });
      await sleep(50);
      expect(third).to.equal(false);
      take.resolve();
      await sending;
      await waitFor(() => values.length === 3, 2000, 'three values');
      expect(values).to.deep.equal([1, 2, 3]);
    });

    it('reports bytes not taken to onUndelivered when the peer cancels', async () => {
      const cancelled = deferred();
      const url = await serveChannels(async (net) => {
        const ch = net.channel<Uint8Array>('u', { capacity: 4 });
        await waitFor(() => !ch.incoming.isEmpty, 2000, 'a value');
        ch.incoming.cancel(new Error('enough'));
        cancelled.resolve();
      });
      const { net } = await client(url);
      const undelivered: Uint8Array[] = [];
      const ch = net.channel<Uint8Array>('u', {
        onUndelivered: (value) => undelivered.push(value),
      });
      const bytes = [Uint8Array.of(1), Uint8Array.of(2)];
      for (const value of bytes) await ch.outgoing.send(value);
      await cancelled.promise;
      await waitFor(() => undelivered.length === 2, 2000, 'two undelivered');
      expect(undelivered[0]).to.equal(bytes[0]);
      expect(undelivered[1]).to.equal(bytes[1]);
    });

    it('validates received bytes with the channel’s schema (1007 on failure, the bytes as data)', async () => {
      const short = {
        '~standard': {
          version: 1 as const,
          vendor: 'test',
          validate: (value: unknown) =>
            value instanceof Uint8Array && value.length <= 2
              ? { value }
              : { issues: [{ message: 'Expected at most 2 bytes' }] },
        },
      };
      const lost = deferred<unknown>();
      const url = await serveChannels(async (net) => {
        const ch = net.channel('s', { capacity: 4, schema: short });
        expect([...(await ch.incoming.receive())]).to.deep.equal([1, 2]);
        lost.resolve(await rejection(ch.incoming.receive()));
      });
      const { net } = await client(url);
      const ch = net.channel<Uint8Array>('s');
      await ch.outgoing.send(Uint8Array.of(1, 2));
      await ch.outgoing.send(Uint8Array.of(1, 2, 3));
      const error = (await lost.promise) as ConnectionLostError;
      expect(error).to.be.instanceOf(ConnectionLostError);
      expect(error.cause).to.be.instanceOf(DecodeError);
      expect((error.cause as DecodeError).issues?.[0]?.message).to.equal(
        'Expected at most 2 bytes',
      );
      expect([...((error.cause as DecodeError).data as Uint8Array)]).to.deep.equal([1, 2, 3]);
      expect((await net.closed).code).to.equal(1007);
    });

    it('refuses other binary views and ArrayBuffer with an EncodeError naming them', async () => {
      const url = await serveChannels(async (net) => {
        net.channel('x', { capacity: 4 });
      });
      const { net } = await client(url);
      const undelivered: unknown[] = [];
      const x = net.channel<unknown>('x', { onUndelivered: (value) => undelivered.push(value) });
      const view = Int16Array.of(1);
      const refused = await rejection(x.outgoing.send(view));
      // A send that rejects hands its value to onUndelivered; trySend and onSend throw.
      expect(undelivered).to.have.length(1);
      expect(undelivered[0]).to.equal(view);
      expect(refused).to.be.instanceOf(EncodeError);
      expect((refused as Error).message).to.equal(
        'Expected a Uint8Array to send bytes, got Int16Array (wrap its bytes: new Uint8Array(view.buffer, view.byteOffset, view.byteLength))',
      );
      expect(() => x.outgoing.trySend(new ArrayBuffer(2))).to.throw(
        EncodeError,
        'Expected a Uint8Array to send bytes, got ArrayBuffer',
      );
      expect(() => x.outgoing.onSend(new DataView(new ArrayBuffer(1)))).to.throw(
        EncodeError,
        'got DataView',
      );
      expect(undelivered).to.have.length(1);
    });

    it('sends a Uint8Array nested in an object as JSON does (documented: an object of indexes)', async () => {
      const got = deferred<unknown>();
      const url = await serveChannels(async (net) => {
        got.resolve(await net.channel('n', { capacity: 1 }).incoming.receive());
      });
      const { net } = await client(url);
      await net.channel<unknown>('n').outgoing.send({ b: Uint8Array.of(5, 6) });
      expect(await got.promise).to.deep.equal({ b: { 0: 5, 1: 6 } });
    });

    it('carries bytes over a channel endpoint (the library picks raw())', async () => {
      const Files = contract('files', 1, { chunks: toServer<Uint8Array>({ capacity: 2 }) });
      const Endpoint = channelEndpoint('/files', Files);
      const got: string[] = [];
      await testConversation(
        Endpoint.handle(async ({ channels: { chunks } }) => {
          for await (const chunk of chunks) got.push(hex(chunk));
        }),
        Endpoint.client(async ({ channels: { chunks } }) => {
          await chunks.send(Uint8Array.of(0, LF, 0xff));
          await chunks.send(new Uint8Array(0));
          chunks.close();
        }),
      );
      expect(got).to.deep.equal(['000aff', '']);
    });
  });

  describe('version 2 interop', () => {
    it('speaks version 2 with a version-2 peer: JSON values flow, bytes are an EncodeError', async () => {
      const sendResult = deferred<unknown>();
      const undelivered: unknown[] = [];
      const url = await serveChannels(async (net) => {
        const ch = net.channel<unknown>('x', {
          capacity: 4,
          onUndelivered: (value) => undelivered.push(value),
        });
        await net.ready;
        await ch.outgoing.send(5);
        sendResult.resolve(await rejection(ch.outgoing.send(Uint8Array.of(1))));
        await ch.outgoing.send('after');
      });
      const peer = await fakePeer(url);
      peer.send('["sluice",2]', '["contract"]', '["open",0,"x",4]');
      const error = await sendResult.promise;
      expect(error).to.be.instanceOf(EncodeError);
      expect((error as Error).message).to.equal(
        'Expected a value that JSON can encode, got a Uint8Array: bytes travel as binary messages, from protocol version 3 on, and the peer speaks protocol version 2',
      );
      expect(undelivered).to.have.length(1);
      await waitFor(() => peer.received.includes('["v",0,"after"]'), 2000, 'the value after');
      expect(peer.received.filter((frame) => typeof frame !== 'string')).to.deep.equal([]);
      expect(peer.received[0]).to.equal('["sluice",3]');
      expect(peer.received).to.include('["contract"]');
      expect(peer.received).to.include('["v",0,5]');
      peer.socket.close();
      await peer.closed;
    });

    it('refuses bytes that waited for the peer’s hello once it says version 2', async () => {
      const result = deferred<unknown>();
      const undelivered: unknown[] = [];
      const bytes = Uint8Array.of(1);
      const url = await serveChannels(async (net) => {
        const ch = net.channel<unknown>('x', {
          capacity: 4,
          onUndelivered: (value) => undelivered.push(value),
        });
        // Sent before the peer's hello: it waits for the peer's open.
        result.resolve(await rejection(ch.outgoing.send(bytes)));
      });
      const peer = await fakePeer(url);
      await sleep(20);
      peer.send('["sluice",2]', '["contract"]', '["open",0,"x",0]', '["pull",0,1]');
      expect(await result.promise).to.be.instanceOf(EncodeError);
      expect(undelivered).to.deep.equal([bytes]);
      expect(undelivered[0]).to.equal(bytes);
      peer.socket.close();
      await peer.closed;
    });

    it('closes with 1003 when a version-2 connection receives a binary message', async () => {
      const lost = deferred<unknown>();
      const url = await serveChannels(async (net) => {
        lost.resolve(await rejection(net.channel('x', { capacity: 4 }).incoming.receive()));
      });
      const peer = await fakePeer(url);
      peer.send('["sluice",2]', '["contract"]', '["open",0,"x",4]');
      peer.socket.send(Buffer.from('["b",0]\n\x01'));
      expect(await peer.closed).to.deep.equal({
        code: 1003,
        reason: 'Expected text messages (protocol version 2), got a binary message',
      });
      const error = (await lost.promise) as ConnectionLostError;
      expect(error.cause).to.be.instanceOf(ProtocolError);
    });

    it('announces version 2 over a text() session, and refuses bytes with a message saying why', async () => {
      const hello = deferred<unknown>();
      const url = await serveChannels(
        async (net) => {
          const ch = net.channel<unknown>('x', { capacity: 4 });
          await net.ready;
          hello.resolve(await rejection(ch.outgoing.send(Uint8Array.of(1))));
          await ch.outgoing.send('text still works');
        },
        {},
        'text',
      );
      const net = channels(await connect(url, { codec: raw() }));
      open.push(net);
      const ch = net.channel<unknown>('x', { capacity: 4 });
      const error = await hello.promise;
      expect(error).to.be.instanceOf(EncodeError);
      expect((error as Error).message).to.match(
        /this end's session carries text only \(make it with the raw\(\) codec\)$/,
      );
      expect(await ch.incoming.receive()).to.equal('text still works');
      // The raw() end speaks version 2 too: its bytes are refused as well.
      const refused = await rejection(ch.outgoing.send(Uint8Array.of(2)));
      expect((refused as Error).message).to.match(/the peer speaks protocol version 2$/);
    });
  });

  describe('hostile binary messages', () => {
    const cases: [string, Buffer, string][] = [
      [
        'no line feed in the first 33 bytes',
        Buffer.alloc(64, 0x41),
        'Expected a binary message to start with a header ["b",id] of at most 32 bytes and a line feed, got none',
      ],
      [
        'a header that is not ["b",id]',
        Buffer.from('["v",0]\n\x01'),
        `Expected a binary message's header to be ["b",id], got '["v",0]' (string)`,
      ],
      [
        'a header that is not JSON',
        Buffer.from('b 0\nxy'),
        `Expected a binary message's header to be ["b",id], got 'b 0' (string)`,
      ],
      [
        'an id that is not a count',
        Buffer.from('["b",-1]\nxy'),
        `Expected a binary message's header to be ["b",id], got '["b",-1]' (string)`,
      ],
      [
        'an id never announced',
        Buffer.from('["b",9]\nxy'),
        'Received a binary message for channel id 9, which was not announced',
      ],
      [
        'an empty message',
        Buffer.alloc(0),
        'Expected a binary message to start with a header ["b",id] of at most 32 bytes and a line feed, got none',
      ],
    ];
    for (const [what, message, reason] of cases) {
      it(`closes with 1002 for ${what}, other connections unaffected`, async () => {
        const url = await serveChannels(async (net) => {
          const echo = net.channel<Uint8Array>('echo', { capacity: 4 });
          for await (const value of echo.incoming) await echo.outgoing.send(value);
        });
        const { net: other } = await client(url);
        const otherEcho = other.channel<Uint8Array>('echo', { capacity: 4 });
        await otherEcho.outgoing.send(Uint8Array.of(1));
        expect([...(await otherEcho.incoming.receive())]).to.deep.equal([1]);
        const peer = await fakePeer(url);
        peer.send('["sluice",3]', '["contract"]');
        peer.socket.send(message);
        expect(await peer.closed).to.deep.equal({ code: 1002, reason });
        await otherEcho.outgoing.send(Uint8Array.of(2));
        expect([...(await otherEcho.incoming.receive())]).to.deep.equal([2]);
      });
    }

    it('closes with 1002 for a binary message before the hello', async () => {
      const url = await serveChannels(() => undefined);
      const peer = await fakePeer(url);
      peer.socket.send(Buffer.from('["b",0]\nxy'));
      expect(await peer.closed).to.deep.equal({
        code: 1002,
        reason: 'Expected the hello frame ["sluice",3] first, got a binary message',
      });
    });

    it('closes with 1002 for bytes beyond the allowance', async () => {
      const url = await serveChannels((net) => {
        net.channel('x', { capacity: 1 });
      });
      const peer = await fakePeer(url);
      peer.send('["sluice",3]', '["contract"]');
      peer.socket.send(Buffer.from('["b",0]\n1'));
      peer.socket.send(Buffer.from('["b",0]\n2'));
      expect(await peer.closed).to.deep.equal({
        code: 1002,
        reason: "Received a value on channel 'x' beyond the allowance it had granted",
      });
    });

    it('closes with 1009 when a binary value is larger than maxMessageSize', async () => {
      const url = await serveChannels(
        (net) => {
          net.channel('big', { capacity: 4 });
        },
        { maxMessageSize: 1024 },
      );
      const { net } = await client(url);
      const big = net.channel<Uint8Array>('big');
      // 1,016 bytes + the 8-byte header fit; one more byte does not.
      await big.outgoing.send(new Uint8Array(1024 - 8));
      await big.outgoing.send(new Uint8Array(1024 - 7));
      const reason = await net.closed;
      expect(reason.code).to.equal(1009);
      const lost = await rejection(big.incoming.receive());
      expect(lost).to.be.instanceOf(ConnectionLostError);
    });
  });
});
