/**
 * The WebSocket benchmark: a sluice session beside raw `ws` (with `JSON.stringify`/`parse`,
 * as its users write it) and `it-ws`, over loopback to a plain `ws` server in its own
 * process.
 *
 * - `one-way`: 200,000 JSON messages of 32 bytes, client to server; the clock stops when
 *   the server reports that it received them all.
 * - `round-trip`: 10,000 sequential request/response pairs (the server echoes).
 *
 * Every figure is the median of 5 fresh client processes (rounds interleave the
 * implementations); each run is verified (count, order, ids). Run:
 *
 * ```
 * node --import tsx benchmarks/websocket.bench.ts             # everything, 5 processes each
 * node --import tsx benchmarks/websocket.bench.ts --runs 1    # smoke test
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect as itWsConnect } from 'it-ws/client';
import WebSocket, { WebSocketServer } from 'ws';
import { connect } from '../lib/websocket/index.js';

const MESSAGES = 200_000;
const ROUND_TRIPS = 10_000;
const IMPLEMENTATIONS = ['sluice', 'ws', 'it-ws'] as const;
const SCENARIOS = ['one-way', 'round-trip'] as const;
type Implementation = (typeof IMPLEMENTATIONS)[number];
type Scenario = (typeof SCENARIOS)[number];

interface Message {
  readonly seq: string;
  readonly pad: string;
}

/** `{"seq":"000042","pad":"…"}`: exactly 32 bytes of JSON. */
function message(i: number): Message {
  return { seq: String(i).padStart(6, '0'), pad: 'abcdefg' };
}
if (JSON.stringify(message(0)).length !== 32) throw new Error('message is not 32 bytes');

const encoder = new TextEncoder();

/** A `ws` message as text (`ws` hands out a Buffer by default). */
function asText(data: WebSocket.RawData): string {
  return Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Buffer.from(data as ArrayBuffer).toString();
}
const decoder = new TextDecoder();

// ---------------------------------------------------------------- server process

