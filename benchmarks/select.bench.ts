/**
 * The select benchmark: one consumer selecting over 4 buffered channels (capacity 64)
 * fed by 4 producers, 1,000,000 values in all, beside `ts-chan`'s `Select` and, as the
 * floor, a plain `receive` loop on a single channel fed by the same 4 producers.
 *
 * Run it with `node --import tsx benchmarks/select.bench.ts [--runs 5] [--n 1000000]`:
 * every implementation runs in fresh processes, `runs` times each, round-robin; the
 * table reports the median. Each child warms up on a tenth of `n`, then times `n`
 * values and verifies them (count, sum, no duplicate, each producer's values in order),
 * reporting an error instead of a time if anything is off. Wall time and the child's CPU
 * time (user + system) are both reported: on a shared machine the CPU time is the
 * steadier figure. Run one child by hand with
 * `node --import tsx benchmarks/select.bench.ts <implementation> [--n N]`.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import * as tsChanModule from 'ts-chan';

import { Channel, select, selectUnbiased } from '../lib/index.js';

/**
 * The part of ts-chan's API used here. Its shipped `.d.ts` files import each other
 * without file extensions, which `moduleResolution: nodenext` cannot follow, so its
 * types arrive unresolved; this states them (from its documentation) instead.
 */
interface TsChan {
  setUnsafe(unsafe: boolean): this;
  send(value: number): Promise<void>;
}
interface TsSelect {
  readonly cases: readonly unknown[];
  setUnsafe(unsafe: boolean): this;
  wait(): Promise<number>;
  recv(selectCase: unknown): IteratorResult<number, number | undefined>;
}
interface TsChanApi {
  Chan: new (capacity: number) => TsChan;
  Select: new (cases: readonly unknown[]) => TsSelect;
  recv: (channel: TsChan) => unknown;
}
const { Chan, Select, recv } = tsChanModule as unknown as TsChanApi;

const PRODUCERS = 4;
const CAPACITY = 64;

/** Checks every received value: each of `0 … n - 1` exactly once, per producer in order. */
class Verifier {
  readonly #n: number;
  readonly #seen: Uint8Array;
  readonly #last = new Float64Array(PRODUCERS).fill(-1);
  count = 0;
  sum = 0;
  error: string | null = null;

  constructor(n: number) {
    this.#n = n;
    this.#seen = new Uint8Array(n);
  }

