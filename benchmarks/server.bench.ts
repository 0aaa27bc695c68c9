/**
 * The server benchmark: a sluice `serve` echo route beside a raw `ws` `WebSocketServer`
 * echo, each with 1,000 concurrent connections on 127.0.0.1 whose clients (plain `ws`)
 * live in a second process.
 *
 * - **Echo throughput:** every client keeps `WINDOW` small text messages in flight until
 *   it has sent `M` of them; the clock runs from the first send to the last echo. Every
 *   client must get exactly its own messages back, in order, and nothing else.
 * - **Memory per idle connection:** in the server process (`--expose-gc`), heapUsed and
 *   rss after GC with the 1,000 connections open and idle (each has echoed one message),
 *   minus the same after a warm-up (100 connections opened, used and closed), / 1,000.
 * - **Server CPU per message:** user + system CPU of the server process during the
 *   throughput phase, divided by the messages echoed: the server's own cost, which the
 *   wall clock hides when the client process or other load on the machine is the limit.
 *
 * Fairness: raw `ws` echoes the `Buffer` it is given (`ws.send(data, { binary })`), so
 * sluice uses the `raw()` codec (a text frame in, the same string out) rather than
 * `json()`, which would add a parse and a stringify per message that raw `ws` does not
 * do. Everything else is both servers' defaults (no permessage-deflate; sluice keeps its
 * 30 s heartbeat, which does not fire within a run).
 *
 * Every figure is the median of 5 fresh server processes per implementation (and a
 * fresh client process for each), the implementations interleaved round by round.
 * `--runtime bun` or `--runtime deno` runs both servers in that runtime (the pinned
 * devDependency; `ws` as that runtime resolves it, which in Bun is its own
 * implementation), the clients still in Node: the ratio compares sluice with bare `ws` on
 * the same runtime. Heap figures come from each runtime's own `process.memoryUsage()`
 * (JavaScriptCore's heap in Bun), so compare ratios across runtimes, not bytes.
 * Progress goes to stderr, the table to stdout. Run:
 *
 * ```
 * node --import tsx benchmarks/server.bench.ts            # 5 runs each, 300 messages per client
 * node --import tsx benchmarks/server.bench.ts --quick    # 1 run each, 20 messages per client
 * node --import tsx benchmarks/server.bench.ts --runs 3
 * node --import tsx benchmarks/server.bench.ts --runtime deno --runs 3
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { route, serve } from '../lib/server/index.js';
import { raw } from '../lib/websocket/index.js';

const CONNECTIONS = 1000;
const MESSAGES_FULL = 300;
const MESSAGES_QUICK = 20;
/** Messages each client keeps in flight. */
const WINDOW = 16;
const WARM_CONNECTIONS = 100;
const WARM_MESSAGES = 50;
/** Connections opened at once (the listen backlog is 511). */
const OPEN_BATCH = 100;
/** A run (one server process and its client) that takes longer than this is killed. */
const RUN_TIMEOUT_MS = 120_000;

/**
 * The servers compared: sluice's `serve` and bare `ws` everywhere; under `--runtime bun`
 * also sluice on Bun's native server (`serve({ transport: 'bun' })`, 'sluice-bun') and a
 * bare `Bun.serve` echo ('bun').
 */
const IMPLEMENTATIONS = ['sluice', 'ws', 'sluice-bun', 'bun'] as const;
type Implementation = (typeof IMPLEMENTATIONS)[number];

function isImplementation(value: string | undefined): value is Implementation {
  return IMPLEMENTATIONS.includes(value as Implementation);
}

function implementationsFor(runtime: Runtime): readonly Implementation[] {
  return runtime === 'bun' ? IMPLEMENTATIONS : ['sluice', 'ws'];
}

/** The part of Bun's API the bare 'bun' echo uses. */
interface BareBunSocket {
  send(data: string | Uint8Array): number;
}
interface BareBun {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request, server: { upgrade(request: Request): boolean }): Response | undefined;
    websocket: {
      perMessageDeflate: boolean;
      open(): void;
      close(): void;
      message(ws: BareBunSocket, message: string | Uint8Array): void;
    };
  }): { readonly port: number; stop(closeActiveConnections: boolean): Promise<void> | void };
}

const RUNTIMES = ['node', 'bun', 'deno'] as const;
/** Where the server processes run; clients always run in Node. */
type Runtime = (typeof RUNTIMES)[number];

