// Three server nodes (child processes, spec/redis/node-process.ts) share topics through
// one redis-server of this run; remote followers (this process) subscribe on one node
// while another publishes. Faults: a node frozen (SIGSTOP) until Redis drops its
// pub/sub connection for a full output buffer, then thawed; a node killed (SIGKILL)
// while its follower moves to another node; redis-server restarted without persistence.
// Each asserts every value exactly once, in order, with contiguous offsets (0 lost, 0
// duplicated), or the exact DiscontinuityError (the restart).
import { expect } from 'chai';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createClient } from 'redis';
import { DiscontinuityError } from '../../lib/index.js';
import type { Position, TopicEvent } from '../../lib/index.js';
import { channels, remoteTopic } from '../../lib/network/index.js';
import type { RemoteTopic } from '../../lib/network/index.js';
import { redisBackend } from '../../lib/redis/index.js';
import type { RedisBackend } from '../../lib/redis/index.js';
import { connect, text } from '../../lib/websocket/index.js';
import { startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../server/helpers.js';

const NODE = new URL('./node-process.ts', import.meta.url).pathname;

interface Node {
  readonly child: ChildProcess;
  readonly url: string;
  publish(topic: string, from: number, to: number, size?: number): Promise<[number, number]>;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function startNode(redisUrl: string): Promise<Node> {
  const child = fork(NODE, [redisUrl], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (message: { url?: string }) => {
      if (message.url === undefined) reject(new Error('node did not start'));
      else resolve(message.url);
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
  return {
    child,
    url,
    publish: (topic, from, to, size) =>
      new Promise((resolve, reject) => {
        const onMessage = (message: { published?: [number, number]; error?: string }): void => {
          child.off('message', onMessage);
          if (message.published !== undefined) resolve(message.published);
          else reject(new Error(message.error));
        };
        child.on('message', onMessage);
        child.send({ publish: { topic, from, to, size } });
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ stop: true });
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited(child);
        clearTimeout(timer);
      }
    },
  };
}

/** A remote follower of `name`, starting after `since`, moved between nodes by the test. */
function follower(name: string, since: Position) {
  const topic: RemoteTopic<unknown> = remoteTopic<unknown>(name, {
    since,
    capacity: 64,
    serverCapacity: 1000,
  });
  const events: TopicEvent<unknown>[] = [];
  let ended: unknown;
  const collecting = (async () => {
    try {
      for await (const event of topic.events) events.push(event);
    } catch (error) {
      ended = error;
    }
  })();
  const stops: (() => Promise<void>)[] = [];
  return {
    events,
    /** How the events ended (`undefined` while they go on or when they ended normally). */
    ended: () => ended,
    /** Follows on the node at `url`; resolves when that connection is lost. */
    follow: async (url: string): Promise<void> => {
      const session = await connect<string, string>(`${url}/topics`, { codec: text() });
      const controller = new AbortController();
      stops.push(async () => {
        controller.abort();
        await session.close();
      });
      await topic
        .follow(channels(session), { signal: controller.signal })
        .catch((error: unknown) => {
          if (!controller.signal.aborted) throw error;
        });
    },
    stop: async () => {
      for (const stop of stops) await stop();
      topic.close();
      await collecting;
    },
  };
}

/** Events as `offset=value`, for exact comparison. */
const shown = (events: readonly TopicEvent<unknown>[]): string[] =>
  events.map((event) =>
    event.type === 'publication'
      ? `${event.position.offset}=${String(event.value).split(':')[0]}`
      : `gap ${event.from.offset}-${event.to.offset}`,
  );
const expected = (first: number, from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${first + i}=${from + i}`);

async function connected(url: string) {
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('Topics across three nodes on Redis', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let nodes: Node[] = [];
  let observer: RedisBackend;
  let admin: Awaited<ReturnType<typeof connected>>;
  let count = 0;

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([1, 2, 3].map(() => startNode(redis.url)));
    admin = await connected(redis.url);
    observer = redisBackend({ client: admin, checkInterval: Infinity });
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await observer.close();
    admin.destroy();
    await redis.stop();
  });

  it('a publication on one node reaches followers on the two others, once each and in order', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const name = `fanout${++count}`;
    const since = await observer.position(name);
    const onB = follower(name, since);
    const onC = follower(name, since);
    const following = [onB.follow(b.url), onC.follow(c.url)];
    await a.publish(name, 1, 200);
    await waitFor(() => onB.events.length >= 200 && onC.events.length >= 200, 10_000, '200 each');
    await onB.stop();
    await onC.stop();
    await Promise.all(following);
    expect(shown(onB.events)).to.deep.equal(expected(1, 1, 200));
    expect(shown(onC.events)).to.deep.equal(expected(1, 1, 200));
  });

  it('SIGSTOP a node until Redis drops its pub/sub connection (client-output-buffer-limit pubsub 64kb 32kb 1), SIGCONT: its follower misses nothing', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    const name = `frozen${++count}`;
    const since = await observer.position(name);
    const onB = follower(name, since);
    const following = onB.follow(b.url);
    await a.publish(name, 1, 10, 1000);
    await waitFor(() => onB.events.length >= 10, 10_000, 'the first 10');
    const subscribers = async (): Promise<string[]> =>
      [
        ...(await admin.sendCommand<string>(['CLIENT', 'LIST', 'TYPE', 'pubsub'])).matchAll(
          /id=(\d+)/g,
        ),
      ].map((match) => match[1] as string);
    const before = await subscribers();
    expect(
      await redis.command('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 65536 32768 1'),
    ).to.equal('+OK');
    b.child.kill('SIGSTOP');
    try {
      // 890 values of 16 kB: beyond what the kernel's socket buffers of the frozen node
      // take, and then beyond the 64 kB hard limit of its output buffer in Redis.
      await a.publish(name, 11, 900, 16_000);
      // Redis closed the frozen node's pub/sub connection, and no other.
      const after = await subscribers();
      expect(after.length).to.equal(before.length - 1);
      expect(before).to.include.members(after);
    } finally {
      b.child.kill('SIGCONT');
      await redis.command(
        'CONFIG',
        'SET',
        'client-output-buffer-limit',
        'pubsub 33554432 8388608 60',
      );
    }
    await waitFor(() => onB.events.length >= 900, 20_000, 'all 900');
    await onB.stop();
    await following;
    expect(shown(onB.events)).to.deep.equal(expected(1, 1, 900));
  });

  it('SIGKILL a node while it serves a follower: the follower resumes on another node since its position, 0 lost and 0 duplicated', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const name = `killed${++count}`;
    const since = await observer.position(name);
    const moving = follower(name, since);
    const onC = moving.follow(c.url);
    await a.publish(name, 1, 100);
    await waitFor(() => moving.events.length >= 50, 10_000, 'the first 50');
    c.child.kill('SIGKILL');
    const publishing = a.publish(name, 101, 200);
    await onC;
    const onB = moving.follow(b.url);
    await publishing;
    await waitFor(() => moving.events.length >= 200, 10_000, 'all 200');
    await moving.stop();
    await onB;
    expect(shown(moving.events)).to.deep.equal(expected(1, 1, 200));
  });

  // Last: it restarts the redis-server the other cases use.
  it('redis-server restarted without persistence: a follower on another node than the publisher ends with a DiscontinuityError naming the gone epoch', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    const name = `restarted${++count}`;
    const since = await observer.position(name);
    const onB = follower(name, since);
    const following = onB.follow(b.url);
    await a.publish(name, 1, 5);
    await waitFor(() => onB.events.length >= 5, 10_000, 'the first 5');
    await redis.restart();
    const error = await following.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    await onB.stop();
    expect(shown(onB.events)).to.deep.equal(expected(1, 1, 5));
    expect(error).to.be.instanceOf(DiscontinuityError);
    expect(onB.ended()).to.equal(error);
    const { since: from, position } = error as DiscontinuityError;
    expect(from).to.deep.equal({ epoch: since.epoch, offset: 5 });
    expect(position.epoch).to.not.equal(since.epoch);
    expect((error as Error).message).to.equal(
      `Cannot resume after ${since.epoch}:5: epoch ${since.epoch} is gone, the topic is at ${position.epoch}:${position.offset}`,
    );
  });
});
