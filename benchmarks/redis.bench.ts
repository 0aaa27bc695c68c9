/**
 * Cross-node publish through Redis: one node publishes, the two other nodes deliver to
 * their websocket subscribers (three Node server processes, plus one process of clients
 * per subscriber node so that their cost is not the nodes'; one redis-server started for
 * the run, as the tests start theirs: `spec/helpers/redis-server.ts`). sluice: a `Topic` on the Redis backend (`sluice/redis`) on every node, served to
 * the subscribers with `serveTopics` and followed with `remoteTopic`; against Socket.IO
 * with `@socket.io/redis-adapter` (`io.to(room).emit` on the publishing node, sockets
 * joined to the room on the others), on the same redis-server in the same run.
 *
 * Fair by construction: the same payload (`{ k, i, t, x }`, x = 64 characters), the same
 * number of subscribers (`--subscribers` per node, default 50, on each of the two
 * subscriber nodes), websocket transport only on both.
 * sluice subscribers use `overflow: 'suspend'` (256 on the server and 256 on the client,
 * as in `fanout.bench.ts`): publications from another node cannot be held back, so a
 * slow subscriber's server-side buffer grows past 256 rather than dropping, as Socket.IO
 * buffers without bound; nothing may be lost (a gap would be counted as lost and fail
 * the run).
 *
 * Figures per implementation (median of `--runs`; the implementations alternate within
 * each run, each with fresh processes):
 * - **throughput:** `--messages` (default 2,000) published back to back (sluice: windows
 *   of 100 concurrent `publish` calls, each awaited; Socket.IO: 100 `emit`s per event
 *   loop turn), from the first publish to the last delivery on the last subscriber:
 *   messages per second (each message reaches every subscriber);
 * - **latency:** `--paced` (default 300) messages, one every 10 ms (a rate the machine
 *   keeps up with: latency, not a queue), each carrying its send time; p50 and p99 over
 *   every delivery (messages × subscribers), in ms;
 * - **lost:** deliveries that never came (sluice: reported as gaps; Socket.IO: counted).
 *
 * ```
 * node --import tsx benchmarks/redis.bench.ts                  # 3 runs
 * node --import tsx benchmarks/redis.bench.ts --runs 1 --messages 500 --paced 100
 * node --import tsx benchmarks/redis.bench.ts --only sluice   # or --only socket.io
 * ```
 *
 * Needs `redis-server` on the PATH (Debian: `apt-get install -y redis-server`); it is
 * started on a free port with a temporary directory and no persistence, and shut down at
 * the end.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import WebSocket from 'ws';
import { Topic } from '../lib/index.js';
import { channels, remoteTopic, serveTopics } from '../lib/network/index.js';
import { redisBackend } from '../lib/redis/index.js';
import { route, serve } from '../lib/server/index.js';
import { text, wrap } from '../lib/websocket/index.js';
import { startRedis } from '../spec/helpers/redis-server.js';

const IMPLEMENTATIONS = ['sluice Topic (Redis backend)', 'Socket.IO redis-adapter'] as const;
type Impl = (typeof IMPLEMENTATIONS)[number];
const SLUICE: Impl = 'sluice Topic (Redis backend)';
const TOPIC = 'bench';
const PAYLOAD = 'x'.repeat(64);
const WINDOW = 100;
const PACE_MS = 10;
const self = fileURLToPath(import.meta.url);

/** What is published: the phase (`w`arm-up, `b`last, `p`aced), its index and send time. */
interface Msg {
  readonly k: 'w' | 'b' | 'p';
  readonly i: number;
  readonly t: number;
  readonly x: string;
}

/**
 * Milliseconds on a clock that all processes of the machine share: the monotonic clock
 * (`performance.timeOrigin` is fixed per process from the wall clock, and two processes'
 * can differ by milliseconds).
 */
