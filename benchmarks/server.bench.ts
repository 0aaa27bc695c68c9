/**
 * The server benchmark (issue 18): sluice's `serve` from the BUILT package (`dist/`, what
 * users run; the orchestrator runs `npm run build` first unless `--no-build`) beside a
 * bare `ws` `WebSocketServer`, in fresh server processes, with the clients (plain `ws`,
 * or sluice's own clients for the network rows) spread over two more processes.
 *
 * - **Echo throughput** (1,000 connections): every client keeps `WINDOW` small text
 *   messages in flight until it has sent `M` of them; the clock runs from the first send
 *   to the last echo. Every client must get exactly its own messages back, in order, and
 *   nothing else.
 * - **Server CPU per message:** user + system CPU of the server process during the
 *   throughput phase, divided by the messages echoed.
 * - **Memory per idle connection** at 1,000 and at 10,000 connections: in the server
 *   process (`--expose-gc`), heapUsed and rss after GC with the connections open and idle
 *   (each has echoed one message), minus the same after a warm-up (100 connections opened,
 *   used and closed), divided by the connections. Each count in its own fresh process.
 * - **Network rows** (memory only, 1,000 connections): an idle channel session (a
 *   `channelEndpoint` with a one-channel contract whose handler waits on its channel) and
 *   an idle topic subscription (`serveTopics` with a client following one topic); the
 *   clients are sluice's, from `dist/`. Their ratios are against the same bare `ws` idle
 *   connection: what a connection doing that costs, against one doing nothing.
 *
 * Fairness: raw `ws` echoes the `Buffer` it is given (`ws.send(data, { binary })`), so
 * sluice uses the `raw()` codec (a text frame in, the same string out) rather than
 * `json()`. Everything else is both servers' defaults (no permessage-deflate; sluice keeps
 * its 30 s heartbeat, which does not fire within a run), except `maxConnections`, raised
 * for the 10,000 connections. Each child is started through `sh -c 'ulimit -n …'` with
 * the file-descriptor limit raised to the hard limit, which must allow the connections.
 *
 * Every figure is the median of `--runs` fresh server processes per implementation and
 * row (a fresh pair of client processes each), the implementations interleaved round by
 * round. `--baseline DIR` adds a row for another build of sluice (a `dist/` directory,
 * e.g. of an older commit), measured in the same rounds: before and after in one run.
 * `--runtime bun` or `--runtime deno` runs the servers in that runtime (the pinned
 * devDependency; `ws` as that runtime resolves it, which in Bun is its own
 * implementation), the clients still in Node: the ratio compares sluice with bare `ws` on
 * the same runtime. Heap figures come from each runtime's own `process.memoryUsage()`
 * (JavaScriptCore's heap in Bun), so compare ratios across runtimes, not bytes.
 * Progress goes to stderr, the tables and the targets to stdout. Run:
 *
 * ```
 * node --import tsx benchmarks/server.bench.ts            # 5 runs each, 300 messages per client
 * node --import tsx benchmarks/server.bench.ts --quick    # 1 run each, 20 messages, 2,000 connections
 * node --import tsx benchmarks/server.bench.ts --runs 3 --baseline /tmp/old/dist
 * node --import tsx benchmarks/server.bench.ts --runtime deno --runs 3
 * node --import tsx benchmarks/server.bench.ts --runs 3 --only network --baseline /tmp/old/dist
 * ```
 *
 * `--only network` measures the network rows alone, beside sluice's and bare `ws`'s idle
 * echo connections at 1,000 (memory only: no throughput, no 10,000 row, no targets).
 *
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { benchEndpoint, loadSluice } from './lib/sluice-dist.js';
import type { Sluice } from './lib/sluice-dist.js';

/** Connections of the echo run (throughput, CPU, memory at the smaller count). */
const CONNECTIONS = 1000;
/** Connections of the large idle run (memory only). */
const MANY_CONNECTIONS = 10_000;
const MANY_CONNECTIONS_QUICK = 2000;
const MESSAGES_FULL = 300;
const MESSAGES_QUICK = 20;
/** Messages each client keeps in flight. */
const WINDOW = 16;
const WARM_CONNECTIONS = 100;
const WARM_MESSAGES = 50;
/** Connections each client process opens at once (the listen backlog is 511). */
const OPEN_BATCH = 50;
/** Client processes per run: the connections are spread over them. */
const CLIENT_PROCESSES = 2;
/** A run (one server process and its clients) that takes longer than this is killed. */
const RUN_TIMEOUT_MS = 240_000;

