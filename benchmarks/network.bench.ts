/**
 * The network-channel benchmark (issue 5): `channels(session)` against the raw session
 * of the previous issues, Node to Node over a real `ws` connection on 127.0.0.1, both
 * ends sluice.
 *
 * **Throughput.** As in `websocket.bench.ts`, the receiving end is a server in its own
 * process (kept for the whole run), each measurement a fresh client process that
 * connects, waits for the server's `ready`, then sends; the clock stops when the server
 * reports that it received everything (count and per-producer order verified). Values
 * are 32-byte JSON objects (`{"seq":"000042","pad":"abcdefg"}`), sent with `await send`
 * in a loop and received with `for await`:
 * - `raw session`: `connect(url)` with the `json()` codec (the issue 3 session; the
 *   receiver is a `wrap`ped `json()` session too, so both modes have sluice on both ends);
 * - `network, capacity C`: one network channel whose receiving end has capacity C, over a
 *   `text()` session; ratio = network msgs/s ÷ raw msgs/s (the issue's target: ≥ 0.8);
 * - `×4`: four producers at once — four network channels multiplexed over one connection
 *   against four producers sharing one raw session. One raw session, not four, because
 *   the point of multiplexing is to share one socket: both sides then move the same bytes
 *   through one TCP connection, and the difference is what the credits and the per-channel
 *   buffers cost (four raw sessions would also measure four sockets' parallelism);
 * - `rendezvous` (capacity 0) at a smaller count, apart, since every value is a round
 *   trip (`pull` → value → `ack`): compared with sequential request/response pairs over a
 *   raw session (send, then wait for the echo).
 *
 * - **bytes** (protocol version 3): `Uint8Array` values of 1 KiB and 64 KiB (`--bytes-n`,
 *   `--bytes64-n` of them) sent with `await send` on one network channel of capacity 64
 *   over a `raw()` session (each value one binary message: an 8-byte header, a line feed,
 *   the bytes) against the raw session with the `binary()` codec (each value one binary
 *   message as it is); the receiver checks every value's length and its index in its
 *   first four bytes.
 *
 * Every figure is the median of `--runs` fresh client processes (rounds interleave the
 * variants). Beside it: CPU time per message in the sender (client) and the receiver
 * (server) process.
 *
 * **Slow consumer.** A fresh receiver process and a fresh sender process per run. The
 * sender sends as fast as `await send` lets it for `--slow-seconds`; the receiver takes one
 * value every `--slow-every` ms. Both sample every 250 ms, after two `global.gc()` passes
 * (`--expose-gc`), `process.memoryUsage()`: `heapUsed` (JS heap) plus `arrayBuffers`
 * (Buffers, where `ws` keeps frames queued for the socket), and the sender also
 * `ws.bufferedAmount`. The table gives, per variant, the medians over the runs of: the
 * peak and final growth of the sender's memory over its first sample (taken once
 * connected, before the first send), its growth rate over the second half of the run
 * (least squares; ~0 = flat), its largest `bufferedAmount`, the same peak and late rate
 * for the receiver, and the values sent (sends resolved), taken, and in flight between
 * the two (resolved but not yet taken: what a lost connection would lose unnoticed).
 * Kernel socket buffers are in none of these; for the raw session they hold a few MB more
 * on loopback (its in-flight values beyond `bufferedAmount` and `incoming`). Variants: the network
 * channel (capacity 64) and the raw session with its defaults (`incoming` of 1024, socket
 * paused when full, `send` waiting at a 1 MiB `bufferedAmount`), and the raw session
 * with a receiver that cannot pause its socket (as in a browser; `incomingCapacity:
 * Infinity`, the setting that loses nothing there). The sender yields to the event loop
 * (`setImmediate`) every 1,000 sends: a loop of `await send` on a raw session whose peer
 * keeps up never does otherwise (sends resolve at once while the socket takes the
 * frames), and its timers, the sampler's included, would never run.
 *
 * ```
 * node --import tsx benchmarks/network.bench.ts                 # everything, 5 runs
 * node --import tsx benchmarks/network.bench.ts --runs 1 --quick  # smoke test
 * node --import tsx benchmarks/network.bench.ts --only throughput --n 100000
 * node --import tsx benchmarks/network.bench.ts --only bytes --runs 3
 * ```
 * Options: `--runs N` (5), `--n N` messages one way (200,000), `--rendezvous-n N`
 * (10,000), `--bytes-n N` values of 1 KiB (50,000), `--bytes64-n N` values of 64 KiB
 * (2,000), `--slow-seconds S` (8), `--slow-every MS` (2), `--only throughput|bytes|slow`
 * (`throughput` includes the bytes tables),
 * `--quick` (small counts). Progress on stderr, markdown tables on stdout; exits with 1
 * when a run failed its verification.
 *
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { delay } from '../lib/index.js';
import { binary, connect, json, raw, text, wrap } from '../lib/websocket/index.js';
import { channels } from '../lib/network/index.js';
import type { Session } from '../lib/websocket/index.js';
import { formatNumber, formatRatio, markdownTable, median } from './lib/report.js';

interface Message {
  readonly seq: string;
  readonly pad: string;
}

/** Producer `p`'s `i`-th message: exactly 32 bytes of JSON (`p` < 10). */
function message(i: number, p: number): Message {
  return { seq: String(i % 1_000_000).padStart(6, '0'), pad: `abcdef${p}` };
}
if (JSON.stringify(message(0, 0)).length !== 32) throw new Error('message is not 32 bytes');

