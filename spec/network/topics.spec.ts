// Topics across the wire (`serveTopics`, `remoteTopic`): a peer subscribes over network
// channels, the overflow policy is applied on the serving end for that peer, positions and
// gaps travel with the values, and a follower resubscribes `since` its position on the
// next connection. Node↔Node over in-memory sockets, and over real `ws` with `reconnecting`.
import { expect } from 'chai';
import {
  DiscontinuityError,
  MemoryBackend,
  SubscriberOverflowError,
  Topic,
} from '../../lib/index.js';
import type { TopicEvent } from '../../lib/index.js';
import { route } from '../../lib/server/index.js';
import { MemorySocket } from '../../lib/server/memory-socket.js';
import { reconnecting, text, wrap } from '../../lib/websocket/index.js';
import {
  ConnectionLostError,
  channels,
  remoteTopic,
  serveTopics,
} from '../../lib/network/index.js';
import type { ChannelSession, RemoteTopic } from '../../lib/network/index.js';
import { TOPICS_CHANNEL } from '../../lib/network/topics.js';
import { rejection, useServers, waitFor } from '../server/helpers.js';
import { show } from '../topics/helpers.js';

interface Connection {
  readonly server: ChannelSession;
  readonly client: ChannelSession;
  readonly sockets: readonly [MemorySocket, MemorySocket];
}

/** One in-memory connection with network channels on both ends. */
function connection(): Connection {
  const [left, right] = MemorySocket.pair();
  return {
    client: channels(wrap<string, string>(left, { codec: text() })),
    server: channels(wrap<string, string>(right, { codec: text() })),
    sockets: [left, right],
  };
}

/** Takes `n` events from a remote topic, shown. */
async function take<T>(topic: RemoteTopic<T>, n: number): Promise<string[]> {
  const shown: string[] = [];
  for (let i = 0; i < n; i++) shown.push(show(await topic.events.receive()));
  return shown;
}

