// The Redis backend against a real redis-server of its own: the shared TopicBackend
// contract over two backends (two nodes) on one server, then its own cases.
import { expect } from 'chai';
import { createClient } from 'redis';
import { redisBackend } from '../../lib/redis/index.js';
import type { RedisBackend } from '../../lib/redis/index.js';
import { startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { backendContract } from '../topics/backend-contract.js';

describe('RedisBackend', function () {
  this.timeout(20_000);
  let server: RedisServer;
  const clients: { destroy(): void }[] = [];
  const backends: RedisBackend[] = [];
  let count = 0;

  const client = async () => {
    const made = createClient({ url: server.url });
    made.on('error', () => {});
    clients.push(made);
    await made.connect();
    return made;
  };
  const backend = async (options?: { checkInterval?: number }): Promise<RedisBackend> => {
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
});
