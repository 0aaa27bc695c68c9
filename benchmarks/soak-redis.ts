/**
 * The Redis soak (`npm run soak:redis`): the large version of spec/redis/. A private
 * redis-server (append-only on, so that restarts continue the epoch), three nodes (each a
 * `RedisBackend` on its own node-redis client, in this process) publishing to a few
 * topics concurrently, and a listener per node and topic recording every delivery, while
 * faults are injected in turn: `CLIENT KILL TYPE pubsub` (pub/sub lost, refill),
 * `CLIENT KILL TYPE normal` (publish replies lost, retried with the producer sequence),
 * and a redis-server restart (everything lost for a moment). At the end every listener
 * must have every offset of its topic exactly once and in order, with the value that
 * publish was given, and no `DiscontinuityError` (retention is larger than the run).
 *
 * ```
 * npm run soak:redis                          # 30 s
 * node --import tsx benchmarks/soak-redis.ts --seconds 10
 * ```
 *
 * Prints one table: publishes, faults by kind, lost, duplicated, out of order, and the
 * throughput (publishes per second, faults included). Exit code 1 if anything was lost,
 * duplicated or out of order.
 *
 * @module
 */
import { createClient } from 'redis';
import type { Publication } from '../lib/index.js';
import { redisBackend } from '../lib/redis/index.js';
import type { RedisBackend } from '../lib/redis/index.js';
import { startRedis } from '../spec/helpers/redis-server.js';

const argument = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const SECONDS = argument('seconds', 30);
const TOPICS = argument('topics', 4);
const IN_FLIGHT = argument('in-flight', 32);
const FAULT_EVERY = argument('fault-every', 2000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const redis = await startRedis({ appendonly: true });
const clients: { destroy(): void }[] = [];
const nodes: RedisBackend[] = [];
const reports = { connection: 0 };
for (let n = 0; n < 3; n++) {
  const client = createClient({ url: redis.url });
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  nodes.push(
    redisBackend({
      client,
      checkInterval: 500,
      publishRetries: 50,
      onError: () => {
        reports.connection++;
      },
    }),
  );
}

const names = Array.from({ length: TOPICS }, (_, i) => `soak${i}`);
/** Per node and topic: the offsets delivered, in delivery order, and their values. */
const seen = nodes.map(() => names.map(() => [] as Publication<unknown>[]));
const discontinuities: unknown[] = [];
const stops = nodes.flatMap((node, n) =>
  names.map((name, t) =>
    node.listen(
      name,
      (publication) => seen[n]![t]!.push(publication),
      (error) => discontinuities.push(error),
    ),
  ),
);
await sleep(300);

/** What each publish resolved with, per topic: offset → value. */
const published = names.map(() => new Map<number, string>());
let publishes = 0;
let failed = 0;
let running = true;
/** A function, so that the loops see `running` change while they await. */
const isRunning = (): boolean => running;
const started = Date.now();

const publisher = async (node: RedisBackend, n: number, lane: number): Promise<void> => {
  for (let i = 0; running; i++) {
    const t = (i + lane) % TOPICS;
    const value = `${n}.${lane}.${i}`;
    try {
      const { offset } = await node.publish(names[t]!, value, { count: 1_000_000 });
      published[t]!.set(offset, value);
      publishes++;
    } catch (error) {
      if (failed++ < 3) console.error('publish rejected:', error);
    }
  }
};

const faults = { 'CLIENT KILL TYPE pubsub': 0, 'CLIENT KILL TYPE normal': 0, 'redis restart': 0 };
const injector = async (): Promise<void> => {
  for (let k = 0; running; k++) {
    await sleep(FAULT_EVERY);
    if (!isRunning()) return;
    const kind = (Object.keys(faults) as (keyof typeof faults)[])[k % 3]!;
    if (kind === 'redis restart') await redis.restart();
    else
      await redis.command('CLIENT', 'KILL', 'TYPE', kind.endsWith('pubsub') ? 'pubsub' : 'normal');
    faults[kind]++;
    process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s: ${kind}\n`);
  }
};

const lanes = nodes.flatMap((node, n) =>
  Array.from({ length: IN_FLIGHT }, (_, lane) => publisher(node, n, lane)),
);
const faulting = injector();
await sleep(SECONDS * 1000);
running = false;
await Promise.all(lanes);
await faulting;
const elapsed = (Date.now() - started) / 1000;
// Let every node catch up (the position check runs every 500 ms).
for (let i = 0; i < 100; i++) {
  const behind = seen.some((perTopic) =>
    perTopic.some((got, t) => got.length < published[t]!.size),
  );
  if (!behind) break;
  await sleep(100);
}
await sleep(600);

let lost = 0;
let duplicated = 0;
let disordered = 0;
let wrong = 0;
for (const perTopic of seen) {
  perTopic.forEach((got, t) => {
    const expected = published[t]!;
    const offsets = new Set<number>();
    let previous = 0;
    for (const publication of got) {
      const { offset } = publication.position;
      if (offsets.has(offset)) duplicated++;
      offsets.add(offset);
      if (offset < previous) disordered++;
      previous = offset;
      if (expected.get(offset) !== publication.value) wrong++;
    }
    for (const offset of expected.keys()) if (!offsets.has(offset)) lost++;
  });
}

for (const stop of stops) stop();
for (const node of nodes) await node.close();
for (const client of clients) client.destroy();
await redis.stop();

const rows: [string, string | number][] = [
  ['seconds', elapsed.toFixed(1)],
  ['nodes × topics × publishers in flight', `3 × ${TOPICS} × ${IN_FLIGHT}`],
  ['publishes (resolved)', publishes],
  ['publishes rejected', failed],
  ...Object.entries(faults).map(([kind, n]): [string, number] => [`fault: ${kind}`, n]),
  ['connection errors reported (retried)', reports.connection],
  ['deliveries checked (3 nodes)', publishes * 3],
  ['lost', lost],
  ['duplicated', duplicated],
  ['out of order', disordered],
  ['wrong value', wrong],
  ['DiscontinuityError', discontinuities.length],
  ['throughput (publishes/s, faults included)', Math.round(publishes / elapsed)],
];
const width = Math.max(...rows.map(([name]) => name.length));
for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
process.exitCode = lost + duplicated + disordered + wrong + discontinuities.length > 0 ? 1 : 0;