/** Counts what a receiver got and checks each producer's order. */
class Verifier {
  readonly #next: number[];
  #count = 0;
  #error: string | null = null;

  constructor(producers: number) {
    this.#next = new Array<number>(producers).fill(0);
  }

  take(value: Message): void {
    this.#count++;
    const p = Number(value.pad.slice(6));
    const expected = this.#next[p];
    if (expected === undefined) {
      this.#error ??= `unknown producer in ${JSON.stringify(value)}`;
      return;
    }
    if (Number(value.seq) !== expected % 1_000_000) {
      this.#error ??= `producer ${p}: expected ${expected}, got ${value.seq}`;
    }
    this.#next[p] = expected + 1;
  }

  verdict(expected: number): string {
    if (this.#error !== null) return this.#error;
    return this.#count === expected ? 'ok' : `expected ${expected} values, got ${this.#count}`;
  }
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/** Splits `n` values among `k` producers. */
function share(n: number, k: number, p: number): number {
  return Math.floor(n / k) + (p < n % k ? 1 : 0);
}

// ------------------------------------------------------------------- the server

/** The server's verdict: `ok` or what went wrong, and its CPU time for the run. */
interface Verdict {
  readonly verdict: string;
  readonly cpuMs: number;
}

async function serveRaw(ws: WebSocket, n: number, k: number): Promise<void> {
  const session = wrap<Message, string | Verdict>(ws, { codec: json() });
  await session.outgoing.send('ready');
  const check = new Verifier(k);
  const cpu = process.cpuUsage();
  let count = 0;
  if (n > 0) {
    for await (const value of session.incoming) {
      check.take(value);
      if (++count === n) break;
    }
  }
  await session.outgoing.send({ verdict: check.verdict(n), cpuMs: cpuMs(cpu) });
  await session.closed;
}

async function serveEcho(ws: WebSocket): Promise<void> {
  const session = wrap<Message>(ws, { codec: json() });
  for await (const value of session.incoming) await session.outgoing.send(value);
}

async function serveNetwork(ws: WebSocket, n: number, k: number, capacity: number): Promise<void> {
  const network = channels(wrap<string>(ws, { codec: text() }));
  const lanes = Array.from(
    { length: k },
    (_, p) => network.channel<Message, never>(`c${p}`, { capacity }).incoming,
  );
  const done = network.channel<never, string | Verdict>('done').outgoing;
  await done.send('ready');
  const check = new Verifier(k);
  const cpu = process.cpuUsage();
  await Promise.all(
    lanes.map(async (incoming, p) => {
      const expected = share(n, k, p);
      let count = 0;
      if (expected === 0) return;
      for await (const value of incoming) {
        check.take(value);
        if (++count === expected) break;
      }
    }),
  );
  await done.send({ verdict: check.verdict(n), cpuMs: cpuMs(cpu) });
  await network.closed;
}

/** Value `i` of the bytes runs: `size` bytes, `i` in the first four (big-endian). */
function bytesValue(i: number, size: number): Uint8Array {
  const value = new Uint8Array(size);
  new DataView(value.buffer).setUint32(0, i);
  return value;
}

/** Counts the byte values received and checks each one's length and index. */
class BytesVerifier {
  #count = 0;
  #error: string | null = null;
  constructor(readonly size: number) {}

  take(value: Uint8Array): void {
    const index = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
    if (value.byteLength !== this.size) {
      this.#error ??= `value ${this.#count}: ${value.byteLength} bytes, expected ${this.size}`;
    } else if (index !== this.#count) {
      this.#error ??= `expected value ${this.#count}, got ${index}`;
    }
    this.#count++;
  }

  verdict(expected: number): string {
    if (this.#error !== null) return this.#error;
    return this.#count === expected ? 'ok' : `expected ${expected} values, got ${this.#count}`;
  }
}

/** The raw session's side of the bytes runs: `binary()` in, JSON verdict back as text. */
async function serveBytesRaw(ws: WebSocket, n: number, size: number): Promise<void> {
  const session = wrap<string | Uint8Array<ArrayBuffer>, string>(ws, { codec: raw() });
  await session.outgoing.send('ready');
  const check = new BytesVerifier(size);
  const cpu = process.cpuUsage();
  let count = 0;
  for await (const value of session.incoming) {
    if (typeof value === 'string') throw new Error('expected bytes');
    check.take(value);
    if (++count === n) break;
  }
  await session.outgoing.send(JSON.stringify({ verdict: check.verdict(n), cpuMs: cpuMs(cpu) }));
  await session.closed;
}

async function serveBytesNetwork(
  ws: WebSocket,
  n: number,
  size: number,
  capacity: number,
): Promise<void> {
  const network = channels(wrap(ws, { codec: raw() }));
  const incoming = network.channel<Uint8Array, never>('bytes', { capacity }).incoming;
  const done = network.channel<never, string | Verdict>('done').outgoing;
  await done.send('ready');
  const check = new BytesVerifier(size);
  const cpu = process.cpuUsage();
  let count = 0;
  for await (const value of incoming) {
    check.take(value);
    if (++count === n) break;
  }
  await done.send({ verdict: check.verdict(n), cpuMs: cpuMs(cpu) });
  await network.closed;
}

async function serve(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, request) => {
    const url = new URL(request.url ?? '/', 'http://bench');
    const n = Number(url.searchParams.get('n'));
    const k = Number(url.searchParams.get('k') ?? 1);
    const capacity = url.searchParams.get('capacity');
    const size = Number(url.searchParams.get('size'));
    const job =
      url.pathname === '/bytes-raw'
        ? serveBytesRaw(ws, n, size)
        : url.pathname === '/bytes-network'
          ? serveBytesNetwork(ws, n, size, Number(capacity))
          : url.pathname === '/echo'
            ? serveEcho(ws)
            : url.pathname === '/raw'
              ? serveRaw(ws, n, k)
              : serveNetwork(ws, n, k, capacity === 'Infinity' ? Infinity : Number(capacity));
    job.catch((error: unknown) => {
      process.stderr.write(`server: ${String(error)}\n`);
      process.exitCode = 1;
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

// ------------------------------------------------------------------- the client

/** What one throughput child reports. */
interface RunResult {
  readonly ms: number;
  readonly senderCpuMs: number;
  /** `null` where the receiver does not report it (the echo server). */
  readonly receiverCpuMs: number | null;
}

function checkVerdict(reply: unknown): Verdict {
  const verdict = reply as Verdict;
  if (typeof reply !== 'object' || reply === null || verdict.verdict !== 'ok') {
    throw new Error(`verification failed: ${JSON.stringify(reply)}`);
  }
  return verdict;
}

async function clientRaw(url: string, n: number, k: number): Promise<RunResult> {
  const session = await connect<string | Verdict, Message>(`${url}/raw?n=${n}&k=${k}`);
  if ((await session.incoming.receive()) !== 'ready') throw new Error('no ready');
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: k }, async (_, p) => {
      const count = share(n, k, p);
      for (let i = 0; i < count; i++) await session.outgoing.send(message(i, p));
    }),
  );
  const verdict = checkVerdict(await session.incoming.receive());
  const ms = performance.now() - start;
  const senderCpuMs = cpuMs(cpu);
  await session.close();
  return { ms, senderCpuMs, receiverCpuMs: verdict.cpuMs };
}

async function clientNetwork(
  url: string,
  n: number,
  k: number,
  capacity: number,
): Promise<RunResult> {
  const session = await connect<string>(`${url}/network?n=${n}&k=${k}&capacity=${capacity}`, {
    codec: text(),
  });
  const network = channels(session);
  const lanes = Array.from(
    { length: k },
    (_, p) => network.channel<never, Message>(`c${p}`).outgoing,
  );
  const done = network.channel<string | Verdict, never>('done', { capacity: 1 }).incoming;
  // The server opens its channels before it sends `ready`: every lane is open now.
  if ((await done.receive()) !== 'ready') throw new Error('no ready');
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    lanes.map(async (outgoing, p) => {
      const count = share(n, k, p);
      for (let i = 0; i < count; i++) await outgoing.send(message(i, p));
    }),
  );
  const verdict = checkVerdict(await done.receive());
  const ms = performance.now() - start;
  const senderCpuMs = cpuMs(cpu);
  await network.close();
  return { ms, senderCpuMs, receiverCpuMs: verdict.cpuMs };
}

async function clientBytesRaw(url: string, n: number, size: number): Promise<RunResult> {
  const session = await connect(`${url}/bytes-raw?n=${n}&size=${size}`, { codec: raw() });
  if ((await session.incoming.receive()) !== 'ready') throw new Error('no ready');
  const values = Array.from({ length: 64 }, (_, i) => bytesValue(i, size));
  const cpu = process.cpuUsage();
  const start = performance.now();
  // Sent with the binary() codec's rules: each value one binary message as it is.
  const codec = binary();
  for (let i = 0; i < n; i++) {
    const value = values[i % 64] as Uint8Array;
    new DataView(value.buffer).setUint32(0, i);
    await session.outgoing.send(codec.encode(value));
  }
  const verdict = checkVerdict(JSON.parse(String(await session.incoming.receive())));
  const ms = performance.now() - start;
  const senderCpuMs = cpuMs(cpu);
  await session.close();
  return { ms, senderCpuMs, receiverCpuMs: verdict.cpuMs };
}

async function clientBytesNetwork(
  url: string,
  n: number,
  size: number,
  capacity: number,
): Promise<RunResult> {
  const session = await connect(`${url}/bytes-network?n=${n}&size=${size}&capacity=${capacity}`, {
    codec: raw(),
  });
  const network = channels(session);
  const outgoing = network.channel<never, Uint8Array>('bytes').outgoing;
  const done = network.channel<string | Verdict, never>('done', { capacity: 1 }).incoming;
  if ((await done.receive()) !== 'ready') throw new Error('no ready');
  const values = Array.from({ length: 64 }, (_, i) => bytesValue(i, size));
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    // A value is copied into its message when it leaves, so reusing 64 buffers is safe
    // with a capacity of at most 64 (the send resolves once the value has left).
    const value = values[i % 64] as Uint8Array;
    new DataView(value.buffer).setUint32(0, i);
    await outgoing.send(value);
  }
  const verdict = checkVerdict(await done.receive());
  const ms = performance.now() - start;
  const senderCpuMs = cpuMs(cpu);
  await network.close();
  return { ms, senderCpuMs, receiverCpuMs: verdict.cpuMs };
}

async function clientEcho(url: string, n: number): Promise<RunResult> {
  const session = await connect<Message>(`${url}/echo`);
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    await session.outgoing.send(message(i, 0));
    const reply = await session.incoming.receive();
    if (Number(reply.seq) !== i % 1_000_000) throw new Error('verification failed: echo order');
  }
  const ms = performance.now() - start;
  const senderCpuMs = cpuMs(cpu);
  await session.close();
  return { ms, senderCpuMs, receiverCpuMs: null };
}