/** The peer: counts (`/count?n=N`, then sends `"done"`) or echoes (`/echo`), like for like. */
async function serve(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, request) => {
    const url = new URL(request.url ?? '/', 'http://bench');
    if (url.pathname === '/echo') {
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
      return;
    }
    const expected = Number(url.searchParams.get('n'));
    let count = 0;
    let inOrder = true;
    ws.on('message', (data, isBinary) => {
      const parsed = JSON.parse(asText(data)) as Message;
      if (Number(parsed.seq) !== count % 1_000_000) inOrder = false;
      if (++count === expected) {
        ws.send(JSON.stringify(inOrder ? 'done' : 'out of order'), { binary: isBinary });
      }
    });
  });
  const { port } = wss.address() as AddressInfo;
  process.stdout.write(`PORT ${port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    process.stdin.pause();
  });
}

// ---------------------------------------------------------------- client process

function verify(condition: boolean, what: string): void {
  if (!condition) throw new Error(`verification failed: ${what}`);
}

async function sluiceOneWay(url: string): Promise<number> {
  const session = await connect<string | Message, Message>(`${url}/count?n=${MESSAGES}`);
  const start = performance.now();
  for (let i = 0; i < MESSAGES; i++) await session.outgoing.send(message(i));
  const done = await session.incoming.receive();
  const elapsed = performance.now() - start;
  verify(done === 'done', `server saw every message in order (${JSON.stringify(done)})`);
  await session.close();
  return elapsed;
}

async function sluiceRoundTrip(url: string): Promise<number> {
  const session = await connect<Message>(`${url}/echo`);
  const start = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) {
    await session.outgoing.send(message(i));
    const reply = await session.incoming.receive();
    verify(Number(reply.seq) === i, 'reply matches request');
  }
  const elapsed = performance.now() - start;
  await session.close();
  return elapsed;
}

function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closeWs(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.close();
  });
}

async function wsOneWay(url: string): Promise<number> {
  const ws = await openWs(`${url}/count?n=${MESSAGES}`);
  const done = new Promise<string>((resolve) => {
    ws.once('message', (data) => resolve(JSON.parse(asText(data)) as string));
  });
  const start = performance.now();
  for (let i = 0; i < MESSAGES; i++) ws.send(JSON.stringify(message(i)));
  const reply = await done;
  const elapsed = performance.now() - start;
  verify(reply === 'done', `server saw every message in order (${reply})`);
  await closeWs(ws);
  return elapsed;
}

async function wsRoundTrip(url: string): Promise<number> {
  const ws = await openWs(`${url}/echo`);
  const start = performance.now();
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const reply = new Promise<Message>((resolve) => {
      ws.once('message', (data) => resolve(JSON.parse(asText(data)) as Message));
    });
    ws.send(JSON.stringify(message(i)));
    verify(Number((await reply).seq) === i, 'reply matches request');
  }
  const elapsed = performance.now() - start;
  await closeWs(ws);
  return elapsed;
}

async function itWsOneWay(url: string): Promise<number> {
  const stream = itWsConnect(`${url}/count?n=${MESSAGES}`, {
    websocket: { perMessageDeflate: false },
  });
  await stream.connected();
  const responses = stream.source[Symbol.asyncIterator]();
  const start = performance.now();
  const done = responses.next();
  const sent = stream.sink(
    (function* () {
      for (let i = 0; i < MESSAGES; i++) yield encoder.encode(JSON.stringify(message(i)));
    })(),
  );
  const reply = await done;
  const elapsed = performance.now() - start;
  verify(
    !reply.done && JSON.parse(decoder.decode(reply.value)) === 'done',
    'server saw every message in order',
  );
  await sent;
  return elapsed;
}

async function itWsRoundTrip(url: string): Promise<number> {
  const stream = itWsConnect(`${url}/echo`, { websocket: { perMessageDeflate: false } });
  await stream.connected();
  const responses = stream.source[Symbol.asyncIterator]();
  const start = performance.now();
  await stream.sink(
    (async function* () {
      for (let i = 0; i < ROUND_TRIPS; i++) {
        yield encoder.encode(JSON.stringify(message(i)));
        const reply = await responses.next();
        verify(!reply.done, 'a reply');
        const parsed = JSON.parse(decoder.decode(reply.value as Uint8Array)) as Message;
        verify(Number(parsed.seq) === i, 'reply matches request');
      }
    })(),
  );
  return performance.now() - start;
}

const JOBS: Record<Implementation, Record<Scenario, (url: string) => Promise<number>>> = {
  sluice: { 'one-way': sluiceOneWay, 'round-trip': sluiceRoundTrip },
  ws: { 'one-way': wsOneWay, 'round-trip': wsRoundTrip },
  'it-ws': { 'one-way': itWsOneWay, 'round-trip': itWsRoundTrip },
};

// ---------------------------------------------------------------- orchestration

const self = fileURLToPath(import.meta.url);

function run(args: string[]): {
  stdout: Promise<string>;
  child: ChildProcessByStdio<Writable, Readable, null>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', self, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const stdout = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
  });
  return { stdout, child };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function orchestrate(runs: number): Promise<void> {
  const server = run(['--serve']);
  const url = await new Promise<string>((resolve) => {
    server.child.stdout.on('data', (chunk: Buffer) => {
      const port = /PORT (\d+)/.exec(chunk.toString());
      if (port !== null) resolve(`ws://127.0.0.1:${port[1]}`);
    });
  });
  const times = new Map<string, number[]>();
  try {
    for (let round = 0; round < runs; round++) {
      for (const scenario of SCENARIOS) {
        for (const implementation of IMPLEMENTATIONS) {
          const output = await run(['--child', implementation, scenario, url]).stdout;
          const ms = Number(/MS (\S+)/.exec(output)?.[1]);
          const key = `${scenario} ${implementation}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
          process.stderr.write(`round ${round + 1}/${runs} ${key}: ${ms.toFixed(1)} ms\n`);
        }
      }
    }
  } finally {
    server.child.stdin.end();
    await server.stdout;
  }
  const at = (scenario: Scenario, implementation: Implementation): number =>
    median(times.get(`${scenario} ${implementation}`) ?? []);
  console.log(`\nWebSocket over loopback, Node ${process.version}, medians of ${runs} processes`);
  console.log(`\none-way: ${MESSAGES.toLocaleString('en')} JSON messages of 32 bytes`);
  for (const implementation of IMPLEMENTATIONS) {
    const ms = at('one-way', implementation);
    const rate = (MESSAGES / ms) * 1000;
    const ratio = at('one-way', 'ws') / ms;
    console.log(
      `  ${implementation.padEnd(7)} ${ms.toFixed(1).padStart(8)} ms  ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s  ${ratio.toFixed(3)}x raw ws throughput`,
    );
  }
  console.log(
    `\nround-trip: ${ROUND_TRIPS.toLocaleString('en')} sequential request/response pairs`,
  );
  for (const implementation of IMPLEMENTATIONS) {
    const ms = at('round-trip', implementation);
    const perTrip = (ms / ROUND_TRIPS) * 1000;
    const ratio = ms / at('round-trip', 'ws');
    console.log(
      `  ${implementation.padEnd(7)} ${ms.toFixed(1).padStart(8)} ms  ${perTrip.toFixed(1).padStart(7)} µs/trip  ${ratio.toFixed(3)}x raw ws round-trip time`,
    );
  }
}

const args = process.argv.slice(2);
if (args[0] === '--serve') {
  await serve();
} else if (args[0] === '--child') {
  const [, implementation, scenario, url] = args as [string, Implementation, Scenario, string];
  const ms = await JOBS[implementation][scenario](url);
  process.stdout.write(`MS ${ms}\n`);
} else {
  const runsIndex = args.indexOf('--runs');
  await orchestrate(runsIndex >= 0 ? Number(args[runsIndex + 1]) : 5);
}
