/**
 * The pipeline benchmark: a fan-out/fan-in pipeline — one producer, 4 workers, one
 * collector, 1,000,000 items by default — written three ways:
 *
 * - `sluice`: `scope` + `produce` + two `Channel`s of capacity 64, `for await` loops,
 *   the way the README would write it;
 * - `effect`: the same shape with `effect` v4 fibers and two `Queue.bounded(64)`s,
 *   ended with `Queue.end`, in one `Effect.runPromise`;
 * - `floor`: no queue at all, one async loop that awaits one promise per hand-off
 *   (producer → worker → collector: 3 awaits per item) — the least any promise-based
 *   pipeline pays per item.
 *
 * Each figure is the median of several fresh processes (interleaved in rounds, so a
 * burst of machine load spreads over all variants); each process warms up on a tenth of
 * the items, then times one full run and checks the item count and sum.
 *
 * ```
 * node --import tsx benchmarks/pipeline.bench.ts              # 5 processes per variant
 * node --import tsx benchmarks/pipeline.bench.ts --runs 3 --n 200000
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Cause, Effect, Queue } from 'effect';

import { Channel, produce, scope } from '../lib/index.js';

const WORKERS = 4;
const CAPACITY = 64;

interface Totals {
  count: number;
  sum: number;
}

/** What a worker does to an item; the collector sums the results. */
const work = (x: number): number => x * 2 + 1;

/** The sum of `work(i)` for `i` in `[0, n)`: n², exact in a double up to n = 2^26. */
const expectedSum = (n: number): number => n * n;

async function sluicePipeline(n: number): Promise<Totals> {
  return scope(async (s) => {
    const source = produce<number>(
      s,
      async (out) => {
        for (let i = 0; i < n; i++) await out.send(i);
      },
      { capacity: CAPACITY },
    );
    const results = new Channel<number>(CAPACITY);
    const workers = Array.from({ length: WORKERS }, () =>
      s.launch(async () => {
        for await (const x of source) await results.send(work(x));
      }),
    );
    s.launch(async () => {
      for (const worker of workers) await worker.join();
      results.close();
    });
    const totals = { count: 0, sum: 0 };
    for await (const y of results) {
      totals.count++;
      totals.sum += y;
    }
    return totals;
  });
}

function effectPipeline(n: number): Promise<Totals> {
  const totals = { count: 0, sum: 0 };
  return Effect.runPromise(
    Effect.gen(function* () {
      const source = yield* Queue.bounded<number, Cause.Done>(CAPACITY);
      const results = yield* Queue.bounded<number, Cause.Done>(CAPACITY);
      const producer = Effect.gen(function* () {
        for (let i = 0; i < n; i++) yield* Queue.offer(source, i);
        yield* Queue.end(source);
      });
      const worker = Effect.gen(function* () {
        for (;;) yield* Queue.offer(results, work(yield* Queue.take(source)));
      }).pipe(Effect.catch(() => Effect.void));
      const workers = Effect.all(
        Array.from({ length: WORKERS }, () => worker),
        { concurrency: 'unbounded' },
      ).pipe(Effect.andThen(Queue.end(results)));
      const collector = Effect.gen(function* () {
        for (;;) {
          totals.sum += yield* Queue.take(results);
          totals.count++;
        }
      }).pipe(Effect.catch(() => Effect.void));
      yield* Effect.all([producer, workers, collector], { concurrency: 'unbounded' });
      return totals;
    }),
  );
}

async function floorPipeline(n: number): Promise<Totals> {
  const totals = { count: 0, sum: 0 };
  const hop = async (x: number): Promise<number> => x;
  for (let i = 0; i < n; i++) {
    const x = await hop(i); // producer → worker
    const y = await hop(work(x)); // worker → collector
    totals.sum += await hop(y); // collector
    totals.count++;
  }
  return totals;
}

const VARIANTS = {
  sluice: sluicePipeline,
  effect: effectPipeline,
  floor: floorPipeline,
} as const;
type Variant = keyof typeof VARIANTS;
const isVariant = (name: string): name is Variant => Object.hasOwn(VARIANTS, name);

function verify(totals: Totals, n: number): string | null {
  if (totals.count !== n) return `expected ${n} items, got ${totals.count}`;
  if (totals.sum !== expectedSum(n))
    return `expected a sum of ${expectedSum(n)}, got ${totals.sum}`;
  return null;
}

/** Child process: warm up, time one run, print `{"ns": …}` or `{"error": …}`. */
async function child(variant: Variant, n: number): Promise<void> {
  const run = VARIANTS[variant];
  const warmN = Math.max(1_000, Math.floor(n / 10));
  const warmError = verify(await run(warmN), warmN);
  if (warmError !== null) {
    process.stdout.write(`${JSON.stringify({ error: `warm-up: ${warmError}` })}\n`);
    return;
  }
  globalThis.gc?.();
  const start = performance.now();
  const totals = await run(n);
  const ms = performance.now() - start;
  const error = verify(totals, n);
  process.stdout.write(`${JSON.stringify(error === null ? { ns: (ms * 1e6) / n } : { error })}\n`);
}

function runChild(variant: Variant, n: number): Promise<number> {
  const file = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, '--expose-gc', file, '--child', variant, '--n', String(n)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => (out += chunk));
    proc.on('error', reject);
    proc.on('close', (code) => {
      try {
        const result = JSON.parse(out) as { ns?: number; error?: string };
        if (code !== 0 || result.ns === undefined) {
          reject(new Error(`${variant}: ${result.error ?? `exit code ${String(code)}`}`));
        } else {
          resolve(result.ns);
        }
      } catch {
        reject(new Error(`${variant}: exit code ${String(code)}, output ${JSON.stringify(out)}`));
      }
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
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
  const n = option(args, '--n', 1_000_000);
  const childIndex = args.indexOf('--child');
  if (childIndex >= 0) {
    const variant = args[childIndex + 1] ?? '';
    if (!isVariant(variant)) throw new TypeError(`Expected a variant name, got '${variant}'`);
    await child(variant, n);
    return;
  }
  const runs = option(args, '--runs', 5);
  const variants = Object.keys(VARIANTS) as Variant[];
  const samples = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  for (let round = 1; round <= runs; round++) {
    for (const variant of variants) {
      const ns = await runChild(variant, n);
      samples.get(variant)!.push(ns);
      process.stderr.write(`round ${round}/${runs} ${variant}: ${ns.toFixed(1)} ns/item\n`);
    }
  }
  const medians = new Map(variants.map((v) => [v, median(samples.get(v)!)]));
  const effect = medians.get('effect')!;
  const floor = medians.get('floor')!;
  const lines = [
    `pipeline: producer → ${WORKERS} workers → collector, ${n.toLocaleString('en')} items, capacity ${CAPACITY}, median of ${runs} processes (Node ${process.version})`,
    '',
    '| variant | ns/item (median) | min–max | × effect | × floor |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const variant of variants) {
    const values = samples.get(variant)!;
    const m = medians.get(variant)!;
    lines.push(
      `| ${variant} | ${m.toFixed(1)} | ${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} | ${(m / effect).toFixed(2)} | ${(m / floor).toFixed(2)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