/**
 * The servers compared: sluice's `serve` and bare `ws` everywhere, and `baseline` (sluice
 * from the `--baseline` build) when asked; under `--runtime bun` also sluice on Bun's
 * native server (`serve({ transport: 'bun' })`, 'sluice-bun') and a bare `Bun.serve` echo
 * ('bun').
 */
const IMPLEMENTATIONS = ['sluice', 'ws', 'baseline', 'sluice-bun', 'bun'] as const;
type Implementation = (typeof IMPLEMENTATIONS)[number];

function isImplementation(value: string | undefined): value is Implementation {
  return IMPLEMENTATIONS.includes(value as Implementation);
}

/** What a server process serves: an echo, an idle channel session, an idle topic subscription. */
const SCENARIOS = ['echo', 'channels', 'topic'] as const;
type Scenario = (typeof SCENARIOS)[number];

function isScenario(value: string | undefined): value is Scenario {
  return SCENARIOS.includes(value as Scenario);
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

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const DEFAULT_DIST = path.join(ROOT, 'dist');

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

interface Running {
  readonly port: number;
  /** Connections open (for the network rows: sessions whose handler runs). */
  count(): number;
  close(): Promise<void>;
}

let serverErrors = 0;

function onServerError(error: unknown): void {
  serverErrors++;
  console.error('server error:', error);
}

async function startBareBun(): Promise<Running> {
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
  return {
    port: server.port,
    count: () => open,
    close: async () => {
      await server.stop(true);
    },
  };
}

async function startBareWs(): Promise<Running> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', onServerError);
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  });
  return {
    port: (wss.address() as AddressInfo).port,
    count: () => wss.clients.size,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve, reject) => {
        wss.close((error) => (error === undefined ? resolve() : reject(error)));
      });
    },
  };
}

async function startSluice(
  sluice: Sluice,
  scenario: Scenario,
  transport: 'bun' | undefined,
): Promise<Running> {
  const { route, serve } = sluice.server;
  const options = {
    ...(transport === undefined ? {} : { transport }),
    maxConnections: Infinity,
    onError: onServerError,
  };
  if (scenario === 'channels') {
    const endpoint = benchEndpoint(sluice.network);
    let running = 0;
    const server = await serve(options, [
      endpoint.handle(async ({ channels: { results } }) => {
        running++;
        try {
          // Idle: the client never sends.
          for await (const value of results) console.error('unexpected value', value);
        } finally {
          running--;
        }
      }),
    ]);
    return { port: server.port, count: () => running, close: () => server.close() };
  }
  if (scenario === 'topic') {
    const { channels, serveTopics } = sluice.network;
    const topic = new sluice.core.Topic<string>({ retention: { count: 16 } });
    const server = await serve(options, {
      '/topic': route<string, string>({
        codec: sluice.websocket.text(),
        handler: (session) => serveTopics(channels(session), new Map([['t', topic]])),
      }),
    });
    return { port: server.port, count: () => topic.subscriberCount, close: () => server.close() };
  }
  const server = await serve(options, {
    '/echo': route({
      codec: sluice.websocket.raw(),
      handler: async (session) => {
        for await (const message of session.incoming) await session.outgoing.send(message);
      },
    }),
  });
  return { port: server.port, count: () => server.sessions, close: () => server.close() };
}

/**
 * The server: answers `MEM n` (waits until n connections are open, then measures after
 * GC), `MARK` (starts the CPU clock), `CPU` (CPU ms since `MARK`); closes when stdin ends.
 */
