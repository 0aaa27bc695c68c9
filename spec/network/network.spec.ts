// Network channels (`channels(session)`), Node↔Node over real `ws` connections on
// 127.0.0.1: flow control, rendezvous, multiplexing, close and cancel across the wire,
// connection loss and its accounting, protocol violations, argument errors.
//
// Ordering without sleeps: `sync(from, to)` sends a token on an unlimited control channel
// and waits for it to come back. Frames of one connection are delivered in order, so
// after a sync started by `from`, every frame `to` had sent before answering has been
// handled by `from`, and every frame `from` sent before it has been handled by `to`.
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { expect } from 'chai';
import WebSocket from 'ws';
import { z } from 'zod';
import { Channel, ClosedReceiveError, ClosedSendError, select } from '../../lib/index.js';
import { route } from '../../lib/server/index.js';
import { DecodeError, EncodeError, connect, json, text, wrap } from '../../lib/websocket/index.js';
import {
  ConnectionLostError,
  ProtocolError,
  RemoteError,
  channels,
} from '../../lib/network/index.js';
import type {
  CloseEventLike,
  MessageEventLike,
  Session,
  WebSocketLike,
} from '../../lib/websocket/index.js';
import type {
  ChannelSession,
  ChannelSessionOptions,
  NetworkChannel,
} from '../../lib/network/index.js';
import { MemorySocket } from '../../lib/server/memory-socket.js';
import { BATCH_CHARS } from '../../lib/network/channels.js';
import { deferred, rejection, useServers } from '../server/helpers.js';

interface End {
  readonly net: ChannelSession;
  readonly ctl: NetworkChannel<number>;
}

/**
 * A token from `from` to `to` and back: see the file comment. It starts after one timer
 * turn, so that what either end's application did before has been written. Acks still
 * due after the macrotask travel in the same message as the token (or its answer), after
 * it, and are handled in that same turn, before the awaiting code resumes.
 */
async function sync(from: End, to: End): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  await from.ctl.outgoing.send(1);
  await to.ctl.incoming.receive();
  await to.ctl.outgoing.send(2);
  await from.ctl.incoming.receive();
}

/** A promise's state without waiting for it. */
function track(promise: Promise<unknown>): {
  state: 'pending' | 'resolved' | 'rejected';
  error?: unknown;
} {
  const tracker: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = {
    state: 'pending',
  };
  promise.then(
    () => {
      tracker.state = 'resolved';
    },
    (error: unknown) => {
      tracker.state = 'rejected';
      tracker.error = error;
    },
  );
  return tracker;
}