/** Every offset 1..n accounted for exactly once, in order, by publications and gaps. */
function accounted(events: readonly TopicEvent<unknown>[]): number[] {
  const offsets: number[] = [];
  for (const event of events) {
    if (event.type === 'publication') offsets.push(event.position.offset);
    else for (let o = event.from.offset; o <= event.to.offset; o++) offsets.push(o);
  }
  return offsets;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Topics across the wire', () => {
  const open: Connection[] = [];
  const use = (): Connection => {
    const c = connection();
    open.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of open.splice(0)) {
      await c.client.close();
      await c.server.closed;
    }
  });

  describe('serveTopics() and remoteTopic()', () => {
    it('delivers every publication with its position, in order', async () => {
      const topic = new Topic<string>();
      const c = use();
      const served = serveTopics(c.server, new Map([['news', topic]]));
      const news = remoteTopic<string>('news');
      const following = news.follow(c.client);
      await waitFor(() => topic.subscriberCount === 1);
      const positions = [];
      for (const v of ['a', 'b', 'c']) positions.push(await topic.publish(v));
      expect(await take(news, 3)).to.deep.equal(['1=a', '2=b', '3=c']);
      expect(news.position).to.deep.equal(positions[2]);
      topic.close();
      await following;
      expect((await news.events.receiveCatching()).ok).to.equal(false);
      await c.client.close();
      await served;
    });

    it("applies 'drop-oldest' on the server for a slow peer, which sees its gaps, while a fast 'suspend' peer loses nothing", async () => {
      const topic = new Topic<number>();
      const slowC = use();
      const fastC = use();
      const source = (name: string): Topic<unknown> | undefined =>
        name === 'n' ? topic : undefined;
      void serveTopics(slowC.server, source, { capacity: 2 });
      void serveTopics(fastC.server, source, { allowSuspend: true });
      const slow = remoteTopic<number>('n', { capacity: 2, overflow: 'drop-oldest' });
      const fast = remoteTopic<number>('n', { capacity: 2, overflow: 'suspend' });
      const followSlow = slow.follow(slowC.client);
      const followFast = fast.follow(fastC.client);
      await waitFor(() => topic.subscriberCount === 2);
      const fastEvents: TopicEvent<number>[] = [];
      const reading = (async () => {
        for await (const event of fast) fastEvents.push(event);
      })();
      for (let i = 1; i <= 50; i++) await topic.publish(i);
      topic.close();
      await followFast;
      await reading;
      expect(fastEvents.map(show)).to.deep.equal(range(1, 50).map((i) => `${i}=${i}`));
      // The slow peer reads only now: its follower waits on its full buffer until then.
      const slowEvents: TopicEvent<number>[] = [];
      for await (const event of slow) slowEvents.push(event);
      await followSlow;
      expect(accounted(slowEvents)).to.deep.equal(range(1, 50));
      expect(slowEvents.filter((e) => e.type === 'gap')).to.not.have.length(0);
      expect(show(slowEvents.at(-1) as TopicEvent<number>)).to.equal('50=50');
    });

    it("'suspend' with allowSuspend, publications from another Topic on the backend: a stalled peer then gets every one once, in order", async () => {
      const backend = new MemoryBackend();
      const other = new Topic<number>({ backend, name: 'n', retention: { count: 500 } });
      const served = new Topic<number>({ backend, name: 'n', retention: { count: 500 } });
      const c = use();
      void serveTopics(c.server, new Map([['n', served]]), { allowSuspend: true });
      const n = remoteTopic<number>('n', { capacity: 2, overflow: 'suspend', serverCapacity: 4 });
      const following = n.follow(c.client);
      await waitFor(() => served.subscriberCount === 1);
      // The other Topic does not wait for the peer: its 200 publishes all land now.
      for (let i = 1; i <= 200; i++) await other.publish(i);
      const events: TopicEvent<number>[] = [];
      while (events.length < 200) events.push(await n.events.receive());
      expect(events.map(show)).to.deep.equal(range(1, 200).map((i) => `${i}=${i}`));
      served.close();
      await following;
      expect(await n.events.receiveCatching()).to.deep.equal({ ok: false, closed: true });
      other.close();
    });

    it("'suspend' with allowSuspend past retention: the peer gets a contiguous prefix, then the DiscontinuityError from there", async () => {
      const backend = new MemoryBackend();
      const other = new Topic<number>({ backend, name: 'n', retention: { count: 10 } });
      const served = new Topic<number>({ backend, name: 'n', retention: { count: 10 } });
      const c = use();
      void serveTopics(c.server, new Map([['n', served]]), { allowSuspend: true });
      const n = remoteTopic<number>('n', { capacity: 2, overflow: 'suspend', serverCapacity: 4 });
      const following = n.follow(c.client);
      await waitFor(() => served.subscriberCount === 1);
      let epoch = '';
      for (let i = 1; i <= 50; i++) epoch = (await other.publish(i)).epoch;
      const events: TopicEvent<number>[] = [];
      let error: unknown;
      try {
        for await (const event of n) events.push(event);
      } catch (caught) {
        error = caught;
      }
      await following.catch(() => undefined);
      const k = events.length;
      expect(k).to.be.within(1, 12);
      expect(events.map(show)).to.deep.equal(range(1, k).map((i) => `${i}=${i}`));
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error).to.deep.include({
        since: { epoch, offset: k },
        position: { epoch, offset: 50 },
        oldest: 41,
        count: 40 - k,
      });
      served.close();
      other.close();
    });

    it('resubscribes since its position on the next connection and misses nothing retained', async () => {
      const topic = new Topic<number>({ retention: { count: 100 } });
      const source = new Map([['n', topic]]);
      const first = use();
      void serveTopics(first.server, source);
      const n = remoteTopic<number>('n', { capacity: 4 });
      const following = n.follow(first.client);
      await waitFor(() => topic.subscriberCount === 1);
      for (let i = 1; i <= 3; i++) await topic.publish(i);
      expect(await take(n, 3)).to.deep.equal(['1=1', '2=2', '3=3']);
      first.sockets[1].terminate();
      await following; // the connection was lost: resolves
      await waitFor(() => topic.subscriberCount === 0);
      for (let i = 4; i <= 8; i++) await topic.publish(i); // while disconnected
      const second = use();
      void serveTopics(second.server, source);
      const again = n.follow(second.client);
      await waitFor(() => topic.subscriberCount === 1);
      await topic.publish(9);
      expect(await take(n, 6)).to.deep.equal(['4=4', '5=5', '6=6', '7=7', '8=8', '9=9']);
      topic.close();
      await again;
    });

    it('ends with a DiscontinuityError, re-created with its positions, when since is no longer retained', async () => {
      const topic = new Topic<number>({ retention: { count: 2 } });
      for (let i = 1; i <= 5; i++) await topic.publish(i);
      const { epoch } = await topic.position();
      const c = use();
      void serveTopics(c.server, new Map([['n', topic]]));
      const n = remoteTopic<number>('n', { since: { epoch, offset: 1 } });
      const error = await rejection(n.follow(c.client));
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error).to.include({ count: 2, oldest: 4 });
      expect((error as DiscontinuityError).since).to.deep.equal({ epoch, offset: 1 });
      expect((error as DiscontinuityError).position).to.deep.equal({ epoch, offset: 5 });
      expect(await rejection(n.events.receive())).to.equal(error);
    });

    it("continues from the oldest retained value with a gap first under onDiscontinuity 'oldest'", async () => {
      const topic = new Topic<number>({ retention: { count: 2 } });
      for (let i = 1; i <= 5; i++) await topic.publish(i);
      const { epoch } = await topic.position();
      const c = use();
      void serveTopics(c.server, new Map([['n', topic]]));
      const n = remoteTopic<number>('n', {
        since: { epoch, offset: 1 },
        onDiscontinuity: 'oldest',
      });
      void n.follow(c.client);
      expect(await take(n, 3)).to.deep.equal(['gap 2-3', '4=4', '5=5']);
      topic.close();
    });

    it("ends a peer that falls behind under 'close' with a SubscriberOverflowError carrying its position", async () => {
      const topic = new Topic<number>();
      const c = use();
      void serveTopics(c.server, new Map([['n', topic]]));
      const n = remoteTopic<number>('n', { capacity: 1, overflow: 'close', serverCapacity: 1 });
      const following = n.follow(c.client);
      await waitFor(() => topic.subscriberCount === 1);
      for (let i = 1; i <= 10; i++) await topic.publish(i);
      const events: string[] = [];
      let error: unknown;
      try {
        for await (const event of n) events.push(show(event));
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(SubscriberOverflowError);
      expect(error).to.include({ capacity: 1 });
      const last = (error as SubscriberOverflowError).position.offset;
      expect(events).to.deep.equal(range(1, last).map((i) => `${i}=${i}`));
      expect(await rejection(following)).to.equal(error);
    });

    it('refuses a topic it does not serve, and suspend unless allowed', async () => {
      const topic = new Topic<number>();
      const c = use();
      void serveTopics(c.server, new Map([['n', topic]]));
      const missing = await rejection(remoteTopic('nope').follow(c.client));
      expect(missing).to.be.instanceOf(Error);
      expect((missing as Error).message).to.equal("No topic named 'nope' is served here");
      const suspend = await rejection(remoteTopic('n', { overflow: 'suspend' }).follow(c.client));
      expect((suspend as Error).message).to.equal(
        "Expected overflow 'drop-oldest', 'drop-latest' or 'close' ('suspend' is not allowed here), got 'suspend'",
      );
      expect(topic.subscriberCount).to.equal(0);
    });

    it('cancels the subscription on the serving end when the follower is aborted', async () => {
      const topic = new Topic<number>();
      const c = use();
      void serveTopics(c.server, new Map([['n', topic]]));
      const controller = new AbortController();
      const n = remoteTopic<number>('n');
      const following = n.follow(c.client, { signal: controller.signal });
      await waitFor(() => topic.subscriberCount === 1);
      const reason = new Error('enough');
      controller.abort(reason);
      expect(await rejection(following)).to.equal(reason);
      await waitFor(() => topic.subscriberCount === 0);
      expect(n.events.isClosedForReceive).to.equal(false);
    });

    it('cancels every subscription of a peer whose connection is lost', async () => {
      const topic = new Topic<number>();
      const c = use();
      const served = serveTopics(c.server, new Map([['n', topic]]));
      void remoteTopic<number>('n').follow(c.client);
      await waitFor(() => topic.subscriberCount === 1);
      c.sockets[0].terminate();
      await served;
      expect(topic.subscriberCount).to.equal(0);
    });

    it('closes the connection with 4400 on a request that is not one', async () => {
      const c = use();
      void serveTopics(c.server, new Map());
      const requests = c.client.channel<never, unknown>(TOPICS_CHANNEL);
      await requests.outgoing.send({ topic: 42 });
      const reason = await c.client.closed;
      expect(reason).to.include({ code: 4400 });
      expect(reason.reason).to.equal(
        'Expected topic to be a name of 1 to 256 characters, got 42 (number)',
      );
    });

    it('closes the connection with 4400 when one peer asks for more than maxSubscriptions', async () => {
      const topic = new Topic<number>();
      const c = use();
      void serveTopics(c.server, () => topic, { maxSubscriptions: 2 });
      void remoteTopic('a').follow(c.client);
      void remoteTopic('b').follow(c.client);
      void remoteTopic('c')
        .follow(c.client)
        .catch(() => undefined);
      const reason = await c.client.closed;
      expect(reason).to.include({
        code: 4400,
        reason: 'Expected at most 2 topic subscriptions per connection, got one more',
      });
    });

    it('rejects invalid arguments with "Expected …, got …"', () => {
      const c = use();
      expect(() => serveTopics(c.server, {} as never)).to.throw(
        TypeError,
        'Expected topics to be a Map of names to topics or a function, got',
      );
      expect(() => serveTopics(c.server, new Map(), { maxCapacity: -1 })).to.throw(
        RangeError,
        'Expected maxCapacity to be a non-negative integer or Infinity, got -1',
      );
      expect(() => remoteTopic('')).to.throw(TypeError, 'Expected name to be a topic name');
      expect(() => remoteTopic('n', { capacity: 0 })).to.throw(
        RangeError,
        'Expected capacity to be a positive integer or Infinity, got 0',
      );
      expect(() => remoteTopic('n', { overflow: 'fast' as never })).to.throw(
        RangeError,
        "Expected overflow to be 'suspend', 'drop-oldest', 'drop-latest' or 'close', got 'fast'",
      );
    });
  });

  describe('with reconnecting() and a real server', () => {
    const servers = useServers();

    it('follows a topic across a dropped connection without missing a retained value', async function () {
      this.timeout(10_000);
      const topic = new Topic<number>({ retention: { count: 1000 } });
      const sessions: ChannelSession[] = [];
      const server = await servers.start(
        { pingInterval: Infinity },
        {
          '/topics': route<string, string>({
            codec: text(),
            handler: async (session) => {
              const network = channels(session);
              sessions.push(network);
              await serveTopics(network, new Map([['n', topic]]));
            },
          }),
        },
      );
      const n = remoteTopic<number>('n', { capacity: 8 });
      const client = reconnecting<string>(
        `${server.url}/topics`,
        { codec: text(), minDelay: 5, maxDelay: 10, minUptime: 0 },
        async (session) => {
          // The connection's signal aborts when it closes or the client stops.
          await n.follow(channels(session), { signal: session.signal }).catch((error: unknown) => {
            if (!(error instanceof ConnectionLostError) && !session.signal.aborted) throw error;
          });
        },
      );
      const received: TopicEvent<number>[] = [];
      const reading = (async () => {
        for await (const event of n) received.push(event);
      })();
      await waitFor(() => topic.subscriberCount === 1);
      for (let i = 1; i <= 20; i++) await topic.publish(i);
      await waitFor(() => received.length >= 5);
      await sessions[0]?.close(4000, 'dropped by the test');
      for (let i = 21; i <= 40; i++) await topic.publish(i);
      await waitFor(() => received.length === 40 && topic.subscriberCount === 1);
      topic.close();
      await reading;
      await client.stop();
      expect(received.map(show)).to.deep.equal(range(1, 40).map((i) => `${i}=${i}`));
      expect(sessions).to.have.length(2);
    });
  });
});
