/**
 * The resume benchmark (issue 16): what resumable network channels cost against the same
 * channels with `resume: false`, both ends sluice over a real `ws` connection on
 * 127.0.0.1, the server in a child process (kept for the whole run), the client here.
 *
 * **Throughput.** A channel endpoint with one channel `up` (capacity 64) from a
 * reconnecting client to the server; per run a fresh client sends `--n` 32-byte JSON
 * objects with `await send` in a loop, and the clock stops when the server reports (on
 * `done`) that it received them all, in order. Variants: `resume` (the default: resume
 * on) and `resume: false`, on two paths of the same server; rounds interleave them (the
 * order alternates). Figure: the median msgs/s of `--runs` runs; ratio = resume ÷
 * `resume: false` (the target: ≥ 0.95).
 *
 * **Time to the first resumed value.** The server sends 1, 2, 3, … on `down` (capacity
 * 16), a value every ms, to a client behind a cutting proxy (spec/helpers/cutting-proxy.ts)
 * that resets the connection every 200–300 ms. Per cut, the time from the new
 * connection's socket `open` event to the first value the client
 * receives after it: with resume, the same handler's next value; with `resume: false`,
 * the first value of the new session (its handler runs again). Median, p99 and max over
 * `--cuts` cuts per variant. The server's pacing (1 ms) is part of the figure.
 *
 * ```
 * node --import tsx benchmarks/resume.bench.ts                 # 5 runs × 100,000, 60 cuts
 * node --import tsx benchmarks/resume.bench.ts --quick --runs 1  # smoke test
 * ```
 * Options: `--runs N` (5), `--n N` (100,000), `--cuts N` (60), `--quick` (20,000 values,
 * 15 cuts). Progress on stderr, markdown tables on stdout; exits with 1 when a run failed
 * its verification.
 *
 * Until resume is implemented the option is ignored and both variants run the same code
 * (the table then says so: `resumes` is absent from the sessions).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { delay } from '../lib/index.js';
import { channelEndpoint, contract, toClient, toServer } from '../lib/network/index.js';
import type { ChannelEndpoint } from '../lib/network/index.js';
import { serve } from '../lib/server/index.js';
import { startCuttingProxy } from '../spec/helpers/cutting-proxy.js';
import { formatNumber, formatRatio, markdownTable, median } from './lib/report.js';

interface Message {
  readonly seq: string;
  readonly pad: string;
}

/** The `i`-th message: exactly 32 bytes of JSON. */
function message(i: number): Message {
  return { seq: String(i % 1_000_000).padStart(6, '0'), pad: 'abcdefg' };
}

const benchContract = contract('resume-bench', 1, {
  up: toServer<Message>({ capacity: 64 }),
  down: toClient<number>({ capacity: 16 }),
  done: toClient<string>({ capacity: 1 }),
});

type Variant = 'resume' | 'plain';
const VARIANTS: readonly Variant[] = ['plain', 'resume'];

const endpoints = {
  throughput: {
    resume: channelEndpoint('/throughput-resume', benchContract),
    plain: channelEndpoint('/throughput-plain', benchContract),
  },
  latency: {
    resume: channelEndpoint('/latency-resume', benchContract),
    plain: channelEndpoint('/latency-plain', benchContract),
  },
} as const;

/** The option the variant passes to both ends (absent from today's option types). */
function resumeOption(variant: Variant): object {
  return variant === 'resume' ? {} : { resume: false };
}

function resumesOf(session: object): number | undefined {
  const resumes: unknown = Reflect.get(session, 'resumes');
  return typeof resumes === 'number' ? resumes : undefined;
}

// ------------------------------------------------------------------- the server