describe('network channels', function () {
  this.timeout(20_000);
  const servers = useServers();
  const open: ChannelSession[] = [];

  /** A connected pair: `client` (connect) and `server` (a sluice/server route). */
  async function pair(
    clientOptions: ChannelSessionOptions = {},
    serverOptions: ChannelSessionOptions = {},
  ): Promise<{ client: End; server: End; url: string; session: Session<string, string> }> {
    const serverSide = deferred<ChannelSession>();
    const server = await servers.start(
      {},
      {
        '/net': route({
          codec: text(),
          handler: async (session) => {
            const net = channels(session, serverOptions);
            serverSide.resolve(net);
            await net.closed;
          },
        }),
      },
    );
    const session = await connect<string, string>(`${server.url}/net`, { codec: text() });
    const clientNet = channels(session, clientOptions);
    open.push(clientNet);
    const serverNet = await serverSide.promise;
    const end = (net: ChannelSession): End => ({
      net,
      ctl: net.channel<number>('ctl', { capacity: Infinity }),
    });
    return { client: end(clientNet), server: end(serverNet), url: server.url, session };
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((net) => net.close()));
  });

  describe('arguments', () => {
    it('keeps each session to its own options when sessions are made one after another', async () => {
      const pairs = [MemorySocket.pair(), MemorySocket.pair(), MemorySocket.pair()];
      const made = pairs.map(([left], i) =>
        channels(wrap<string, string>(left, { codec: text() }), {
          maxNameLength: i === 1 ? 8 : 4,
        }),
      );
      const limits = made.map((net) => {
        try {
          net.channel('abcdefg');
          return 'accepted';
        } catch (error) {
          return (error as Error).constructor.name;
        }
      });
      expect(limits).to.deep.equal(['RangeError', 'accepted', 'RangeError']);
      for (const [, right] of pairs) right.close(1000, 'done');
      await Promise.all(made.map((net) => net.closed));
    });

    it('refuses what is not a session, a bad option, and a session taken over twice', async () => {
      expect(() => channels(null as never)).to.throw(
        TypeError,
        'Expected a session (with incoming, outgoing, closed and close), got null',
      );
      const server = await servers.start(
        {},
        { '/x': route({ codec: text(), handler: (session) => session.closed }) },
      );
      const session = await connect<string, string>(`${server.url}/x`, { codec: text() });
      expect(() => channels(session, { sendStacks: 'yes' } as never)).to.throw(
        TypeError,
        "Expected sendStacks to be a boolean or undefined, got 'yes' (string)",
      );
      expect(() => channels(session, { maxChannels: '8' } as never)).to.throw(
        TypeError,
        "Expected maxChannels to be a non-negative integer, Infinity or undefined, got '8' (string)",
      );
      expect(() => channels(session, { maxChannels: 1.5 })).to.throw(
        RangeError,
        'Expected maxChannels to be a non-negative integer, Infinity or undefined, got 1.5',
      );
      const net = channels(session);
      open.push(net);
      expect(() => channels(session)).to.throw(
        TypeError,
        'Expected a session not yet taken over by channels(), got one that was',
      );
    });

    it('refuses bad names, capacities, callbacks and schemas, and a name opened twice', async () => {
      const { client } = await pair();
      const net = client.net;
      expect(() => net.channel(42 as never)).to.throw(
        TypeError,
        'Expected name to be a non-empty string, got 42 (number)',
      );
      expect(() => net.channel('')).to.throw(
        RangeError,
        "Expected name to be a non-empty string, got ''",
      );
      expect(() => net.channel('a', { capacity: -1 })).to.throw(
        RangeError,
        'Expected capacity to be a non-negative integer or Infinity, got -1',
      );
      expect(() => net.channel('a', { capacity: 1.5 })).to.throw(
        RangeError,
        'Expected capacity to be a non-negative integer or Infinity, got 1.5',
      );
      expect(() => net.channel('a', { capacity: NaN })).to.throw(RangeError, 'got NaN');
      expect(() => net.channel('a', { capacity: '4' as never })).to.throw(
        TypeError,
        "Expected capacity to be a non-negative integer or Infinity, got '4' (string)",
      );
      expect(() => net.channel('a', { onUndelivered: 1 as never })).to.throw(
        TypeError,
        'Expected onUndelivered to be a function or undefined, got 1 (number)',
      );
      expect(() => net.channel('a', { schema: {} as never })).to.throw(
        TypeError,
        "Expected schema to be a Standard Schema (an object with '~standard'.validate) or undefined, got object",
      );
      expect(() => net.channel('a', null as never)).to.throw(
        TypeError,
        'Expected options to be an object, got null',
      );
      // None of the refused calls used the name up.
      net.channel('a');
      expect(() => net.channel('a')).to.throw(
        RangeError,
        "Expected the name of a channel not yet opened on this session, got 'a' (string)",
      );
      expect(() => net.channel('ctl')).to.throw(RangeError, "got 'ctl' (string)");
    });

    it('rejects a send of a value JSON cannot encode, keeping the channel usable', async () => {
      const { client, server } = await pair();
      const undelivered: unknown[] = [];
      const a = client.net.channel<unknown>('a', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<unknown>('a', { capacity: 4 });
      const big = 10n;
      const error = await rejection(a.outgoing.send(big));
      expect(error).to.be.instanceOf(EncodeError);
      expect((error as EncodeError).value).to.equal(big);
      expect(undelivered).to.deep.equal([big]);
      expect(() => a.outgoing.trySend(() => 1)).to.throw(EncodeError);
      expect(() => a.outgoing.onSend(Symbol('s'))).to.throw(EncodeError);
      await a.outgoing.send({ ok: [1, 'two', null] });
      await a.outgoing.send(undefined);
      expect(await b.incoming.receive()).to.deep.equal({ ok: [1, 'two', null] });
      expect(await b.incoming.receive()).to.equal(undefined);
    });
  });

  describe('flow control', () => {
    it('resolves exactly `capacity` sends while the receiver is stalled, and one more per value taken', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 4 });
      const promises = [1, 2, 3, 4, 5, 6].map((v) => a.outgoing.send(v));
      const sends = promises.map(track);
      await Promise.all(promises.slice(0, 4));
      // Whatever the server sent meanwhile (it took nothing, so no ack) has arrived.
      await sync(client, server);
      await sync(server, client);
      expect(sends.map((s) => s.state)).to.deep.equal([
        'resolved',
        'resolved',
        'resolved',
        'resolved',
        'pending',
        'pending',
      ]);
      expect(b.incoming.isEmpty).to.equal(false);
      expect(await b.incoming.receive()).to.equal(1);
      // Below half the window, but the sender is out of credit: the ack for this one value
      // goes out after the current macrotask and lets exactly one more send through.
      await promises[4];
      await sync(client, server);
      await sync(server, client);
      expect(sends.map((s) => s.state)).to.deep.equal([
        'resolved',
        'resolved',
        'resolved',
        'resolved',
        'resolved',
        'pending',
      ]);
      const received: number[] = [];
      for (let i = 0; i < 5; i++) received.push(await b.incoming.receive());
      expect(received).to.deep.equal([2, 3, 4, 5, 6]);
      await promises[5];
    });

    it('acknowledges at once when half the window has been taken', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 4 });
      for (let v = 1; v <= 4; v++) await a.outgoing.send(v);
      const fifth = track(a.outgoing.send(5));
      await sync(client, server); // the four values have arrived
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: true, value: 1 });
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: true, value: 2 });
      // No macrotask in between: the ack went out from a microtask.
      await Promise.resolve();
      await sync(server, client);
      expect(fifth.state).to.equal('resolved');
    });

    for (const capacity of [16, Infinity]) {
      it(`acknowledges values taken below the batch (capacity ${String(capacity)}), so the sender's close reports none`, async () => {
        const { client, server } = await pair();
        const undelivered: number[] = [];
        const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
        const b = server.net.channel<number>('x', { capacity });
        for (let v = 1; v <= 5; v++) await a.outgoing.send(v);
        const received: number[] = [];
        for (let v = 1; v <= 5; v++) received.push(await b.incoming.receive());
        expect(received).to.deep.equal([1, 2, 3, 4, 5]);
        // Five taken: below the batch (8, or 128 when unlimited), and the sender has credit.
        await sync(server, client); // the ack sent after the macrotask has arrived
        expect(await client.net.close(4000, 'sender done')).to.include({ code: 4000 });
        await server.net.closed;
        expect(undelivered).to.deep.equal([]);
      });
    }

    it('never makes an unlimited channel wait', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: Infinity });
      await sync(client, server); // the open has arrived
      for (let v = 0; v < 1000; v++) expect(a.outgoing.trySend(v)).to.deep.equal({ ok: true });
      const received: number[] = [];
      for (let v = 0; v < 1000; v++) received.push(await b.incoming.receive());
      expect(received).to.deep.equal(Array.from({ length: 1000 }, (_, v) => v));
    });

    it('makes sends wait until the peer opens the name, and loses none of them', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<string>('late');
      const sends = ['a', 'b', 'c'].map((v) => track(a.outgoing.send(v)));
      expect(a.outgoing.trySend('x')).to.deep.equal({ ok: false, closed: false });
      await sync(client, server);
      expect(sends.map((s) => s.state)).to.deep.equal(['pending', 'pending', 'pending']);
      const b = server.net.channel<string>('late', { capacity: 8 });
      expect(await b.incoming.receive()).to.equal('a');
      expect(await b.incoming.receive()).to.equal('b');
      expect(await b.incoming.receive()).to.equal('c');
      expect(sends.map((s) => s.state)).to.deep.equal(['resolved', 'resolved', 'resolved']);
    });

    it('rejects an aborted waiting send with the reason and reports its value', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('x', { capacity: 1 });
      await a.outgoing.send(1);
      const controller = new AbortController();
      const second = a.outgoing.send(2, { signal: controller.signal });
      const third = track(a.outgoing.send(3));
      const reason = new Error('changed my mind');
      controller.abort(reason);
      expect(await rejection(second)).to.equal(reason);
      expect(undelivered).to.deep.equal([2]);
      expect(await b.incoming.receive()).to.equal(1);
      expect(await b.incoming.receive()).to.equal(3);
      expect(third.state).to.equal('resolved');
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: false, closed: false });
    });
  });

  describe('rendezvous', () => {
    it('resolves a send only when the receiving application has taken the value', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<string>('r');
      const b = server.net.channel<string>('r');
      const steps: string[] = [];
      const sent = a.outgoing.send('v').then(() => steps.push('send resolved'));
      await sync(client, server);
      await sync(client, server);
      expect(steps).to.deep.equal([]);
      expect(b.incoming.isEmpty).to.equal(true);
      steps.push('receive called');
      expect(await b.incoming.receive()).to.equal('v');
      await sent;
      expect(steps).to.deep.equal(['receive called', 'send resolved']);
    });

    it('pulls one value per waiting receiver, in order, for for-await and select too', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('r');
      const b = server.net.channel<number>('r');
      const sends = [1, 2, 3, 4].map((v) => a.outgoing.send(v));
      const both = Promise.all([b.incoming.receive(), b.incoming.receive()]);
      expect(await both).to.deep.equal([1, 2]);
      expect(await select([b.incoming.onReceive((v) => `select ${v}`)])).to.equal('select 3');
      for await (const v of b.incoming) {
        expect(v).to.equal(4);
        break;
      }
      await Promise.all(sends);
    });

    it('rejects a send aborted before any receiver asked, and delivers nothing', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('r', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('r');
      await sync(client, server);
      const controller = new AbortController();
      const sent = a.outgoing.send(1, { signal: controller.signal });
      controller.abort('stop');
      expect(await rejection(sent)).to.equal('stop');
      expect(undelivered).to.deep.equal([1]);
      const next = a.outgoing.send(2);
      expect(await b.incoming.receive()).to.equal(2);
      await next;
    });

    it('withdraws a value that arrived after its receiver gave up when the send is aborted', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('r', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('r');
      // A receiver asks (a pull goes out), then gives up.
      const gaveUp = new AbortController();
      const receiving = b.incoming.receive({ signal: gaveUp.signal });
      gaveUp.abort('gave up');
      expect(await rejection(receiving)).to.equal('gave up');
      const controller = new AbortController();
      const sent = track(a.outgoing.send(7, { signal: controller.signal }));
      // The pull reached the client, whose value then reached the server: it is held.
      await sync(server, client);
      expect(b.incoming.isEmpty).to.equal(false);
      expect(sent.state).to.equal('pending');
      controller.abort('too slow');
      await sync(client, server);
      await sync(client, server);
      expect(sent).to.deep.equal({ state: 'rejected', error: 'too slow' });
      expect(undelivered).to.deep.equal([7]);
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: false, closed: false });
    });

    it('resolves an aborted send whose value the receiver had already taken', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('r', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('r');
      const received = b.incoming.receive();
      await sync(server, client); // the pull has arrived: the next send leaves at once
      const controller = new AbortController();
      const sent = a.outgoing.send(9, { signal: controller.signal });
      controller.abort('too late');
      expect(await received).to.equal(9);
      await sent;
      expect(undelivered).to.deep.equal([]);
    });

    it('hands a value held for a receiver that gave up to the next tryReceive', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('r');
      const b = server.net.channel<number>('r');
      const gaveUp = new AbortController();
      const receiving = b.incoming.receive({ signal: gaveUp.signal });
      gaveUp.abort('x');
      await rejection(receiving);
      const sent = track(a.outgoing.send(5));
      await sync(server, client);
      expect(sent.state).to.equal('pending');
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: true, value: 5 });
      await sync(server, client);
      expect(sent.state).to.equal('resolved');
    });
  });

  describe('multiplexing', () => {
    it('keeps a stalled channel from blocking another one', async () => {
      const { client, server } = await pair();
      const stalled = client.net.channel<number>('stalled');
      server.net.channel<number>('stalled', { capacity: 1 });
      const fast = client.net.channel<number>('fast');
      const fastIn = server.net.channel<number>('fast', { capacity: 2 });
      const waiting = [1, 2, 3].map((v) => track(stalled.outgoing.send(v)));
      const received: number[] = [];
      const consumer = (async () => {
        for (let i = 0; i < 200; i++) received.push(await fastIn.incoming.receive());
      })();
      for (let v = 0; v < 200; v++) await fast.outgoing.send(v);
      await consumer;
      expect(received).to.deep.equal(Array.from({ length: 200 }, (_, v) => v));
      expect(waiting.map((s) => s.state)).to.deep.equal(['resolved', 'pending', 'pending']);
    });

    it('gives each direction of a name its own capacity', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<string>('duplex', { capacity: 2 });
      const b = server.net.channel<string>('duplex', { capacity: 0 });
      await sync(client, server);
      // To the server (rendezvous): nothing goes without a receiver.
      expect(a.outgoing.trySend('to server')).to.deep.equal({ ok: false, closed: false });
      // To the client (2 slots): two go at once.
      expect(b.outgoing.trySend('one')).to.deep.equal({ ok: true });
      expect(b.outgoing.trySend('two')).to.deep.equal({ ok: true });
      expect(b.outgoing.trySend('three')).to.deep.equal({ ok: false, closed: false });
      expect(await a.incoming.receive()).to.equal('one');
      expect(await a.incoming.receive()).to.equal('two');
    });
  });

  describe('close', () => {
    it('closes the peer after the values already sent, waiting sends included', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 1 });
      const sends = [1, 2, 3].map((v) => a.outgoing.send(v));
      expect(a.outgoing.close()).to.equal(true);
      expect(a.outgoing.close()).to.equal(false);
      expect(a.outgoing.isClosedForSend).to.equal(true);
      expect(await rejection(a.outgoing.send(4))).to.be.instanceOf(ClosedSendError);
      const received: number[] = [];
      for await (const v of b.incoming) received.push(v);
      expect(received).to.deep.equal([1, 2, 3]);
      await Promise.all(sends);
      expect(await rejection(b.incoming.receive())).to.be.instanceOf(ClosedReceiveError);
      expect(b.incoming.isClosedForReceive).to.equal(true);
    });

    it('re-creates a built-in error cause with its class, name and message, without the stack', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 1 });
      a.outgoing.close(new TypeError('bad input'));
      const error = await rejection(b.incoming.receive());
      expect(error).to.be.instanceOf(TypeError);
      expect(error).to.include({
        name: 'TypeError',
        message: 'bad input',
        stack: 'TypeError: bad input',
      });
      // The same object every time, as for a local close cause.
      expect(await rejection(b.incoming.receive())).to.equal(error);
    });

    it('re-creates a custom error as a RemoteError with name, message and code', async () => {
      const { client, server } = await pair();
      class QuotaError extends Error {
        override readonly name = 'QuotaError';
        readonly code = 'E_QUOTA';
      }
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 1 });
      a.outgoing.close(new QuotaError('over quota'));
      const error = await rejection(b.incoming.receive());
      expect(error).to.be.instanceOf(RemoteError);
      expect(error).to.include({
        name: 'QuotaError',
        message: 'over quota',
        code: 'E_QUOTA',
        stack: 'QuotaError: over quota',
      });
    });

    it('sends the stack only when sendStacks is on', async () => {
      const { client, server } = await pair({ sendStacks: true });
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 1 });
      const cause = new RangeError('out of range');
      a.outgoing.close(cause);
      const error = await rejection(b.incoming.receive());
      expect(error).to.be.instanceOf(RangeError);
      expect((error as Error).stack).to.equal(cause.stack);
      expect((error as Error).stack).to.include('network.spec.ts');
    });

    it('re-creates a DOMException, a JSON value, null, and refuses nothing', async () => {
      const { client, server } = await pair();
      const causes: unknown[] = [
        new DOMException('stopped', 'AbortError'),
        { reason: 'done', n: 3 },
        'plain string',
        null,
        10n,
      ];
      const received: unknown[] = [];
      for (const [i, cause] of causes.entries()) {
        const a = client.net.channel<number>(`c${i}`);
        const b = server.net.channel<number>(`c${i}`, { capacity: 1 });
        a.outgoing.close(cause);
        received.push(await rejection(b.incoming.receive()));
      }
      expect(received[0]).to.be.instanceOf(DOMException);
      expect(received[0]).to.include({ name: 'AbortError', message: 'stopped' });
      expect(received.slice(1, 4)).to.deep.equal([{ reason: 'done', n: 3 }, 'plain string', null]);
      expect(received[4]).to.be.instanceOf(Error);
      expect((received[4] as Error).message).to.equal(
        'The peer closed with a cause that JSON cannot encode (bigint)',
      );
    });

    it('re-creates sluice errors as themselves, with their code', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 1 });
      a.outgoing.close(new ClosedSendError('custom message'));
      const error = await rejection(b.incoming.receive());
      expect(error).to.be.instanceOf(ClosedSendError);
      expect(error).to.include({ message: 'custom message', code: 'ERR_CHANNEL_CLOSED_FOR_SEND' });
    });

    it('copies a code onto a built-in error, and survives a cause whose getters throw', async () => {
      const { client, server } = await pair();
      const coded = Object.assign(new TypeError('typed'), { code: 'E_TYPED' });
      const hostile = new Error('x');
      Object.defineProperty(hostile, 'message', {
        get: () => {
          throw new Error('no message for you');
        },
      });
      const received: unknown[] = [];
      for (const [i, cause] of [coded, hostile].entries()) {
        const a = client.net.channel<number>(`h${i}`);
        const b = server.net.channel<number>(`h${i}`, { capacity: 1 });
        a.outgoing.close(cause);
        received.push(await rejection(b.incoming.receive()));
      }
      expect(received[0]).to.be.instanceOf(TypeError);
      expect(received[0]).to.include({ message: 'typed', code: 'E_TYPED' });
      expect(received[1]).to.be.instanceOf(Error);
      expect(received[1]).to.include({
        name: 'Error',
        message: 'The peer closed with a cause it could not encode',
      });
    });

    it('runs onClose handlers of the outgoing half once', async () => {
      const { client } = await pair();
      const a = client.net.channel<number>('x');
      const seen: unknown[] = [];
      a.outgoing.onClose((cause) => seen.push(cause));
      a.outgoing.close('why');
      a.outgoing.close('again');
      expect(seen).to.deep.equal(['why']);
    });
  });

  describe('cancel', () => {
    it('rejects the remote waiting sends with the reason and reports exactly the undelivered values', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('x', { capacity: 2 });
      const closes: unknown[] = [];
      a.outgoing.onClose((cause) => closes.push(cause));
      const sends = [1, 2, 3, 4, 5].map((v) => track(a.outgoing.send(v)));
      expect(await b.incoming.receive()).to.equal(1);
      await sync(server, client);
      // 1 taken, 2 and 3 buffered at the server, 4 and 5 waiting here.
      expect(sends.map((s) => s.state)).to.deep.equal([
        'resolved',
        'resolved',
        'resolved',
        'pending',
        'pending',
      ]);
      b.incoming.cancel(new RangeError('no more'));
      expect(await rejection(b.incoming.receive())).to.be.instanceOf(RangeError);
      await sync(server, client);
      expect(sends.map((s) => s.state)).to.deep.equal([
        'resolved',
        'resolved',
        'resolved',
        'rejected',
        'rejected',
      ]);
      const reason = sends[3]?.error;
      expect(reason).to.be.instanceOf(RangeError);
      expect(reason).to.include({ message: 'no more' });
      expect(sends[4]?.error).to.equal(reason);
      expect(undelivered).to.deep.equal([2, 3, 4, 5]);
      expect(closes).to.deep.equal([reason]);
      expect(a.outgoing.isClosedForSend).to.equal(true);
      expect(await rejection(a.outgoing.send(6))).to.equal(reason);
      expect(undelivered).to.deep.equal([2, 3, 4, 5, 6]);
      expect(a.outgoing.trySend(7)).to.deep.equal({ ok: false, closed: true, cause: reason });
    });

    it('cancels through consumeEach and consume, and selects with onReceiveCatching', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x', { capacity: 4 });
      await a.outgoing.send(1);
      a.outgoing.close();
      const seen: number[] = [];
      await b.incoming.consumeEach((v) => seen.push(v));
      expect(seen).to.deep.equal([1]);
      expect(b.incoming.isClosedForReceive).to.equal(true);
      const c = client.net.channel<number>('y');
      const d = server.net.channel<number>('y', { capacity: 4 });
      const failure = new Error('consumer failed');
      const consumed = d.incoming.consume(() => {
        throw failure;
      });
      expect(await rejection(consumed)).to.equal(failure);
      await sync(server, client); // the cancel has arrived
      const reason = await rejection(c.outgoing.send(2));
      expect(reason).to.be.instanceOf(Error);
      expect(reason).to.include({ message: 'consumer failed' });
      // Closed normally by the sender before consumeEach cancelled it: no cause.
      expect(await select([b.incoming.onReceiveCatching((result) => result)])).to.deep.equal({
        ok: false,
        closed: true,
      });
      expect(await select([b.incoming.onReceiveCatching()])).to.deep.equal({
        ok: false,
        closed: true,
      });
    });

    it('sends an AbortError DOMException when cancelled without a reason', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('x');
      const b = server.net.channel<number>('x');
      const sent = a.outgoing.send(1);
      b.incoming.cancel();
      const error = await rejection(sent);
      expect(error).to.be.instanceOf(DOMException);
      expect(error).to.include({ name: 'AbortError', message: 'The channel was cancelled' });
    });

    it('rejects a rendezvous send in flight when the receiver cancels', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('r', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('r');
      const gaveUp = new AbortController();
      const receiving = b.incoming.receive({ signal: gaveUp.signal });
      gaveUp.abort('x');
      await rejection(receiving);
      const sent = a.outgoing.send(3);
      await sync(server, client);
      expect(b.incoming.isEmpty).to.equal(false);
      b.incoming.cancel('closed shop');
      expect(await rejection(sent)).to.equal('closed shop');
      expect(undelivered).to.deep.equal([3]);
    });
  });

  describe('select', () => {
    it('completes onSend and onReceive clauses across the wire', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<string>('x');
      const b = server.net.channel<string>('x', { capacity: 1 });
      await sync(client, server);
      const first = await select([a.outgoing.onSend('one', () => 'sent')]);
      expect(first).to.equal('sent');
      // The buffer of one is full: a second onSend waits, an onReceive wins.
      const won = await select([
        a.outgoing.onSend('two', () => 'sent two'),
        b.incoming.onReceive((v) => `received ${v}`),
      ]);
      expect(won).to.equal('received one');
      await sync(server, client);
      expect(await select([a.outgoing.onSend('two', () => 'sent two')])).to.equal('sent two');
      expect(await b.incoming.receive()).to.equal('two');
    });
  });

  describe('rendezvous trySend and onSend', () => {
    it('succeed only once a remote receiver asked, and are chosen when the value leaves', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<string>('r');
      const b = server.net.channel<string>('r');
      await sync(client, server);
      expect(a.outgoing.trySend('early')).to.deep.equal({ ok: false, closed: false });
      const received = b.incoming.receive();
      await sync(server, client); // the pull has arrived
      expect(a.outgoing.trySend('asked')).to.deep.equal({ ok: true });
      expect(a.outgoing.trySend('only one asked')).to.deep.equal({ ok: false, closed: false });
      expect(await received).to.equal('asked');
      const chosen = select([a.outgoing.onSend('by select', () => 'chosen')]);
      expect(await b.incoming.receive()).to.equal('by select');
      expect(await chosen).to.equal('chosen');
    });
  });

  describe('schemas', () => {
    it('delivers the schema output, in order, with an asynchronous schema too', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<unknown>('s');
      const b = server.net.channel<number, unknown>('s', {
        capacity: 8,
        schema: z.string().transform(async (text) => {
          await new Promise((resolve) => setTimeout(resolve, text === '1' ? 20 : 0));
          return Number(text);
        }),
      });
      for (const v of ['1', '2', '3']) await a.outgoing.send(v);
      a.outgoing.close();
      const received: number[] = [];
      for await (const v of b.incoming) received.push(v);
      expect(received).to.deep.equal([1, 2, 3]);
    });

    it('ends the incoming and reports the values when an async schema fails after the close', async () => {
      const { client, server } = await pair();
      const gate = deferred();
      const schema: StandardSchemaV1<unknown, number> = {
        '~standard': {
          version: 1,
          vendor: 'spec',
          validate: async (value) => {
            await gate.promise;
            return value === 2 ? { issues: [{ message: 'not 2' }] } : { value: value as number };
          },
        },
      };
      const undelivered: number[] = [];
      const a = client.net.channel<number>('s', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('s', { capacity: 4, schema });
      for (const v of [1, 2, 3]) await a.outgoing.send(v);
      a.outgoing.close();
      await sync(client, server); // the values and the close wait behind the validation
      const received: number[] = [];
      const consumer = track(
        (async () => {
          for await (const v of b.incoming) received.push(v);
        })(),
      );
      gate.resolve();
      expect(await server.net.closed).to.include({ code: 1007 });
      await client.net.closed;
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(received).to.deep.equal([1]);
      expect(consumer.state).to.equal('rejected');
      expect(consumer.error).to.be.instanceOf(ConnectionLostError);
      expect((consumer.error as ConnectionLostError).cause).to.be.instanceOf(DecodeError);
      // 1 was taken (its ack went out before the 1007); 2 and 3 never reached the application.
      expect(undelivered).to.deep.equal([2, 3]);
    });

    for (const kind of ['an async', 'a sync'] as const) {
      it(`fails the connection with 1011 when ${kind} schema returns something that is not a result`, async function () {
        this.timeout(5000);
        const [left, right] = MemorySocket.pair();
        const a = channels(wrap<string, string>(left, { codec: text() }));
        const b = channels(wrap<string, string>(right, { codec: text() }));
        const broken = (value: unknown): unknown => (value === 2 ? null : { value });
        const schema = {
          '~standard': {
            version: 1,
            vendor: 'spec',
            validate: kind === 'an async' ? async (value: unknown) => broken(value) : broken,
          },
        } as unknown as StandardSchemaV1<unknown, number>;
        const out = a.channel<number>('s');
        const into = b.channel<number>('s', { capacity: 4, schema });
        for (const v of [1, 2, 3]) await out.outgoing.send(v);
        expect(await into.incoming.receive()).to.equal(1);
        const error = await rejection(into.incoming.receive());
        expect(error).to.be.instanceOf(ConnectionLostError);
        expect((error as ConnectionLostError).closeReason).to.deep.equal({
          code: 1011,
          reason: 'Internal error',
          wasClean: true,
        });
        const cause = (error as ConnectionLostError).cause;
        expect(cause).to.be.instanceOf(TypeError);
        expect(cause).to.include({
          message:
            "Expected the schema of channel 's' to return a Standard Schema result ({ value } or { issues }), got null",
        });
        expect(await a.closed).to.include({ code: 1011 });
      });
    }
  });

  describe('opening order', () => {
    it('applies a cancel that arrived before this end opened the name', async () => {
      const { client, server } = await pair();
      const b = server.net.channel<number>('n', { capacity: 1 });
      b.incoming.cancel(new Error('not interested'));
      await sync(server, client);
      const undelivered: number[] = [];
      const a = client.net.channel<number>('n', { onUndelivered: (v) => undelivered.push(v) });
      expect(a.outgoing.isClosedForSend).to.equal(true);
      const error = await rejection(a.outgoing.send(1));
      expect(error).to.be.instanceOf(Error);
      expect(error).to.include({ message: 'not interested' });
      expect(undelivered).to.deep.equal([1]);
    });

    it('delivers values and the close sent before the peer opened the name', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<number>('n');
      const sends = [1, 2].map((v) => a.outgoing.send(v));
      a.outgoing.close('bye');
      await sync(client, server);
      const b = server.net.channel<number>('n', { capacity: 4 });
      expect(await b.incoming.receive()).to.equal(1);
      expect(await b.incoming.receive()).to.equal(2);
      expect(await rejection(b.incoming.receive())).to.equal('bye');
      await Promise.all(sends);
    });
  });

  describe('the channel session', () => {
    it('closes for await using, and refuses a close code the session refuses', async () => {
      const { client, server } = await pair();
      expect(() => client.net.close(1234)).to.throw(
        RangeError,
        'Expected code to be 1000 or an integer from 3000 to 4999, got 1234',
      );
      await client.net[Symbol.asyncDispose]();
      expect(await client.net.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      expect(await server.net.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    });
  });

  describe('a raw peer', () => {
    /** A channel session on one end of an in-memory pair; the test speaks for the other. */
    function rawPeer(options: ChannelSessionOptions = {}): {
      net: ChannelSession;
      frames: string[];
      send: (...frames: string[]) => void;
      received: (count: number) => Promise<string[]>;
    } {
      const [left, right] = MemorySocket.pair();
      const net = channels(wrap<string, string>(left, { codec: text() }), options);
      const frames: string[] = [];
      let waiting: { count: number; resolve: () => void } | undefined;
      right.addEventListener('message', (event: MessageEventLike) => {
        const arrived = String(event.data).split('\n');
        frames.push(...arrived);
        // The goodbye of net.close() is answered, as a sluice peer does.
        if (arrived.includes('["bye"]')) right.send('["bye"]');
        if (waiting !== undefined && frames.length >= waiting.count) waiting.resolve();
      });
      const send = (...sent: string[]): void => {
        for (const frame of sent) right.send(frame);
      };
      /** Resolves with the frames once `count` have arrived. */
      const received = async (count: number): Promise<string[]> => {
        if (frames.length < count) {
          await new Promise<void>((resolve) => {
            waiting = { count, resolve };
          });
        }
        return frames;
      };
      return { net, frames, send, received };
    }

    it('pulls exactly what the receivers still waiting ask for, after aborts and selects', async () => {
      const { net, send, received } = rawPeer();
      send('["sluice",1]');
      const r = net.channel<number>('r');
      const other = new Channel<string>(1);
      const first = r.incoming.receive();
      const controller = new AbortController();
      const aborted = r.incoming.receive({ signal: controller.signal });
      const selected = select([r.incoming.onReceive((v) => v), other.onReceive((v) => v)]);
      expect((await received(5)).slice(1)).to.deep.equal([
        '["open",0,"r",0]',
        '["pull",0,1]',
        '["pull",0,2]',
        '["pull",0,3]',
      ]);
      controller.abort(new Error('gone'));
      expect(await rejection(aborted)).to.include({ message: 'gone' });
      other.trySend('elsewhere');
      expect(await selected).to.equal('elsewhere');
      // One receiver waits, three values are coming: a new receiver asks for nothing more.
      const second = r.incoming.receive();
      send('["v",0,1]', '["v",0,2]', '["v",0,3]');
      expect(await first).to.equal(1);
      expect(await second).to.equal(2);
      expect(r.incoming.tryReceive()).to.deep.equal({ ok: true, value: 3 });
      const third = r.incoming.receive();
      send('["v",0,4]');
      expect(await third).to.equal(4);
      // Nothing was pulled for `second`: the fourth pull came for `third`, after the takes.
      expect((await received(9)).slice(5)).to.deep.equal([
        '["ack",0,2]',
        '["pull",0,4]',
        '["ack",0,3]',
        '["ack",0,4]',
      ]);
      await net.close();
    });

    it('closes with 1002 when the peer opens more names than maxChannels', async () => {
      const { net, send, received } = rawPeer({ maxChannels: 1 });
      const x = net.channel<number>('x');
      send('["sluice",1]', '["open",0,"x",4]', '["open",1,"a",4]');
      // A name this end opened does not count; 'a' is the one the peer may open alone.
      await x.outgoing.send(1);
      const a = net.channel<number>('a');
      await a.outgoing.send(2); // 'a' now counts as opened here
      send('["open",2,"b",4]', '["open",3,"c",4]');
      expect(await net.closed).to.deep.equal({
        code: 1002,
        reason:
          "Received an open of channel 'c' beyond maxChannels (1 names opened by the peer alone)",
        wasClean: true,
      });
      expect((await received(5)).slice(1)).to.deep.equal([
        '["open",0,"x",0]',
        '["v",0,1]',
        '["open",1,"a",0]',
        '["v",1,2]',
      ]);
    });
  });

  describe('over any wrapped socket', () => {
    it('runs over an in-memory socket pair made with wrap()', async () => {
      const [left, right] = MemorySocket.pair();
      const a = channels(wrap<string, string>(left, { codec: text() }));
      const b = channels(wrap<string, string>(right, { codec: text() }));
      const out = a.channel<number>('m');
      const into = b.channel<number>('m', { capacity: 2 });
      const sends = [1, 2, 3].map((v) => track(out.outgoing.send(v)));
      expect(await into.incoming.receive()).to.equal(1);
      expect(await into.incoming.receive()).to.equal(2);
      expect(await into.incoming.receive()).to.equal(3);
      expect(sends.map((send) => send.state)).to.deep.equal(['resolved', 'resolved', 'resolved']);
      out.outgoing.close(new SyntaxError('the end'));
      const end = await rejection(into.incoming.receive());
      expect(end).to.be.instanceOf(SyntaxError);
      expect(await a.close(4000, 'done')).to.deep.equal({
        code: 4000,
        reason: 'done',
        wasClean: true,
      });
      expect(await b.closed).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
    });

    it('reads a session whose incoming is a receive channel of its own, in order, to its end', async () => {
      const [left, right] = MemorySocket.pair();
      const a = channels(wrap<string, string>(left, { codec: text() }));
      const inner = wrap<string, string>(right, { codec: text() });
      const source = inner.incoming;
      const calls: string[] = [];
      // Not a Channel: the reader waits through its receiveCatching, not the channel's queue.
      const incoming = {
        tryReceive: () => source.tryReceive(),
        receiveCatching: () => {
          calls.push('receiveCatching');
          return source.receiveCatching();
        },
      };
      const session = {
        incoming,
        outgoing: inner.outgoing,
        closed: inner.closed,
        close: (code?: number, reason?: string) => inner.close(code, reason),
      } as unknown as Session<string, string>;
      const b = channels(session);
      const out = a.channel<number>('m');
      const into = b.channel<number>('m', { capacity: 1 });
      for (const value of [1, 2, 3]) {
        await out.outgoing.send(value);
        expect(await into.incoming.receive()).to.equal(value);
      }
      expect(calls.length).to.be.greaterThan(2);
      expect(await a.close(4000, 'done')).to.deep.equal({
        code: 4000,
        reason: 'done',
        wasClean: true,
      });
      expect(await b.closed).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
      expect(await rejection(into.incoming.receive())).to.be.instanceOf(ConnectionLostError);
    });

    it('stops reading an incoming whose receive rejects, and ends with the connection', async () => {
      const [left, right] = MemorySocket.pair();
      const inner = wrap<string, string>(left, { codec: text() });
      const incoming = {
        tryReceive: () => ({ ok: false, closed: false }),
        receiveCatching: () => Promise.reject(new Error('broken incoming')),
      };
      const session = {
        incoming,
        outgoing: inner.outgoing,
        closed: inner.closed,
        close: (code?: number, reason?: string) => inner.close(code, reason),
      } as unknown as Session<string, string>;
      const net = channels(session);
      const pending = net.channel<number>('m').incoming.receive();
      right.close(4001, 'gone');
      expect(await net.closed).to.deep.equal({ code: 4001, reason: 'gone', wasClean: true });
      const lost = await rejection(pending);
      expect(lost).to.be.instanceOf(ConnectionLostError);
      expect((lost as ConnectionLostError).closeReason).to.deep.equal({
        code: 4001,
        reason: 'gone',
        wasClean: true,
      });
    });

    it('closes with 1002 when a session uses neither the raw() nor the text() codec', async () => {
      const [left, right] = MemorySocket.pair();
      const good = channels(wrap<string, string>(left, { codec: text() }));
      const wrong = channels(
        wrap(right as unknown as WebSocketLike, { codec: json() }) as unknown as Session<
          string,
          string
        >,
      );
      const lost = await rejection(wrong.channel<number>('x').incoming.receive());
      expect(lost).to.be.instanceOf(ConnectionLostError);
      expect((lost as ConnectionLostError).cause).to.include({
        message:
          'Expected text frames, got object (channels() needs a session made with the raw() codec (or text(), without binary values): route({ codec: raw(), handler }) on the server, connect(url, { codec: raw() }) on the client)',
      });
      expect((await good.closed).code).to.equal(1002);
    });
  });

  describe('connection loss', () => {
    it('ends every channel with ConnectionLostError and reports every value not taken', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('x', { capacity: 2 });
      const r = client.net.channel<number>('r', { onUndelivered: (v) => undelivered.push(v) });
      server.net.channel<number>('r');
      const sends = [1, 2, 3, 4, 5].map((v) => track(a.outgoing.send(v)));
      const rendezvous = track(r.outgoing.send(100));
      expect(await b.incoming.receive()).to.equal(1);
      expect(await b.incoming.receive()).to.equal(2);
      // Each take is acknowledged at once (half of 2 is 1): 3 and 4 went out and are
      // buffered at the server, 5 waits here, 100 waits for a receiver.
      await sync(server, client);
      expect(sends.map((s) => s.state)).to.deep.equal([
        'resolved',
        'resolved',
        'resolved',
        'resolved',
        'pending',
      ]);
      const reason = await client.net.close(4001, 'going');
      expect(reason).to.deep.equal({ code: 4001, reason: 'going', wasClean: true });
      expect(await server.net.closed).to.deep.equal({
        code: 4001,
        reason: 'going',
        wasClean: true,
      });
      expect(sends[4]?.state).to.equal('rejected');
      const lost = sends[4]?.error as ConnectionLostError;
      expect(lost).to.be.instanceOf(ConnectionLostError);
      expect(lost).to.include({
        name: 'ConnectionLostError',
        code: 'ERR_SLUICE_CONNECTION_LOST',
        message: 'The connection was lost (4001 going)',
      });
      expect(lost.closeReason).to.deep.equal({ code: 4001, reason: 'going', wasClean: true });
      expect(rendezvous).to.deep.equal({ state: 'rejected', error: lost });
      // Retained values first (in order), then the waiting send, channel by channel.
      expect(undelivered).to.deep.equal([3, 4, 5, 100]);
      const serverLost = await rejection(b.incoming.receive());
      expect(serverLost).to.be.instanceOf(ConnectionLostError);
      expect(b.incoming.tryReceive()).to.deep.equal({ ok: false, closed: true, cause: serverLost });
      expect(await rejection(b.outgoing.send(1))).to.equal(serverLost);
      expect(await rejection(a.incoming.receive())).to.equal(lost);
      expect(await rejection(a.outgoing.send(6))).to.equal(lost);
      expect(undelivered).to.deep.equal([3, 4, 5, 100, 6]);
    });

    it('acknowledges every value taken before its own close, so none is reported twice', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('x', { capacity: 8 });
      for (const v of [1, 2, 3]) await a.outgoing.send(v);
      await sync(client, server);
      // One taken: below the batch of 4 and the sender has credit, so no ack yet.
      expect(await b.incoming.receive()).to.equal(1);
      await server.net.close(4000, 'bye');
      await client.net.closed;
      expect(undelivered).to.deep.equal([2, 3]);
    });

    it('acknowledges the values taken before it fails the connection itself (1002)', async () => {
      const [left, right] = MemorySocket.pair();
      const net = channels(wrap<string, string>(left, { codec: text() }));
      const x = net.channel<number>('x', { capacity: 8 });
      const frames: string[] = [];
      right.addEventListener('message', (event: MessageEventLike) =>
        frames.push(...String(event.data).split('\n')),
      );
      const taken = x.incoming.receive();
      // One network read: the value is taken (its ack would wait for the macrotask's end),
      // then the violation closes the connection in the same macrotask.
      right.send('["sluice",1]');
      right.send('["v",0,1]');
      right.send('["nope"]');
      expect(await taken).to.equal(1);
      expect(await net.closed).to.include({ code: 1002 });
      expect(frames).to.deep.equal(['["sluice",2]', '["open",0,"x",8]', '["ack",0,1]']);
    });

    it('takes nothing more once its own close started, except from a channel closed and confirmed', async () => {
      const { client, server } = await pair();
      const undelivered: string[] = [];
      const onUndelivered = (v: string): void => {
        undelivered.push(v);
      };
      const x = client.net.channel<string>('x', { onUndelivered });
      const y = client.net.channel<string>('y', { onUndelivered });
      const bx = server.net.channel<string>('x', { capacity: 4 });
      const by = server.net.channel<string>('y', { capacity: 4 });
      for (const v of ['x1', 'x2', 'x3']) await x.outgoing.send(v);
      for (const v of ['y1', 'y2']) await y.outgoing.send(v);
      y.outgoing.close();
      await sync(client, server); // the values and y's close have arrived, 'closed' went back
      const closing = server.net.close(4000, 'bye');
      // x's acks could no longer be sent: its values are the sender's to report.
      expect(bx.incoming.tryReceive()).to.deep.equal({ ok: false, closed: false });
      const receiving = bx.incoming.receive();
      track(receiving); // handled: it rejects while this test awaits the close
      // y's sender counts its values as delivered: they stay receivable, as locally.
      expect(by.incoming.tryReceive()).to.deep.equal({ ok: true, value: 'y1' });
      await closing;
      await client.net.closed;
      expect(await rejection(receiving)).to.be.instanceOf(ConnectionLostError);
      expect(await by.incoming.receive()).to.equal('y2');
      expect(await rejection(by.incoming.receive())).to.be.instanceOf(ClosedReceiveError);
      expect(undelivered).to.deep.equal(['x1', 'x2', 'x3']);
    });

    it('takes nothing more once it fails the connection, while the close handshake runs', async () => {
      const [left, right] = MemorySocket.pair();
      const net = channels(wrap<string, string>(left, { codec: text() }));
      const x = net.channel<number>('x', { capacity: 4 });
      const frames: string[] = [];
      right.addEventListener('message', (event: MessageEventLike) =>
        frames.push(...String(event.data).split('\n')),
      );
      // The raw end gets the 1002 before `net` gets the reply that ends the connection.
      const during = new Promise<unknown>((resolve) => {
        right.addEventListener('close', () => {
          resolve(x.incoming.tryReceive());
        });
      });
      right.send('["sluice",1]');
      right.send('["v",0,1]');
      right.send('["v",0,2]');
      right.send('["nope"]');
      expect(await during).to.deep.equal({ ok: false, closed: false });
      expect(await net.closed).to.include({ code: 1002 });
      const after = x.incoming.tryReceive();
      expect(after).to.include({ ok: false, closed: true });
      expect((after as { cause?: unknown }).cause).to.be.instanceOf(ConnectionLostError);
      expect(frames).to.deep.equal(['["sluice",2]', '["open",0,"x",4]']);
    });

    it('ends the channels on a dropped connection, on both sides', async () => {
      const { client, server, session } = await pair();
      const undelivered: number[] = [];
      const a = client.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = server.net.channel<number>('x');
      const sending = a.outgoing.send(1);
      const receiving = a.incoming.receive();
      const serverReceiving = b.outgoing.send(2);
      session.terminate();
      const error = await rejection(receiving);
      expect(error).to.be.instanceOf(ConnectionLostError);
      expect((error as ConnectionLostError).closeReason).to.deep.equal({
        code: 1006,
        reason: '',
        wasClean: false,
      });
      expect(await rejection(sending)).to.equal(error);
      expect(undelivered).to.deep.equal([1]);
      const serverError = await rejection(serverReceiving);
      expect(serverError).to.be.instanceOf(ConnectionLostError);
      expect((serverError as ConnectionLostError).closeReason).to.include({
        code: 1006,
        wasClean: false,
      });
    });

    it('keeps the values of a channel its sender closed receivable after a clean close', async () => {
      const { client, server } = await pair();
      const undelivered: number[] = [];
      const a = server.net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const b = client.net.channel<number>('x', { capacity: 8 });
      for (let v = 1; v <= 3; v++) await a.outgoing.send(v);
      a.outgoing.close(new Error('end of stream'));
      await sync(server, client);
      await server.net.close(4000, 'done');
      await client.net.closed;
      expect(await b.incoming.receive()).to.equal(1);
      expect(await b.incoming.receive()).to.equal(2);
      expect(await b.incoming.receive()).to.equal(3);
      const end = await rejection(b.incoming.receive());
      expect(end).to.be.instanceOf(Error);
      expect(end).to.include({ message: 'end of stream' });
      expect(undelivered).to.deep.equal([]);
    });

    it('returns channels already ended after the connection ended', async () => {
      const { client } = await pair();
      const reason = await client.net.close();
      const late = client.net.channel<number>('late', { capacity: 1 });
      const error = await rejection(late.incoming.receive());
      expect(error).to.be.instanceOf(ConnectionLostError);
      expect((error as ConnectionLostError).closeReason).to.deep.equal(reason);
      expect(await rejection(late.outgoing.send(1))).to.equal(error);
    });
  });

  describe('several frames per message', () => {
    /** Two channel sessions over an in-memory pair; `messages` are those left → right. */
    function memoryPair(): {
      a: ChannelSession;
      b: ChannelSession;
      left: MemorySocket;
      messages: string[];
    } {
      const [left, right] = MemorySocket.pair();
      const messages: string[] = [];
      right.addEventListener('message', (event: MessageEventLike) => {
        messages.push(String(event.data));
      });
      const a = channels(wrap<string, string>(left, { codec: text() }));
      const b = channels(wrap<string, string>(right, { codec: text() }));
      open.push(a, b);
      return { a, b, left, messages };
    }

    /** A channel session on `left`, and what the raw `right` end received, frame by frame. */
    function rawEnd(
      beforeWrap?: (left: MemorySocket) => void,
      options: ChannelSessionOptions = {},
    ): {
      net: ChannelSession;
      right: MemorySocket;
      frames: string[];
      received: (count: number) => Promise<string[]>;
      closed: Promise<{ code: number; reason: string }>;
    } {
      const [left, right] = MemorySocket.pair();
      beforeWrap?.(left);
      const net = channels(wrap<string, string>(left, { codec: text() }), options);
      const frames: string[] = [];
      let waiting: { count: number; resolve: () => void } | undefined;
      right.addEventListener('message', (event: MessageEventLike) => {
        frames.push(...String(event.data).split('\n'));
        if (waiting !== undefined && frames.length >= waiting.count) waiting.resolve();
      });
      const closed = new Promise<{ code: number; reason: string }>((resolve) => {
        right.addEventListener('close', (event: CloseEventLike) => {
          resolve({ code: event.code, reason: event.reason });
        });
      });
      const received = async (count: number): Promise<string[]> => {
        if (frames.length < count) {
          await new Promise<void>((resolve) => {
            waiting = { count, resolve };
          });
        }
        return frames;
      };
      return { net, right, frames, received, closed };
    }

    it('sends the first frame of a macrotask at once, and the frames after it as one message', async () => {
      const { a, b, messages } = memoryPair();
      const out = a.channel<number>('m');
      const into = b.channel<number>('m', { capacity: Infinity });
      await out.outgoing.send(0); // waits for the peer's open
      expect(await into.incoming.receive()).to.equal(0);
      messages.length = 0;
      for (let v = 1; v <= 50; v++) expect(out.outgoing.trySend(v)).to.deep.equal({ ok: true });
      for (let v = 1; v <= 50; v++) expect(await into.incoming.receive()).to.equal(v);
      expect(messages).to.deep.equal([
        '["v",0,1]',
        Array.from({ length: 49 }, (_, i) => `["v",0,${String(i + 2)}]`).join('\n'),
      ]);
    });

    it(`sends a burst at once in messages of about ${String(BATCH_CHARS)} characters`, async () => {
      const { a, b, left, messages } = memoryPair();
      const out = a.channel<string>('m');
      const into = b.channel<string>('m', { capacity: Infinity });
      await out.outgoing.send('');
      await into.incoming.receive();
      messages.length = 0;
      const value = 'x'.repeat(1000);
      const frame = `["v",0,"${value}"]`;
      const perMessage = Math.ceil(BATCH_CHARS / frame.length);
      const count = 1 + 2 * perMessage;
      for (let i = 0; i < count; i++) out.outgoing.trySend(value);
      // The first frame and two full batches went to the socket synchronously, without
      // waiting for the end of the macrotask (the in-memory socket counts their bytes
      // until it delivers them).
      expect(left.bufferedAmount).to.equal(
        frame.length + 2 * (perMessage * (frame.length + 1) - 1),
      );
      out.outgoing.trySend(value);
      for (let i = 0; i <= count; i++) expect(await into.incoming.receive()).to.equal(value);
      expect(messages.map((message) => message.split('\n').length)).to.deep.equal([
        1,
        perMessage,
        perMessage,
        1,
      ]);
      expect(messages.every((message) => message.split('\n').every((f) => f === frame))).to.equal(
        true,
      );
    });

    it('interoperates with a peer that sends one frame per message, or several', async () => {
      const { net, right, received } = rawEnd();
      const x = net.channel<number>('x', { capacity: 4 });
      right.send('["sluice",1]');
      right.send('["v",0,1]');
      right.send('["v",0,2]\n["v",0,3]');
      expect(await x.incoming.receive()).to.equal(1);
      expect(await x.incoming.receive()).to.equal(2);
      expect(await x.incoming.receive()).to.equal(3);
      // Acks: at the batch of 2 (a microtask), then the third after the macrotask.
      expect(await received(4)).to.deep.equal([
        '["sluice",2]',
        '["open",0,"x",4]',
        '["ack",0,2]',
        '["ack",0,3]',
      ]);
    });

    it('handles the frames before a malformed one in the same message, then closes with 1002', async () => {
      const { net, right, frames, closed } = rawEnd();
      const x = net.channel<number>('x', { capacity: 4 });
      const taken = x.incoming.receive();
      right.send('["sluice",1]\n["v",0,1]\n["nope"]\n["v",0,2]');
      expect(await taken).to.equal(1);
      const reason = "Received a frame of unknown type 'nope' (string)";
      expect(await closed).to.deep.equal({ code: 1002, reason });
      expect(await net.closed).to.deep.equal({ code: 1002, reason, wasClean: true });
      // The take was acknowledged before the Close; the value after the bad frame never came.
      expect(frames).to.deep.equal(['["sluice",2]', '["open",0,"x",4]', '["ack",0,1]']);
      const after = x.incoming.tryReceive();
      expect(after).to.include({ ok: false, closed: true });
      expect((after as { cause?: unknown }).cause).to.be.instanceOf(ConnectionLostError);
    });

    it('closes with 1002 on an empty frame (a message ending with a line feed)', async () => {
      const { net, right, closed } = rawEnd();
      right.send('["sluice",1]\n');
      const reason =
        'Expected a frame, got an empty one (a message must not be empty, start or end with a line feed, or hold two in a row)';
      expect(await closed).to.deep.equal({ code: 1002, reason });
      expect(await net.closed).to.deep.equal({ code: 1002, reason, wasClean: true });
    });

    it("sends the pending frames before its own close's Close frame", async () => {
      const { net, right, received, closed } = rawEnd();
      const x = net.channel<number>('x');
      right.send('["sluice",1]\n["open",0,"x",8]');
      await x.outgoing.send(1);
      expect(x.outgoing.trySend(2)).to.deep.equal({ ok: true });
      x.outgoing.close();
      void net.close(4000, 'bye');
      expect(await received(6)).to.deep.equal([
        '["sluice",2]',
        '["open",0,"x",0]',
        '["v",0,1]',
        '["v",0,2]',
        '["close",0]',
        '["bye"]',
      ]);
      right.send('["bye"]');
      expect(await closed).to.deep.equal({ code: 4000, reason: 'bye' });
      await net.closed;
    });

    it("answers the peer's bye after the acks of the values taken, and takes nothing more", async () => {
      const undelivered: number[] = [];
      const { net, right, received, closed } = rawEnd();
      const x = net.channel<number>('x', {
        capacity: 8,
        onUndelivered: (v) => undelivered.push(v),
      });
      const taken = x.incoming.receive();
      // One message: the value is taken (its ack would wait for the macrotask's end), then
      // the bye asks for that ack at once; the second value is not taken any more.
      right.send('["sluice",1]\n["open",0,"x",4]\n["v",0,1]\n["bye"]\n["v",0,2]');
      expect(await taken).to.equal(1);
      expect(await received(4)).to.deep.equal([
        '["sluice",2]',
        '["open",0,"x",8]',
        '["ack",0,1]',
        '["bye"]',
      ]);
      expect(x.incoming.tryReceive()).to.deep.equal({ ok: false, closed: false });
      expect(x.outgoing.trySend(5)).to.deep.equal({ ok: false, closed: false });
      // The initiator closes the WebSocket; this end reports what never left.
      right.close(4000, 'done');
      expect(await net.closed).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
      expect(await closed).to.deep.equal({ code: 4000, reason: 'done' });
      expect(undelivered).to.deep.equal([]);
    });

    it('closes after byeTimeout when the peer never answers its bye, with the values unacknowledged reported', async () => {
      const undelivered: number[] = [];
      const { net, received, closed } = rawEnd(undefined, { byeTimeout: 50 });
      const x = net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      const start = Date.now();
      const closing = net.close(4000, 'bye');
      const state = track(closing);
      expect(await received(3)).to.deep.equal(['["sluice",2]', '["open",0,"x",0]', '["bye"]']);
      expect(state.state).to.equal('pending');
      expect(await closing).to.deep.equal({ code: 4000, reason: 'bye', wasClean: true });
      expect(Date.now() - start).to.be.at.least(49);
      expect(await closed).to.deep.equal({ code: 4000, reason: 'bye' });
      expect(await rejection(x.outgoing.send(1))).to.be.instanceOf(ConnectionLostError);
      expect(undelivered).to.deep.equal([1]);
    });

    it('closes with 1002 on a second bye, and on a bye with elements', async () => {
      for (const [frames, reason] of [
        [['["bye"]', '["bye"]'], "Received a second 'bye'"],
        [['["bye",1]'], "Received a malformed 'bye' frame"],
      ] as const) {
        const { net, right, closed } = rawEnd();
        right.send('["sluice",1]');
        for (const frame of frames) right.send(frame);
        expect(await closed).to.deep.equal({ code: 1002, reason });
        expect(await net.closed).to.deep.equal({ code: 1002, reason, wasClean: true });
      }
    });

    it("drops the pending frames at the peer's Close and reports their values", async () => {
      const undelivered: number[] = [];
      let late: unknown;
      // Runs in the macrotask that delivers the peer's Close, before the session sees it.
      const { net, right, received } = rawEnd((left) => {
        left.addEventListener('close', () => {
          late = x.outgoing.trySend(2);
        });
      });
      const x = net.channel<number>('x', { onUndelivered: (v) => undelivered.push(v) });
      right.send('["sluice",1]\n["open",0,"x",8]');
      await x.outgoing.send(1);
      expect(await received(3)).to.deep.equal(['["sluice",2]', '["open",0,"x",0]', '["v",0,1]']);
      right.close(4000, 'bye');
      expect(await net.closed).to.deep.equal({ code: 4000, reason: 'bye', wasClean: true });
      expect(late).to.deep.equal({ ok: true });
      // 1 left but was never acknowledged, 2 never left: both reported, once.
      expect(undelivered).to.deep.equal([1, 2]);
    });

    it('accounts exactly once for values pending when the sender closes the connection', async () => {
      const { a, b } = memoryPair();
      const undelivered: number[] = [];
      const out = a.channel<number>('m', { onUndelivered: (v) => undelivered.push(v) });
      const into = b.channel<number>('m', { capacity: 8 });
      await out.outgoing.send(0);
      expect(await into.incoming.receive()).to.equal(0);
      for (const v of [1, 2, 3]) expect(out.outgoing.trySend(v)).to.deep.equal({ ok: true });
      out.outgoing.close();
      await a.close();
      await b.closed;
      const received: number[] = [];
      for (;;) {
        const result = await into.incoming.receiveCatching();
        if (!result.ok) break;
        received.push(result.value);
      }
      // Either the close was confirmed before the end (received) or not (reported).
      expect([...received, ...undelivered].sort()).to.deep.equal([1, 2, 3]);
    });

    it('reports none of the values the peer took in the macrotask of its close()', async () => {
      const { a, b } = memoryPair();
      const undelivered: number[] = [];
      const out = a.channel<number>('m', { onUndelivered: (v) => undelivered.push(v) });
      const into = b.channel<number>('m', { capacity: 8 });
      await out.outgoing.send(0);
      expect(await into.incoming.receive()).to.equal(0);
      const first = into.incoming.receive();
      const second = into.incoming.receive();
      // Below the batch of 4: b's acks wait for the end of the macrotask it takes them in,
      // the one that also brings a's bye.
      for (const v of [1, 2, 3]) expect(out.outgoing.trySend(v)).to.deep.equal({ ok: true });
      const closing = a.close(4000, 'done');
      expect(await first).to.equal(1);
      expect(await second).to.equal(2);
      expect(await closing).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
      expect(await b.closed).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
      // 3 arrived after b's goodbye: dropped there, reported here; 1 and 2 were received.
      expect(undelivered).to.deep.equal([3]);
      expect(await rejection(into.incoming.receive())).to.be.instanceOf(ConnectionLostError);
    });

    it('closes when both ends close at once, each bye answering the other', async () => {
      const { a, b, messages } = memoryPair();
      const fromA: number[] = [];
      const fromB: number[] = [];
      const aOut = a.channel<number>('m', { capacity: 8, onUndelivered: (v) => fromA.push(v) });
      const bOut = b.channel<number>('m', { capacity: 8, onUndelivered: (v) => fromB.push(v) });
      for (const v of [1, 2]) {
        await aOut.outgoing.send(v);
        await bOut.outgoing.send(v + 10);
      }
      expect(await aOut.incoming.receive()).to.equal(11);
      expect(await bOut.incoming.receive()).to.equal(1);
      // Both take one more (acks pending) and close in the same macrotask.
      expect(aOut.incoming.tryReceive()).to.deep.equal({ ok: true, value: 12 });
      expect(bOut.incoming.tryReceive()).to.deep.equal({ ok: true, value: 2 });
      const closingA = a.close(4000, 'a');
      const closingB = b.close(4000, 'b');
      const [reasonA, reasonB] = await Promise.all([closingA, closingB]);
      expect(reasonA).to.include({ code: 4000, wasClean: true });
      expect(reasonB).to.include({ code: 4000, wasClean: true });
      expect(fromA).to.deep.equal([]);
      expect(fromB).to.deep.equal([]);
      // a's bye left after its ack (messages are what a sent).
      const frames = messages.flatMap((message) => message.split('\n'));
      expect(frames.slice(-2)).to.deep.equal(['["ack",0,2]', '["bye"]']);
    });

    it('accounts exactly for an ack pending when the receiver cancels', async () => {
      const { a, b } = memoryPair();
      const undelivered: number[] = [];
      const out = a.channel<number>('m', { onUndelivered: (v) => undelivered.push(v) });
      const into = b.channel<number>('m', { capacity: 8 });
      for (const v of [1, 2, 3]) await out.outgoing.send(v);
      expect(await into.incoming.receive()).to.equal(1);
      // The ack of 1 waits for the end of the macrotask; the cancel carries taken = 1.
      const cancelled = new Promise<unknown>((resolve) => {
        out.outgoing.onClose(resolve);
      });
      into.incoming.cancel(new RangeError('enough'));
      const error = await cancelled;
      expect(error).to.be.instanceOf(RangeError);
      expect(error).to.include({ message: 'enough' });
      expect(undelivered).to.deep.equal([2, 3]);
      expect(await rejection(out.outgoing.send(4))).to.equal(error);
      expect(undelivered).to.deep.equal([2, 3, 4]);
    });
  });

  describe('protocol violations', () => {
    interface Served {
      readonly net: ChannelSession;
      readonly x: NetworkChannel<number>;
    }

    /** A channels route whose every connection opens 'x' with capacity 1 (id 0). */
    async function violationServer(): Promise<{ url: string; served: Served[] }> {
      const served: Served[] = [];
      const server = await servers.start(
        {},
        {
          '/net': route({
            codec: text(),
            handler: async (session) => {
              const net = channels(session);
              served.push({ net, x: net.channel<number>('x', { capacity: 1 }) });
              await net.closed;
            },
          }),
        },
      );
      return { url: server.url, served };
    }

    /** A raw `ws` client of a channels route: its frames, and how it was closed. */
    async function raw(url: string): Promise<{
      socket: WebSocket;
      frames: string[];
      closed: Promise<{ code: number; reason: string }>;
    }> {
      const socket = new WebSocket(`${url}/net`);
      const frames: string[] = [];
      socket.on('message', (data: Buffer) => frames.push(...data.toString().split('\n')));
      const closed = new Promise<{ code: number; reason: string }>((resolve) => {
        socket.on('close', (code: number, reason: Buffer) => {
          resolve({ code, reason: reason.toString() });
        });
      });
      await new Promise((resolve) => socket.once('open', resolve));
      return { socket, frames, closed };
    }

    const cases: [string, string[], string][] = [
      [
        'a first frame that is not a hello',
        ['["open",0,"x",1]'],
        'Expected the hello frame ["sluice",2] first',
      ],
      [
        'an unsupported version',
        ['["sluice",0]'],
        'Expected protocol version 1 or higher in the hello frame',
      ],
      [
        'text that is not JSON',
        ['["sluice",1]', '["v",0'],
        'Expected a frame of JSON, got text that is not JSON',
      ],
      [
        'a frame that is not an array',
        ['["sluice",1]', '{"v":0}'],
        'Expected a frame to be a JSON array starting with its type',
      ],
      [
        'an unknown frame type',
        ['["sluice",1]', '["hug",0]'],
        "Received a frame of unknown type 'hug' (string)",
      ],
      ['a malformed frame', ['["sluice",1]', '["ack","x",1]'], "Received a malformed 'ack' frame"],
      [
        'a value for a channel never opened',
        ['["sluice",1]', '["v",5,1]'],
        "Received a malformed 'v' frame",
      ],
      [
        'a value beyond the allowance',
        ['["sluice",1]', '["v",0,1]', '["v",0,2]'],
        "Received a value on channel 'x' beyond the allowance it had granted",
      ],
      [
        'a value after the close',
        ['["sluice",1]', '["close",0]', '["v",0,1]'],
        "Received a value on channel 'x' after its close",
      ],
      [
        'a malformed close cause',
        ['["sluice",1]', '["close",0,{"error":{"name":1}}]'],
        "Received a malformed close cause for channel 'x'",
      ],
      [
        'a closed for a channel that was not closed',
        ['["sluice",1]', '["open",0,"x",0]', '["closed",0]'],
        "Received 'closed' for channel 'x', which was not closed",
      ],
      [
        'an ack beyond what was sent',
        ['["sluice",1]', '["open",0,"x",0]', '["ack",0,1]'],
        "Received an invalid ack for channel 'x'",
      ],
    ];
    for (const [what, frames, reason] of cases) {
      it(`closes with 1002 on ${what}, and only that connection`, async () => {
        const { url, served } = await violationServer();
        const healthy = channels(await connect(`${url}/net`, { codec: text() }));
        open.push(healthy);
        const rawClient = await raw(url);
        for (const frame of frames) rawClient.socket.send(frame);
        expect(await rawClient.closed).to.deep.equal({ code: 1002, reason });
        // The other connection still works.
        const x = healthy.channel<number>('x');
        await x.outgoing.send(1);
        expect(await served[0]?.x.incoming.receive()).to.equal(1);
      });
    }

    it('ends the channels with a ConnectionLostError caused by a ProtocolError', async () => {
      const { url, served } = await violationServer();
      const rawClient = await raw(url);
      rawClient.socket.send('["sluice",1]');
      rawClient.socket.send('["nope"]');
      expect(await rawClient.closed).to.deep.equal({
        code: 1002,
        reason: "Received a frame of unknown type 'nope' (string)",
      });
      expect(rawClient.frames).to.deep.equal(['["sluice",2]', '["open",0,"x",1]']);
      const error = await rejection(served[0]?.x.incoming.receive() as Promise<number>);
      expect(error).to.be.instanceOf(ConnectionLostError);
      const lost = error as ConnectionLostError;
      expect(lost.closeReason).to.deep.equal({
        code: 1002,
        reason: "Received a frame of unknown type 'nope' (string)",
        wasClean: true,
      });
      expect(lost.cause).to.be.instanceOf(ProtocolError);
      expect(lost.cause).to.include({
        name: 'ProtocolError',
        code: 'ERR_SLUICE_PROTOCOL',
        message: "Received a frame of unknown type 'nope' (string)",
      });
    });

    it('tells a peer using the json() codec what is wrong', async () => {
      const { url } = await violationServer();
      const rawClient = await raw(url);
      rawClient.socket.send(JSON.stringify('["sluice",1]'));
      expect(await rawClient.closed).to.deep.equal({
        code: 1002,
        reason:
          'Expected a frame to be a JSON array starting with its type (is the peer using the json() codec instead of text()?)',
      });
    });

    it('closes with 1007 when a value fails the channel schema', async () => {
      const { client, server } = await pair();
      const a = client.net.channel<unknown>('typed');
      const b = server.net.channel<{ n: number }, unknown>('typed', {
        capacity: 4,
        schema: z.object({ n: z.number() }),
      });
      await a.outgoing.send({ n: 1 });
      await a.outgoing.send({ n: 'two' });
      await server.net.closed;
      const clientClosed = await client.net.closed;
      expect(clientClosed).to.include({ code: 1007, reason: "Invalid value on channel 'typed'" });
      const error = await rejection(b.incoming.receive());
      expect(error).to.be.instanceOf(ConnectionLostError);
      const cause = (error as ConnectionLostError).cause as DecodeError;
      expect(cause).to.be.instanceOf(DecodeError);
      expect(cause.closeCode).to.equal(1007);
      expect(cause.issues?.[0]?.path).to.deep.equal(['n']);
    });
  });
});