async function runServer(
  implementation: Implementation,
  scenario: Scenario,
  dist: string,
): Promise<void> {
  let server: Running;
  if (implementation === 'bun') server = await startBareBun();
  else if (implementation === 'ws') server = await startBareWs();
  else {
    const sluice = await loadSluice(dist);
    server = await startSluice(
      sluice,
      scenario,
      implementation === 'sluice-bun' ? 'bun' : undefined,
    );
  }
  say(`PORT ${server.port}`);
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
      const deadline = Date.now() + 20_000;
      while (server.count() !== wanted && Date.now() < deadline) await sleep(10);
      const memory = await measureMemory();
      say(`MEM ${server.count()} ${memory.heap} ${memory.rss}`);
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
  await server.close();
  say(`CLOSED ${(performance.now() - start).toFixed(1)} ${serverErrors}`);
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

async function inBatches<T>(n: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const opened: T[] = [];
  for (let start = 0; start < n; start += OPEN_BATCH) {
    const batch: Promise<T>[] = [];
    for (let i = start; i < Math.min(n, start + OPEN_BATCH); i++) batch.push(open(i));
    opened.push(...(await Promise.all(batch)));
  }
  return opened;
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

/** A sluice network client (channel session or topic follower) and how to end it. */
interface NetworkClient {
  /** Ends the session with 1000 and resolves once it is closed. */
  close(): Promise<void>;
}

async function openNetworkClient(
  sluice: Sluice,
  scenario: 'channels' | 'topic',
  base: string,
): Promise<NetworkClient> {
  if (scenario === 'channels') {
    const endpoint = benchEndpoint(sluice.network);
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => undefined;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const connected = endpoint.connect(base, async () => {
      started();
      await released;
    });
    await Promise.race([running, connected]);
    return {
      close: async () => {
        release();
        await connected;
      },
    };
  }
  const ws = new WebSocket(`${base}/topic`, { perMessageDeflate: false });
  const session = sluice.websocket.wrap<string, string>(ws, { codec: sluice.websocket.text() });
  const network = sluice.network.channels(session);
  const feed = sluice.network.remoteTopic<string>('t', { capacity: 16, overflow: 'drop-oldest' });
  // Neither settles when the session closes (the follower ends with the connection):
  // only the session's close is awaited.
  void feed.follow(network).catch(() => undefined);
  void (async () => {
    for await (const event of feed) {
      if (event.type === 'publication') console.error('unexpected publication', event);
    }
  })().catch(() => undefined);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    close: async () => {
      await network.close();
      await session.closed;
    },
  };
}

async function runClient(
  url: string,
  scenario: Scenario,
  connections: number,
  firstId: number,
  messages: number,
  dist: string,
): Promise<void> {
  const input = lines(process.stdin);
  const expect = async (wanted: string): Promise<void> => {
    const line = await input.next();
    if (line !== wanted) throw new Error(`expected ${wanted}, got ${line}`);
  };
  if (scenario !== 'echo') {
    const sluice = await loadSluice(dist);
    const base = url.replace(/\/echo$/, '');
    const warm = await inBatches(WARM_CONNECTIONS / CLIENT_PROCESSES, () =>
      openNetworkClient(sluice, scenario, base),
    );
    await Promise.all(warm.map((client) => client.close()));
    say('WARM');
    await expect('OPEN');
    const clients = await inBatches(connections, () => openNetworkClient(sluice, scenario, base));
    say('OPENED');
    await expect('GO');
    say('DONE 0');
    await expect('CLOSE');
    await Promise.all(clients.map((client) => client.close()));
    say('CLOSED');
    return;
  }
  const warm = await inBatches(WARM_CONNECTIONS / CLIENT_PROCESSES, (i) =>
    openClient(url, 1_000_000 + firstId + i),
  );
  await echo(warm, 1, WARM_MESSAGES);
  await closeAll(warm);
  say('WARM');
  await expect('OPEN');
  const clients = await inBatches(connections, (i) => openClient(url, firstId + i));
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
  const binary = path.join(ROOT, 'node_modules', '.bin', runtime);
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

/**
 * The shell prefix that raises the file-descriptor limit to the hard limit and then runs
 * the command (`"$0" "$@"`): each server holds one descriptor per connection.
 */
const RAISE_LIMIT = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"';

function start(runtime: Runtime, exposeGc: boolean, args: readonly string[]): Child {
  const [command, runtimeArgs] = commandLine(runtime, exposeGc);
  const child = spawn('sh', ['-c', RAISE_LIMIT, command, ...runtimeArgs, self, ...args], {
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

/** The file-descriptor limit a child gets (the hard limit), checked before a run. */
function descriptorLimit(): number {
  const text = execFileSync('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; ulimit -n'], {
    encoding: 'utf8',
  }).trim();
  return text === 'unlimited' ? Infinity : Number(text);
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

/** One measurement: which server, what it serves, how many connections. */
interface Row {
  readonly implementation: Implementation;
  readonly scenario: Scenario;
  readonly connections: number;
  /** Whether the clients then run the throughput phase. */
  readonly throughput: boolean;
}

function rowKey(row: Row): string {
  return `${row.implementation} ${row.scenario} ${row.connections}`;
}

async function runOnce(
  runtime: Runtime,
  row: Row,
  messages: number,
  dists: { readonly sluice: string; readonly baseline: string | undefined },
): Promise<RunResult> {
  const dist = row.implementation === 'baseline' ? (dists.baseline as string) : dists.sluice;
  const server = start(runtime, true, ['--server', row.implementation, row.scenario, dist]);
  const clients: Child[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`run of ${rowKey(row)} took over ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
  });
  const work = async (): Promise<RunResult> => {
    const [port] = await server.expect('PORT');
    const url = `ws://127.0.0.1:${port}/echo`;
    const share = row.connections / CLIENT_PROCESSES;
    const phaseMessages = row.throughput ? messages : 1;
    for (let c = 0; c < CLIENT_PROCESSES; c++) {
      clients.push(
        start('node', false, [
          '--client',
          url,
          row.scenario,
          String(share),
          String(c * share),
          String(phaseMessages),
          dist,
        ]),
      );
    }
    const all = async (line: string | undefined, prefix: string): Promise<string[][]> => {
      if (line !== undefined) for (const client of clients) client.send(line);
      return Promise.all(clients.map((client) => client.expect(prefix)));
    };
    await all(undefined, 'WARM');
    server.send('MEM 0');
    const [, baseHeap, baseRss] = (await server.expect('MEM')).map(Number);
    await all('OPEN', 'OPENED');
    server.send(`MEM ${row.connections}`);
    const [open, heap, rss] = (await server.expect('MEM')).map(Number);
    if (open !== row.connections) {
      throw new Error(`server holds ${open} connections, not ${row.connections}`);
    }
    server.send('MARK');
    await server.expect('MARKED');
    const began = performance.now();
    await all('GO', 'DONE');
    const ms = performance.now() - began;
    server.send('CPU');
    const [cpuMs] = (await server.expect('CPU')).map(Number);
    await all('CLOSE', 'CLOSED');
    for (const client of clients) {
      client.process.stdin.end();
      if ((await client.exited) !== 0) throw new Error('client process failed');
    }
    server.send('MEM 0');
    const [left, leftHeap] = (await server.expect('MEM')).map(Number);
    if (left !== 0)
      throw new Error(`server still holds ${left} connections after the clients left`);
    server.process.stdin.end();
    const [closeMs, errors] = (await server.expect('CLOSED')).map(Number);
    if ((await server.exited) !== 0) throw new Error('server process failed');
    if (errors !== 0) throw new Error(`server reported ${errors} errors`);
    const total = row.connections * messages;
    return {
      msgsPerSecond: row.throughput ? (total / ms) * 1000 : NaN,
      serverCpuUsPerMessage: row.throughput ? (cpuMs! * 1000) / total : NaN,
      heapPerConnection: (heap! - baseHeap!) / row.connections,
      rssPerConnection: (rss! - baseRss!) / row.connections,
      heapLeft: leftHeap! - baseHeap!,
      closeMs: closeMs!,
    };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    for (const child of [server, ...clients]) {
      if (child.process.exitCode === null) {
        // The shell exec'd the runtime: this PID is the runtime's own.
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
  if (Number.isNaN(n)) return '-';
  return n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The rows of a run, in the order each round measures them. */
function rowsFor(
  runtime: Runtime,
  many: number,
  baseline: boolean,
  network: boolean,
  onlyNetwork = false,
): readonly Row[] {
  const servers: Implementation[] =
    runtime === 'bun' ? ['sluice', 'ws', 'sluice-bun', 'bun'] : ['sluice', 'ws'];
  if (baseline) servers.push('baseline');
  const rows: Row[] = [];
  for (const implementation of servers) {
    // --only network: the idle echo connections at the network rows' count, memory only.
    rows.push({
      implementation,
      scenario: 'echo',
      connections: CONNECTIONS,
      throughput: !onlyNetwork,
    });
  }
  for (const implementation of onlyNetwork ? [] : servers) {
    rows.push({ implementation, scenario: 'echo', connections: many, throughput: false });
  }
  if (network) {
    for (const implementation of baseline
      ? (['sluice', 'baseline'] as const)
      : (['sluice'] as const)) {
      for (const scenario of ['channels', 'topic'] as const) {
        rows.push({ implementation, scenario, connections: CONNECTIONS, throughput: false });
      }
    }
  }
  return rows;
}

/** What the report calls a row. */
function label(row: Row): string {
  const name = row.implementation === 'baseline' ? 'sluice (baseline)' : row.implementation;
  if (row.scenario === 'echo') return name;
  return `${name}, idle ${row.scenario === 'channels' ? 'channel session' : 'topic subscription'}`;
}

async function orchestrate(
  runtime: Runtime,
  runs: number,
  messages: number,
  many: number,
  dists: { readonly sluice: string; readonly baseline: string | undefined },
  onlyNetwork = false,
): Promise<void> {
  const limit = descriptorLimit();
  if (limit < many + 200) {
    throw new Error(
      `Expected a file-descriptor hard limit of at least ${many + 200} (for ${many} connections), got ${limit}`,
    );
  }
  const rows = rowsFor(
    runtime,
    many,
    dists.baseline !== undefined,
    runtime === 'node' || onlyNetwork,
    onlyNetwork,
  );
  const results = new Map<string, RunResult[]>(rows.map((row) => [rowKey(row), []]));
  for (let round = 0; round < runs; round++) {
    // Alternate the order, so that a drift in machine load hits every row alike.
    const order = round % 2 === 0 ? rows : [...rows].reverse();
    for (const row of order) {
      const result = await runOnce(runtime, row, messages, dists);
      results.get(rowKey(row))!.push(result);
      process.stderr.write(
        `round ${round + 1}/${runs} ${label(row).padEnd(40)} ${format(row.connections).padStart(6)}: ` +
          (row.throughput
            ? `${format(result.msgsPerSecond)} msg/s, server CPU ${format(result.serverCpuUsPerMessage, 2)} µs/msg, `
            : '') +
          `${format(result.heapPerConnection)} B heap + ${format(result.rssPerConnection)} B rss per connection, ` +
          `heap left after close ${format(result.heapLeft / 1024)} KiB, close() ${format(result.closeMs, 1)} ms\n`,
      );
    }
  }
  const at = (row: Row, key: keyof RunResult): number =>
    median(results.get(rowKey(row))!.map((result) => result[key]));
  const find = (implementation: Implementation, scenario: Scenario, connections: number): Row =>
    rows.find(
      (row) =>
        row.implementation === implementation &&
        row.scenario === scenario &&
        row.connections === connections,
    )!;
  console.log(
    `\nServer over loopback, sluice from dist/ (${dists.sluice === DEFAULT_DIST ? 'built from this checkout' : dists.sluice}), ` +
      `clients in ${CLIENT_PROCESSES} more processes; servers in ${runtime === 'node' ? `Node ${process.version}` : runtime}, ` +
      `medians of ${runs} fresh server process${runs === 1 ? '' : 'es'} per row`,
  );
  console.log(
    `throughput (${format(CONNECTIONS)} connections): ${format(messages)} text messages of ≤ 16 bytes per client ` +
      `(${format(CONNECTIONS * messages)} in all), ${WINDOW} in flight per client; sluice uses the raw() codec`,
  );
  console.log(
    `memory: after GC, the connections open and idle minus a warmed-up baseline, per connection\n`,
  );
  console.log(
    `  ${'server'.padEnd(44)}${'conns'.padStart(7)}${'msg/s'.padStart(10)}${'CPU µs/msg'.padStart(12)}${'heap B/conn'.padStart(13)}${'rss B/conn'.padStart(12)}`,
  );
  for (const row of rows) {
    console.log(
      '  ' +
        label(row).padEnd(44) +
        format(row.connections).padStart(7) +
        format(at(row, 'msgsPerSecond')).padStart(10) +
        format(at(row, 'serverCpuUsPerMessage'), 2).padStart(12) +
        format(at(row, 'heapPerConnection')).padStart(13) +
        format(at(row, 'rssPerConnection')).padStart(12),
    );
  }
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const missed: string[] = [];
  const target = (
    text: string,
    value: number,
    bound: number,
    atMost: boolean,
    counts = true,
  ): void => {
    const ok = atMost ? value <= bound : value >= bound;
    if (counts && !ok) missed.push(text);
    console.log(
      `  ${text.padEnd(50)} ${value.toFixed(3)}x  (target ${atMost ? '≤' : '≥'} ${bound.toFixed(2)}x: ${verdict(ok)})`,
    );
  };
  const compare = (of: Implementation, to: Implementation, title: string): void => {
    console.log(`\n${title}:`);
    const echo = (implementation: Implementation, n: number): Row =>
      find(implementation, 'echo', n);
    const ratio = (key: keyof RunResult, n: number): number =>
      at(echo(of, n), key) / at(echo(to, n), key);
    target('echo throughput', ratio('msgsPerSecond', CONNECTIONS), 0.95, false);
    target('server CPU per message', ratio('serverCpuUsPerMessage', CONNECTIONS), 1.1, true);
    for (const n of [CONNECTIONS, many]) {
      target(`heap per idle connection, ${format(n)}`, ratio('heapPerConnection', n), 1.5, true);
      target(`rss per idle connection, ${format(n)}`, ratio('rssPerConnection', n), 1.5, true);
    }
  };
  if (!onlyNetwork) compare('sluice', 'ws', 'sluice / bare ws (the targets of issue 18)');
  const network = rows.filter((row) => row.scenario !== 'echo');
  if (network.length > 0) {
    console.log(
      `\nnetwork rows / a bare ws idle connection (${format(CONNECTIONS)}; shown, not counted):`,
    );
    const wsRow = find('ws', 'echo', CONNECTIONS);
    for (const row of network) {
      for (const key of ['heapPerConnection', 'rssPerConnection'] as const) {
        target(
          `${key === 'heapPerConnection' ? 'heap' : 'rss'}: ${label(row)}`,
          at(row, key) / at(wsRow, key),
          1.5,
          true,
          false,
        );
      }
    }
  }
  if (dists.baseline !== undefined) {
    console.log('\nsluice / sluice (baseline), same run:');
    const before = (key: keyof RunResult, scenario: Scenario, n: number): string =>
      `${(at(find('sluice', scenario, n), key) / at(find('baseline', scenario, n), key)).toFixed(3)}x`;
    if (onlyNetwork) {
      console.log(
        `  heap per idle connection, ${format(CONNECTIONS).padEnd(6)} ${before('heapPerConnection', 'echo', CONNECTIONS)}`,
      );
    } else {
      console.log(
        `  echo throughput                  ${before('msgsPerSecond', 'echo', CONNECTIONS)}`,
      );
      console.log(
        `  server CPU per message           ${before('serverCpuUsPerMessage', 'echo', CONNECTIONS)}`,
      );
      for (const n of [CONNECTIONS, many]) {
        console.log(
          `  heap per idle connection, ${format(n).padEnd(6)} ${before('heapPerConnection', 'echo', n)}`,
        );
        console.log(
          `  rss per idle connection, ${format(n).padEnd(7)} ${before('rssPerConnection', 'echo', n)}`,
        );
      }
    }
    for (const scenario of ['channels', 'topic'] as const) {
      if (!rows.some((row) => row.scenario === scenario)) continue;
      console.log(
        `  heap, idle ${scenario === 'channels' ? 'channel session   ' : 'topic subscription'}    ${before('heapPerConnection', scenario, CONNECTIONS)}`,
      );
    }
  }
  if (runtime === 'bun') {
    for (const peer of ['ws', 'bun'] as const) {
      compare(
        'sluice-bun',
        peer,
        `sluice on Bun.serve (transport 'bun') / ${peer === 'ws' ? 'raw ws' : 'bare Bun.serve'} (shown, not counted)`,
      );
    }
  }
  console.log(
    onlyNetwork
      ? '\nissue 18 targets: not measured (--only network)'
      : `\nissue 18 targets: ${missed.length === 0 ? 'all met' : `missed: ${missed.join('; ')}`}`,
  );
}

function build(): void {
  process.stderr.write('building dist/ (npm run build)\n');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

const args = process.argv.slice(2);
if (args[0] === '--server') {
  const [, implementation, scenario, dist] = args;
  if (!isImplementation(implementation)) throw new Error(`unknown server ${implementation}`);
  if (!isScenario(scenario)) throw new Error(`unknown scenario ${scenario}`);
  await runServer(implementation, scenario, dist ?? DEFAULT_DIST);
} else if (args[0] === '--client') {
  const [, url, scenario, connections, firstId, messages, dist] = args;
  if (url === undefined) throw new Error('--client needs a URL');
  if (!isScenario(scenario)) throw new Error(`unknown scenario ${scenario}`);
  await runClient(
    url,
    scenario,
    Number(connections),
    Number(firstId),
    Number(messages),
    dist ?? DEFAULT_DIST,
  );
  process.stdin.pause();
} else {
  const quick = args.includes('--quick');
  const option = (name: string): string | undefined => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const runsText = option('--runs');
  const runs = runsText !== undefined ? Number(runsText) : quick ? 1 : 5;
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`Expected --runs to be a positive integer, got ${String(runsText)}`);
  }
  const runtime = option('--runtime') ?? 'node';
  if (!isRuntime(runtime)) {
    throw new Error(`Expected --runtime ${RUNTIMES.join(', ')}, got ${runtime}`);
  }
  const baselineText = option('--baseline');
  const baseline = baselineText === undefined ? undefined : path.resolve(baselineText);
  if (baseline !== undefined && !existsSync(path.join(baseline, 'server', 'index.js'))) {
    throw new Error(`Expected --baseline to name a built dist/ directory, got ${baselineText}`);
  }
  const only = option('--only');
  if (only !== undefined && only !== 'network') {
    throw new Error(`Expected --only network, got ${only}`);
  }
  if (!args.includes('--no-build')) build();
  if (runtime === 'deno') denoDir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-deno-'));
  try {
    await orchestrate(
      runtime,
      runs,
      quick ? MESSAGES_QUICK : MESSAGES_FULL,
      quick ? MANY_CONNECTIONS_QUICK : MANY_CONNECTIONS,
      { sluice: DEFAULT_DIST, baseline },
      only === 'network',
    );
  } finally {
    if (denoDir !== undefined) rmSync(denoDir, { recursive: true, force: true });
  }
}