  take(value: number): void {
    this.count++;
    this.sum += value;
    if (!(value >= 0 && value < this.#n) || this.#seen[value] === 1) {
      this.error ??= `received ${String(value)}: a duplicate or not a value that was sent`;
      return;
    }
    this.#seen[value] = 1;
    const producer = value % PRODUCERS;
    const k = (value - producer) / PRODUCERS;
    if (k <= this.#last[producer]!) this.error ??= `producer ${producer}'s values out of order`;
    this.#last[producer] = k;
  }

  verdict(): string | null {
    if (this.error !== null) return this.error;
    if (this.count !== this.#n) return `received ${this.count} values, expected ${this.#n}`;
    const expected = (this.#n * (this.#n - 1)) / 2;
    if (this.sum !== expected) return `sum ${this.sum}, expected ${expected}`;
    return null;
  }
}

/** Producer `p` sends `k * PRODUCERS + p` for each of its `k`. */
async function produce(
  p: number,
  n: number,
  send: (value: number) => Promise<void>,
): Promise<void> {
  for (let value = p; value < n; value += PRODUCERS) await send(value);
}

type Run = (n: number, verifier: Verifier) => Promise<void>;

const IMPLEMENTATIONS: Record<string, { readonly title: string; readonly run: Run }> = {
  floor: {
    title: '`await receive()` on one channel (capacity 256 = 4 x 64)',
    async run(n, verifier) {
      const ch = new Channel<number>(CAPACITY * PRODUCERS);
      const producers = Array.from({ length: PRODUCERS }, (_, p) =>
        produce(p, n, (v) => ch.send(v)),
      );
      for (let i = 0; i < n; i++) verifier.take(await ch.receive());
      await Promise.all(producers);
    },
  },
  'sluice select': {
    title: 'sluice `select([a.onReceive(), …])`, clauses made per iteration',
    run: (n, verifier) => sluice(n, verifier, select, false),
  },
  'sluice select, reused clauses': {
    title: 'sluice `select(clauses)` with one clause array for the whole loop',
    run: (n, verifier) => sluice(n, verifier, select, true),
  },
  'sluice selectUnbiased': {
    title: 'sluice `selectUnbiased([a.onReceive(), …])`, clauses made per iteration',
    run: (n, verifier) => sluice(n, verifier, selectUnbiased, false),
  },
  'ts-chan': {
    title: 'ts-chan `Select.wait()` + `recv()` (defaults: yields to the macrotask queue)',
    run: (n, verifier) => tsChan(n, verifier, false),
  },
  'ts-chan unsafe': {
    title: 'ts-chan with `setUnsafe(true)` on channels and select (no macrotask yield)',
    run: (n, verifier) => tsChan(n, verifier, true),
  },
};

async function sluice(
  n: number,
  verifier: Verifier,
  run: typeof select,
  reuse: boolean,
): Promise<void> {
  const chs = Array.from({ length: PRODUCERS }, () => new Channel<number>(CAPACITY));
  const producers = chs.map((ch, p) => produce(p, n, (v) => ch.send(v)));
  const [a, b, c, d] = chs as [Channel<number>, Channel<number>, Channel<number>, Channel<number>];
  if (reuse) {
    const clauses = [a.onReceive(), b.onReceive(), c.onReceive(), d.onReceive()];
    for (let i = 0; i < n; i++) verifier.take(await run(clauses));
  } else {
    for (let i = 0; i < n; i++) {
      verifier.take(await run([a.onReceive(), b.onReceive(), c.onReceive(), d.onReceive()]));
    }
  }
  await Promise.all(producers);
}

async function tsChan(n: number, verifier: Verifier, unsafe: boolean): Promise<void> {
  const chs = Array.from({ length: PRODUCERS }, () => new Chan(CAPACITY).setUnsafe(unsafe));
  const producers = chs.map((ch, p) => produce(p, n, (v) => ch.send(v)));
  // One Select for the loop, as ts-chan's documentation writes it.
  const sel = new Select(chs.map((ch) => recv(ch))).setUnsafe(unsafe);
  for (let i = 0; i < n; i++) {
    const index = await sel.wait();
    const result = sel.recv(sel.cases[index]);
    if (result.done === true) throw new Error('ts-chan channel closed unexpectedly');
    verifier.take(result.value);
  }
  await Promise.all(producers);
}

// ------------------------------------------------------------------ child side

async function child(name: string, n: number): Promise<void> {
  const impl = IMPLEMENTATIONS[name];
  if (impl === undefined) throw new Error(`unknown implementation ${name}`);
  const warmUp = new Verifier(Math.max(PRODUCERS, Math.floor(n / 10)));
  await impl.run(Math.max(PRODUCERS, Math.floor(n / 10)), warmUp);
  const verifier = new Verifier(n);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await impl.run(n, verifier);
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const error = warmUp.verdict() ?? verifier.verdict();
  console.log(JSON.stringify(error === null ? { ms, cpuMs } : { error }));
}

// ----------------------------------------------------------------- parent side

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function parent(runs: number, n: number): void {
  const file = fileURLToPath(import.meta.url);
  const names = Object.keys(IMPLEMENTATIONS);
  const times = new Map<string, number[]>(names.map((name) => [name, []]));
  const cpuTimes = new Map<string, number[]>(names.map((name) => [name, []]));
  console.log(
    `select: 1 consumer, ${PRODUCERS} producers, ${n.toLocaleString('en')} values; ` +
      `${runs} fresh processes per implementation (round-robin), Node ${process.version}`,
  );
  for (let round = 0; round < runs; round++) {
    for (const name of names) {
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', file, name, '--n', String(n)],
        { encoding: 'utf8' },
      );
      const line = out.trim().split('\n').at(-1) ?? '';
      const result = JSON.parse(line) as { ms?: number; cpuMs?: number; error?: string };
      if (result.ms === undefined || result.cpuMs === undefined) {
        throw new Error(`${name}: ${result.error ?? `no result in ${JSON.stringify(out)}`}`);
      }
      times.get(name)!.push(result.ms);
      cpuTimes.get(name)!.push(result.cpuMs);
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');
  const floor = median(times.get('floor')!);
  const cpuFloor = median(cpuTimes.get('floor')!);
  console.log(
    '\n| implementation | median ms | M values/s | min–max ms | × floor | median CPU ms | CPU × floor |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const name of names) {
    const all = times.get(name)!;
    const med = median(all);
    const cpu = median(cpuTimes.get(name)!);
    console.log(
      `| ${name} | ${med.toFixed(0)} | ${(n / med / 1000).toFixed(2)} | ` +
        `${Math.min(...all).toFixed(0)}–${Math.max(...all).toFixed(0)} | ${(med / floor).toFixed(2)} | ` +
        `${cpu.toFixed(0)} | ${(cpu / cpuFloor).toFixed(2)} |`,
    );
  }
  console.log(
    '\nCPU ms is user + system time of the child during the timed run (steadier than wall' +
      ' time on a busy machine; includes GC threads).',
  );
  console.log('');
  for (const name of names) console.log(`- ${name}: ${IMPLEMENTATIONS[name]!.title}`);
}

function option(args: readonly string[], name: string, fallback: number, least: number): number {
  const index = args.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isSafeInteger(value) || value < least) {
    throw new RangeError(
      `Expected ${name} to be an integer of at least ${least}, got ${String(args[index + 1])}`,
    );
  }
  return value;
}

const args = process.argv.slice(2);
const n = option(args, '--n', 1_000_000, PRODUCERS);
const first = args[0];
if (first !== undefined && !first.startsWith('--')) {
  await child(first, n);
} else {
  parent(option(args, '--runs', 5, 1), n);
}
