import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import {
  Channel,
  ClosedReceiveError,
  ClosedSendError,
  scope,
  withTimeoutOrUndefined,
} from '../lib/index.js';
import type { ReceiveChannel, SendChannel } from '../lib/index.js';
import { observe, ticks } from './helpers/async.js';
import { kinds } from './helpers/kinds.js';
import { captureUncaught } from './helpers/root-hooks.js';

/** Collects the values an `onUndelivered` callback receives. */
function undeliveredLog<T>(): { values: T[]; onUndelivered: (value: T) => void } {
  const values: T[] = [];
  return { values, onUndelivered: (value) => values.push(value) };
}

function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('Channel', () => {
  describe('constructor', () => {
    it('makes a rendezvous channel with the suspend policy by default', () => {
      const channel = new Channel<number>();
      expect(channel.capacity).to.equal(0);
      expect(channel.overflow).to.equal('suspend');
      expect(channel.trySend(1)).to.deep.equal({ ok: false, closed: false });
    });

    for (const capacity of [-1, 1.5, Number.NaN, -Infinity, 2 ** 53]) {
      it(`throws a RangeError naming the allowed values for capacity ${String(capacity)}`, () => {
        expect(() => new Channel(capacity)).to.throw(
          RangeError,
          `Expected capacity to be a non-negative integer or Infinity, got ${String(capacity)}`,
        );
      });
    }

    it('throws a TypeError for a capacity that is not a number', () => {
      expect(() => new Channel('3' as unknown as number)).to.throw(
        TypeError,
        "Expected capacity to be a non-negative integer or Infinity, got '3' (string)",
      );
    });

    it('throws a RangeError listing the policies for an unknown overflow policy', () => {
      expect(() => new Channel(1, { overflow: 'drop' as 'drop-oldest' })).to.throw(
        RangeError,
        "Expected overflow to be 'suspend', 'drop-oldest' or 'drop-latest', got 'drop' (string)",
      );
    });

    it('throws a TypeError for an overflow policy that is not a string', () => {
      expect(() => new Channel(1, { overflow: 7 as unknown as 'suspend' })).to.throw(
        TypeError,
        "Expected overflow to be 'suspend', 'drop-oldest' or 'drop-latest', got 7 (number)",
      );
    });

    it('refuses a drop policy on a rendezvous channel', () => {
      expect(() => new Channel(0, { overflow: 'drop-latest' })).to.throw(
        RangeError,
        "Expected a capacity of at least 1 with overflow 'drop-latest'",
      );
    });

    it('throws a TypeError when onUndelivered is not a function', () => {
      expect(
        () => new Channel(1, { onUndelivered: 'log' as unknown as (value: unknown) => void }),
      ).to.throw(TypeError, "Expected onUndelivered to be a function or undefined, got 'log'");
    });

    it('is not thenable: awaiting a channel takes no value', async () => {
      const channel = new Channel<number>(1);
      channel.trySend(1);
      expect('then' in channel).to.equal(false);
      // eslint-disable-next-line @typescript-eslint/await-thenable -- awaiting it is the point
      const awaited: unknown = await channel;
      expect(awaited).to.equal(channel);
      expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 1 });
    });
  });

  describe('rendezvous', () => {
    it('send waits until a receiver takes the value', async () => {
      const channel = new Channel<string>();
      const sent = observe(channel.send('a'));
      await ticks();
      expect(sent.state().status).to.equal('pending');
      expect(await channel.receive()).to.equal('a');
      await ticks();
      expect(sent.state()).to.deep.equal({ status: 'fulfilled', value: undefined });
    });

    it('send resolves at once when a receiver is already waiting', async () => {
      const channel = new Channel<string>();
      const received = channel.receive();
      await channel.send('a');
      expect(await received).to.equal('a');
    });

    it('serves waiting senders first-come first-served', async () => {
      const channel = new Channel<number>();
      const order: number[] = [];
      const sends = [1, 2, 3].map((value) => channel.send(value).then(() => order.push(value)));
      expect([
        await channel.receive(),
        await channel.receive(),
        await channel.receive(),
      ]).to.deep.equal([1, 2, 3]);
      await Promise.all(sends);
      expect(order).to.deep.equal([1, 2, 3]);
    });
  });

  describe('buffered (suspend)', () => {
    it('send resolves at once while the buffer has room, then waits', async () => {
      const channel = new Channel<number>(2);
      await channel.send(1);
      await channel.send(2);
      const third = observe(channel.send(3));
      await ticks();
      expect(third.state().status).to.equal('pending');
      expect(channel.trySend(4)).to.deep.equal({ ok: false, closed: false });
      expect(await channel.receive()).to.equal(1);
      await ticks();
      expect(third.state().status).to.equal('fulfilled');
      expect([await channel.receive(), await channel.receive()]).to.deep.equal([2, 3]);
      expect(channel.isEmpty).to.equal(true);
    });

    it('moves a waiting sender into the buffer when a slot frees, keeping the order', async () => {
      const channel = new Channel<number>(1);
      channel.trySend(1);
      const sends = [channel.send(2), channel.send(3)];
      const got: number[] = [];
      for (let i = 0; i < 3; i++) got.push((channel.tryReceive() as { value: number }).value);
      expect(got).to.deep.equal([1, 2, 3]);
      await Promise.all(sends);
    });
  });

  describe('unlimited', () => {
    it('send never waits', async () => {
      const channel = new Channel<number>(Infinity);
      for (let i = 0; i < 10_000; i++) await channel.send(i);
      let sum = 0;
      for (let i = 0; i < 10_000; i++) sum += await channel.receive();
      expect(sum).to.equal((9_999 * 10_000) / 2);
    });
  });

  describe('overflow policies', () => {
    it('conflated (1, drop-oldest) keeps only the latest value and releases the others', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(1, { overflow: 'drop-oldest', ...log });
      for (const value of [1, 2, 3]) await channel.send(value);
      expect(channel.trySend(4)).to.deep.equal({ ok: true });
      expect(await channel.receive()).to.equal(4);
      expect(log.values).to.deep.equal([1, 2, 3]);
    });

    it('drop-oldest drops from the head of a larger buffer', () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(3, { overflow: 'drop-oldest', ...log });
      for (const value of [1, 2, 3, 4, 5]) channel.trySend(value);
      const got = [3, 4, 5].map(() => (channel.tryReceive() as { value: number }).value);
      expect(got).to.deep.equal([3, 4, 5]);
      expect(log.values).to.deep.equal([1, 2]);
    });

    it('drop-latest accepts and drops the new value, keeping the buffer', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(2, { overflow: 'drop-latest', ...log });
      await channel.send(1);
      await channel.send(2);
      await channel.send(3);
      expect(channel.trySend(4)).to.deep.equal({ ok: true });
      expect([await channel.receive(), await channel.receive()]).to.deep.equal([1, 2]);
      expect(channel.isEmpty).to.equal(true);
      expect(log.values).to.deep.equal([3, 4]);
    });

    it('a drop policy still hands the value to a waiting receiver', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(1, { overflow: 'drop-latest', ...log });
      const received = channel.receive();
      channel.trySend(1);
      expect(await received).to.equal(1);
      expect(log.values).to.deep.equal([]);
    });
  });

  for (const kind of kinds) {
    describe(`shared semantics: ${kind.name}`, () => {
      it('delivers values in the order the sends were accepted', async () => {
        const channel = kind.create<number>();
        const received: number[] = [];
        const consumer = (async () => {
          for await (const value of channel) received.push(value);
        })();
        for (let i = 0; i < 100; i++) {
          await channel.send(i);
          if (i % 7 === 0) await ticks(3);
        }
        channel.close();
        await consumer;
        // Drop policies may lose values, never reorder them.
        expect(received).to.deep.equal([...received].sort((a, b) => a - b));
        if (!kind.drops) expect(received).to.deep.equal([...Array(100).keys()]);
      });

      it('accounts for every value exactly once under concurrent senders, receivers and close', async () => {
        const log = undeliveredLog<string>();
        const channel = kind.create<string>(log);
        const rejectedSends: string[] = [];
        const senders = [0, 1, 2].map(async (sender) => {
          for (let i = 0; i < 50; i++) {
            const value = `${sender}:${i}`;
            try {
              await channel.send(value);
            } catch (error) {
              expect(error).to.be.instanceOf(ClosedSendError);
              rejectedSends.push(value);
            }
          }
        });
        const received: string[][] = [[], []];
        const receivers = received.map(async (into) => {
          for await (const value of channel) {
            into.push(value);
            if (into.length % 5 === 0) await ticks(2);
          }
        });
        await ticks(40);
        channel.close();
        await Promise.all(senders);
        await Promise.all(receivers);

        const all = [...received.flat(), ...log.values];
        expect(new Set(all).size).to.equal(all.length, 'no value is both received and undelivered');
        expect(all.length).to.equal(150, 'no value is lost');
        expect(log.values).to.include.members(rejectedSends);
        for (const into of received) {
          for (const sender of ['0', '1', '2']) {
            const indices = into
              .filter((v) => v.startsWith(`${sender}:`))
              .map((v) => Number(v.slice(2)));
            expect(indices).to.deep.equal(
              [...indices].sort((a, b) => a - b),
              'FIFO per sender',
            );
          }
        }
      });

      it('keeps values sent before close receivable, then receive rejects with ClosedReceiveError', async () => {
        const channel = kind.create<number>();
        const sent = channel.send(1);
        channel.close();
        expect(channel.isClosedForSend).to.equal(true);
        expect(channel.isClosedForReceive).to.equal(false);
        expect(await channel.receive()).to.equal(1);
        await sent;
        expect(channel.isClosedForReceive).to.equal(true);
        const error = await channel.receive().catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ClosedReceiveError);
        expect(error).to.include({
          name: 'ClosedReceiveError',
          code: 'ERR_CHANNEL_CLOSED_FOR_RECEIVE',
        });
      });

      it('rejects send after close with ClosedSendError and hands the value to onUndelivered', async () => {
        const log = undeliveredLog<number>();
        const channel = kind.create<number>(log);
        channel.close();
        const error = await channel.send(7).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ClosedSendError);
        expect(error).to.include({ name: 'ClosedSendError', code: 'ERR_CHANNEL_CLOSED_FOR_SEND' });
        expect(log.values).to.deep.equal([7]);
        expect(channel.trySend(8)).to.deep.equal({ ok: false, closed: true });
        expect(log.values).to.deep.equal([7], 'a failed trySend leaves the value with its caller');
      });

      it('rethrows a close cause as the same object from send, receive and for await', async () => {
        const channel = kind.create<number>();
        const cause = new Error('upstream failed');
        expect(channel.close(cause)).to.equal(true);
        expect(channel.close(new Error('second'))).to.equal(false);
        expect(await channel.send(1).catch((e: unknown) => e)).to.equal(cause);
        expect(await channel.receive().catch((e: unknown) => e)).to.equal(cause);
        expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: true, cause });
        expect(channel.trySend(1)).to.deep.equal({ ok: false, closed: true, cause });
        expect(await channel.receiveCatching()).to.deep.equal({ ok: false, closed: true, cause });
        const thrown = await (async () => {
          for await (const value of channel) throw new Error(`unexpected ${value}`);
        })().catch((e: unknown) => e);
        expect(thrown).to.equal(cause);
      });

      it('rejects every waiting receiver when closed while empty', async () => {
        const channel = kind.create<number>();
        const waiting = [channel.receive(), channel.receive()];
        const catching = channel.receiveCatching();
        channel.close();
        for (const received of waiting) {
          expect(await received.catch((e: unknown) => e)).to.be.instanceOf(ClosedReceiveError);
        }
        expect(await catching).to.deep.equal({ ok: false, closed: true });
      });

      it('an abort while receiving rejects with the reason and takes no value', async () => {
        const channel = kind.create<number>();
        const controller = new AbortController();
        const aborted = channel.receive({ signal: controller.signal });
        const next = channel.receive();
        const reason = new Error('stop');
        controller.abort(reason);
        expect(await aborted.catch((e: unknown) => e)).to.equal(reason);
        expect(abortListeners(controller.signal)).to.equal(0);
        await channel.send(5);
        expect(await next).to.equal(5);
      });

      it('an already aborted signal rejects receive at once and takes nothing', async () => {
        const channel = kind.create<number>();
        channel.trySend(1);
        const reason = new Error('already');
        const error = await channel
          .receive({ signal: AbortSignal.abort(reason) })
          .catch((e: unknown) => e);
        expect(error).to.equal(reason);
        if (kind.capacity > 0) expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 1 });
      });

      it('an already aborted signal rejects send at once, changing nothing', async () => {
        const log = undeliveredLog<number>();
        const channel = kind.create<number>(log);
        const reason = new Error('already');
        const error = await channel
          .send(1, { signal: AbortSignal.abort(reason) })
          .catch((e: unknown) => e);
        expect(error).to.equal(reason);
        expect(channel.isEmpty).to.equal(true);
        expect(log.values).to.deep.equal([1]);
      });

      it('cancel discards buffered values, rejects waiters with the reason and closes both sides', async () => {
        const log = undeliveredLog<number>();
        const channel = kind.create<number>(log);
        const accepted: number[] = [];
        const sends: Promise<unknown>[] = [];
        for (let i = 1; i <= 3; i++) {
          const sent = channel.send(i).then(
            () => accepted.push(i),
            (e: unknown) => e,
          );
          sends.push(sent);
        }
        await ticks();
        const reason = new Error('consumer gone');
        let closedWith: unknown = 'not called';
        channel.onClose((cause) => (closedWith = cause));
        channel.cancel(reason);
        const outcomes = await Promise.all(sends);
        expect(closedWith).to.equal(reason);
        expect(channel.isClosedForSend).to.equal(true);
        expect(channel.isClosedForReceive).to.equal(true);
        expect(channel.isEmpty).to.equal(false);
        // Every value was either accepted and then discarded, or its send rejected.
        const rejected = outcomes.filter((o) => o === reason).length;
        expect(rejected + accepted.length).to.equal(3);
        expect([...log.values].sort()).to.deep.equal([1, 2, 3]);
        expect(await channel.receive().catch((e: unknown) => e)).to.equal(reason);
        channel.cancel(new Error('again'));
        expect(log.values).to.have.length(3, 'a second cancel does nothing');
      });

      it('cancel ends a waiting receiveCatching with a closed result carrying the reason', async () => {
        const channel = kind.create<number>();
        const catching = channel.receiveCatching();
        const reason = new Error('cancelled');
        channel.cancel(reason);
        expect(await catching).to.deep.equal({ ok: false, closed: true, cause: reason });
      });

      it('cancel with no reason uses a DOMException named AbortError', async () => {
        const channel = kind.create<number>();
        const waiting = channel.receive();
        channel.cancel();
        const error = await waiting.catch((e: unknown) => e);
        expect(error).to.be.instanceOf(DOMException);
        expect(error).to.include({ name: 'AbortError' });
        expect(await channel.receive().catch((e: unknown) => e)).to.equal(error);
      });

      it('for await ends after close and drain, and leaving early neither takes a value nor cancels', async () => {
        const channel = kind.create<number>();
        const producer = (async () => {
          for (let i = 0; i < 6; i++) await channel.send(i);
          channel.close();
        })();
        const first: number[] = [];
        for await (const value of channel) {
          first.push(value);
          if (first.length === 2) break;
        }
        expect(channel.isClosedForReceive).to.equal(false);
        const rest: number[] = [];
        for await (const value of channel) rest.push(value);
        await producer;
        const all = [...first, ...rest];
        expect(all).to.deep.equal([...all].sort((a, b) => a - b));
        if (!kind.drops) expect(all).to.deep.equal([0, 1, 2, 3, 4, 5]);
      });

      it('isEmpty is true exactly when a receive would wait', async () => {
        const channel = kind.create<number>();
        expect(channel.isEmpty).to.equal(true);
        const sent = channel.send(1);
        await ticks();
        expect(channel.isEmpty).to.equal(false);
        await channel.receive();
        await sent;
        expect(channel.isEmpty).to.equal(true);
        channel.close();
        expect(channel.isEmpty).to.equal(false, 'closed for receive is not empty, as in Kotlin');
      });
    });
  }

  describe('#send()', () => {
    it('an abort while waiting rejects with the reason, delivers nothing, and releases the value once', async () => {
      const log = undeliveredLog<string>();
      const channel = new Channel<string>(1, log);
      channel.trySend('kept');
      const controller = new AbortController();
      const waiting = channel.send('withdrawn', { signal: controller.signal });
      const behind = channel.send('behind');
      const reason = new Error('changed my mind');
      controller.abort(reason);
      expect(await waiting.catch((e: unknown) => e)).to.equal(reason);
      expect(abortListeners(controller.signal)).to.equal(0);
      expect(await channel.receive()).to.equal('kept');
      expect(await channel.receive()).to.equal('behind');
      await behind;
      expect(log.values).to.deep.equal(['withdrawn']);
    });

    it('sends waiting when close is called are still delivered, in order', async () => {
      const channel = new Channel<number>();
      const sends = [channel.send(1), channel.send(2)];
      channel.close();
      expect(await channel.send(3).catch((e: unknown) => e)).to.be.instanceOf(ClosedSendError);
      const got: number[] = [];
      for await (const value of channel) got.push(value);
      await Promise.all(sends);
      expect(got).to.deep.equal([1, 2]);
    });

    it('removes its abort listener when it completes', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const sent = channel.send(1, { signal: controller.signal });
      expect(abortListeners(controller.signal)).to.equal(1);
      await channel.receive();
      await sent;
      expect(abortListeners(controller.signal)).to.equal(0);
    });
  });

  describe('#trySend()', () => {
    it('hands the value to a waiting receiver', async () => {
      const channel = new Channel<number>();
      const received = channel.receive();
      expect(channel.trySend(9)).to.deep.equal({ ok: true });
      expect(await received).to.equal(9);
    });

    it('fails without a cause key when the channel was closed normally', () => {
      const channel = new Channel<number>(1);
      channel.close();
      const result = channel.trySend(1);
      expect(result).to.deep.equal({ ok: false, closed: true });
      expect('cause' in result).to.equal(false);
    });
  });

  describe('#tryReceive() and #receiveCatching()', () => {
    it('tryReceive takes from a waiting sender of a rendezvous channel', async () => {
      const channel = new Channel<number>();
      const sent = channel.send(4);
      expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 4 });
      await sent;
      expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: false });
    });

    it('receiveCatching waits for a value and reports it as a result', async () => {
      const channel = new Channel<number>();
      const result = channel.receiveCatching();
      await channel.send(3);
      expect(await result).to.deep.equal({ ok: true, value: 3 });
    });

    it('receiveCatching rejects only when aborted, with the reason', async () => {
      const channel = new Channel<number>();
      const reason = new Error('abort');
      const controller = new AbortController();
      const result = channel.receiveCatching({ signal: controller.signal });
      controller.abort(reason);
      expect(await result.catch((e: unknown) => e)).to.equal(reason);
    });

    it('receivers are served first-come first-served', async () => {
      const channel = new Channel<string>();
      const a = channel.receive();
      const b = channel.receiveCatching();
      const c = channel.receive();
      for (const value of ['x', 'y', 'z']) await channel.send(value);
      expect([await a, await b, await c]).to.deep.equal(['x', { ok: true, value: 'y' }, 'z']);
    });
  });

  describe('#close() and #onClose()', () => {
    it('calls each handler once with the cause, in registration order', () => {
      const channel = new Channel<number>();
      const calls: string[] = [];
      const cause = new Error('done');
      channel.onClose((c) => calls.push(`a:${String(c === cause)}`));
      channel.onClose((c) => calls.push(`b:${String(c === cause)}`));
      channel.close(cause);
      channel.close();
      channel.cancel();
      expect(calls).to.deep.equal(['a:true', 'b:true']);
    });

    it('runs a handler registered after close at once, with undefined for a normal close', () => {
      const channel = new Channel<number>();
      channel.close();
      const calls: unknown[] = [];
      channel.onClose((cause) => calls.push(cause));
      expect(calls).to.deep.equal([undefined]);
    });

    it('an unregistered handler is not called', () => {
      const channel = new Channel<number>();
      let called = false;
      const off = channel.onClose(() => (called = true));
      off();
      channel.close();
      expect(called).to.equal(false);
    });

    it('a throwing handler is reported asynchronously and does not stop the others', async () => {
      const channel = new Channel<number>();
      const boom = new Error('handler bug');
      let second = false;
      channel.onClose(() => {
        throw boom;
      });
      channel.onClose(() => (second = true));
      const reported = await captureUncaught(() => {
        expect(channel.close()).to.equal(true);
        expect(second).to.equal(true);
      });
      expect(reported).to.deep.equal([boom]);
    });

    it('a throwing onUndelivered is reported and the value is still accounted for once', async () => {
      const seen: number[] = [];
      const boom = new Error('release failed');
      const channel = new Channel<number>(1, {
        onUndelivered: (value) => {
          seen.push(value);
          throw boom;
        },
      });
      channel.trySend(1);
      const reported = await captureUncaught(() => {
        channel.cancel();
      });
      expect(seen).to.deep.equal([1]);
      expect(channel.isClosedForReceive).to.equal(true);
      expect(reported).to.deep.equal([boom]);
    });

    it('close after cancel returns false and keeps the cancel reason', async () => {
      const channel = new Channel<number>();
      const reason = new Error('cancelled');
      channel.cancel(reason);
      expect(channel.close(new Error('late'))).to.equal(false);
      expect(await channel.receive().catch((e: unknown) => e)).to.equal(reason);
    });

    it('cancel after close keeps the close cause but discards what is left', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(2, log);
      channel.trySend(1);
      const cause = new Error('closed first');
      channel.close(cause);
      channel.cancel(new Error('then cancelled'));
      expect(log.values).to.deep.equal([1]);
      expect(await channel.receive().catch((e: unknown) => e)).to.equal(cause);
    });
  });

  describe('#iterate()', () => {
    it('yields every value until close, like for await, without a signal', async () => {
      const channel = new Channel<number>(Infinity);
      for (const value of [1, 2, 3]) channel.trySend(value);
      channel.close();
      const seen: number[] = [];
      for await (const value of channel.iterate()) seen.push(value);
      expect(seen).to.deep.equal([1, 2, 3]);
    });

    it('ends a waiting loop by throwing signal.reason, and the next value stays in the channel', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const reason = new Error('stop');
      const seen: number[] = [];
      const loop = (async () => {
        for await (const value of channel.iterate({ signal: controller.signal })) seen.push(value);
      })();
      await channel.send(1);
      await ticks(2);
      expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: false });
      controller.abort(reason);
      expect(await loop.catch((e: unknown) => e)).to.equal(reason);
      expect(seen).to.deep.equal([1]);
      expect(abortListeners(controller.signal)).to.equal(0);
      // Nobody waits any more: a rendezvous trySend finds no receiver.
      expect(channel.trySend(2)).to.deep.equal({ ok: false, closed: false });
    });

    it('yields a value handed over in the same turn as the abort, then throws the reason', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const iterator = channel.iterate({ signal: controller.signal });
      const first = iterator.next();
      expect(channel.trySend(7)).to.deep.equal({ ok: true });
      controller.abort();
      expect(await first).to.deep.equal({ done: false, value: 7 });
      const error = await iterator.next().catch((e: unknown) => e);
      expect(error).to.equal(controller.signal.reason);
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('an abort between values leaves buffered values in the channel', async () => {
      const channel = new Channel<number>(Infinity);
      for (const value of [1, 2, 3]) channel.trySend(value);
      const controller = new AbortController();
      const seen: number[] = [];
      const thrown = await (async () => {
        for await (const value of channel.iterate({ signal: controller.signal })) {
          seen.push(value);
          if (value === 1) controller.abort('enough');
        }
      })().catch((e: unknown) => e);
      expect(thrown).to.equal('enough');
      expect(seen).to.deep.equal([1]);
      expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 2 });
      expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 3 });
    });

    it('an already aborted signal throws at the first step and takes nothing', async () => {
      const channel = new Channel<number>(1);
      channel.trySend(1);
      const reason = new Error('already');
      const iterator = channel.iterate({ signal: AbortSignal.abort(reason) });
      expect(await iterator.next().catch((e: unknown) => e)).to.equal(reason);
      expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 1 });
    });

    it('keeps one abort listener while it waits, none after close, break or cancel', async () => {
      const { signal } = new AbortController();
      const closing = new Channel<number>();
      const loop = (async () => {
        const seen: number[] = [];
        for await (const value of closing.iterate({ signal })) seen.push(value);
        return seen;
      })();
      for (let i = 0; i < 5; i++) {
        await closing.send(i);
        expect(abortListeners(signal)).to.equal(1);
      }
      await ticks(2);
      closing.close();
      expect(await loop).to.deep.equal([0, 1, 2, 3, 4]);
      expect(abortListeners(signal)).to.equal(0);

      const breaking = new Channel<number>(Infinity);
      const pending = (async () => {
        for await (const value of breaking.iterate({ signal })) if (value === 2) break;
      })();
      breaking.trySend(1);
      await ticks(2);
      expect(abortListeners(signal)).to.equal(1);
      breaking.trySend(2);
      await pending;
      expect(abortListeners(signal)).to.equal(0);

      const cancelled = new Channel<number>();
      const reason = new Error('cancelled');
      const failing = (async () => {
        for await (const value of cancelled.iterate({ signal })) expect(value).to.equal(-1);
      })();
      await ticks(2);
      expect(abortListeners(signal)).to.equal(1);
      cancelled.cancel(reason);
      expect(await failing.catch((e: unknown) => e)).to.equal(reason);
      expect(abortListeners(signal)).to.equal(0);
    });

    it('return() while a hand-driven next() waits leaves that next() abortable, then removes the listener', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const iterator = channel.iterate({ signal: controller.signal });
      const waiting = iterator.next();
      expect(await iterator.return()).to.deep.equal({ done: true, value: undefined });
      expect(await iterator.next()).to.deep.equal({ done: true, value: undefined });
      expect(abortListeners(controller.signal)).to.equal(1);
      controller.abort();
      expect(await waiting.catch((e: unknown) => e)).to.equal(controller.signal.reason);
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('two concurrent next() calls are served in order and each is abortable', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const iterator = channel.iterate({ signal: controller.signal });
      const a = iterator.next();
      const b = iterator.next();
      expect(channel.trySend(1)).to.deep.equal({ ok: true });
      expect(await a).to.deep.equal({ done: false, value: 1 });
      controller.abort();
      expect(await b.catch((e: unknown) => e)).to.equal(controller.signal.reason);
      expect(channel.trySend(2)).to.deep.equal({ ok: false, closed: false });
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('lets withTimeoutOrUndefined and scope cancellation reach a loop over an open channel', async () => {
      const channel = new Channel<number>();
      const started = Date.now();
      const result = await withTimeoutOrUndefined(20, async (signal) => {
        for await (const value of channel.iterate({ signal })) expect(value).to.equal(-1);
        return 'closed';
      });
      expect(result).to.equal(undefined);
      expect(Date.now() - started).to.be.below(2_000);
      const reason = new Error('shutdown');
      const cancelled = await scope(async (s) => {
        s.launch(async (signal) => {
          for await (const value of channel.iterate({ signal })) expect(value).to.equal(-1);
        });
        await ticks(2);
        s.cancel(reason);
      }).catch((e: unknown) => e);
      expect(cancelled).to.equal(reason);
      expect(channel.trySend(1)).to.deep.equal({ ok: false, closed: false });
    });

    it('rejects a signal that is not an AbortSignal with a TypeError naming what is allowed', () => {
      const channel = new Channel<number>();
      expect(() => channel.iterate({ signal: 'stop' as unknown as AbortSignal })).to.throw(
        TypeError,
        "Expected signal to be an AbortSignal or undefined, got 'stop'",
      );
    });
  });

  describe('#consume() and #consumeEach()', () => {
    it('consume returns the block result and cancels the channel', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(4, log);
      for (const value of [1, 2, 3]) channel.trySend(value);
      const first = await channel.consume((ch) => ch.receive());
      expect(first).to.equal(1);
      expect(channel.isClosedForReceive).to.equal(true);
      expect(log.values).to.deep.equal([2, 3]);
    });

    it('consume cancels with the block error and rethrows the same object', async () => {
      const channel = new Channel<number>();
      const waitingSend = channel.send(1);
      const boom = new Error('consumer failed');
      const thrown = await channel
        .consume(() => {
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(thrown).to.equal(boom);
      expect(await waitingSend.catch((e: unknown) => e)).to.equal(boom);
    });

    it('consumeEach runs the action for every value until close, then cancels', async () => {
      const channel = new Channel<number>(Infinity);
      for (const value of [1, 2, 3]) channel.trySend(value);
      channel.close();
      const seen: number[] = [];
      await channel.consumeEach(async (value) => {
        await ticks(1);
        seen.push(value);
      });
      expect(seen).to.deep.equal([1, 2, 3]);
      expect(channel.isClosedForReceive).to.equal(true);
    });

    it('consumeEach rejects with the action error and cancels the channel with it', async () => {
      const channel = new Channel<number>(Infinity);
      channel.trySend(1);
      channel.trySend(2);
      const boom = new Error('bad value');
      const thrown = await channel
        .consumeEach(() => {
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(thrown).to.equal(boom);
      expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: true, cause: boom });
    });

    it('consumeEach with a signal: an abort ends it with the reason and cancels the channel', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(Infinity, log);
      const controller = new AbortController();
      const reason = new Error('shutting down');
      const seen: number[] = [];
      const consuming = channel.consumeEach(
        (value) => {
          seen.push(value);
          if (value === 2) controller.abort(reason);
        },
        { signal: controller.signal },
      );
      for (const value of [1, 2, 3]) channel.trySend(value);
      expect(await consuming.catch((e: unknown) => e)).to.equal(reason);
      expect(seen).to.deep.equal([1, 2]);
      expect(log.values).to.deep.equal([3]);
      expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: true, cause: reason });
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('consume with a signal: an abort cancels the channel at once and rejects with the reason', async () => {
      const channel = new Channel<number>();
      const controller = new AbortController();
      const reason = new Error('stop');
      const consuming = channel.consume((ch) => ch.receive(), { signal: controller.signal });
      await ticks(1);
      controller.abort(reason);
      expect(await consuming.catch((e: unknown) => e)).to.equal(reason);
      expect(channel.isClosedForReceive).to.equal(true);
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('consume with an already aborted signal cancels the channel without running the block', async () => {
      const log = undeliveredLog<number>();
      const channel = new Channel<number>(1, log);
      channel.trySend(1);
      let ran = false;
      const reason = new Error('already');
      const thrown = await channel
        .consume(
          () => {
            ran = true;
          },
          { signal: AbortSignal.abort(reason) },
        )
        .catch((e: unknown) => e);
      expect(thrown).to.equal(reason);
      expect(ran).to.equal(false);
      expect(log.values).to.deep.equal([1]);
    });

    it('consume with a signal that never aborts returns the result and removes its listener', async () => {
      const channel = new Channel<number>(1);
      channel.trySend(4);
      const { signal } = new AbortController();
      expect(await channel.consume((ch) => ch.receive(), { signal })).to.equal(4);
      expect(abortListeners(signal)).to.equal(0);
      expect(channel.isClosedForReceive).to.equal(true);
    });
  });

  describe('halves and disposal', () => {
    it('the send and receive halves are views of one channel', async () => {
      const channel = new Channel<number>(1);
      const out: SendChannel<number> = channel;
      const input: ReceiveChannel<number> = channel;
      await out.send(1);
      expect(await input.receive()).to.equal(1);
    });

    it('await using closes the channel at the end of the block', async () => {
      let escaped: Channel<number> | undefined;
      {
        await using channel = new Channel<number>(1);
        escaped = channel;
        await channel.send(1);
      }
      expect(escaped.isClosedForSend).to.equal(true);
      expect(await escaped.receive()).to.equal(1);
    });
  });

  describe('resources', () => {
    it('one AbortSignal reused for 100,000 completed operations keeps no listener', async () => {
      const channel = new Channel<number>();
      const { signal } = new AbortController();
      globalThis.gc?.();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 50_000; i++) {
        const sent = channel.send(i, { signal });
        await channel.receive({ signal });
        await sent;
        const received = channel.receive({ signal });
        await channel.send(i, { signal });
        await received;
      }
      globalThis.gc?.();
      const growth = process.memoryUsage().heapUsed - before;
      expect(abortListeners(signal)).to.equal(0);
      expect(growth).to.be.below(2_000_000);
    });

    it('100,000 aborted waiters leave nothing registered on the channel or their signals', async () => {
      const channel = new Channel<number>();
      const signals: AbortSignal[] = [];
      globalThis.gc?.();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 100_000; i++) {
        const controller = new AbortController();
        const pending =
          i % 2 === 0
            ? channel.receive({ signal: controller.signal })
            : channel.send(i, { signal: controller.signal });
        controller.abort();
        await pending.catch(() => undefined);
        if (i % 10_000 === 0) signals.push(controller.signal);
      }
      globalThis.gc?.();
      const growth = process.memoryUsage().heapUsed - before;
      expect(signals.map(abortListeners)).to.deep.equal(signals.map(() => 0));
      expect(channel.trySend(1)).to.deep.equal(
        { ok: false, closed: false },
        'no receiver is left waiting',
      );
      expect(channel.tryReceive()).to.deep.equal(
        { ok: false, closed: false },
        'no sender is left waiting',
      );
      expect(growth).to.be.below(2_000_000);
    });
  });
});