async function serveBench(n: number): Promise<void> {
  const routes = VARIANTS.flatMap((variant) => {
    const throughput = endpoints.throughput[variant].handle(async ({ channels: { up, done } }) => {
      let expected = 0;
      let verdict = 'ok';
      for await (const value of up) {
        if (value.seq !== message(expected).seq && verdict === 'ok') {
          verdict = `value ${expected} was ${JSON.stringify(value)}`;
        }
        expected += 1;
        if (expected === n) break;
      }
      await done.send(expected === n ? verdict : `received ${expected} of ${n}`);
      await up.receiveCatching();
    }, resumeOption(variant));
    const latency = endpoints.latency[variant].handle(async ({ channels: { down }, signal }) => {
      try {
        for (let i = 1; !signal.aborted; i++) {
          await down.send(i);
          await delay(1, { signal });
        }
      } catch {
        // The session ended (the client closed, or, without resume, the cut).
      }
    }, resumeOption(variant));
    return [
      [endpoints.throughput[variant].path, throughput],
      [endpoints.latency[variant].path, latency],
    ] as const;
  });
  const server = await serve(
    { perMessageDeflate: false, onError: () => undefined },
    Object.fromEntries(routes),
  );
  process.stdout.write(`PORT ${new URL(server.url).port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    process.stdin.pause();
    void server.close({ timeout: 1000 });
  });
}

// ------------------------------------------------------------------- the client

const FAST_RECONNECT = { minDelay: 1, maxDelay: 10, jitter: 0, minUptime: 0 } as const;

/** One throughput run: msgs/s, and whether the session had `resumes`. */
async function throughputRun(
  endpoint: ChannelEndpoint<typeof benchContract.channels>,
  url: string,
  variant: Variant,
  n: number,
): Promise<{ rate: number; hasResumes: boolean }> {
  let result: { rate: number; hasResumes: boolean } | undefined;
  let failure: unknown;
  const client = endpoint.reconnecting(
    url,
    async (session) => {
      const { up, done } = session.channels;
      try {
        const start = performance.now();
        for (let i = 0; i < n; i++) await up.send(message(i));
        const verdict = await done.receive();
        const ms = performance.now() - start;
        if (verdict !== 'ok') throw new Error(`verification failed: ${verdict}`);
        result = { rate: (n / ms) * 1000, hasResumes: resumesOf(session) !== undefined };
      } catch (error) {
        failure = error;
      }
      up.close();
    },
    { reconnect: FAST_RECONNECT, ...resumeOption(variant) },
  );
  await client.done.catch((error: unknown) => (failure ??= error));
  if (result === undefined) throw failure ?? new Error('the run did not finish');
  return result;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** Cuts `cuts` times; per cut, ms from the new connection's open to its first value. */
async function latencyRun(
  endpoint: ChannelEndpoint<typeof benchContract.channels>,
  port: number,
  variant: Variant,
  cuts: number,
): Promise<{ samples: number[]; handlerRuns: number }> {
  const proxy = await startCuttingProxy({ targetPort: port });
  const samples: number[] = [];
  let openedAt: number | undefined;
  let handlerRuns = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const watchdog = setTimeout(() => finish(), cuts * 1000 + 10_000);
  let sockets = 0;
  // The client's sockets: each records when it opened (this listener is the first one).
  class TimedWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[], options?: object) {
      super(address, protocols, options);
      sockets += 1;
      if (sockets === 1) return;
      this.addEventListener('open', () => {
        openedAt = performance.now();
      });
    }
  }
  const client = endpoint.reconnecting(
    proxy.url,
    async ({ channels: { down } }) => {
      handlerRuns += 1;
      try {
        for await (const value of down) {
          if (typeof value !== 'number') throw new Error('expected numbers');
          if (openedAt === undefined) continue;
          samples.push(performance.now() - openedAt);
          openedAt = undefined;
          if (samples.length >= cuts) finish();
        }
      } catch {
        // Without resume the session ends with the cut: the next one runs this again.
      }
    },
    { reconnect: { ...FAST_RECONNECT, WebSocket: TimedWebSocket }, ...resumeOption(variant) },
  );
  proxy.startCutting({ minMs: 200, maxMs: 300, modes: ['reset'] });
  await finished;
  clearTimeout(watchdog);
  proxy.stopCutting();
  await client.stop();
  await client.done.catch(() => undefined);
  await proxy.close();
  return { samples, handlerRuns };
}

type Child = ChildProcessByStdio<Writable, Readable, null>;

async function startServer(n: number): Promise<{ child: Child; port: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', '--n', String(n)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /PORT (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
  return { child, port };
}

function numberAfter(args: readonly string[], flag: string, fallback: number): number {
  const index = args.indexOf(flag);
  if (index < 0) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected ${flag} to be a positive integer, got ${args[index + 1]}`);
  }
  return value;
}