function isRuntime(value: string | undefined): value is Runtime {
  return value === 'node' || value === 'bun' || value === 'deno';
}

// ---------------------------------------------------------------- line protocol

/** Reads a stream line by line: `next()` resolves with the next line (in order). */
function lines(stream: Readable): { next(): Promise<string> } {
  const buffered: string[] = [];
  const waiting: { resolve(line: string): void; reject(error: Error): void }[] = [];
  let ended = false;
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  reader.on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter === undefined) buffered.push(line);
    else waiter.resolve(line);
  });
  reader.on('close', () => {
    ended = true;
    for (const waiter of waiting.splice(0)) waiter.reject(new Error('stream ended'));
  });
  return {
    next(): Promise<string> {
      const line = buffered.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) return Promise.reject(new Error('stream ended'));
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
      });
    },
  };
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- server process

interface Memory {
  readonly heap: number;
  readonly rss: number;
}

async function measureMemory(): Promise<Memory> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the server with --expose-gc');
  for (let i = 0; i < 3; i++) {
    await sleep(20);
    gc();
  }
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed, rss };
}

/**
 * The server: answers `MEM n` (waits until n connections are open, then measures after
 * GC), `MARK` (starts the CPU clock), `CPU` (CPU ms since `MARK`); closes when stdin ends.
 */
async function runServer(implementation: Implementation): Promise<void> {
  let errors = 0;
  let count: () => number;
  let close: () => Promise<void>;
  let port: number;
  if (implementation === 'bun') {
    const bun = Reflect.get(globalThis, 'Bun') as BareBun;
    let open = 0;
    const server = bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (request, srv) =>
        srv.upgrade(request) ? undefined : new Response('Upgrade Required', { status: 426 }),
      websocket: {
        perMessageDeflate: false,
        open: () => {
          open++;
        },
        close: () => {
          open--;
        },
        message: (ws, message) => void ws.send(message),
      },
    });
    port = server.port;
    count = () => open;
    close = async () => {
      await server.stop(true);
    };
  } else if (implementation === 'sluice' || implementation === 'sluice-bun') {
    const server = await serve(
      {
        ...(implementation === 'sluice-bun' ? { transport: 'bun' as const } : {}),
        onError: (error) => {
          errors++;
          console.error('sluice server error:', error);
        },
      },
      {
        '/echo': route({
          codec: raw(),
          handler: async (session) => {
            for await (const message of session.incoming) await session.outgoing.send(message);
          },
        }),
      },
    );
    port = server.port;
    count = () => server.sessions;
    close = () => server.close();
  } else {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    wss.on('connection', (ws) => {
      ws.on('error', (error) => {
        errors++;
        console.error('ws server error:', error);
      });
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
    });
    port = (wss.address() as AddressInfo).port;
    count = () => wss.clients.size;
    close = async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve, reject) => {
        wss.close((error) => (error === undefined ? resolve() : reject(error)));
      });
    };
  }
  say(`PORT ${port}`);
  const input = lines(process.stdin);
  let cpuMark = process.cpuUsage();
  for (;;) {
    let command: string;
    try {
      command = await input.next();
    } catch {
      break;
    }
    const [verb, argument] = command.split(' ');
    if (verb === 'MEM') {
      const wanted = Number(argument);
      const deadline = Date.now() + 10_000;
      while (count() !== wanted && Date.now() < deadline) await sleep(10);
      const memory = await measureMemory();
      say(`MEM ${count()} ${memory.heap} ${memory.rss}`);
    } else if (verb === 'MARK') {
      cpuMark = process.cpuUsage();
      say('MARKED');
    } else if (verb === 'CPU') {
      const cpu = process.cpuUsage(cpuMark);
      say(`CPU ${(cpu.user + cpu.system) / 1000}`);
    } else {
      throw new Error(`unknown command ${command}`);
    }
  }
  const start = performance.now();
  await close();
  say(`CLOSED ${(performance.now() - start).toFixed(1)} ${errors}`);
}

// ---------------------------------------------------------------- client process

/** One client connection and what it expects next. */
interface Client {
  readonly id: number;
  readonly ws: WebSocket;
  /** The phase whose messages it expects (so a stray echo of an earlier phase fails). */
  phase: number;
  sent: number;
  received: number;
  target: number;
  done: () => void;
  fail: (error: Error) => void;
}

function payload(phase: number, id: number, seq: number): string {
  return `${phase}:${id}:${seq}`;
}

