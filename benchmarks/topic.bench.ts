/**
 * The topic benchmark: one publisher fanning values out to 1, 10 and 1,000 local
 * subscribers, each consumed by its own loop, written three ways:
 *
 * - `sluice Topic`: `topic.subscribe({ capacity: 64 })` ('suspend', default retention of
 *   100), `await topic.publish(v)`, a `for await` loop per subscriber;
 * - `effect PubSub`: `PubSub.bounded(64)` (back-pressure: the same 'suspend'), one fiber
 *   per subscriber doing `PubSub.take`, `PubSub.publish` from the publisher fiber;
 * - `channel loop`: a `Channel(64)` per subscriber and a hand loop that offers each value
 *   to every channel (`trySend`, else `await send`): the least a fan-out over sluice's
 *   own channels costs, with no positions, retention or policies.
 *
 * Every run delivers about `--deliveries` values in all (values × subscribers; default
 * 1,000,000) and checks that each subscriber got every value once, in order. Each figure
 * is the median of `--runs` fresh processes (round-robin), in ns per delivery, with its
 * ratio (of CPU time) to the channel loop and to Effect in the same run. `memory` mode reports heap
 * bytes per idle subscriber (subscribed, nothing buffered, no receive pending).
 *
 * ```
 * node --import tsx benchmarks/topic.bench.ts [--runs 3] [--deliveries 1000000]
 * node --expose-gc --import tsx benchmarks/topic.bench.ts --child <variant> <subscribers>
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Effect, PubSub } from 'effect';

import { Channel, Topic } from '../lib/index.js';
import { median } from './lib/report.js';

const CAPACITY = 64;
const FAN_OUTS = [1, 10, 1000] as const;
const IDLE = 10_000;

/** What each subscriber saw: a count and whether every value came in order. */
interface Tally {
  count: number;
  ordered: boolean;
}

function tally(): Tally {
  return { count: 0, ordered: true };
}

function see(t: Tally, value: number): void {
  if (value !== t.count) t.ordered = false;
  t.count++;
}

async function sluiceTopic(subscribers: number, n: number): Promise<Tally[]> {
  const topic = new Topic<number>();
  const tallies = Array.from({ length: subscribers }, tally);
  const consumers = tallies.map(async (t) => {
    for await (const event of topic.subscribe({ capacity: CAPACITY })) {
      if (event.type === 'publication') see(t, event.value);
      else t.ordered = false;
    }
  });
  for (let i = 0; i < n; i++) await topic.publish(i);
  topic.close();
  await Promise.all(consumers);
  return tallies;
}

function effectPubSub(subscribers: number, n: number): Promise<Tally[]> {
  const tallies = Array.from({ length: subscribers }, tally);
  return Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pubsub = yield* PubSub.bounded<number>(CAPACITY);
        const consumers: Effect.Effect<void>[] = [];
        for (const t of tallies) {
          const subscription = yield* PubSub.subscribe(pubsub);
          consumers.push(
            Effect.gen(function* () {
              for (let i = 0; i < n; i++) see(t, yield* PubSub.take(subscription));
            }),
          );
        }
        const publisher = Effect.gen(function* () {
          for (let i = 0; i < n; i++) yield* PubSub.publish(pubsub, i);
        });
        yield* Effect.all([publisher, ...consumers], { concurrency: 'unbounded' });
        return tallies;
      }),
    ),
  );
}

async function channelLoop(subscribers: number, n: number): Promise<Tally[]> {
  const channels = Array.from({ length: subscribers }, () => new Channel<number>(CAPACITY));
  const tallies = Array.from({ length: subscribers }, tally);
  const consumers = channels.map(async (channel, k) => {
    const t = tallies[k]!;
    for await (const value of channel) see(t, value);
  });
  for (let i = 0; i < n; i++) {
    for (const channel of channels) {
      if (!channel.trySend(i).ok) await channel.send(i);
    }
  }
  for (const channel of channels) channel.close();
  await Promise.all(consumers);
  return tallies;
}

const VARIANTS = {
  'sluice Topic': sluiceTopic,
  'effect PubSub': effectPubSub,
  'channel loop': channelLoop,
} as const;
type Variant = keyof typeof VARIANTS;
const isVariant = (name: string): name is Variant => Object.hasOwn(VARIANTS, name);

function verify(tallies: readonly Tally[], n: number): string | null {
  for (const [k, t] of tallies.entries()) {
    if (t.count !== n) return `subscriber ${k} got ${t.count} values, expected ${n}`;
    if (!t.ordered) return `subscriber ${k} got values out of order or a gap`;
  }
  return null;
}

/** Heap bytes per idle subscriber of `variant`, with `IDLE` of them. */
async function idleBytes(variant: Variant): Promise<number> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the child with --expose-gc');
  const held: unknown[] = [];
  const measure = async (make: () => Promise<void> | void): Promise<number> => {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    await make();
    gc();
    gc();
    return (process.memoryUsage().heapUsed - before) / IDLE;
  };
  if (variant === 'sluice Topic') {
    const topic = new Topic<number>();
    const bytes = await measure(() => {
      for (let i = 0; i < IDLE; i++) held.push(topic.subscribe({ capacity: CAPACITY }));
    });
    topic.close();
    return bytes;
  }
  if (variant === 'channel loop') {
    return measure(() => {
      for (let i = 0; i < IDLE; i++) held.push(new Channel<number>(CAPACITY));
    });
  }
  let bytes = 0;
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pubsub = yield* PubSub.bounded<number>(CAPACITY);
        gc();
        gc();
        const before = process.memoryUsage().heapUsed;
        for (let i = 0; i < IDLE; i++) held.push(yield* PubSub.subscribe(pubsub));
        gc();
        gc();
        bytes = (process.memoryUsage().heapUsed - before) / IDLE;
      }),
    ),
  );
  return bytes;
}

