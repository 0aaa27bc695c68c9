/**
 * The server process of the soak (`benchmarks/soak.ts`): a sluice server from the BUILT
 * package (`dist/`), with one route per attack and a neighbour echo route, that reports
 * on stdout (one JSON object per line) and obeys commands on stdin.
 *
 * - Every 100 ms a `tick` line: memory (rss, heapUsed, external + arrayBuffers) and
 *   `server.sessions`. A parent that sees no tick for seconds knows the event loop hung.
 * - `mark`: GC, then the baseline memory; resets the event loop delay histogram
 *   (`perf_hooks.monitorEventLoopDelay`, 10 ms resolution) and the peaks.
 * - `report`: the histogram's p99 and max since `mark`, the longest stall and the CPU this
 *   process used during it, the memory peaks, what `onError` got (by error name).
 * - `gc`: GC, then the memory.
 * - `close <ms>`: `server.close({ timeout: ms })`, then how long it took.
 * - stdin's end: closes the server (1 s) and exits.
 *
 * Run by the soak as `node --expose-gc --max-old-space-size=… --import tsx
 * benchmarks/lib/soak-server.ts '<config json>'`.
 *
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type * as ServerModule from '../../lib/server/index.js';
import type * as NetworkModule from '../../lib/network/index.js';
import type * as WebSocketModule from '../../lib/websocket/index.js';

/** What the soak configures per attack (all optional: sluice's defaults otherwise). */
export interface SoakServerConfig {
  readonly perMessageDeflate?: boolean;
  readonly maxConnections?: number;
  readonly handshakeTimeout?: number;
  readonly pingInterval?: number;
  readonly pongTimeout?: number;
}

const dist = new URL('../../dist/', import.meta.url);
const { serve, route } = (await import(
  new URL('server/index.js', dist).href
)) as typeof ServerModule;
const { text } = (await import(new URL('websocket/index.js', dist).href)) as typeof WebSocketModule;
const { channels } = (await import(new URL('network/index.js', dist).href)) as typeof NetworkModule;

const config = JSON.parse(process.argv[2] ?? '{}') as SoakServerConfig;

function say(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Resolves after `ms`, or at once when `signal` aborts (its listener removed either way). */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });

const errors: Record<string, number> = {};
const CHUNK = 'x'.repeat(64 * 1024);

const server = await serve(
  {
    ...config,
    onError: (error) => {
      const name = error instanceof Error ? error.name : typeof error;
      errors[name] = (errors[name] ?? 0) + 1;
    },
  },
  {
    // The neighbour: echoes numbered messages.
    '/echo': async (session) => {
      for await (const message of session.incoming) await session.outgoing.send(message);
    },
    // (a) Streams 64 KiB strings as fast as the session accepts them.
    '/flood': route({
      codec: text(),
      handler: async (session) => {
        for (;;) await session.outgoing.send(CHUNK);
      },
    }),
    // (b) A slow consumer: one message every 100 ms.
    '/hold': async (session) => {
      while ((await session.incoming.receiveCatching()).ok) await sleep(100, session.signal);
    },
    // (c) The well-behaved network sender loop: `await send` on a channel the peer opened.
    '/feed': route({
      codec: text(),
      handler: async (session) => {
        const network = channels(session);
        const feed = network.channel<unknown>('feed');
        for (let i = 0; ; i++) await feed.outgoing.send({ i, pad: 'p'.repeat(200) });
      },
    }),
    // (c) Channel names: the handler only waits while the peer opens names.
    '/names': route({
      codec: text(),
      handler: async (session) => {
        const network = channels(session);
        await network.closed;
      },
    }),
    // (e) A handler that ignores its signal.
    '/stubborn': async () => {
      await new Promise(() => undefined);
    },
  },
);

const histogram = monitorEventLoopDelay({ resolution: 10 });
histogram.enable();

interface Memory {
  readonly rss: number;
  readonly heap: number;
  readonly external: number;
}

function memory(): Memory {
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed, external: usage.external + usage.arrayBuffers };
}

let peak = { rss: 0, heapExternal: 0 };
function sample(): Memory {
  const now = memory();
  peak = {
    rss: Math.max(peak.rss, now.rss),
    heapExternal: Math.max(peak.heapExternal, now.heap + now.external),
  };
  return now;
}

async function collected(): Promise<Memory> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the soak server with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(10);
  }
  return memory();
}

const ticker = setInterval(() => {
  say({ type: 'tick', ...sample(), sessions: server.sessions });
}, 100);

const ms = (ns: number): number => Math.round(ns / 1e5) / 10;

/**
 * The longest stall since `mark` (the gap between two runs of a 10 ms timer) and the CPU
 * time (user + system) this process used during it: a stall whose CPU is a fraction of
 * its length was mostly the machine's other load keeping this process off the cores.
 */
let stall = { wall: 0, cpu: 0 };
let lastProbe = performance.now();
let lastCpu = process.cpuUsage();
const probe = setInterval(() => {
  const now = performance.now();
  const cpu = process.cpuUsage(lastCpu);
  if (now - lastProbe > stall.wall) {
    stall = { wall: now - lastProbe, cpu: (cpu.user + cpu.system) / 1000 };
  }
  lastProbe = now;
  lastCpu = process.cpuUsage();
}, 10);

async function command(line: string): Promise<void> {
  const [name, argument] = line.trim().split(' ');
  if (name === 'mark') {
    const base = await collected();
    histogram.reset();
    stall = { wall: 0, cpu: 0 };
    peak = { rss: 0, heapExternal: 0 };
    say({ type: 'mark', ...base });
  } else if (name === 'report') {
    sample();
    say({
      type: 'report',
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
      stallWall: Math.round(stall.wall),
      stallCpu: Math.round(stall.cpu),
      peakRss: peak.rss,
      peakHeapExternal: peak.heapExternal,
      sessions: server.sessions,
      errors,
    });
  } else if (name === 'gc') {
    say({ type: 'gc', ...(await collected()), sessions: server.sessions });
  } else if (name === 'close') {
    const started = performance.now();
    await server.close({ timeout: Number(argument) });
    say({
      type: 'closed',
      ms: Math.round(performance.now() - started),
      sessions: server.sessions,
      errors,
    });
  }
}

const input = createInterface({ input: process.stdin });
let queue = Promise.resolve();
input.on('line', (line) => {
  queue = queue.then(() => command(line));
});
input.on('close', () => {
  void queue
    .then(() => server.close({ timeout: 1000 }))
    .finally(() => {
      clearInterval(ticker);
      clearInterval(probe);
      histogram.disable();
      process.exit(0);
    });
});

say({ type: 'ready', port: server.port });