// ---------------------------------------------------------------- slow consumer

const SAMPLE_MS = 250;

/** One sample of a process: seconds since the first, bytes, and a count of values. */
interface Sample {
  readonly t: number;
  readonly heap: number;
  readonly buffers: number;
  readonly buffered: number;
  readonly values: number;
}

function gc(): void {
  const collect = globalThis.gc;
  if (collect === undefined) throw new Error('run with --expose-gc');
  collect();
  collect();
}

/** Samples this process every SAMPLE_MS until `stop()`; `values()` counts sent or taken. */
function sampler(values: () => number, buffered: () => number): { stop: () => Sample[] } {
  const samples: Sample[] = [];
  const start = performance.now();
  const take = (): void => {
    gc();
    const memory = process.memoryUsage();
    samples.push({
      t: (performance.now() - start) / 1000,
      heap: memory.heapUsed,
      buffers: memory.arrayBuffers,
      buffered: buffered(),
      values: values(),
    });
  };
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

type SlowVariant = 'network' | 'raw' | 'raw-unpaused';
const SLOW_VARIANTS: readonly SlowVariant[] = ['network', 'raw', 'raw-unpaused'];

/**
 * The receiving process: one connection, one value every `every` ms, for `seconds` (half
 * a second more than the sender sends, so that it samples the whole sending time).
 */
async function slowReceiver(variant: SlowVariant, every: number, seconds: number): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  const connection = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  process.stdout.write(`PORT ${(wss.address() as AddressInfo).port}\n`);
  const ws = await connection;
  const deadline = performance.now() + seconds * 1000 + 500;
  let taken = 0;
  let incoming: AsyncIterable<Message>;
  if (variant === 'raw') {
    incoming = wrap<Message>(ws, { codec: json() }).incoming;
  } else if (variant === 'raw-unpaused') {
    // What a browser must do not to lose messages: it cannot pause its socket.
    incoming = wrap<Message>(ws, { codec: json(), incomingCapacity: Infinity }).incoming;
  } else {
    const network = channels(wrap<string>(ws, { codec: text() }));
    incoming = network.channel<Message, never>('slow', { capacity: 64 }).incoming;
  }
  const sampling = sampler(
    () => taken,
    () => 0,
  );
  const check = new Verifier(1);
  try {
    for await (const value of incoming) {
      check.take(value);
      taken++;
      if (performance.now() > deadline) break;
      await delay(every);
    }
  } catch {
    // The sender dropped the connection: the network channel ends with ConnectionLostError.
  }
  const samples = sampling.stop();
  const verdict = check.verdict(taken);
  process.stdout.write(`SAMPLES ${JSON.stringify({ verdict, samples })}\n`);
  ws.terminate();
  wss.close();
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    setImmediate(resolve);
  });
}