/** Child process: warm up, time one run, print `{"ns": …}`, `{"bytes": …}` or `{"error": …}`. */
async function child(
  variant: Variant,
  subscribers: number | 'memory',
  deliveries: number,
): Promise<void> {
  if (subscribers === 'memory') {
    process.stdout.write(`${JSON.stringify({ bytes: await idleBytes(variant) })}\n`);
    return;
  }
  const run = VARIANTS[variant];
  const n = Math.max(1, Math.floor(deliveries / subscribers));
  const warmN = Math.max(10, Math.floor(n / 10));
  const warmError = verify(await run(subscribers, warmN), warmN);
  if (warmError !== null) {
    process.stdout.write(`${JSON.stringify({ error: `warm-up: ${warmError}` })}\n`);
    return;
  }
  globalThis.gc?.();
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const tallies = await run(subscribers, n);
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const error = verify(tallies, n);
  const ns = (ms * 1e6) / (n * subscribers);
  const cpuNs = ((cpu.user + cpu.system) * 1e3) / (n * subscribers);
  process.stdout.write(`${JSON.stringify(error === null ? { ns, cpuNs } : { error })}\n`);
}

interface Figure {
  /** Wall ns per delivery, or heap bytes per idle subscriber. */
  readonly value: number;
  /** CPU (user + system) ns per delivery; `NaN` for memory. */
  readonly cpu: number;
}

function runChild(variant: Variant, mode: string, deliveries: number): Promise<Figure> {
  const file = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--import', 'tsx', file, '--child', variant, mode];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...args, '--deliveries', String(deliveries)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => (out += chunk));
    proc.on('error', reject);
    proc.on('close', (code) => {
      try {
        const result = JSON.parse(out) as {
          ns?: number;
          cpuNs?: number;
          bytes?: number;
          error?: string;
        };
        const value = result.ns ?? result.bytes;
        if (code !== 0 || value === undefined) {
          reject(new Error(`${variant} ${mode}: ${result.error ?? `exit code ${String(code)}`}`));
        } else {
          resolve({ value, cpu: result.cpuNs ?? NaN });
        }
      } catch {
        reject(
          new Error(`${variant} ${mode}: exit code ${String(code)}, output ${JSON.stringify(out)}`),
        );
      }
    });
  });
}

function option(args: readonly string[], flag: string, fallback: number): number {
  const index = args.indexOf(flag);
  if (index < 0) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `Expected ${flag} to be a positive integer, got ${String(args[index + 1])}`,
    );
  }
  return value;
}

async function main(args: readonly string[]): Promise<void> {
  const deliveries = option(args, '--deliveries', 1_000_000);
  const childIndex = args.indexOf('--child');
  if (childIndex >= 0) {
    const variant = args[childIndex + 1] ?? '';
    if (!isVariant(variant)) throw new TypeError(`Expected a variant name, got '${variant}'`);
    const mode = args[childIndex + 2] ?? '';
    const subscribers = Number(mode);
    if (mode !== 'memory' && !(Number.isSafeInteger(subscribers) && subscribers > 0)) {
      throw new RangeError(`Expected 'memory' or a number of subscribers, got '${mode}'`);
    }
    await child(variant, mode === 'memory' ? 'memory' : subscribers, deliveries);
    return;
  }
  const runs = option(args, '--runs', 3);
  const variants = Object.keys(VARIANTS) as Variant[];
  const lines = [
    `topic fan-out: 1 publisher, ${deliveries.toLocaleString('en')} deliveries per run (values × subscribers), capacity ${CAPACITY}, median of ${runs} processes (Node ${process.version})`,
    '',
    '| subscribers | variant | ns/delivery (median) | min–max | CPU ns/delivery | CPU × channel loop | CPU × effect |',
    '|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const subscribers of FAN_OUTS) {
    const samples = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    const cpuSamples = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    for (let round = 1; round <= runs; round++) {
      for (const variant of variants) {
        const { value: ns, cpu } = await runChild(variant, String(subscribers), deliveries);
        samples.get(variant)!.push(ns);
        cpuSamples.get(variant)!.push(cpu);
        process.stderr.write(
          `${subscribers} subscribers, round ${round}/${runs}, ${variant}: ${ns.toFixed(1)} ns\n`,
        );
      }
    }
    const loop = median(cpuSamples.get('channel loop')!);
    const effect = median(cpuSamples.get('effect PubSub')!);
    for (const variant of variants) {
      const values = samples.get(variant)!;
      const m = median(values);
      const cpu = median(cpuSamples.get(variant)!);
      lines.push(
        `| ${subscribers.toLocaleString('en')} | ${variant} | ${m.toFixed(1)} | ${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} | ${cpu.toFixed(1)} | ${(cpu / loop).toFixed(2)} | ${(cpu / effect).toFixed(2)} |`,
      );
    }
  }
  lines.push(
    '',
    `| variant | heap bytes per idle subscriber (${IDLE.toLocaleString('en')} subscribed) |`,
    '|---|---:|',
  );
  for (const variant of variants) {
    const { value: bytes } = await runChild(variant, 'memory', deliveries);
    lines.push(`| ${variant} | ${bytes.toFixed(0)} |`);
  }
  lines.push(
    '',
    '- Ratios are of CPU time (user + system of the child during the timed run), steadier than wall time on a shared machine.',
    '- channel loop: a `Channel(64)` per subscriber, each value offered to each channel in a hand loop (no positions, retention, policies); its "idle subscriber" is one channel.',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
