// The Redis backend against a real redis-server of its own: the shared TopicBackend
// contract over two backends (two nodes) on one server, then its own cases.
import { expect } from 'chai';
import { createClient } from 'redis';
import { ClosedSendError, DiscontinuityError, Topic } from '../../lib/index.js';
import type { Position, Publication, TopicEvent } from '../../lib/index.js';
import { redisBackend } from '../../lib/redis/index.js';
import { PUBLISH_SCRIPT } from '../../lib/redis/scripts.js';
import { waitFor } from '../server/helpers.js';
import type { RedisBackend } from '../../lib/redis/index.js';
import { redisProxy, startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { backendContract } from '../topics/backend-contract.js';

describe('RedisBackend', function () {
  this.timeout(20_000);
  let server: RedisServer;
  const clients: { destroy(): void }[] = [];
  const backends: RedisBackend[] = [];
  let count = 0;

  const client = async (url?: string) => {
    const made = createClient({ url: url ?? server.url });
    made.on('error', () => {});
    clients.push(made);
    await made.connect();
    return made;
  };
  const backend = async (options?: {
    checkInterval?: number;
    maxPendingBytes?: number;
    batch?: number;
    onError?: (error: unknown) => void;
  }): Promise<RedisBackend> => {
    const made = redisBackend({ client: await client(), ...options });
    backends.push(made);
    return made;
  };

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    for (const made of backends.splice(0)) await made.close();
    for (const made of clients.splice(0)) made.destroy();
    await server.stop();
  });

  describe('two backends on one redis-server', () => {
    let nodes: [RedisBackend, RedisBackend];
    before(async () => {
      nodes = [await backend(), await backend()];
    });
    backendContract(() => ({
      nodes,
      name: () => `contract${++count}`,
      settle: () => new Promise((resolve) => setTimeout(resolve, 100)),
    }));
  });

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const range = (from: number, to: number): number[] =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const values = (events: readonly TopicEvent<unknown>[]): unknown[] =>
    events.map((event) => (event.type === 'publication' ? event.value : `gap ${event.count}`));

  let scriptClient: Awaited<ReturnType<typeof client>> | undefined;
  /**
   * Runs PUBLISH_SCRIPT as the backend does, with producer 'test', but publishing on the
   * channel 'nowhere': the publication reaches the stream, not pub/sub (a lost message).
   * `sequence` '' publishes without dedupe. Resolves with [epoch, offset, duplicate].
   */
  const runPublishScript = async (
    topic: string,
    value: unknown,
    { count = 100, sequence = '' }: { count?: number; sequence?: string } = {},
  ): Promise<[string, number, number]> => {
    scriptClient ??= await client();
    return scriptClient.sendCommand<[string, number, number]>([
      'EVAL',
      PUBLISH_SCRIPT,
      '3',
      `sluice:{${topic}}:meta`,
      `sluice:{${topic}}:stream`,
      `sluice:{${topic}}:p:test`,
      'ffffffffffffffff',
      JSON.stringify(value),
      String(count),
      '-1',
      'nowhere',
      sequence,
      '1024',
      '1000',
    ]);
  };
  /** A publication that reaches the stream but not pub/sub: a message pub/sub lost. */
  const lossy = async (topic: string, value: unknown, count = 100): Promise<number> =>
    (await runPublishScript(topic, value, { count }))[1];

  /** Listens on `node`: the offsets and values delivered, and the discontinuities. */
  const record = (node: RedisBackend, topic: string) => {
    const got: Publication<unknown>[] = [];
    const errors: DiscontinuityError[] = [];
    const stop = node.listen(
      topic,
      (publication) => got.push(publication),
      (error) => errors.push(error),
    );
    return { got, errors, stop, offsets: () => got.map((p) => p.position.offset) };
  };

  describe('faults, in one process', () => {
    it('CLIENT KILL TYPE pubsub after message 100 of 200: the subscriber refills after reconnecting, 0 lost and 0 duplicated', async () => {
      const a = await backend({ checkInterval: Infinity });
      const b = await backend({ checkInterval: Infinity });
      const admin = await client();
      const topic = `kill${++count}`;
      const seen = record(b, topic);
      await sleep(100);
      for (let i = 1; i <= 100; i++) await a.publish(topic, i, { count: 1000 });
      await waitFor(() => seen.got.length === 100, 5000, '100 delivered');
      // No new connection until 101..200 are published: only the refill after the
      // reconnection can bring them (nothing is published after it, the timer is off).
      const lines = async (...args: string[]): Promise<number> =>
        (await admin.sendCommand<string>(['CLIENT', 'LIST', ...args])).trim().split('\n').length;
      const others = (await lines()) - (await lines('TYPE', 'pubsub'));
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(others)]);
      try {
        expect(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])).to.equal(1);
        for (let i = 101; i <= 200; i++) await a.publish(topic, i, { count: 1000 });
        await sleep(100);
        expect(seen.got.length).to.equal(100);
      } finally {
        await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
      }
      await waitFor(() => seen.got.length >= 200, 5000, '200 delivered');
      await sleep(50);
      seen.stop();
      expect(seen.offsets()).to.deep.equal(range(1, 200));
      expect(seen.got.map((p) => p.value)).to.deep.equal(range(1, 200));
      expect(seen.errors).to.deep.equal([]);
    });

    it('a message pub/sub lost at the tail of a quiet topic arrives with the next position check', async () => {
      const b = await backend({ checkInterval: 100 });
      const quiet = await backend({ checkInterval: Infinity });
      const topic = `tail${++count}`;
      const seen = record(b, topic);
      const unchecked = record(quiet, topic);
      await sleep(100);
      expect(await lossy(topic, 'lost')).to.equal(1);
      await waitFor(() => seen.got.length === 1, 2000, 'the position check');
      await sleep(300);
      seen.stop();
      unchecked.stop();
      expect(seen.got.map((p) => [p.position.offset, p.value])).to.deep.equal([[1, 'lost']]);
      // Without the timer nothing brings it: the check is what delivers it.
      expect(unchecked.got).to.deep.equal([]);
    });

    it('an offset gap is refilled from the stream before the next publication is delivered', async () => {
      const a = await backend({ checkInterval: Infinity });
      const b = await backend({ checkInterval: Infinity, maxPendingBytes: 1 });
      const topic = `gap${++count}`;
      const seen = record(b, topic);
      await sleep(100);
      await a.publish(topic, 'one', { count: 100 });
      await lossy(topic, 'two');
      await lossy(topic, 'three');
      await a.publish(topic, 'four', { count: 100 });
      await a.publish(topic, 'five', { count: 100 });
      await waitFor(() => seen.got.length >= 5, 2000, 'five delivered');
      seen.stop();
      expect(seen.got.map((p) => [p.position.offset, p.value])).to.deep.equal([
        [1, 'one'],
        [2, 'two'],
        [3, 'three'],
        [4, 'four'],
        [5, 'five'],
      ]);
    });

    it('refills and reads history in batches of `batch` entries, contiguous across them', async () => {
      const a = await backend({ checkInterval: Infinity });
      const b = await backend({ checkInterval: Infinity, batch: 2 });
      const topic = `batch${++count}`;
      const seen = record(b, topic);
      await sleep(100);
      for (let i = 1; i <= 7; i++) await lossy(topic, i);
      const { epoch } = await a.publish(topic, 8, { count: 100 });
      await waitFor(() => seen.got.length >= 8, 2000, 'eight delivered');
      seen.stop();
      expect(seen.got.map((p) => [p.position.offset, p.value])).to.deep.equal(
        range(1, 8).map((i) => [i, i]),
      );
      const history = await b.history(topic, { epoch, offset: 2 });
      expect(history.publications.map((p) => p.value)).to.deep.equal(range(3, 8));
      expect(history.position).to.deep.equal({ epoch, offset: 8 });
      // A limit across batches: 2 + 2 + 1.
      const limited = await b.history(topic, { epoch, offset: 1 }, 5);
      expect(limited.publications.map((p) => p.value)).to.deep.equal(range(2, 6));
      expect([limited.position, limited.oldest]).to.deep.equal([{ epoch, offset: 8 }, 1]);
    });

    it('a lost range past retention is a DiscontinuityError naming it, and delivery goes on after it', async () => {
      const a = await backend({ checkInterval: Infinity });
      const b = await backend({ checkInterval: Infinity });
      const topic = `retention${++count}`;
      const seen = record(b, topic);
      const subscriber = new Topic<number>({ backend: b, name: topic });
      const sub = subscriber.subscribe({ capacity: Infinity });
      await sleep(100);
      let position: Position | undefined;
      for (let i = 1; i <= 5; i++) position = await a.publish(topic, i, { count: 10 });
      await waitFor(() => seen.got.length === 5, 2000, 'five delivered');
      // The slow node misses 6..50 and retention shrank to 10 meanwhile.
      for (let i = 6; i <= 50; i++) await lossy(topic, i, 10);
      await a.publish(topic, 51, { count: 10 });
      await waitFor(() => seen.errors.length === 1, 2000, 'the discontinuity');
      await a.publish(topic, 52, { count: 10 });
      await waitFor(() => seen.got.length === 6, 2000, 'delivery after it');
      seen.stop();
      const { epoch } = position!;
      const [error] = seen.errors;
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect(error!.message).to.equal(
        `Cannot resume after ${epoch}:5: offsets 6 to 41 are no longer retained (36 values)`,
      );
      expect(error!.since).to.deep.equal({ epoch, offset: 5 });
      expect(error!.position).to.deep.equal({ epoch, offset: 51 });
      expect(error!.oldest).to.equal(42);
      expect(seen.offsets()).to.deep.equal([1, 2, 3, 4, 5, 52]);
      // The Topic's subscriber got 1..5, then ended with that same error.
      const events: TopicEvent<unknown>[] = [];
      let ended: unknown;
      try {
        for await (const event of sub) events.push(event);
      } catch (caught) {
        ended = caught;
      }
      expect(values(events)).to.deep.equal([1, 2, 3, 4, 5]);
      expect(ended).to.equal(error);
      subscriber.close();
    });

    it('a publish retried after its connection was killed lands once: CLIENT KILL TYPE normal amid 300 concurrent publishes', async () => {
      const reports: unknown[] = [];
      const a = await backend({ checkInterval: Infinity, onError: (error) => reports.push(error) });
      const b = await backend({ checkInterval: Infinity });
      const topic = `retry${++count}`;
      const seen = record(b, topic);
      await sleep(100);
      const publishing = range(1, 300).map((i) => a.publish(topic, i, { count: 1000 }));
      await sleep(1);
      await server.command('CLIENT', 'KILL', 'TYPE', 'normal');
      const positions = await Promise.all(publishing);
      // The kill met publishes in flight: they were sent again.
      expect(reports.length).to.be.above(0);
      await waitFor(() => seen.got.length >= 300, 5000, '300 delivered');
      await sleep(50);
      seen.stop();
      expect(positions.map((p) => p.offset).sort((x, y) => x - y)).to.deep.equal(range(1, 300));
      expect(seen.offsets()).to.deep.equal(range(1, 300));
      expect([...seen.got.map((p) => p.value as number)].sort((x, y) => x - y)).to.deep.equal(
        range(1, 300),
      );
      const history = await b.history(topic, { epoch: positions[0]!.epoch, offset: 0 });
      expect(history.position.offset).to.equal(300);
    });

    it('a publish whose reply was lost after Redis ran it is sent again and lands once (producer id and sequence)', async () => {
      const proxy = await redisProxy(server.port);
      try {
        const reports: unknown[] = [];
        const a = redisBackend({
          client: await client(proxy.url),
          checkInterval: Infinity,
          onError: (error) => reports.push(error),
        });
        backends.push(a);
        const topic = `lost-reply${++count}`;
        await a.publish(topic, 0, { count: 1000 });
        const publishing = range(1, 50).map((i) => a.publish(topic, i, { count: 1000 }));
        await proxy.loseReplies(100);
        const positions = await Promise.all(publishing);
        expect(reports.length).to.be.above(0);
        expect(positions.map((p) => p.offset)).to.deep.equal(range(2, 51));
        const history = await a.history(topic, { epoch: positions[0]!.epoch, offset: 0 });
        expect(history.publications.map((p) => p.value)).to.deep.equal(range(0, 50));
      } finally {
        await proxy.close();
      }
    });

    it('the same producer sequence sent twice lands once and answers the first position', async () => {
      const topic = `dedupe${++count}`;
      const send = (value: string) => runPublishScript(topic, value, { sequence: '7' });
      expect(await send('x')).to.deep.equal(['ffffffffffffffff', 1, 0]);
      expect(await send('x')).to.deep.equal(['ffffffffffffffff', 1, 1]);
      const admin = await client();
      expect(await admin.sendCommand(['XLEN', `sluice:{${topic}}:stream`])).to.equal(1);
    });

    it('redis-server restarted without persistence: a DiscontinuityError naming the gone epoch, then the new epoch from offset 1', async () => {
      const a = await backend({ checkInterval: 100 });
      const b = await backend({ checkInterval: 100 });
      const topic = `restart${++count}`;
      const seen = record(b, topic);
      await sleep(100);
      let old: Position | undefined;
      for (let i = 1; i <= 5; i++) old = await a.publish(topic, i, { count: 100 });
      await waitFor(() => seen.got.length === 5, 2000, 'five delivered');
      await server.restart();
      await waitFor(() => seen.errors.length === 1, 5000, 'the discontinuity');
      const next = await a.publish(topic, 6, { count: 100 });
      await waitFor(() => seen.got.length === 6, 5000, 'the next publication');
      seen.stop();
      const [error] = seen.errors;
      expect(next.epoch).to.not.equal(old!.epoch);
      expect(next.offset).to.equal(1);
      expect(error!.since).to.deep.equal(old);
      expect(error!.position).to.deep.equal({ epoch: next.epoch, offset: 0 });
      expect(error!.message).to.equal(
        `Cannot resume after ${old!.epoch}:5: epoch ${old!.epoch} is gone, the topic is at ${next.epoch}:0`,
      );
      expect(seen.got.map((p) => p.value)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    });

    it('redis-server restarted with append-only persistence: the same epoch continues exactly, nothing lost or repeated', async () => {
      const persistent = await startRedis({ appendonly: true });
      try {
        const node = async (): Promise<RedisBackend> => {
          const made = redisBackend({ client: await client(persistent.url), checkInterval: 100 });
          backends.push(made);
          return made;
        };
        const a = await node();
        const b = await node();
        const topic = `aof${++count}`;
        const seen = record(b, topic);
        await sleep(100);
        const before: Position[] = [];
        for (let i = 1; i <= 5; i++) before.push(await a.publish(topic, i, { count: 100 }));
        await waitFor(() => seen.got.length === 5, 2000, 'five delivered');
        await persistent.restart();
        const after: Position[] = [];
        for (let i = 6; i <= 10; i++) after.push(await a.publish(topic, i, { count: 100 }));
        await waitFor(() => seen.got.length >= 10, 5000, 'ten delivered');
        await sleep(250);
        seen.stop();
        expect(seen.errors).to.deep.equal([]);
        expect([...before, ...after]).to.deep.equal(
          range(1, 10).map((offset) => ({ epoch: before[0]!.epoch, offset })),
        );
        expect(seen.offsets()).to.deep.equal(range(1, 10));
        expect(seen.got.map((p) => p.value)).to.deep.equal(range(1, 10));
      } finally {
        for (const made of backends.splice(0)) await made.close();
        await persistent.stop();
      }
    });
  });

  describe('options and closing', () => {
    it('rejects bad options with "Expected …, got …"', () => {
      const fake = { sendCommand: () => Promise.resolve(), duplicate: () => fake };
      const cases: [unknown, string][] = [
        [
          { client: {} },
          'Expected client to be a node-redis client (with sendCommand and duplicate), got object',
        ],
        [{ client: fake, prefix: 1 }, 'Expected prefix to be a string, got 1'],
        [
          { client: fake, checkInterval: 0 },
          'Expected checkInterval to be a positive number of milliseconds or Infinity, got 0',
        ],
        [{ client: fake, batch: 1.5 }, 'Expected batch to be a positive integer, got 1.5'],
        [
          { client: fake, maxPendingBytes: -1 },
          'Expected maxPendingBytes to be a positive integer, got -1',
        ],
        [
          { client: fake, publishRetries: -1 },
          'Expected publishRetries to be a non-negative integer, got -1',
        ],
        [{ client: fake, encode: 'json' }, "Expected encode to be a function, got 'json'"],
      ];
      for (const [options, message] of cases) {
        expect(() => redisBackend(options as never)).to.throw(message);
      }
      expect(() => redisBackend(null as never)).to.throw(
        TypeError,
        'Expected options to be an object, got null',
      );
    });

    it('a value the codec cannot encode rejects publish with a TypeError and publishes nothing', async () => {
      const a = await backend();
      const topic = `encode${++count}`;
      const error = await a.publish(topic, undefined, {}).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.equal(
        'Expected encode to return a string, got undefined for undefined',
      );
      expect((await a.position(topic)).offset).to.equal(0);
    });

    it('after close(): publish, history and position reject with ClosedSendError, listen registers nothing', async () => {
      const a = await backend();
      const topic = `closed${++count}`;
      const seen = record(a, topic);
      await a.close();
      await a.close();
      expect(a.isClosed).to.equal(true);
      for (const call of [
        () => a.publish(topic, 1, {}),
        () => a.history(topic, { epoch: 'x', offset: 0 }),
        () => a.position(topic),
      ]) {
        const error = await call().catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(ClosedSendError);
        expect((error as Error).message).to.equal('RedisBackend was closed');
      }
      const stop = a.listen(topic, () => {});
      stop();
      seen.stop();
      expect(seen.got).to.deep.equal([]);
    });
  });
});