/** The sending process: sends as fast as it may for `seconds`, then drops the connection. */
async function slowSender(variant: SlowVariant, url: string, seconds: number): Promise<void> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let send: (value: Message, signal: AbortSignal) => Promise<void>;
  let session: Pick<Session<unknown>, 'terminate' | 'closed'>;
  if (variant !== 'network') {
    const raw = wrap<unknown, Message>(ws, { codec: json() });
    session = raw;
    send = (value, signal) => raw.outgoing.send(value, { signal });
  } else {
    const textSession = wrap<string>(ws, { codec: text() });
    session = textSession;
    const outgoing = channels(textSession).channel<never, Message>('slow').outgoing;
    send = (value, signal) => outgoing.send(value, { signal });
  }
  let sent = 0;
  const sampling = sampler(
    () => sent,
    () => ws.bufferedAmount,
  );
  const stop = new AbortController();
  const timer = setTimeout(() => {
    stop.abort();
  }, seconds * 1000);
  try {
    for (;;) {
      await send(message(sent, 0), stop.signal);
      // A loop of sends that resolve at once never lets timers run (see the module doc).
      if (++sent % 1000 === 0) await yieldToEventLoop();
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  }
  clearTimeout(timer);
  const samples = sampling.stop();
  process.stdout.write(`SAMPLES ${JSON.stringify({ verdict: 'ok', samples })}\n`);
  session.terminate();
  await session.closed;
}

