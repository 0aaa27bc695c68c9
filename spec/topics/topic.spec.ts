import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import {
  ClosedReceiveError,
  ClosedSendError,
  DiscontinuityError,
  MemoryBackend,
  SubscriberOverflowError,
  Topic,
} from '../../lib/index.js';
import type { History, Position, TopicBackend, TopicOverflow } from '../../lib/index.js';
import { observe, ticks } from '../helpers/async.js';
import { rejection } from '../helpers/outcomes.js';
import { drain, show, takeNow } from './helpers.js';

interface Kind {
  readonly capacity: number;
  readonly overflow: TopicOverflow;
}

/** Every policy, with the capacities that behave differently. */
const KINDS: readonly Kind[] = [
  { capacity: 0, overflow: 'suspend' },
  { capacity: 1, overflow: 'suspend' },
  { capacity: 4, overflow: 'suspend' },
  { capacity: Infinity, overflow: 'suspend' },
  { capacity: 1, overflow: 'drop-oldest' },
  { capacity: 3, overflow: 'drop-oldest' },
  { capacity: 1, overflow: 'drop-latest' },
  { capacity: 3, overflow: 'drop-latest' },
  { capacity: 1, overflow: 'close' },
  { capacity: 3, overflow: 'close' },
];

const name = (kind: Kind): string => `capacity ${kind.capacity}, '${kind.overflow}'`;

