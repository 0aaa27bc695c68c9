/**
 * Fan-out of one topic to 1,000 websocket clients: a sluice `Topic` served with
 * `serveTopics` (clients follow it with `remoteTopic`, policy `'suspend'` so that nothing
 * is dropped) against a raw `ws` loop over its clients (`JSON.stringify` once, `send` to
 * each) and Socket.IO's `io.to(room).emit`. Each server runs in its own process
 * (`--expose-gc`), its 1,000 clients in another.
 *
 * Figures per implementation (median of `--runs` fresh server + client processes, the
 * implementations interleaved round by round):
 * - **wall ms:** from the server's first publish to the last client having every message;
 * - **server CPU ns / delivery:** user + system CPU of the server process over that time,
 *   divided by messages × clients: the server's own cost (the client process, sluice's
 *   heavier than a bare `ws` client, may be the limit of the wall clock);
 * - **bytes / idle subscriber:** server heapUsed after GC with the 1,000 clients connected
 *   and subscribed, minus the same before any connected, / 1,000 (connection included).
 *
 * ```
 * node --import tsx benchmarks/fanout.bench.ts              # 3 runs, 200 messages
 * node --import tsx benchmarks/fanout.bench.ts --runs 1 --messages 100
 * ```
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
import { Server as IoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import WebSocket, { WebSocketServer } from 'ws';
import { Topic } from '../lib/index.js';
import { route, serve } from '../lib/server/index.js';
import { text, wrap } from '../lib/websocket/index.js';
import { channels, remoteTopic, serveTopics } from '../lib/network/index.js';

const IMPLEMENTATIONS = ['raw ws loop', 'sluice Topic', 'Socket.IO room'] as const;
type Impl = (typeof IMPLEMENTATIONS)[number];
const CLIENTS = 1000;
const PAYLOAD = 'x'.repeat(64);
const self = fileURLToPath(import.meta.url);

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const gcHeap = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};

// ------------------------------------------------------------------ the server process

interface Publisher {
  readonly url: string;
  readonly subscribers: () => number;
  publish(i: number): Promise<unknown> | undefined;
  close(): Promise<void>;
}

async function startServer(impl: Impl): Promise<Publisher> {
  if (impl === 'raw ws loop') {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    return {
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
      subscribers: () => wss.clients.size,
      publish(i) {
        const data = JSON.stringify({ i, text: PAYLOAD });
        for (const client of wss.clients) client.send(data);
        return undefined;
      },
      close: () =>
        new Promise((resolve) => {
          for (const client of wss.clients) client.terminate();
          wss.close(() => resolve());
        }),
    };
  }
  if (impl === 'Socket.IO room') {
    const http = createServer();
    const server = new IoServer(http, { transports: ['websocket'] });
    server.on('connection', (socket) => void socket.join('room'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
      subscribers: () => server.of('/').adapter.rooms.get('room')?.size ?? 0,
      publish(i) {
        server.to('room').emit('m', { i, text: PAYLOAD });
        return undefined;
      },
      close: () => server.close().then(() => undefined),
    };
  }
  const topic = new Topic<{ i: number; text: string }>({ retention: { count: 256 } });
  const server = await serve(
    { port: 0, pingInterval: Infinity },
    {
      '/': route<string, string>({
        codec: text(),
        handler: (session) =>
          serveTopics(channels(session), new Map([['t', topic]]), {
            allowSuspend: true,
          }),
      }),
    },
  );
  return {
    url: server.url,
    subscribers: () => topic.subscriberCount,
    publish: (i) => topic.publish({ i, text: PAYLOAD }),
    close: () => server.close({ timeout: 2000 }),
  };
}

async function serverMain(impl: Impl): Promise<void> {
  const before = gcHeap();
  const publisher = await startServer(impl);
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write(`${JSON.stringify({ url: publisher.url })}\n`);
  while (publisher.subscribers() < CLIENTS) await new Promise((r) => setTimeout(r, 20));
  const idle = (gcHeap() - before) / CLIENTS;
  process.stdout.write(`${JSON.stringify({ ready: true, idle })}\n`);
  const go = await lines.next();
  const messages = Number(go.value);
  const cpu = process.cpuUsage();
  for (let i = 1; i <= messages; i++) {
    const published = publisher.publish(i);
    if (published !== undefined) await published;
  }
  await lines.next(); // the clients have everything
  const used = process.cpuUsage(cpu);
  process.stdout.write(`${JSON.stringify({ cpu: (used.user + used.system) * 1000 })}\n`);
  await publisher.close();
  process.exit(0);
}

// ------------------------------------------------------------------ the client process

async function clientsMain(impl: Impl, url: string, messages: number): Promise<void> {
  let complete = 0;
  const counted = (): void => {
    complete += 1;
    if (complete === CLIENTS) process.stdout.write(`${JSON.stringify({ done: true })}\n`);
  };
  const opened: (() => void)[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    let received = 0;
    const one = (): void => {
      if (++received === messages) counted();
    };
    if (impl === 'raw ws loop') {
      const ws = new WebSocket(url);
      ws.on('message', one);
      opened.push(() => ws.terminate());
      await new Promise((resolve) => ws.once('open', resolve));
    } else if (impl === 'Socket.IO room') {
      const socket = ioClient(url, { transports: ['websocket'], forceNew: true });
      socket.on('m', one);
      opened.push(() => socket.disconnect());
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    } else {
      const ws = new WebSocket(url);
      const network = channels(wrap<string, string>(ws, { codec: text() }));
      const feed = remoteTopic<unknown>('t', { capacity: 64, overflow: 'suspend' });
      void feed.follow(network).catch(() => undefined);
      void (async () => {
        for await (const event of feed) if (event.type === 'publication') one();
      })();
      opened.push(() => ws.terminate());
      await new Promise((resolve) => ws.once('open', resolve));
    }
  }
  process.stdout.write(`${JSON.stringify({ connected: true })}\n`);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  for (const close of opened) close();
  process.exit(0);
}

// ------------------------------------------------------------------ the orchestrator

type Child = ChildProcessByStdio<Writable, Readable, null>;

function start(args: readonly string[]): {
  child: Child;
  next: () => Promise<Record<string, unknown>>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', self, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    next: async () => {
      const line = await lines.next();
      if (line.done === true) throw new Error(`${args.join(' ')}: ended early`);
      return JSON.parse(line.value) as Record<string, unknown>;
    },
  };
}

interface Figures {
  readonly wall: number;
  readonly cpu: number;
  readonly idle: number;
}

async function once(impl: Impl, messages: number): Promise<Figures> {
  const server = start(['--server', impl]);
  const { url } = (await server.next()) as { url: string };
  const clients = start(['--clients', impl, url, String(messages)]);
  await clients.next(); // connected
  const { idle } = (await server.next()) as { idle: number };
  const t0 = performance.now();
  server.child.stdin.write(`${messages}\n`);
  await clients.next(); // done
  const wall = performance.now() - t0;
  server.child.stdin.write('stop\n');
  const { cpu } = (await server.next()) as { cpu: number };
  clients.child.stdin.write('stop\n');
  await Promise.all([
    new Promise((r) => server.child.once('exit', r)),
    new Promise((r) => clients.child.once('exit', r)),
  ]);
  return { wall, cpu: cpu / (messages * CLIENTS), idle };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function main(): Promise<void> {
  const runs = arg('--runs', 3);
  const messages = arg('--messages', 200);
  const all = new Map<Impl, Figures[]>(IMPLEMENTATIONS.map((impl) => [impl, []]));
  for (let run = 1; run <= runs; run++) {
    for (const impl of IMPLEMENTATIONS) {
      const figures = await once(impl, messages);
      all.get(impl)?.push(figures);
      process.stderr.write(`run ${run} ${impl}: ${JSON.stringify(figures)}\n`);
    }
  }
  const pick = (impl: Impl, key: keyof Figures): number =>
    median((all.get(impl) ?? []).map((f) => f[key]));
  const raw = pick('raw ws loop', 'wall');
  const io = pick('Socket.IO room', 'wall');
  console.log(`Fan-out of ${messages} messages to ${CLIENTS} clients, median of ${runs} runs`);
  console.log(
    '| implementation | wall ms | throughput ÷ raw ws | time ÷ Socket.IO | server CPU ns / delivery | bytes / idle subscriber |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const impl of IMPLEMENTATIONS) {
    const wall = pick(impl, 'wall');
    console.log(
      `| ${impl} | ${wall.toFixed(0)} | ${(raw / wall).toFixed(2)} | ${(wall / io).toFixed(2)} | ${pick(impl, 'cpu').toFixed(0)} | ${pick(impl, 'idle').toFixed(0)} |`,
    );
  }
}

const mode = process.argv[2];
if (mode === '--server') await serverMain(process.argv[3] as Impl);
else if (mode === '--clients') {
  await clientsMain(process.argv[3] as Impl, process.argv[4] ?? '', Number(process.argv[5]));
} else await main();