// ---------------------------------------------------------------- orchestration

const self = fileURLToPath(import.meta.url);

interface Child {
  readonly stdout: Promise<string>;
  readonly child: ChildProcessByStdio<Writable, Readable, null>;
  /** Resolves with the port the child printed. */
  readonly port: Promise<number>;
}

function start(args: readonly string[], gcFlag = false): Child {
  const child = spawn(
    process.execPath,
    [...(gcFlag ? ['--expose-gc'] : []), '--import', 'tsx', self, ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => {
    resolvePort = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    const found = /PORT (\d+)/.exec(out);
    if (found !== null) resolvePort(Number(found[1]));
  });
  const stdout = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${args.join(' ')}: exit ${String(code)}`));
    });
  });
  return { stdout, child, port };
}

interface Options {
  readonly runs: number;
  readonly n: number;
  readonly rendezvousN: number;
  readonly bytesN: number;
  readonly bytes64N: number;
  readonly slowSeconds: number;
  readonly slowEvery: number;
  readonly only: 'throughput' | 'bytes' | 'slow' | undefined;
}

/** A throughput variant: its label, child arguments, and how many values it moves. */
interface Variant {
  readonly label: string;
  readonly args: readonly string[];
  readonly n: number;
  /** The label of the variant its ratio is taken against (absent: none). */
  readonly base?: string;
  /** Rendezvous and round trips go to their own table. */
  readonly table: 'one-way' | 'multiplexed' | 'round-trip' | 'bytes';
}

function bytesVariants(options: Options): Variant[] {
  const list: Variant[] = [];
  for (const [size, n, name] of [
    [1024, options.bytesN, '1 KiB'],
    [64 * 1024, options.bytes64N, '64 KiB'],
  ] as const) {
    const base = `raw binary session, ${name}`;
    list.push(
      { label: base, args: ['bytes-raw', `${n}`, `${size}`], n, table: 'bytes' },
      {
        label: `network, capacity 64, ${name}`,
        args: ['bytes-network', `${n}`, `${size}`, '64'],
        n,
        base,
        table: 'bytes',
      },
    );
  }
  return list;
}

function variants(options: Options): Variant[] {
  if (options.only === 'bytes') return bytesVariants(options);
  const { n, rendezvousN } = options;
  const list: Variant[] = [
    { label: 'raw session', args: ['raw', `${n}`, '1'], n, table: 'one-way' },
  ];
  for (const capacity of [16, 64, 256, Infinity]) {
    list.push({
      label: `network, capacity ${capacity === Infinity ? 'Infinity' : capacity}`,
      args: ['network', `${n}`, '1', `${capacity}`],
      n,
      base: 'raw session',
      table: 'one-way',
    });
  }
  list.push(
    { label: 'raw session ×4 producers', args: ['raw', `${n}`, '4'], n, table: 'multiplexed' },
    {
      label: 'network ×4 channels, capacity 64',
      args: ['network', `${n}`, '4', '64'],
      n,
      base: 'raw session ×4 producers',
      table: 'multiplexed',
    },
    {
      label: 'raw session request/response',
      args: ['echo', `${rendezvousN}`],
      n: rendezvousN,
      table: 'round-trip',
    },
    {
      label: 'network, rendezvous',
      args: ['network', `${rendezvousN}`, '1', '0'],
      n: rendezvousN,
      base: 'raw session request/response',
      table: 'round-trip',
    },
    ...bytesVariants(options),
  );
  return list;
}

async function throughput(options: Options): Promise<boolean> {
  const server = start(['--serve']);
  const url = `ws://127.0.0.1:${await server.port}`;
  const list = variants(options);
  const results = new Map<string, RunResult[]>();
  let ok = true;
  try {
    for (let round = 0; round < options.runs; round++) {
      for (const variant of list) {
        let text: string;
        try {
          text = await start(['--child', url, ...variant.args]).stdout;
        } catch (error) {
          ok = false;
          process.stderr.write(`round ${round + 1} ${variant.label}: FAILED ${String(error)}\n`);
          continue;
        }
        const result = JSON.parse(/RESULT (.*)/.exec(text)?.[1] ?? 'null') as RunResult;
        results.set(variant.label, [...(results.get(variant.label) ?? []), result]);
        const rate = (variant.n / result.ms) * 1000;
        process.stderr.write(
          `round ${round + 1}/${options.runs} ${variant.label}: ${formatNumber(rate)} msg/s\n`,
        );
      }
    }
  } finally {
    server.child.stdin.end();
    await server.stdout.catch(() => undefined);
  }
  const rate = (label: string): number | null => {
    const runs = results.get(label);
    if (runs === undefined || runs.length === 0) return null;
    const variant = list.find((v) => v.label === label) as Variant;
    return median(runs.map((r) => (variant.n / r.ms) * 1000));
  };
  const perMessage = (label: string, side: 'senderCpuMs' | 'receiverCpuMs'): string => {
    const runs = results.get(label) ?? [];
    const variant = list.find((v) => v.label === label) as Variant;
    const values = runs.flatMap((r) => {
      const ms = r[side];
      return ms === null ? [] : [(ms * 1000) / variant.n];
    });
    return values.length === 0 ? '' : formatNumber(median(values), 2);
  };
  const tables: [Variant['table'], string][] = [
    ['one-way', `One way: ${formatNumber(options.n)} values of 32 bytes, one producer`],
    [
      'multiplexed',
      `Four producers at once, ${formatNumber(options.n)} values in all: four network channels over one connection vs four producers on one raw session`,
    ],
    [
      'round-trip',
      `A round trip per value, ${formatNumber(options.rendezvousN)} values: rendezvous channel (pull → value → ack) vs sequential request/response on a raw session`,
    ],
    [
      'bytes',
      `Bytes: ${formatNumber(options.bytesN)} Uint8Array values of 1 KiB and ${formatNumber(options.bytes64N)} of 64 KiB, one producer: a network channel (capacity 64, raw() session, binary messages) vs the raw session with binary()`,
    ],
  ];
  for (const [table, title] of tables) {
    if (!list.some((v) => v.table === table)) continue;
    const rows = list
      .filter((v) => v.table === table)
      .map((v) => {
        const own = rate(v.label);
        return [
          v.label,
          own === null ? 'FAILED' : formatNumber(own),
          v.base === undefined ? '' : formatRatio(own, rate(v.base)),
          perMessage(v.label, 'senderCpuMs'),
          perMessage(v.label, 'receiverCpuMs'),
        ];
      });
    process.stdout.write(
      `### ${title}\n\n${markdownTable({
        header: ['variant', 'msg/s', 'ratio to raw', 'sender CPU µs/msg', 'receiver CPU µs/msg'],
        rows,
        right: [1, 2, 3, 4],
      })}\n\n`,
    );
  }
  return ok;
}

interface Series {
  readonly verdict: string;
  readonly samples: readonly Sample[];
}

function parseSeries(text: string): Series {
  const found = /SAMPLES (.*)/.exec(text);
  if (found === null) throw new Error('no samples');
  return JSON.parse(found[1] as string) as Series;
}

/** Least-squares slope of `y` over `t`, per second. */
function slope(points: readonly { t: number; y: number }[]): number {
  const count = points.length;
  if (count < 2) return NaN;
  const mt = points.reduce((s, p) => s + p.t, 0) / count;
  const my = points.reduce((s, p) => s + p.y, 0) / count;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.y - my);
    den += (p.t - mt) ** 2;
  }
  return num / den;
}

