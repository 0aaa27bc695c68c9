// A 'suspend' subscriber on a shared backend: publications from another node cannot be
// made to wait, so a full subscriber stops taking them and catches up from the retained
// history once it has room (its buffer never holds more than its capacity); past
// retention it ends with the exact DiscontinuityError. Two backends ("nodes") on one
// private redis-server, in one process. Also StateTopic on Redis, which had no test.
import { expect } from 'chai';
import { createClient } from 'redis';
import { DiscontinuityError, StateTopic, Topic } from '../../lib/index.js';
import type { Subscription } from '../../lib/index.js';
import { redisBackend } from '../../lib/redis/index.js';
import type { RedisBackend } from '../../lib/redis/index.js';
import { startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { sleep, waitFor } from '../server/helpers.js';
import { show } from '../topics/helpers.js';

describe("Topic 'suspend' on the Redis backend", function () {
  this.timeout(60_000);
  let server: RedisServer;
  const clients: { destroy(): void }[] = [];
  const backends: RedisBackend[] = [];
  const topics: Topic<unknown>[] = [];
  let count = 0;

  const node = async (): Promise<RedisBackend> => {
    const client = createClient({ url: server.url });
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    const made = redisBackend({ client });
    backends.push(made);
    return made;
  };
  const topic = <T>(backend: RedisBackend, name: string, retention: number): Topic<T> => {
    const made = new Topic<T>({ backend, name, retention: { count: retention } });
    topics.push(made);
    return made;
  };
  /** Publishes from..to on `from`, `inFlight` publishes at a time; resolves when all landed. */
  const publishRange = async (
    on: Topic<number>,
    from: number,
    to: number,
    inFlight = 32,
  ): Promise<void> => {
    let next = from;
    const worker = async (): Promise<void> => {
      while (next <= to) await on.publish(next++);
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  };
  /**
   * Watches what `backend` delivers of `name` on this node (listening from now on):
   * `until(offset)` resolves once that offset reached this node's listeners.
   */
  const delivered = (backend: RedisBackend, name: string) => {
    let last = 0;
    const stop = backend.listen(name, (publication) => {
      last = publication.position.offset;
    });
    watchers.push(stop);
    return {
      until: (offset: number) => waitFor(() => last >= offset, 20_000, `offset ${offset}`),
    };
  };
  const watchers: (() => void)[] = [];

  before(async () => {
    server = await startRedis();
  });
  afterEach(() => {
    for (const made of topics.splice(0)) made.close();
    for (const stop of watchers.splice(0)) stop();
  });
  after(async () => {
    for (const made of backends.splice(0)) await made.close();
    for (const made of clients.splice(0)) made.destroy();
    await server.stop();
  });

  it('node A publishes 5,000 while a capacity-4 subscriber on node B reads slowly: it never holds more than 4, and gets all 5,000 once, in order', async () => {
    const [a, b] = [await node(), await node()];
    const name = `slow${++count}`;
    const publisher = topic<number>(a, name, 10_000);
    const subscriber = topic<number>(b, name, 10_000);
    const subscription = subscriber.subscribe({ capacity: 4, overflow: 'suspend' });
    const onB = delivered(b, name);
    await sleep(100); // B's start read and SUBSCRIBE

    const published = publishRange(publisher, 1, 5000);
    // It reads nothing until 1,000 reached node B (so it is full and behind for sure),
    // then slowly while the rest is published.
    await onB.until(1000);
    const offsets: number[] = [];
    const values: number[] = [];
    const batches: number[] = [];
    while (offsets.length < 5000) {
      // The sample: everything it holds now, taken at once.
      let batch = 0;
      for (let r = subscription.tryReceive(); r.ok; r = subscription.tryReceive()) {
        if (r.value.type !== 'publication') throw new Error(`unexpected ${show(r.value)}`);
        offsets.push(r.value.position.offset);
        values.push(r.value.value);
        batch++;
      }
      batches.push(batch);
      if (batch === 0) {
        const event = await subscription.receive();
        if (event.type !== 'publication') throw new Error(`unexpected ${show(event)}`);
        offsets.push(event.position.offset);
        values.push(event.value);
      } else {
        await sleep(1); // a slow reader
      }
    }
    await published;

    expect(Math.max(...batches)).to.equal(4);
    expect(batches.filter((batch) => batch > 4)).to.deep.equal([]);
    expect(values).to.deep.equal(Array.from({ length: 5000 }, (_, i) => i + 1));
    expect(offsets).to.deep.equal(values);
    // Nothing more, nothing twice: the subscriber joined the live feed again.
    await publisher.publish(5001);
    const last = await subscription.receive();
    expect(last.type === 'publication' && [last.position.offset, last.value]).to.deep.equal([
      5001, 5001,
    ]);
    await sleep(50);
    expect(subscription.tryReceive()).to.deep.equal({ ok: false, closed: false });
  });

  it('a stalled capacity-4 subscriber does not grow the heap while node A publishes 5,000 values of 2 KiB', async () => {
    const gc = global.gc;
    if (gc === undefined) throw new Error('run with --expose-gc');
    const [a, b] = [await node(), await node()];
    const name = `heap${++count}`;
    const publisher = topic<string>(a, name, 10_000);
    const subscriber = topic<string>(b, name, 10_000);
    const subscription = subscriber.subscribe({ capacity: 4, overflow: 'suspend' });
    const onB = delivered(b, name);
    await sleep(100);
    gc();
    const before = process.memoryUsage().heapUsed;
    const big = (i: number): string => `${i}:${'x'.repeat(2048)}`;
    let next = 1;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next <= 5000) await publisher.publish(big(next++));
      }),
    );
    await onB.until(5000);
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    // Held by the subscriber, 5,000 decoded values would be over 10 MiB.
    expect(growth).to.be.below(4 << 20);
    let received = 0;
    while (received < 5000) {
      const event = await subscription.receive();
      received++;
      expect(event.type === 'publication' && event.value).to.equal(big(received));
    }
    await sleep(20);
    expect(subscription.tryReceive()).to.deep.equal({ ok: false, closed: false });
  });

  it('past retention (100) a stalled capacity-4 subscriber gets what it holds, then a DiscontinuityError naming the exact range, then nothing else', async () => {
    const [a, b] = [await node(), await node()];
    const name = `stalled${++count}`;
    const publisher = topic<number>(a, name, 100);
    const subscriber = topic<number>(b, name, 100);
    const subscription: Subscription<number> = subscriber.subscribe({
      capacity: 4,
      overflow: 'suspend',
    });
    const onB = delivered(b, name);
    await sleep(100);
    await publishRange(publisher, 1, 300);
    await onB.until(300);
    const epoch = (await b.position(name)).epoch;

    const events: string[] = [];
    let error: unknown;
    try {
      // Bounded: 4 values and the error are expected.
      for (let i = 0; i < 5; i++) events.push(show(await subscription.receive()));
    } catch (caught) {
      error = caught;
    }
    expect(events).to.deep.equal(['1=1', '2=2', '3=3', '4=4']);
    expect(error).to.be.instanceOf(DiscontinuityError);
    const discontinuity = error as DiscontinuityError;
    expect(discontinuity.since).to.deep.equal({ epoch, offset: 4 });
    expect(discontinuity.position).to.deep.equal({ epoch, offset: 300 });
    expect(discontinuity.oldest).to.equal(201);
    expect(discontinuity.count).to.equal(196);
    expect(discontinuity.message).to.equal(
      `Cannot resume after ${epoch}:4: offsets 5 to 200 are no longer retained (196 values)`,
    );
    // Nothing else: later publications do not reach it, and it stays ended with that error.
    await publisher.publish(301);
    await onB.until(301);
    expect(subscription.tryReceive()).to.deep.equal({
      ok: false,
      closed: true,
      cause: discontinuity,
    });
    expect(subscriber.subscriberCount).to.equal(0);
  });

  it('a local publisher on the subscriber’s node still waits for it while it is full', async () => {
    const [a, b] = [await node(), await node()];
    const name = `local${++count}`;
    const remote = topic<number>(a, name, 1000);
    const local = topic<number>(b, name, 1000);
    const subscription = local.subscribe({ capacity: 2, overflow: 'suspend' });
    const onB = delivered(b, name);
    await sleep(100);
    await publishRange(remote, 1, 10, 1);
    await onB.until(10);
    // Full (and behind): a local publish waits for it.
    let settled = false;
    const waiting = local.publish(11).then((position) => {
      settled = true;
      return position.offset;
    });
    await sleep(100);
    expect(settled).to.equal(false);
    const got: string[] = [];
    while (got.length < 11) got.push(show(await subscription.receive()));
    expect(await waiting).to.equal(11);
    expect(got).to.deep.equal(Array.from({ length: 11 }, (_, i) => `${i + 1}=${i + 1}`));
  });

  describe('StateTopic on Redis', () => {
    it('a state published on node A reaches node B, whose new subscribers start with the latest value', async () => {
      const [a, b] = [await node(), await node()];
      const name = `state${++count}`;
      const stateA = new StateTopic<string>('initial', { backend: a, name });
      topics.push(stateA);
      await waitFor(() => stateA.latest !== undefined, 5000, 'initial value published');
      const stateB = new StateTopic<string>('initial-b', { backend: b, name });
      topics.push(stateB);
      await waitFor(() => stateB.latest?.offset === 2, 5000, 'B’s initial value delivered');
      const follower = stateB.subscribe();
      expect(show(await follower.receive())).to.equal('2=initial-b');
      await stateA.publish('x');
      await waitFor(() => stateB.value === 'x', 5000, 'x on B');
      expect(stateB.latest).to.deep.equal({ epoch: stateA.latest?.epoch, offset: 3 });
      expect(show(await follower.receive())).to.equal('3=x');
      // A new subscriber on B starts with the latest value.
      const late = stateB.subscribe();
      expect(show(await late.receive())).to.equal('3=x');
      expect(stateA.value).to.equal('x');
    });
  });
});