const clock = (): number => Number(process.hrtime.bigint()) / 1e6;

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `Expected ${name} to be a positive integer, got ${String(process.argv[at + 1])}`,
    );
  }
  return value;
}

const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

async function redisClient(url: string) {
  const client = createClient({ url });
  // A dropped connection must not take the process down (node-redis throws otherwise).
  client.on('error', (error: unknown) => {
    process.stderr.write(`redis client: ${String(error)}\n`);
  });
  await client.connect();
  return client;
}

// ------------------------------------------------------------------ a node's process

/** The publishing node. */
interface Publisher {
  /** Publishes `messages` one after the other, as fast as the implementation allows. */
  blast(messages: readonly Msg[]): Promise<void>;
  publish(message: Msg): void;
  close(): Promise<void>;
}

async function startPublisher(impl: Impl, url: string): Promise<Publisher> {
  if (impl === SLUICE) {
    const client = await redisClient(url);
    const backend = redisBackend({ client });
    const topic = new Topic<Msg>({ name: TOPIC, backend, retention: { count: 1000 } });
    return {
      async blast(messages) {
        for (let i = 0; i < messages.length; i += WINDOW) {
          await Promise.all(messages.slice(i, i + WINDOW).map((m) => topic.publish(m)));
        }
      },
      publish(message) {
        void topic.publish(message);
      },
      async close() {
        topic.close();
        await backend.close();
        await client.quit();
      },
    };
  }
  const pub = await redisClient(url);
  const sub = await redisClient(url);
  const io = new IoServer({ adapter: createAdapter(pub, sub) });
  return {
    async blast(messages) {
      for (let i = 0; i < messages.length; i += WINDOW) {
        for (const m of messages.slice(i, i + WINDOW)) io.to('room').emit('m', m);
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    publish(message) {
      io.to('room').emit('m', message);
    },
    async close() {
      // No engine to close (nothing listens here): the adapter's connections are all.
      await Promise.all([pub.quit(), sub.quit()]);
    },
  };
}

/** A subscribing node: its websocket server, whose clients run in another process. */
interface SubscriberNode {
  readonly url: string;
  close(): Promise<void>;
}

async function startSubscriberNode(impl: Impl, url: string): Promise<SubscriberNode> {
  if (impl === SLUICE) {
    const client = await redisClient(url);
    const backend = redisBackend({ client });
    const topic = new Topic<Msg>({ name: TOPIC, backend, retention: { count: 1000 } });
    const server = await serve(
      { port: 0, pingInterval: Infinity },
      {
        '/': route<string, string>({
          codec: text(),
          handler: (session) =>
            serveTopics(channels(session), new Map([[TOPIC, topic]]), {
              maxCapacity: 256,
              allowSuspend: true,
            }),
        }),
      },
    );
    return {
      url: server.url,
      async close() {
        await server.close({ timeout: 2000 });
        topic.close();
        await backend.close();
        await client.quit();
      },
    };
  }
  const pub = await redisClient(url);
  const sub = await redisClient(url);
  const http = createServer();
  const io = new IoServer(http, { transports: ['websocket'], adapter: createAdapter(pub, sub) });
  io.on('connection', (socket) => void socket.join('room'));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      await io.close();
      await Promise.all([pub.quit(), sub.quit()]);
    },
  };
}

/** Connects `subscribers` clients to a subscriber node, one after the other. */
async function connectClients(
  impl: Impl,
  url: string,
  subscribers: number,
  deliver: (client: number, message: Msg) => void,
  lost: (count: number) => void,
): Promise<() => void> {
  const closers: (() => void)[] = [];
  for (let c = 0; c < subscribers; c++) {
    if (impl === SLUICE) {
      const ws = new WebSocket(url);
      const network = channels(wrap<string, string>(ws, { codec: text() }));
      const feed = remoteTopic<Msg>(TOPIC, {
        capacity: 256,
        serverCapacity: 256,
        overflow: 'suspend',
      });
      void feed.follow(network).catch(() => undefined);
      void (async () => {
        for await (const event of feed) {
          if (event.type === 'publication') deliver(c, event.value);
          else lost(event.count);
        }
      })().catch(() => undefined);
      closers.push(() => {
        ws.terminate();
      });
      await new Promise((resolve) => ws.once('open', resolve));
    } else {
      const socket = ioClient(url, { transports: ['websocket'], forceNew: true });
      socket.on('m', (message: Msg) => {
        deliver(c, message);
      });
      closers.push(() => socket.disconnect());
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    }
  }
  return () => {
    for (const close of closers) close();
  };
}