/** Peak and end growth over the first sample, and the late slope, of one quantity. */
interface Summary {
  readonly peak: number;
  readonly end: number;
  readonly lateSlope: number;
}

function summarize(samples: readonly Sample[], pick: (s: Sample) => number): Summary {
  const first = pick(samples[0] as Sample);
  const values = samples.map((s) => pick(s) - first);
  const half = samples[samples.length - 1]!.t / 2;
  return {
    peak: Math.max(...values),
    end: values[values.length - 1] as number,
    lateSlope: slope(samples.filter((s) => s.t >= half).map((s) => ({ t: s.t, y: pick(s) }))),
  };
}

const MB = 1024 * 1024;

async function slowConsumer(options: Options): Promise<boolean> {
  const runsOf = new Map<SlowVariant, { sender: Series; receiver: Series }[]>();
  let ok = true;
  for (let round = 0; round < options.runs; round++) {
    for (const variant of SLOW_VARIANTS) {
      const receiver = start(
        ['--slow-receive', variant, `${options.slowEvery}`, `${options.slowSeconds}`],
        true,
      );
      try {
        const url = `ws://127.0.0.1:${await receiver.port}`;
        const sender = start(['--slow-send', variant, url, `${options.slowSeconds}`], true);
        const [sent, received] = await Promise.all([sender.stdout, receiver.stdout]);
        const pair = { sender: parseSeries(sent), receiver: parseSeries(received) };
        if (pair.receiver.verdict !== 'ok') throw new Error(pair.receiver.verdict);
        runsOf.set(variant, [...(runsOf.get(variant) ?? []), pair]);
        const last = pair.sender.samples[pair.sender.samples.length - 1] as Sample;
        process.stderr.write(
          `round ${round + 1}/${options.runs} slow consumer, ${variant}: sent ${formatNumber(last.values)}, sender heap+buffers +${formatNumber((last.heap + last.buffers - pair.sender.samples[0]!.heap - pair.sender.samples[0]!.buffers) / MB, 1)} MB\n`,
        );
      } catch (error) {
        ok = false;
        receiver.child.kill();
        process.stderr.write(
          `round ${round + 1} slow consumer ${variant}: FAILED ${String(error)}\n`,
        );
      }
    }
  }
  const rows: string[][] = [];
  const label = {
    network: 'network, capacity 64',
    raw: 'raw session (defaults)',
    'raw-unpaused': 'raw session, receiver cannot pause',
  } as const;
  for (const variant of SLOW_VARIANTS) {
    const runs = runsOf.get(variant) ?? [];
    if (runs.length === 0) {
      rows.push([label[variant], 'FAILED']);
      continue;
    }
    const cell = (
      side: 'sender' | 'receiver',
      pick: (s: Sample) => number,
      field: keyof Summary,
      unit = MB,
    ): string =>
      formatNumber(
        median(runs.map((r) => summarize(r[side].samples, pick)[field])) / unit,
        unit === MB ? 2 : 0,
      );
    const memory = (s: Sample): number => s.heap + s.buffers;
    const lastOf = (side: 'sender' | 'receiver', run: (typeof runs)[number]): number =>
      run[side].samples[run[side].samples.length - 1]!.values;
    rows.push([
      label[variant],
      cell('sender', memory, 'peak'),
      cell('sender', memory, 'end'),
      cell('sender', memory, 'lateSlope'),
      formatNumber(
        median(runs.map((r) => Math.max(...r.sender.samples.map((s) => s.buffered)))) / 1024,
      ),
      cell('receiver', memory, 'peak'),
      cell('receiver', memory, 'lateSlope'),
      formatNumber(median(runs.map((r) => lastOf('sender', r)))),
      formatNumber(median(runs.map((r) => lastOf('receiver', r)))),
      formatNumber(median(runs.map((r) => lastOf('sender', r) - lastOf('receiver', r)))),
    ]);
  }
  process.stdout.write(
    `### Slow consumer: one value taken every ${options.slowEvery} ms, sender as fast as it may for ${options.slowSeconds} s (medians of ${options.runs} runs)\n\n` +
      'Memory is `heapUsed + arrayBuffers` after `gc()`, as growth over the first sample (MB); the slope is over the second half of the run (MB/s).\n\n' +
      `${markdownTable({
        header: [
          'variant',
          'sender peak',
          'sender end',
          'sender late slope',
          'sender max bufferedAmount KB',
          'receiver peak',
          'receiver late slope',
          'sends resolved',
          'values taken',
          'in flight',
        ],
        rows,
        right: [1, 2, 3, 4, 5, 6, 7, 8, 9],
      })}\n\n`,
  );
  return ok;
}