function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('Topic', () => {
  for (const kind of KINDS) {
    describe(`a subscriber with ${name(kind)}`, () => {
      it('receives every value with its position, in order, when it keeps up', async () => {
        const topic = new Topic<string>();
        const sub = topic.subscribe(kind);
        const received: string[] = [];
        const consumer = (async () => {
          for await (const event of sub) received.push(show(event));
        })();
        const positions: Position[] = [];
        for (const value of ['a', 'b', 'c', 'd', 'e']) {
          positions.push(await topic.publish(value));
          await ticks(4);
        }
        topic.close();
        await consumer;
        expect(received).to.deep.equal(['1=a', '2=b', '3=c', '4=d', '5=e']);
        expect(positions.map((p) => p.offset)).to.deep.equal([1, 2, 3, 4, 5]);
        expect(new Set(positions.map((p) => p.epoch)).size).to.equal(1);
        expect(sub.position).to.deep.equal(positions[4]);
      });

      it('gets what is published after subscribe returns, not before', async () => {
        const topic = new Topic<string>();
        await topic.publish('before');
        const sub = topic.subscribe(kind);
        const got = observe(sub.receive());
        await topic.publish('after');
        await ticks();
        expect(got.state()).to.deep.include({ status: 'fulfilled' });
        const state = got.state();
        if (state.status !== 'fulfilled') throw new Error('unreachable');
        expect(show(state.value)).to.equal('2=after');
        sub.cancel();
      });

      it('after the topic closes, receives what it holds, then ends normally', async () => {
        const topic = new Topic<string>();
        const sub = topic.subscribe(kind);
        if (kind.capacity > 0) await topic.publish('held');
        topic.close();
        const held = kind.capacity > 0 ? ['1=held'] : [];
        expect(takeNow(sub)).to.deep.equal(held);
        expect(sub.isClosedForReceive).to.equal(true);
        expect(sub.tryReceive()).to.deep.equal({ ok: false, closed: true });
        expect(await sub.receiveCatching()).to.deep.equal({ ok: false, closed: true });
        expect(await rejection(sub.receive())).to.be.instanceOf(ClosedReceiveError);
        expect((await drain(sub)).error).to.equal(undefined);
        expect(topic.subscriberCount).to.equal(0);
      });

      it('ends with the close cause itself when the topic closes with one', async () => {
        const topic = new Topic<number>();
        const sub = topic.subscribe(kind);
        const waiting = sub.receive();
        const cause = new Error('shutdown');
        topic.close(cause);
        expect(await rejection(waiting)).to.equal(cause);
        expect(await rejection(sub.receive())).to.equal(cause);
        expect(await sub.receiveCatching()).to.deep.equal({ ok: false, closed: true, cause });
        expect((await drain(sub)).error).to.equal(cause);
      });

      it('cancel drops what it holds, rejects receivers with the reason, and stops holding publishers back', async () => {
        const topic = new Topic<number>();
        const sub = topic.subscribe(kind);
        const other = topic.subscribe({ capacity: Infinity });
        if (kind.capacity > 0) await topic.publish(1);
        const reason = new Error('bye');
        sub.cancel(reason);
        expect(sub.tryReceive()).to.deep.equal({ ok: false, closed: true, cause: reason });
        expect(await rejection(sub.receive())).to.equal(reason);
        expect(topic.subscriberCount).to.equal(1);
        // No subscriber with a full buffer remains: publishes go through at once.
        for (let i = 0; i < 10; i++) await topic.publish(i);
        sub.cancel(new Error('again'));
        expect(await rejection(sub.receive())).to.equal(reason);
        other.cancel();
      });

      it('cancel() without a reason uses an AbortError DOMException', async () => {
        const topic = new Topic<number>();
        const sub = topic.subscribe(kind);
        const waiting = sub.receive();
        sub.cancel();
        const error = await rejection(waiting);
        expect(error).to.be.instanceOf(DOMException);
        expect((error as DOMException).name).to.equal('AbortError');
      });

      it('is cancelled with the reason when the signal given to subscribe aborts, and leaves no listener', async () => {
        const topic = new Topic<number>();
        const controller = new AbortController();
        const sub = topic.subscribe({ ...kind, signal: controller.signal });
        expect(abortListeners(controller.signal)).to.equal(1);
        const waiting = sub.receive();
        controller.abort(new Error('left'));
        expect(await rejection(waiting)).to.equal(controller.signal.reason);
        expect(abortListeners(controller.signal)).to.equal(0);
        expect(topic.subscriberCount).to.equal(0);
        const already = topic.subscribe({ ...kind, signal: controller.signal });
        expect(already.tryReceive()).to.deep.equal({
          ok: false,
          closed: true,
          cause: controller.signal.reason as unknown,
        });
      });

      it('a receive aborted while waiting takes nothing: the next receive gets the value', async () => {
        const topic = new Topic<string>();
        const sub = topic.subscribe(kind);
        const controller = new AbortController();
        const aborted = sub.receive({ signal: controller.signal });
        const next = sub.receive();
        controller.abort(new Error('stop'));
        expect(await rejection(aborted)).to.equal(controller.signal.reason);
        expect(abortListeners(controller.signal)).to.equal(0);
        await topic.publish('x');
        expect(show(await next)).to.equal('1=x');
        expect(await rejection(sub.receive({ signal: controller.signal }))).to.equal(
          controller.signal.reason,
        );
        sub.cancel();
      });

      it('await using cancels it at the end of the block', async () => {
        const topic = new Topic<number>();
        let kept: ReturnType<typeof topic.subscribe> | undefined;
        {
          await using sub = topic.subscribe(kind);
          kept = sub;
          expect(topic.subscriberCount).to.equal(1);
        }
        expect(topic.subscriberCount).to.equal(0);
        const result = kept.tryReceive();
        expect(result.ok).to.equal(false);
        expect(!result.ok && result.closed).to.equal(true);
      });

      it('close() ends it after what it holds, and later publishes do not reach it', async () => {
        const topic = new Topic<string>();
        const sub = topic.subscribe(kind);
        if (kind.capacity > 0) await topic.publish('a');
        expect(sub.close()).to.equal(true);
        expect(sub.close()).to.equal(false);
        await topic.publish('b');
        expect(takeNow(sub)).to.deep.equal(kind.capacity > 0 ? ['1=a'] : []);
        expect(sub.tryReceive()).to.deep.equal({ ok: false, closed: true });
      });

      it('leaving a for await loop early takes nothing more and does not cancel it', async () => {
        const topic = new Topic<string>();
        const sub = topic.subscribe({ ...kind, capacity: Math.max(kind.capacity, 2) });
        await topic.publish('a');
        await topic.publish('b');
        for await (const event of sub) {
          expect(show(event)).to.equal('1=a');
          break;
        }
        const iterator = sub[Symbol.asyncIterator]();
        const iterable = iterator as unknown as AsyncIterable<unknown>;
        expect(iterable[Symbol.asyncIterator]()).to.equal(iterator);
        await iterator.return?.();
        expect(await iterator.next()).to.deep.equal({ done: true, value: undefined });
        expect(takeNow(sub)).to.deep.equal(['2=b']);
        expect(topic.subscriberCount).to.equal(1);
        topic.close();
      });

      it('tryReceive never waits: empty gives { ok: false, closed: false }', () => {
        const topic = new Topic<number>();
        const sub = topic.subscribe(kind);
        expect(sub.isEmpty).to.equal(true);
        expect(sub.tryReceive()).to.deep.equal({ ok: false, closed: false });
        expect(sub.capacity).to.equal(kind.capacity);
        expect(sub.overflow).to.equal(kind.overflow);
        sub.cancel();
      });

      it('when it falls behind by two values, does exactly what its policy says', async () => {
        const topic = new Topic<number>();
        const sub = topic.subscribe(kind);
        const c = kind.capacity;
        if (c === Infinity) {
          for (let i = 1; i <= 100; i++) await topic.publish(i);
          expect(takeNow(sub)).to.have.length(100);
          return;
        }
        const published = Array.from({ length: c + 2 }, (_, i) => observe(topic.publish(i + 1)));
        await ticks();
        const settled = published.map((p) => p.state().status);
        switch (kind.overflow) {
          case 'suspend': {
            // The publishes beyond the capacity wait, in order, for this subscriber.
            expect(settled).to.deep.equal([
              ...Array<string>(c).fill('fulfilled'),
              'pending',
              'pending',
            ]);
            const got: string[] = [];
            for (let i = 0; i < c + 2; i++) {
              got.push(show(await sub.receive()));
              await ticks();
            }
            expect(got).to.deep.equal(Array.from({ length: c + 2 }, (_, i) => `${i + 1}=${i + 1}`));
            expect(published.map((p) => p.state().status)).to.deep.equal(
              Array<string>(c + 2).fill('fulfilled'),
            );
            break;
          }
          case 'drop-oldest':
            expect(settled.every((s) => s === 'fulfilled')).to.equal(true);
            expect(takeNow(sub)).to.deep.equal([
              'gap 1-2',
              ...Array.from({ length: c }, (_, i) => `${i + 3}=${i + 3}`),
            ]);
            break;
          case 'drop-latest':
            expect(takeNow(sub)).to.deep.equal([
              ...Array.from({ length: c }, (_, i) => `${i + 1}=${i + 1}`),
              `gap ${c + 1}-${c + 2}`,
            ]);
            break;
          case 'close': {
            expect(takeNow(sub)).to.deep.equal(
              Array.from({ length: c }, (_, i) => `${i + 1}=${i + 1}`),
            );
            const error = await rejection(sub.receive());
            expect(error).to.be.instanceOf(SubscriberOverflowError);
            const overflow = error as SubscriberOverflowError;
            expect(overflow.code).to.equal('ERR_TOPIC_SUBSCRIBER_OVERFLOW');
            expect(overflow.position.offset).to.equal(c);
            expect(overflow.capacity).to.equal(c);
            expect(overflow.message).to.equal(
              `The subscriber was too slow: its buffer of ${c} was full at ${overflow.position.epoch}:${c}`,
            );
            expect(topic.subscriberCount).to.equal(0);
            // Resuming since its position misses nothing still retained.
            const again = topic.subscribe({ since: overflow.position });
            await ticks();
            expect(takeNow(again)).to.deep.equal([`${c + 1}=${c + 1}`, `${c + 2}=${c + 2}`]);
            again.cancel();
            break;
          }
        }
        sub.cancel();
      });
    });
  }

  describe('#publish()', () => {
    it('a backend whose publish throws: publish rejects with its error, reserves no room, and a waiting publish that meets it rejects without breaking receive', async () => {
      const memory = new MemoryBackend();
      const failure = new Error('cannot serialise');
      const backend: TopicBackend = {
        publish: (name, value, retention) => {
          if (value === 'bad') throw failure;
          return memory.publish(name, value, retention);
        },
        listen: (name, listener) => memory.listen(name, listener),
        history: (name, since) => memory.history(name, since),
        position: (name) => memory.position(name),
      };
      const topic = new Topic<string>({ backend });
      const sub = topic.subscribe({ capacity: 1 });
      expect(await rejection(topic.publish('bad'))).to.equal(failure);
      expect((await topic.publish('a')).offset).to.equal(1); // no room left behind
      const waiting = topic.publish('bad'); // waits: the subscriber holds 'a'
      const later = topic.publish('b');
      expect(show(await sub.receive())).to.equal('1=a'); // lets both through, in order
      expect(await rejection(waiting)).to.equal(failure);
      expect((await later).offset).to.equal(2);
      expect(show(await sub.receive())).to.equal('2=b');
      topic.close();
    });

    it('resolves with contiguous offsets from 1 under one random epoch; a new topic has a new epoch', async () => {
      const a = new Topic<number>();
      const b = new Topic<number>();
      expect(await a.position()).to.deep.include({ offset: 0 });
      const p1 = await a.publish(1);
      const p2 = await a.publish(2);
      expect(p1.offset).to.equal(1);
      expect(p2).to.deep.equal({ epoch: p1.epoch, offset: 2 });
      expect(p1.epoch).to.match(/^[0-9a-f]{16}$/);
      expect((await b.publish(1)).epoch).to.not.equal(p1.epoch);
      expect(await a.position()).to.deep.equal(p2);
    });

    it('waits for every suspend subscriber, publishes atomically and in call order', async () => {
      const topic = new Topic<string>();
      const slow = topic.subscribe({ capacity: 1 });
      const fast = topic.subscribe({ capacity: 1 });
      const dropper = topic.subscribe({ capacity: 1, overflow: 'drop-oldest' });
      await topic.publish('a');
      const b = observe(topic.publish('b'));
      const c = observe(topic.publish('c'));
      await ticks();
      expect([b.state().status, c.state().status]).to.deep.equal(['pending', 'pending']);
      expect(takeNow(fast)).to.deep.equal(['1=a']);
      // 'b' is not given to anyone until every suspend subscriber has room.
      expect(takeNow(fast)).to.deep.equal([]);
      expect(takeNow(dropper)).to.deep.equal(['1=a']);
      expect(takeNow(dropper)).to.deep.equal([]);
      // Taking 'a' makes room everywhere: 'b' is published at once, 'c' waits for room.
      expect(takeNow(slow)).to.deep.equal(['1=a', '2=b']);
      await ticks();
      expect(b.state()).to.deep.include({ status: 'fulfilled' });
      expect(c.state().status).to.equal('pending');
      expect(takeNow(fast)).to.deep.equal(['2=b', '3=c']);
      await ticks();
      expect(c.state().status).to.equal('fulfilled');
      expect(takeNow(slow)).to.deep.equal(['3=c']);
      expect(takeNow(dropper)).to.deep.equal(['gap 2-2', '3=c']);
      topic.close();
    });

    it('a publisher let through while a value is being handed out does not overtake it', async () => {
      const topic = new Topic<string>();
      const a = topic.subscribe({ capacity: 1 });
      const b = topic.subscribe({ capacity: 1 });
      await topic.publish('w');
      expect(takeNow(a)).to.deep.equal(['1=w']);
      const waiting = a.receive();
      const x = topic.publish('x');
      const y = topic.publish('y');
      // b makes room: 'x' goes out, a's waiting receive takes it, which makes room in a:
      // 'y' must still wait until 'x' has reached b (it used to overtake it: b saw a gap).
      expect(takeNow(b)).to.deep.equal(['1=w', '2=x', '3=y']);
      expect(show(await waiting)).to.equal('2=x');
      expect((await Promise.all([x, y])).map((p) => p.offset)).to.deep.equal([2, 3]);
      expect(takeNow(a)).to.deep.equal(['3=y']);
      topic.close();
    });

    it('a publish aborted while waiting rejects with the reason and publishes nothing', async () => {
      const topic = new Topic<string>();
      const sub = topic.subscribe({ capacity: 1 });
      await topic.publish('a');
      const controller = new AbortController();
      const aborted = topic.publish('lost', { signal: controller.signal });
      const next = topic.publish('b');
      controller.abort(new Error('never mind'));
      expect(await rejection(aborted)).to.equal(controller.signal.reason);
      expect(abortListeners(controller.signal)).to.equal(0);
      expect(takeNow(sub)).to.deep.equal(['1=a', '2=b']);
      expect(await next).to.deep.equal({ epoch: (await topic.position()).epoch, offset: 2 });
      expect(await rejection(topic.publish('x', { signal: controller.signal }))).to.equal(
        controller.signal.reason,
      );
      expect(await topic.position()).to.deep.include({ offset: 2 });
      topic.close();
    });

    it('a subscriber that leaves lets waiting publishers through', async () => {
      const topic = new Topic<number>();
      const sub = topic.subscribe({ capacity: 1 });
      await topic.publish(1);
      const waiting = observe(topic.publish(2));
      await ticks();
      expect(waiting.state().status).to.equal('pending');
      sub.cancel();
      await ticks();
      expect(waiting.state()).to.deep.include({ status: 'fulfilled' });
    });

    it('a capacity-0 subscriber lets a publish through only while it waits in receive', async () => {
      const topic = new Topic<number>();
      const sub = topic.subscribe({ capacity: 0 });
      const first = observe(topic.publish(1));
      await ticks();
      expect(first.state().status).to.equal('pending');
      const got = await sub.receive();
      expect(show(got)).to.equal('1=1');
      await ticks();
      expect(first.state().status).to.equal('fulfilled');
      topic.close();
    });

    it('after close, waiting and later publishes reject with ClosedSendError, or the cause itself', async () => {
      const topic = new Topic<number>();
      topic.subscribe({ capacity: 0 });
      const waiting = topic.publish(1);
      expect(topic.close()).to.equal(true);
      expect(topic.close()).to.equal(false);
      expect(topic.isClosed).to.equal(true);
      const error = await rejection(waiting);
      expect(error).to.be.instanceOf(ClosedSendError);
      expect((error as Error).message).to.equal(
        'Topic was closed: no more values can be published',
      );
      expect(await rejection(topic.publish(2))).to.be.instanceOf(ClosedSendError);
      const withCause = new Topic<number>();
      const cause = new Error('gone');
      withCause.close(cause);
      expect(await rejection(withCause.publish(1))).to.equal(cause);
      const late = withCause.subscribe();
      expect(await rejection(late.receive())).to.equal(cause);
    });

    it('await using closes the topic', async () => {
      let kept: Topic<number> | undefined;
      {
        await using topic = new Topic<number>();
        kept = topic;
      }
      expect(kept.isClosed).to.equal(true);
    });
  });

  describe('#subscribe({ since })', () => {
    async function published(values: number, count = 100): Promise<Topic<number>> {
      const topic = new Topic<number>({ retention: { count } });
      for (let i = 1; i <= values; i++) await topic.publish(i * 10);
      return topic;
    }

    it('delivers every retained value after the position exactly once, then the new ones', async () => {
      const topic = await published(5);
      const { epoch } = await topic.position();
      const sub = topic.subscribe({ since: { epoch, offset: 2 } });
      expect(sub.position).to.deep.equal({ epoch, offset: 2 });
      expect(sub.isEmpty).to.equal(true);
      // Published while the history is read: after it, once.
      await topic.publish(60);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['3=30', '4=40', '5=50', '6=60']);
      await topic.publish(70);
      expect(takeNow(sub)).to.deep.equal(['7=70']);
      const fromStart = topic.subscribe({ since: { epoch, offset: 0 } });
      await ticks();
      expect(takeNow(fromStart)).to.have.length(7);
      const fromEnd = topic.subscribe({ since: { epoch, offset: 7 } });
      await ticks();
      expect(takeNow(fromEnd)).to.deep.equal([]);
      topic.close();
    });

    it('ends with a DiscontinuityError naming the gap when values after it are gone', async () => {
      const topic = await published(10, 3);
      const position = await topic.position();
      const since = { epoch: position.epoch, offset: 4 };
      const sub = topic.subscribe({ since });
      const error = await rejection(sub.receive());
      expect(error).to.be.instanceOf(DiscontinuityError);
      const gap = error as DiscontinuityError;
      expect(gap.code).to.equal('ERR_TOPIC_DISCONTINUITY');
      expect(gap.since).to.equal(since);
      expect(gap.position).to.deep.equal(position);
      expect(gap.oldest).to.equal(8);
      expect(gap.count).to.equal(3);
      expect(gap.message).to.equal(
        `Cannot resume after ${position.epoch}:4: offsets 5 to 7 are no longer retained (3 values)`,
      );
      expect(topic.subscriberCount).to.equal(0);
      topic.close();
    });

    it('ends with a DiscontinuityError for another epoch or a position ahead of the topic', async () => {
      const topic = await published(2);
      const position = await topic.position();
      const foreign = topic.subscribe({ since: { epoch: 'elsewhere', offset: 1 } });
      const error = (await rejection(foreign.receive())) as DiscontinuityError;
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error.count).to.equal(undefined);
      expect(error.message).to.equal(
        `Cannot resume after elsewhere:1: epoch elsewhere is gone, the topic is at ${position.epoch}:2`,
      );
      const ahead = topic.subscribe({ since: { epoch: position.epoch, offset: 9 } });
      const aheadError = (await rejection(ahead.receive())) as DiscontinuityError;
      expect(aheadError.count).to.equal(undefined);
      expect(aheadError.message).to.equal(
        `Cannot resume after ${position.epoch}:9: the topic is only at offset 2`,
      );
      topic.close();
    });

    it("with onDiscontinuity: 'oldest', reports the gap first, then continues from the oldest retained", async () => {
      const topic = await published(6, 2);
      const { epoch } = await topic.position();
      const sub = topic.subscribe({ since: { epoch, offset: 1 }, onDiscontinuity: 'oldest' });
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['gap 2-4', '5=50', '6=60']);
      const foreign = topic.subscribe({
        since: { epoch: 'old', offset: 3 },
        onDiscontinuity: 'oldest',
      });
      await ticks();
      const first = foreign.tryReceive();
      expect(first.ok && first.value).to.deep.equal({
        type: 'gap',
        from: { epoch, offset: 1 },
        to: { epoch, offset: 4 },
        count: 4,
        previous: { epoch: 'old', offset: 3 },
      });
      expect(takeNow(foreign)).to.deep.equal(['5=50', '6=60']);
      expect(foreign.position).to.deep.equal({ epoch, offset: 6 });
      topic.close();
    });

    it('keeps live values published during the catch-up under its policy, in order after the history', async () => {
      const topic = await published(3);
      const { epoch } = await topic.position();
      const sub = topic.subscribe({
        since: { epoch, offset: 1 },
        capacity: 2,
        overflow: 'drop-oldest',
      });
      for (let i = 4; i <= 6; i++) void topic.publish(i * 10);
      const waiting = sub.receive();
      await ticks();
      expect(show(await waiting)).to.equal('2=20');
      // 4 was dropped while the history was read: reported where it belongs.
      expect(takeNow(sub)).to.deep.equal(['3=30', 'gap 4-4', '5=50', '6=60']);
      topic.close();
    });

    it('ends with the backend error when the history cannot be read', async () => {
      const memory = new MemoryBackend();
      const failure = new Error('history unavailable');
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener) => memory.listen(topic, listener),
        history: () => Promise.reject(failure),
        position: (topic) => memory.position(topic),
      };
      const topic = new Topic<number>({ backend });
      const sub = topic.subscribe({ since: { epoch: 'x', offset: 0 } });
      const waiting = sub.receive();
      expect(await rejection(waiting)).to.equal(failure);
      topic.close();
    });

    it('ends with the backend error when reading the history throws at once, and holds no publisher back', async () => {
      const memory = new MemoryBackend();
      const failure = new Error('history unavailable');
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener) => memory.listen(topic, listener),
        history: () => {
          throw failure;
        },
        position: (topic) => memory.position(topic),
      };
      const topic = new Topic<number>({ backend });
      const sub = topic.subscribe({ since: { epoch: 'x', offset: 0 }, capacity: 0 });
      expect(await rejection(sub.receive())).to.equal(failure);
      expect(topic.subscriberCount).to.equal(0);
      // Not a 'suspend' subscriber any more: a publish does not wait for it.
      expect((await topic.publish(1)).offset).to.equal(1);
      topic.close();
    });

    it('through a slow backend, a subscription closed during the catch-up still delivers the history', async () => {
      const memory = new MemoryBackend();
      let release: () => void = () => undefined;
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener) => memory.listen(topic, listener),
        history: async (topic, since): Promise<History<unknown>> => {
          await new Promise<void>((resolve) => {
            release = resolve;
          });
          return memory.history(topic, since);
        },
        position: (topic) => memory.position(topic),
      };
      const topic = new Topic<string>({ backend, name: 'slow' });
      const { epoch } = await topic.publish('a');
      await topic.publish('b');
      const sub = topic.subscribe({ since: { epoch, offset: 0 } });
      const first = sub.receive();
      await topic.publish('c');
      sub.close();
      await topic.publish('d');
      release();
      expect(show(await first)).to.equal('1=a');
      expect((await drain(sub)).events.map(show)).to.deep.equal(['2=b', '3=c']);
      topic.close();
    });
  });

  describe('Subscription#iterate({ signal })', () => {
    it('ends the loop with signal.reason when aborted while waiting; what was not taken stays', async () => {
      const topic = new Topic<string>();
      const sub = topic.subscribe({ capacity: 4 });
      await topic.publish('a');
      const controller = new AbortController();
      const seen: string[] = [];
      const reason = new Error('stop');
      const loop = (async () => {
        for await (const event of sub.iterate({ signal: controller.signal })) {
          seen.push(show(event));
          if (seen.length === 1) setTimeout(() => controller.abort(reason), 0);
        }
      })();
      expect(await rejection(loop)).to.equal(reason);
      expect(seen).to.deep.equal(['1=a']);
      await topic.publish('b');
      expect(takeNow(sub)).to.deep.equal(['2=b']); // not cancelled, nothing lost
      expect(() => sub.iterate({ signal: 'x' as never })).to.throw(TypeError);
      const aborted = AbortSignal.abort(reason);
      await topic.publish('c');
      expect(await rejection(sub.iterate({ signal: aborted }).next())).to.equal(reason);
      expect(takeNow(sub)).to.deep.equal(['3=c']);
    });

    it('ends normally when the topic closes', async () => {
      const topic = new Topic<string>();
      const sub = topic.subscribe();
      await topic.publish('a');
      topic.close();
      const seen: string[] = [];
      for await (const event of sub.iterate({ signal: new AbortController().signal })) {
        seen.push(show(event));
      }
      expect(seen).to.deep.equal(['1=a']);
    });
  });

  describe('retention', () => {
    it('keeps only values younger than maxAge', async () => {
      const clock = FakeTimers.install({ toFake: ['Date'] });
      try {
        const topic = new Topic<number>({ retention: { count: 10, maxAge: 1000 } });
        const { epoch } = await topic.publish(1);
        clock.tick(600);
        await topic.publish(2);
        clock.tick(600);
        await topic.publish(3);
        const sub = topic.subscribe({ since: { epoch, offset: 0 }, onDiscontinuity: 'oldest' });
        await ticks();
        expect(takeNow(sub)).to.deep.equal(['gap 1-1', '2=2', '3=3']);
        clock.tick(1500);
        const late = topic.subscribe({ since: { epoch, offset: 1 } });
        const error = (await rejection(late.receive())) as DiscontinuityError;
        expect([error.oldest, error.count]).to.deep.equal([4, 2]);
        topic.close();
      } finally {
        clock.uninstall();
      }
    });

    it('with count 0 keeps nothing: since the current position still works', async () => {
      const topic = new Topic<number>({ retention: { count: 0 } });
      const at = await topic.publish(1);
      const sub = topic.subscribe({ since: at });
      await topic.publish(2);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['2=2']);
      const before = topic.subscribe({ since: { epoch: at.epoch, offset: 0 } });
      expect(((await rejection(before.receive())) as DiscontinuityError).count).to.equal(2);
      topic.close();
    });

    it('two topics on one backend and name share the history', async () => {
      const backend = new MemoryBackend();
      const a = new Topic<string>({ backend, name: 'room' });
      const b = new Topic<string>({ backend, name: 'room' });
      const sub = b.subscribe();
      const { epoch } = await a.publish('hi');
      expect(takeNow(sub)).to.deep.equal(['1=hi']);
      expect(await b.position()).to.deep.equal({ epoch, offset: 1 });
      a.close();
      b.close();
    });
  });

  describe("'suspend' with publishers it cannot hold back (a shared backend)", () => {
    /** Two topics on one backend and name: `a` publishes, `b` has the subscriber. */
    const pair = (retention = 100) => {
      const backend = new MemoryBackend();
      const a = new Topic<number>({ backend, name: 't', retention: { count: retention } });
      const b = new Topic<number>({ backend, name: 't', retention: { count: retention } });
      return { backend, a, b };
    };
    const publish = async (topic: Topic<number>, from: number, to: number) => {
      for (let i = from; i <= to; i++) await topic.publish(i);
    };

    it('never holds more than its capacity; catches up from the history in order, once, then takes live values again', async () => {
      const { a, b } = pair();
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      await publish(a, 1, 10);
      expect(takeNow(sub)).to.deep.equal(['1=1', '2=2']); // not 10
      await ticks();
      // Room for 2: it read 3 and 4 from the history.
      expect(takeNow(sub)).to.deep.equal(['3=3', '4=4']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['5=5', '6=6']);
      // A publication while its read is on its way: it reads once more.
      expect(sub.tryReceive().ok).to.equal(false);
      await publish(a, 11, 11);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['7=7', '8=8']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['9=9', '10=10']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['11=11']);
      // At the head again: a live value reaches it at once, no duplicate.
      await publish(a, 12, 12);
      expect(takeNow(sub)).to.deep.equal(['12=12']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal([]);
      a.close();
      b.close();
    });

    it("its own topic's publishers wait while it is behind, and go on once it caught up", async () => {
      const { a, b } = pair();
      const sub = b.subscribe({ capacity: 1, overflow: 'suspend' });
      await publish(a, 1, 3);
      const local = observe(b.publish(4));
      await ticks();
      expect(local.state().status).to.equal('pending');
      const got: string[] = [];
      for (let i = 0; i < 4; i++) got.push(show(await sub.receive()));
      expect(got).to.deep.equal(['1=1', '2=2', '3=3', '4=4']);
      await ticks();
      expect(local.state()).to.deep.include({ status: 'fulfilled' });
      a.close();
      b.close();
    });

    it('past retention: what it holds, then a DiscontinuityError naming its own missing offsets, then nothing', async () => {
      const { a, b } = pair(5);
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      const { epoch } = await a.publish(1);
      await publish(a, 2, 20);
      const { events, error } = await drain(sub);
      expect(events.map(show)).to.deep.equal(['1=1', '2=2']);
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error).to.deep.include({
        since: { epoch, offset: 2 },
        position: { epoch, offset: 20 },
        oldest: 16,
        count: 13,
      });
      await a.publish(21);
      expect(sub.tryReceive()).to.deep.equal({ ok: false, closed: true, cause: error });
      a.close();
      b.close();
    });

    it('closed while behind: receives everything published before the close, then ends normally', async () => {
      const { a, b } = pair();
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      await publish(a, 1, 7);
      b.close();
      await a.publish(8); // after the close: not for it
      const { events, error } = await drain(sub);
      expect(events.map(show)).to.deep.equal(['1=1', '2=2', '3=3', '4=4', '5=5', '6=6', '7=7']);
      expect(error).to.equal(undefined);
      a.close();
    });

    it('capacity 0: each waiting receiver reads one value from the history', async () => {
      const { a, b } = pair();
      const sub = b.subscribe({ capacity: 0, overflow: 'suspend' });
      await publish(a, 1, 3);
      expect(sub.tryReceive().ok).to.equal(false);
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(show(await sub.receive()));
      expect(got).to.deep.equal(['1=1', '2=2', '3=3']);
      await ticks();
      expect(sub.tryReceive().ok).to.equal(false);
      a.close();
      b.close();
    });

    it('subscribing since a position takes at most its capacity from the history and reads the rest later', async () => {
      const { a, b } = pair();
      const { epoch } = await a.publish(1);
      await publish(a, 2, 9);
      const sub = b.subscribe({ capacity: 3, overflow: 'suspend', since: { epoch, offset: 2 } });
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['3=3', '4=4', '5=5']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['6=6', '7=7', '8=8']);
      await ticks();
      expect(takeNow(sub)).to.deep.equal(['9=9']);
      await a.publish(10);
      expect(takeNow(sub)).to.deep.equal(['10=10']);
      a.close();
      b.close();
    });

    it('a failed catch-up read ends it with that error, after what it holds', async () => {
      const memory = new MemoryBackend();
      const failure = new Error('store unreachable');
      let failing = false;
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener) => memory.listen(topic, listener),
        history: (topic, since, limit) =>
          failing ? Promise.reject(failure) : memory.history(topic, since, limit),
        position: (topic) => memory.position(topic),
      };
      const a = new Topic<number>({ backend, name: 't' });
      const b = new Topic<number>({ backend, name: 't' });
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      await publish(a, 1, 5);
      failing = true;
      const { events, error } = await drain(sub);
      expect(events.map(show)).to.deep.equal(['1=1', '2=2']);
      expect(error).to.equal(failure);
      a.close();
      b.close();
    });

    it('a history with nothing after its position although the topic is ahead (a store that lost its tail): what it holds, then a DiscontinuityError', async () => {
      const memory = new MemoryBackend();
      let rewound: Position | undefined = undefined;
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener) => memory.listen(topic, listener),
        history: (topic, since, limit) =>
          rewound === undefined
            ? memory.history(topic, since, limit)
            : Promise.resolve({ publications: [], position: rewound, oldest: rewound.offset + 1 }),
        position: (topic) => memory.position(topic),
      };
      const a = new Topic<number>({ backend, name: 't' });
      const b = new Topic<number>({ backend, name: 't' });
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      rewound = await a.publish(1);
      await publish(a, 2, 5);
      const { events, error } = await drain(sub);
      expect(events.map(show)).to.deep.equal(['1=1', '2=2']);
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error).to.deep.include({
        since: { epoch: rewound.epoch, offset: 2 },
        position: rewound,
        oldest: 2,
        count: undefined,
      });
      a.close();
      b.close();
    });

    it('the backend losing publications while it is behind: what it holds, then a DiscontinuityError from its own position', async () => {
      const memory = new MemoryBackend();
      const lost: ((error: DiscontinuityError) => void)[] = [];
      const backend: TopicBackend = {
        publish: (topic, value, retention) => memory.publish(topic, value, retention),
        listen: (topic, listener, onDiscontinuity) => {
          if (onDiscontinuity !== undefined) lost.push(onDiscontinuity);
          return memory.listen(topic, listener);
        },
        history: (topic, since, limit) => memory.history(topic, since, limit),
        position: (topic) => memory.position(topic),
      };
      const a = new Topic<number>({ backend, name: 't' });
      const b = new Topic<number>({ backend, name: 't' });
      const ahead = b.subscribe({ capacity: 64, overflow: 'suspend' });
      const sub = b.subscribe({ capacity: 2, overflow: 'suspend' });
      const { epoch } = await a.publish(1);
      await publish(a, 2, 6);
      const gone = new DiscontinuityError(
        { epoch, offset: 6 },
        { epoch: 'ffffffffffffffff', offset: 0 },
        1,
      );
      for (const report of lost) report(gone);
      const behind = await drain(sub);
      expect(behind.events.map(show)).to.deep.equal(['1=1', '2=2']);
      expect(behind.error).to.be.instanceOf(DiscontinuityError);
      expect(behind.error).to.deep.include({
        since: { epoch, offset: 2 },
        position: { epoch: 'ffffffffffffffff', offset: 0 },
        oldest: 1,
      });
      // One that was not behind ends with the backend's error itself.
      const other = await drain(ahead);
      expect(other.events).to.have.length(6);
      expect(other.error).to.equal(gone);
      a.close();
      b.close();
    });
  });

  describe('arguments', () => {
    const topic = new Topic<number>();
    after(() => topic.close());

    const cases: [string, () => unknown, ErrorConstructor, string][] = [
      [
        'capacity -1',
        () => topic.subscribe({ capacity: -1 }),
        RangeError,
        'Expected capacity to be a non-negative integer or Infinity, got -1 (number)',
      ],
      [
        'capacity 1.5',
        () => topic.subscribe({ capacity: 1.5 }),
        RangeError,
        'Expected capacity to be a non-negative integer or Infinity, got 1.5 (number)',
      ],
      [
        'capacity "3"',
        () => topic.subscribe({ capacity: '3' as unknown as number }),
        TypeError,
        "Expected capacity to be a non-negative integer or Infinity, got '3' (string)",
      ],
      [
        'overflow "drop"',
        () => topic.subscribe({ overflow: 'drop' as TopicOverflow }),
        RangeError,
        "Expected overflow to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got 'drop' (string)",
      ],
      [
        'overflow "toString"',
        () => topic.subscribe({ overflow: 'toString' as TopicOverflow }),
        RangeError,
        "Expected overflow to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got 'toString' (string)",
      ],
      [
        'overflow 1',
        () => topic.subscribe({ overflow: 1 as unknown as TopicOverflow }),
        TypeError,
        "Expected overflow to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got 1 (number)",
      ],
      [
        'a drop policy with capacity 0',
        () => topic.subscribe({ capacity: 0, overflow: 'close' }),
        RangeError,
        "Expected a capacity of at least 1 with overflow 'close', got 0",
      ],
      [
        'since {}',
        () => topic.subscribe({ since: {} as Position }),
        TypeError,
        'Expected since to be a position { epoch: string, offset: non-negative integer }, got object',
      ],
      [
        'since offset -1',
        () => topic.subscribe({ since: { epoch: 'e', offset: -1 } }),
        TypeError,
        'Expected since to be a position { epoch: string, offset: non-negative integer }, got object',
      ],
      [
        'onDiscontinuity "skip"',
        () => topic.subscribe({ onDiscontinuity: 'skip' as 'oldest' }),
        RangeError,
        "Expected onDiscontinuity to be 'error' or 'oldest', got 'skip' (string)",
      ],
      [
        'signal "x"',
        () => topic.subscribe({ signal: 'x' as unknown as AbortSignal }),
        TypeError,
        "Expected signal to be an AbortSignal or undefined, got 'x' (string)",
      ],
      [
        'name 7',
        () => new Topic({ name: 7 as unknown as string }),
        TypeError,
        'Expected name to be a string, got 7 (number)',
      ],
      [
        'backend null',
        () => new Topic({ backend: null as unknown as TopicBackend }),
        TypeError,
        'Expected backend to be a TopicBackend or undefined, got null',
      ],
      [
        'retention 5',
        () => new Topic({ retention: 5 as unknown as { count: number } }),
        TypeError,
        'Expected retention to be an object or undefined, got 5 (number)',
      ],
      [
        'retention.count -1',
        () => new Topic({ retention: { count: -1 } }),
        RangeError,
        'Expected retention.count to be a non-negative integer, got -1 (number)',
      ],
      [
        'retention.maxAge 0',
        () => new Topic({ retention: { maxAge: 0 } }),
        RangeError,
        'Expected retention.maxAge to be a positive number of milliseconds or Infinity, got 0 (number)',
      ],
    ];
    for (const [what, call, type, message] of cases) {
      it(`refuses ${what}: ${type.name} "${message}"`, () => {
        expect(call).to.throw(type, message);
        expect(topic.subscriberCount).to.equal(0);
      });
    }

    // As subscribe, Mutex#lock and Semaphore#acquire: a rejection naming what is allowed,
    // whether or not the call would wait, and nothing left behind (close() still works).
    it('publish, receive and receiveCatching reject a signal that is not an AbortSignal with a TypeError', async () => {
      const own = new Topic<number>();
      const full = own.subscribe({ capacity: 0 });
      const bad = { signal: {} as AbortSignal };
      const message = 'Expected signal to be an AbortSignal or undefined, got object';
      const outcomes = [
        await rejection(own.publish(1, bad)), // would wait: the subscriber has no room
        await rejection(new Topic<number>().publish(1, bad)), // would not wait
        await rejection(full.receive(bad)),
        await rejection(full.receiveCatching(bad)),
      ];
      for (const error of outcomes) {
        expect(error).to.be.instanceOf(TypeError).with.property('message', message);
      }
      expect(own.close()).to.equal(true);
      expect(await full.receiveCatching()).to.deep.equal({ ok: false, closed: true });
    });
  });
});