async function nodeMain(role: string, impl: Impl, url: string): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const next = async (): Promise<string[]> => {
    const line = await lines.next();
    return line.done === true ? ['stop'] : line.value.split(' ');
  };
  if (role === 'pub') {
    const publisher = await startPublisher(impl, url);
    say({ ready: true });
    for (;;) {
      const [command, count = '0'] = await next();
      if (command === 'warm') {
        publisher.publish({ k: 'w', i: Number(count), t: clock(), x: PAYLOAD });
        say({ ok: true });
      } else if (command === 'blast') {
        const n = Number(count);
        const messages: Msg[] = [];
        const start = clock();
        for (let i = 1; i <= n; i++) messages.push({ k: 'b', i, t: start, x: PAYLOAD });
        const cpu = process.cpuUsage();
        await publisher.blast(messages);
        const used = process.cpuUsage(cpu);
        say({ start, published: clock(), cpu: (used.user + used.system) / 1000 });
      } else if (command === 'paced') {
        const n = Number(count);
        for (let i = 1; i <= n; i++) {
          publisher.publish({ k: 'p', i, t: clock(), x: PAYLOAD });
          await new Promise((resolve) => setTimeout(resolve, PACE_MS));
        }
        say({ ok: true });
      } else {
        await publisher.close();
        process.exit(0);
      }
    }
  }
  if (role === 'sub') {
    const node = await startSubscriberNode(impl, url);
    say({ url: node.url });
    const cpu = process.cpuUsage();
    await next(); // stop
    const used = process.cpuUsage(cpu);
    say({ cpu: (used.user + used.system) / 1000 });
    await node.close();
    process.exit(0);
  }
  // role 'clients': `url` is the subscriber node's.
  const subscribers = Number(process.argv[6]);
  const blast = Number(process.argv[7]);
  const paced = Number(process.argv[8]);
  const warmed = new Set<number>();
  const blasted = new Array<number>(subscribers).fill(0);
  const pacedCount = new Array<number>(subscribers).fill(0);
  const latencies: number[] = [];
  let blastDone = 0;
  let pacedDone = 0;
  let lostCount = 0;
  let outOfOrder = 0;
  let lastBlast = 0;
  const close = await connectClients(
    impl,
    url,
    subscribers,
    (c, message) => {
      const now = clock();
      if (message.k === 'w') {
        if (!warmed.has(c)) {
          warmed.add(c);
          if (warmed.size === subscribers) say({ warm: true });
        }
      } else if (message.k === 'b') {
        // A skip is a loss (a gap, counted as lost); going back is a duplicate or a reorder.
        if (message.i <= (blasted[c] ?? 0)) outOfOrder += 1;
        blasted[c] = message.i;
        lastBlast = now;
        if (message.i === blast && ++blastDone === subscribers) say({ blasted: lastBlast });
      } else {
        latencies.push(now - message.t);
        pacedCount[c] = (pacedCount[c] ?? 0) + 1;
        if (message.i === paced && ++pacedDone === subscribers) {
          say({ latencies, lost: lostCount, outOfOrder });
        }
      }
    },
    (count) => {
      lostCount += count;
    },
  );
  say({ ready: true });
  // Says which clients are stuck where when the blast stops making progress (a lost
  // delivery would otherwise show only as the orchestrator's timeout).
  let progress = -1;
  const watchdog = setInterval(() => {
    const got = blasted.reduce((sum, i) => sum + i, 0);
    if (got > 0 && got < blast * subscribers && got === progress) {
      const stuck = blasted.flatMap((i, c) => (i < blast ? [`${c}@${i}`] : []));
      process.stderr.write(
        `${impl} clients of ${url}: no progress for 10 s; stuck (client@last): ${stuck.join(' ')}; lost ${lostCount}\n`,
      );
    }
    progress = got;
  }, 10_000);
  await next(); // stop
  clearInterval(watchdog);
  const missing =
    blasted.reduce((sum, got) => sum + (blast - got), 0) +
    pacedCount.reduce((sum, got) => sum + (paced - got), 0);
  say({ missing, lost: lostCount, outOfOrder });
  close();
  process.exit(0);
}