/** The commit measured, and whether `lib/` differed from it. */
function codeVersion(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const dirty = git('status', '--porcelain', '--', 'lib') !== '';
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes in lib/' : ''}`;
  } catch {
    return 'commit unknown';
  }
}

function numberAfter(args: readonly string[], flag: string, fallback: number): number {
  const at = args.indexOf(flag);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!(value > 0))
    throw new RangeError(`Expected ${flag} to be a positive number, got ${args[at + 1]}`);
  return value;
}

async function main(args: readonly string[]): Promise<void> {
  const [mode] = args;
  if (mode === '--serve') return serve();
  if (mode === '--child') {
    const [, url, job, n, k, capacity] = args as string[];
    const result =
      job === 'bytes-raw'
        ? await clientBytesRaw(url as string, Number(n), Number(k))
        : job === 'bytes-network'
          ? await clientBytesNetwork(url as string, Number(n), Number(k), Number(capacity))
          : job === 'raw'
            ? await clientRaw(url as string, Number(n), Number(k))
            : job === 'echo'
              ? await clientEcho(url as string, Number(n))
              : await clientNetwork(url as string, Number(n), Number(k), Number(capacity));
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  if (mode === '--slow-receive') {
    return slowReceiver(args[1] as SlowVariant, Number(args[2]), Number(args[3]));
  }
  if (mode === '--slow-send') {
    return slowSender(args[1] as SlowVariant, args[2] as string, Number(args[3]));
  }
  const quick = args.includes('--quick');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt < 0 ? undefined : args[onlyAt + 1];
  if (only !== undefined && only !== 'throughput' && only !== 'bytes' && only !== 'slow') {
    throw new RangeError(`Expected --only throughput, bytes or slow, got ${only}`);
  }
  const options: Options = {
    runs: numberAfter(args, '--runs', 5),
    n: numberAfter(args, '--n', quick ? 20_000 : 200_000),
    rendezvousN: numberAfter(args, '--rendezvous-n', quick ? 1_000 : 10_000),
    bytesN: numberAfter(args, '--bytes-n', quick ? 5_000 : 50_000),
    bytes64N: numberAfter(args, '--bytes64-n', quick ? 300 : 2_000),
    slowSeconds: numberAfter(args, '--slow-seconds', quick ? 2 : 8),
    slowEvery: numberAfter(args, '--slow-every', 2),
    only,
  };
  const load = (): string =>
    os
      .loadavg()
      .map((l) => formatNumber(l, 2))
      .join(' ');
  const loadBefore = load();
  process.stdout.write(
    `Network channels vs the raw session, Node ${process.version} to Node over 127.0.0.1, both ends sluice; medians of ${options.runs} runs; ${codeVersion()}.\n\n`,
  );
  let ok = true;
  if (options.only !== 'slow') ok = (await throughput(options)) && ok;
  if (options.only === undefined || options.only === 'slow') {
    ok = (await slowConsumer(options)) && ok;
  }
  process.stdout.write(
    `Load average (1, 5, 15 min) on ${os.availableParallelism()} cores: ${loadBefore} at the start, ${load()} at the end.\n`,
  );
  if (!ok) process.exitCode = 1;
}

await main(process.argv.slice(2));