function openClient(url: string, id: number): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const client: Client = {
    id,
    ws,
    phase: 0,
    sent: 0,
    received: 0,
    target: 0,
    done: () => undefined,
    fail: () => undefined,
  };
  ws.on('message', (data, isBinary) => {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : '<not a Buffer>';
    const expected = payload(client.phase, id, client.received);
    if (isBinary || text !== expected || client.received >= client.target) {
      client.fail(
        new Error(
          `client ${id}: expected ${JSON.stringify(expected)} (${client.received}/${client.target}), got ${JSON.stringify(text)}${isBinary ? ' (binary)' : ''}`,
        ),
      );
      return;
    }
    client.received++;
    if (client.sent < client.target) {
      ws.send(payload(client.phase, id, client.sent++));
    }
    if (client.received === client.target) client.done();
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', (error) => {
        client.fail(error);
      });
      resolve(client);
    });
    ws.once('error', reject);
  });
}

async function openAll(url: string, n: number, firstId: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let start = 0; start < n; start += OPEN_BATCH) {
    const batch: Promise<Client>[] = [];
    for (let i = start; i < Math.min(n, start + OPEN_BATCH); i++) {
      batch.push(openClient(url, firstId + i));
    }
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

/** Every client sends `messages` (at most `WINDOW` in flight) and gets them all back. */
async function echo(clients: readonly Client[], phase: number, messages: number): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) => {
          client.phase = phase;
          client.sent = 0;
          client.received = 0;
          client.target = messages;
          client.done = resolve;
          client.fail = reject;
          while (client.sent < Math.min(WINDOW, messages)) {
            client.ws.send(payload(phase, client.id, client.sent++));
          }
        }),
    ),
  );
}

/** Closes every client with 1000 and checks the server answered 1000 (and sent nothing more). */
async function closeAll(clients: readonly Client[]): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) => {
          client.fail = reject;
          client.ws.once('close', (code) => {
            if (code === 1000) resolve();
            else reject(new Error(`client ${client.id}: closed with ${code}, not 1000`));
          });
          client.ws.close(1000);
        }),
    ),
  );
}

async function runClient(url: string, connections: number, messages: number): Promise<void> {
  const input = lines(process.stdin);
  const expect = async (wanted: string): Promise<void> => {
    const line = await input.next();
    if (line !== wanted) throw new Error(`expected ${wanted}, got ${line}`);
  };
  const warm = await openAll(url, WARM_CONNECTIONS, 1_000_000);
  await echo(warm, 1, WARM_MESSAGES);
  await closeAll(warm);
  say('WARM');
  await expect('OPEN');
  const clients = await openAll(url, connections, 0);
  await echo(clients, 2, 1);
  say('OPENED');
  await expect('GO');
  const start = performance.now();
  await echo(clients, 3, messages);
  const ms = performance.now() - start;
  say(`DONE ${ms}`);
  await expect('CLOSE');
  await closeAll(clients);
  say('CLOSED');
}

// ---------------------------------------------------------------- orchestration

const self = fileURLToPath(import.meta.url);

interface Child {
  readonly process: ChildProcessByStdio<Writable, Readable, null>;
  readonly exited: Promise<number | null>;
  next(): Promise<string>;
  send(line: string): void;
  /** The next line, which must start with `prefix`; its words after the prefix. */
  expect(prefix: string): Promise<string[]>;
}

/** Deno's cache for this run (Deno only), removed at the end. */
let denoDir: string | undefined;

/** The command that runs this file in `runtime`, with `--expose-gc` if asked. */
function commandLine(runtime: Runtime, exposeGc: boolean): [string, string[]] {
  if (runtime === 'node') {
    return [process.execPath, [...(exposeGc ? ['--expose-gc'] : []), '--import', 'tsx']];
  }
  const binary = fileURLToPath(new URL(`../node_modules/.bin/${runtime}`, import.meta.url));
  if (runtime === 'bun') return [binary, exposeGc ? ['--expose-gc'] : []];
  return [
    binary,
    [
      'run',
      '-A',
      '--no-lock',
      '--node-modules-dir=manual',
      // This file's relative imports name `.js` files that are `.ts` files.
      '--sloppy-imports',
      ...(exposeGc ? ['--v8-flags=--expose-gc'] : []),
    ],
  ];
}