async function main(args: readonly string[]): Promise<void> {
  const quick = args.includes('--quick');
  const n = numberAfter(args, '--n', quick ? 20_000 : 100_000);
  if (args.includes('--serve')) {
    await serveBench(n);
    return;
  }
  const runs = numberAfter(args, '--runs', 5);
  const cuts = numberAfter(args, '--cuts', quick ? 15 : 60);
  const { child, port } = await startServer(n);
  const url = `ws://127.0.0.1:${port}`;
  const rates: Record<Variant, number[]> = { plain: [], resume: [] };
  let hasResumes = false;
  let failed = false;
  try {
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const variant of order) {
        try {
          const result = await throughputRun(endpoints.throughput[variant], url, variant, n);
          rates[variant].push(result.rate);
          if (variant === 'resume') hasResumes ||= result.hasResumes;
          process.stderr.write(
            `throughput ${variant} run ${run + 1}: ${formatNumber(result.rate)} msgs/s\n`,
          );
        } catch (error) {
          failed = true;
          process.stderr.write(`throughput ${variant} run ${run + 1} failed: ${String(error)}\n`);
        }
      }
    }
    const latency: Record<Variant, { samples: number[]; handlerRuns: number }> = {
      plain: { samples: [], handlerRuns: 0 },
      resume: { samples: [], handlerRuns: 0 },
    };
    for (const variant of VARIANTS) {
      process.stderr.write(
        `time to the first value after a reconnect, ${variant}: ${cuts} cuts…\n`,
      );
      latency[variant] = await latencyRun(endpoints.latency[variant], port, variant, cuts);
    }
    const plainRate = rates.plain.length > 0 ? median(rates.plain) : null;
    const label = (variant: Variant): string =>
      variant === 'resume' ? 'resume (default options)' : 'resume: false';
    const note = hasResumes
      ? ''
      : '\n\n**Resume is not implemented in this build** (the sessions have no `resumes`): both variants ran the same code.';
    process.stdout.write(
      `\nResumable channel sessions against \`resume: false\` (Node ${process.version}, ${os.cpus().length} cores, load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(
          ' ',
        )}): throughput of ${formatNumber(n)} × 32-byte values on one channel (capacity 64), median of ${runs} runs${note}\n\n` +
        markdownTable({
          header: ['variant', 'msgs/s', 'ratio'],
          rows: VARIANTS.map((variant) => {
            const rate = rates[variant].length > 0 ? median(rates[variant]) : null;
            return [
              label(variant),
              rate === null ? 'failed' : formatNumber(rate),
              formatRatio(rate, plainRate),
            ];
          }),
          right: [1, 2],
        }) +
        `\n\nTime from a new connection's open to the first value received on it, per cut (reset every 200–300 ms through a proxy; the server sends a value every ms)\n\n` +
        markdownTable({
          header: ['variant', 'cuts', 'handler runs', 'median ms', 'p99 ms', 'max ms'],
          rows: VARIANTS.map((variant) => {
            const { samples, handlerRuns } = latency[variant];
            return [
              label(variant),
              String(samples.length),
              String(handlerRuns),
              samples.length > 0 ? median(samples).toFixed(1) : '-',
              samples.length > 0 ? percentile(samples, 99).toFixed(1) : '-',
              samples.length > 0 ? Math.max(...samples).toFixed(1) : '-',
            ];
          }),
          right: [1, 2, 3, 4, 5],
        }) +
        '\n',
    );
    if (VARIANTS.some((variant) => latency[variant].samples.length < cuts)) failed = true;
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
  }
  if (failed) process.exitCode = 1;
}

await main(process.argv.slice(2));
