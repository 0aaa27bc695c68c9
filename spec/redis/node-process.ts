/**
 * One server node of the cross-node specs, run as a child process (`fork`): a node-redis
 * client, a `RedisBackend` on it, and `serve()` on 127.0.0.1 whose '/topics' route serves
 * `Topic`s on that backend (made on demand by name) to remote followers. Over IPC it
 * answers `{ url }` once listening, publishes on `{ publish: { topic, from, to, size } }`
 * (values `from..to`, each padded with `size` bytes of 'x' when given) answering
 * `{ published: [first, last] }`, and on `{ stop: true }` closes everything and exits.
 * argv: the Redis URL.
 */
import { createClient } from 'redis';
import { Topic } from '../../lib/index.js';
import { ConnectionLostError, channels, serveTopics } from '../../lib/network/index.js';
import { redisBackend } from '../../lib/redis/index.js';
import { route, serve } from '../../lib/server/index.js';
import { text } from '../../lib/websocket/index.js';

interface PublishCommand {
  readonly topic: string;
  readonly from: number;
  readonly to: number;
  readonly size?: number;
}

const url = process.argv[2] as string;
const client = createClient({ url });
client.on('error', () => {});
await client.connect();
const backend = redisBackend({ client, checkInterval: 200 });
const topics = new Map<string, Topic<unknown>>();
const topicNamed = (name: string): Topic<unknown> => {
  let topic = topics.get(name);
  if (topic === undefined) {
    topic = new Topic<unknown>({ backend, name, retention: { count: 1000 } });
    topics.set(name, topic);
  }
  return topic;
};
const server = await serve(
  { pingInterval: Infinity },
  {
    '/topics': route<string, string>({
      codec: text(),
      handler: async (session) => {
        await serveTopics(channels(session), topicNamed, { maxCapacity: 1000, capacity: 1000 });
      },
    }),
  },
);

process.on('message', (message: { publish?: PublishCommand; stop?: true }) => {
  void (async () => {
    if (message.publish !== undefined) {
      const { topic, from, to, size } = message.publish;
      const target = topicNamed(topic);
      const pad = size === undefined ? '' : 'x'.repeat(size);
      let first = 0;
      let last = 0;
      for (let i = from; i <= to; i++) {
        const { offset } = await target.publish(size === undefined ? i : `${i}:${pad}`);
        if (i === from) first = offset;
        last = offset;
      }
      process.send?.({ published: [first, last] });
    } else if (message.stop === true) {
      for (const topic of topics.values()) topic.close();
      await server.close();
      await backend.close();
      client.destroy();
      process.disconnect();
    }
  })().catch((error: unknown) => {
    if (!(error instanceof ConnectionLostError)) {
      process.send?.({ error: String(error) });
    }
  });
});
process.send?.({ url: server.url });