function start(runtime: Runtime, exposeGc: boolean, args: readonly string[]): Child {
  const [command, runtimeArgs] = commandLine(runtime, exposeGc);
  const child = spawn(command, [...runtimeArgs, self, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...(denoDir === undefined ? {} : { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: '1' }),
    },
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
  });
  const reader = lines(child.stdout);
  return {
    process: child,
    exited,
    next: () => reader.next(),
    send(line: string): void {
      child.stdin.write(`${line}\n`);
    },
    async expect(prefix: string): Promise<string[]> {
      const line = await reader.next();
      const words = line.split(' ');
      if (words[0] !== prefix) throw new Error(`expected ${prefix} from child, got ${line}`);
      return words.slice(1);
    },
  };
}

interface RunResult {
  readonly msgsPerSecond: number;
  readonly serverCpuUsPerMessage: number;
  readonly heapPerConnection: number;
  readonly rssPerConnection: number;
  /** Heap after every connection closed minus the baseline, in bytes. */
  readonly heapLeft: number;
  readonly closeMs: number;
}

async function runOnce(
  runtime: Runtime,
  implementation: Implementation,
  messages: number,
): Promise<RunResult> {
  const server = start(runtime, true, ['--server', implementation]);
  let client: Child | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`run of ${implementation} took over ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
  });
  const work = async (): Promise<RunResult> => {
    const [port] = await server.expect('PORT');
    const url = `ws://127.0.0.1:${port}/echo`;
    const c = start('node', false, ['--client', url, String(CONNECTIONS), String(messages)]);
    client = c;
    await c.expect('WARM');
    server.send('MEM 0');
    const [, baseHeap, baseRss] = (await server.expect('MEM')).map(Number);
    c.send('OPEN');
    await c.expect('OPENED');
    server.send(`MEM ${CONNECTIONS}`);
    const [open, heap, rss] = (await server.expect('MEM')).map(Number);
    if (open !== CONNECTIONS)
      throw new Error(`server holds ${open} connections, not ${CONNECTIONS}`);
    server.send('MARK');
    await server.expect('MARKED');
    c.send('GO');
    const [ms] = (await c.expect('DONE')).map(Number);
    server.send('CPU');
    const [cpuMs] = (await server.expect('CPU')).map(Number);
    c.send('CLOSE');
    await c.expect('CLOSED');
    c.process.stdin.end();
    if ((await c.exited) !== 0) throw new Error('client process failed');
    server.send('MEM 0');
    const [left, leftHeap] = (await server.expect('MEM')).map(Number);
    if (left !== 0)
      throw new Error(`server still holds ${left} connections after the clients left`);
    server.process.stdin.end();
    const [closeMs, errors] = (await server.expect('CLOSED')).map(Number);
    if ((await server.exited) !== 0) throw new Error('server process failed');
    if (errors !== 0) throw new Error(`server reported ${errors} errors`);
    const total = CONNECTIONS * messages;
    return {
      msgsPerSecond: (total / ms!) * 1000,
      serverCpuUsPerMessage: (cpuMs! * 1000) / total,
      heapPerConnection: (heap! - baseHeap!) / CONNECTIONS,
      rssPerConnection: (rss! - baseRss!) / CONNECTIONS,
      heapLeft: leftHeap! - baseHeap!,
      closeMs: closeMs!,
    };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    for (const child of [server, client]) {
      if (child !== undefined && child.process.exitCode === null) {
        child.process.kill('SIGKILL');
        await child.exited;
      }
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function format(n: number, digits = 0): string {
  return n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

async function orchestrate(runtime: Runtime, runs: number, messages: number): Promise<void> {
  const implementations = implementationsFor(runtime);
  const results = new Map<Implementation, RunResult[]>(implementations.map((i) => [i, []]));
  for (let round = 0; round < runs; round++) {
    // Alternate which goes first, so a drift in machine load hits both alike.
    const order = round % 2 === 0 ? implementations : [...implementations].reverse();
    for (const implementation of order) {
      const result = await runOnce(runtime, implementation, messages);
      results.get(implementation)!.push(result);
      process.stderr.write(
        `round ${round + 1}/${runs} ${implementation.padEnd(10)}: ${format(result.msgsPerSecond)} msg/s, ` +
          `server CPU ${format(result.serverCpuUsPerMessage, 2)} µs/msg, ` +
          `${format(result.heapPerConnection)} B heap + ${format(result.rssPerConnection)} B rss per connection, ` +
          `heap left after close ${format(result.heapLeft / 1024)} KiB, close() ${format(result.closeMs, 1)} ms\n`,
      );
    }
  }
  const at = (implementation: Implementation, key: keyof RunResult): number =>
    median(results.get(implementation)!.map((result) => result[key]));
  console.log(
    `\nServer echo over loopback, ${format(CONNECTIONS)} connections (clients: plain ws in a second process), ` +
      `servers in ${runtime === 'node' ? `Node ${process.version}` : runtime}, medians of ${runs} fresh server process${runs === 1 ? '' : 'es'} each`,
  );
  console.log(
    `throughput: ${format(messages)} text messages of ≤ 16 bytes per client (${format(CONNECTIONS * messages)} in all), ` +
      `${WINDOW} in flight per client; sluice uses the raw() codec`,
  );
  console.log(
    `memory: after GC, ${format(CONNECTIONS)} idle connections minus a warmed-up baseline\n`,
  );
  console.log(
    `  ${'server'.padEnd(12)}${'msg/s'.padStart(11)}${'CPU µs/msg'.padStart(12)}${'heap B/conn'.padStart(13)}${'rss B/conn'.padStart(12)}`,
  );
  for (const implementation of implementations) {
    console.log(
      '  ' +
        implementation.padEnd(12) +
        format(at(implementation, 'msgsPerSecond')).padStart(11) +
        format(at(implementation, 'serverCpuUsPerMessage'), 2).padStart(12) +
        format(at(implementation, 'heapPerConnection')).padStart(13) +
        format(at(implementation, 'rssPerConnection')).padStart(12),
    );
  }
  const ratio = (
    key: keyof RunResult,
    of: Implementation = 'sluice',
    to: Implementation = 'ws',
  ): number => at(of, key) / at(to, key);
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const throughput = ratio('msgsPerSecond');
  const heap = ratio('heapPerConnection');
  const rss = ratio('rssPerConnection');
  console.log('\nsluice / raw ws:');
  console.log(
    `  throughput       ${throughput.toFixed(3)}x  (target ≥ 0.9x: ${verdict(throughput >= 0.9)})`,
  );
  console.log(`  server CPU/msg   ${ratio('serverCpuUsPerMessage').toFixed(3)}x`);
  console.log(`  heap per conn    ${heap.toFixed(3)}x  (target ≤ 1.5x: ${verdict(heap <= 1.5)})`);
  console.log(`  rss per conn     ${rss.toFixed(3)}x  (target ≤ 1.5x: ${verdict(rss <= 1.5)})`);
  if (!implementations.includes('sluice-bun')) return;
  for (const peer of ['ws', 'bun'] as const) {
    console.log(
      `\nsluice on Bun.serve (transport 'bun') / ${peer === 'ws' ? 'raw ws' : 'bare Bun.serve'}:`,
    );
    for (const [label, key] of [
      ['throughput    ', 'msgsPerSecond'],
      ['server CPU/msg', 'serverCpuUsPerMessage'],
      ['heap per conn ', 'heapPerConnection'],
      ['rss per conn  ', 'rssPerConnection'],
    ] as const) {
      console.log(`  ${label}   ${ratio(key, 'sluice-bun', peer).toFixed(3)}x`);
    }
  }
}

const args = process.argv.slice(2);
if (args[0] === '--server') {
  const implementation = args[1];
  if (!isImplementation(implementation)) throw new Error(`unknown server ${implementation}`);
  await runServer(implementation);
} else if (args[0] === '--client') {
  const [, url, connections, messages] = args;
  if (url === undefined) throw new Error('--client needs a URL');
  await runClient(url, Number(connections), Number(messages));
  process.stdin.pause();
} else {
  const quick = args.includes('--quick');
  const runsIndex = args.indexOf('--runs');
  const runs = runsIndex >= 0 ? Number(args[runsIndex + 1]) : quick ? 1 : 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  const runtimeIndex = args.indexOf('--runtime');
  const runtime = runtimeIndex >= 0 ? args[runtimeIndex + 1] : 'node';
  if (!isRuntime(runtime)) {
    throw new Error(`Expected --runtime ${RUNTIMES.join(', ')}, got ${String(runtime)}`);
  }
  if (runtime === 'deno') denoDir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-deno-'));
  try {
    await orchestrate(runtime, runs, quick ? MESSAGES_QUICK : MESSAGES_FULL);
  } finally {
    if (denoDir !== undefined) rmSync(denoDir, { recursive: true, force: true });
  }
}