// ------------------------------------------------------------------ the orchestrator

type Child = ChildProcessByStdio<Writable, Readable, null>;

interface NodeProcess {
  readonly child: Child;
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
  readonly exited: Promise<void>;
}

function startNode(args: readonly string[]): NodeProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--node', ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    exited,
    next: async () => {
      const line = await lines.next();
      if (line.done === true) throw new Error(`node ${args.join(' ')}: ended early`);
      return JSON.parse(line.value) as Record<string, unknown>;
    },
    send: (line) => {
      child.stdin.write(`${line}\n`);
    },
  };
}

interface Figures {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly lost: number;
  readonly publisherCpu: number;
  /** CPU ms of one subscriber node (the mean of both) over the whole run. */
  readonly nodeCpu: number;
}

/** `promise`, or a rejection naming `what` after `ms` (a lost message would hang the run). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: not done after ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function once(
  impl: Impl,
  url: string,
  subscribers: number,
  messages: number,
  paced: number,
): Promise<Figures> {
  const nodes = [1, 2].map(() => startNode(['sub', impl, url]));
  const pub = startNode(['pub', impl, url]);
  const subs: NodeProcess[] = [];
  try {
    const urls = (await Promise.all(nodes.map((n) => n.next()))) as { url: string }[];
    for (const { url: nodeUrl } of urls) {
      subs.push(
        startNode(['clients', impl, nodeUrl, String(subscribers), String(messages), String(paced)]),
      );
    }
    await Promise.all([pub.next(), ...subs.map((s) => s.next())]); // ready
    // Warm-up: one message every 50 ms until every subscriber on both nodes has one (the
    // subscriptions through Redis are then in place on both sides).
    const warm = Promise.all(subs.map((s) => s.next()));
    const state = { warmedUp: false };
    void warm.then(() => (state.warmedUp = true));
    for (let i = 1; !state.warmedUp; i++) {
      if (i > 400) throw new Error(`${impl}: subscribers not ready after 20 s`);
      pub.send(`warm ${i}`);
      await pub.next();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await warm;
    await new Promise((resolve) => setTimeout(resolve, 200)); // late warm-ups drain
    const delivered = Promise.all(subs.map((s) => s.next()));
    pub.send(`blast ${messages}`);
    const { start, cpu } = (await pub.next()) as { start: number; cpu: number };
    const ends = (await within(120_000, `${impl} blast`, delivered)) as { blasted: number }[];
    const wall = Math.max(...ends.map((e) => e.blasted)) - start;
    const measured = Promise.all(subs.map((s) => s.next()));
    pub.send(`paced ${paced}`);
    await pub.next();
    const results = (await within(60_000, `${impl} paced`, measured)) as {
      latencies: number[];
      lost: number;
    }[];
    const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
    for (const s of subs) s.send('stop');
    const finals = (await Promise.all(subs.map((s) => s.next()))) as {
      missing: number;
      lost: number;
      outOfOrder: number;
    }[];
    for (const n of nodes) n.send('stop');
    const nodeCpu = (await Promise.all(nodes.map((n) => n.next()))) as { cpu: number }[];
    const outOfOrder = finals.reduce((sum, f) => sum + f.outOfOrder, 0);
    if (outOfOrder > 0) throw new Error(`${impl}: ${outOfOrder} deliveries out of order`);
    return {
      throughput: (messages * 1000) / wall,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      lost: finals.reduce((sum, f) => sum + Math.max(f.missing, f.lost), 0),
      publisherCpu: cpu,
      nodeCpu: nodeCpu.reduce((sum, n) => sum + n.cpu, 0) / 2,
    };
  } finally {
    const everyone = [pub, ...nodes, ...subs];
    for (const n of everyone) if (n.child.exitCode === null) n.send('stop');
    const all = Promise.all(everyone.map((n) => n.exited));
    const timer = setTimeout(() => {
      for (const n of everyone) n.child.kill('SIGKILL');
    }, 10_000);
    await all;
    clearTimeout(timer);
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const runs = arg('--runs', 3);
  const messages = arg('--messages', 2000);
  const paced = arg('--paced', 300);
  const subscribers = arg('--subscribers', 50);
  // One implementation alone (for a closer look; the ratios need both).
  const at = process.argv.indexOf('--only');
  const only = at < 0 ? undefined : process.argv[at + 1]?.toLowerCase();
  const redis = await startRedis();
  const all = new Map<Impl, Figures[]>(IMPLEMENTATIONS.map((impl) => [impl, []]));
  try {
    for (let run = 1; run <= runs; run++) {
      // Alternate which implementation goes first.
      const order = (run % 2 === 1 ? IMPLEMENTATIONS : [...IMPLEMENTATIONS].reverse()).filter(
        (impl) => only === undefined || impl.toLowerCase().includes(only),
      );
      for (const impl of order) {
        const figures = await once(impl, redis.url, subscribers, messages, paced);
        all.get(impl)?.push(figures);
        process.stderr.write(
          `run ${run} ${impl}: ${figures.throughput.toFixed(0)} msg/s, p50 ${figures.p50.toFixed(2)} ms, p99 ${figures.p99.toFixed(2)} ms, lost ${figures.lost}\n`,
        );
      }
    }
  } finally {
    await redis.stop();
  }
  const pick = (impl: Impl, key: keyof Figures): number =>
    median((all.get(impl) ?? []).map((f) => f[key]));
  const io: Impl = 'Socket.IO redis-adapter';
  console.log(
    `Cross-node publish through one redis-server: 1 publishing node, 2 subscriber nodes × ${subscribers} websocket subscribers; ${messages} messages back to back for throughput, ${paced} paced (1 per ${PACE_MS} ms) for latency; median of ${runs} runs`,
  );
  console.log('');
  console.log(
    '| implementation | msg/s (each to all subscribers) | throughput ÷ Socket.IO | p50 ms | p99 ms | p99 ÷ Socket.IO | lost | publisher CPU ms (blast) | subscriber node CPU ms (run) |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const impl of IMPLEMENTATIONS) {
    console.log(
      `| ${impl} | ${pick(impl, 'throughput').toFixed(0)} | ${(pick(impl, 'throughput') / pick(io, 'throughput')).toFixed(2)} | ${pick(impl, 'p50').toFixed(2)} | ${pick(impl, 'p99').toFixed(2)} | ${(pick(impl, 'p99') / pick(io, 'p99')).toFixed(2)} | ${pick(impl, 'lost')} | ${pick(impl, 'publisherCpu').toFixed(0)} | ${pick(impl, 'nodeCpu').toFixed(0)} |`,
    );
  }
  const lost = pick(SLUICE, 'lost');
  if (lost > 0) {
    process.stderr.write(`sluice lost ${lost} deliveries\n`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--node') {
  await nodeMain(process.argv[3] ?? '', process.argv[4] as Impl, process.argv[5] ?? '');
} else await main();
