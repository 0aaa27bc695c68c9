/**
 * `Mutex.withLock` and `Semaphore.withPermit` against a hand-written promise lock and
 * semaphore (a flag or a counter and an array of resolve functions, no abort, no
 * handles), uncontended (one task) and contended (four tasks, each block awaiting once
 * while it holds). Each figure is the median of `--runs` fresh processes; the rounds
 * interleave the implementations, and ratios are taken within this run only.
 *
 * ```
 * node --import tsx benchmarks/sync.bench.ts [--runs 5] [--n 200000]
 * node --import tsx benchmarks/sync.bench.ts child <job> <impl> --n N   # one measurement
 * ```
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RESOLVED: Promise<void> = Promise.resolve();
const JOBS = ['mutex-alone', 'mutex-contended', 'semaphore-alone', 'semaphore-contended'] as const;
type Job = (typeof JOBS)[number];
const IMPLS = ['sluice', 'hand'] as const;
type Impl = (typeof IMPLS)[number];
const TASKS = 4;
const PERMITS = 2;

/** The least a promise lock can be: a flag and a FIFO of resolve functions. */
class HandLock {
  #held = 0;
  readonly #limit: number;
  readonly #queue: (() => void)[] = [];
  #head = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<R>(block: () => R | PromiseLike<R>): Promise<R> {
    if (this.#held < this.#limit) this.#held++;
    else
      await new Promise<void>((resolve) => {
        this.#queue.push(resolve);
      });
    try {
      return await block();
    } finally {
      if (this.#head < this.#queue.length) {
        const next = this.#queue[this.#head]!;
        this.#queue[this.#head++] = noop;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        next();
      } else this.#held--;
    }
  }
}

function noop(): void {
  // a taken slot
}

async function measure(job: Job, impl: Impl, n: number): Promise<number> {
  const { Mutex, Semaphore } = await import('../lib/index.js');
  let counter = 0;
  const contended = job.endsWith('contended');
  const run: (block: () => Promise<void> | void) => Promise<void> = job.startsWith('mutex')
    ? impl === 'sluice'
      ? (
          (mutex) => (block: () => Promise<void> | void) =>
            mutex.withLock(block)
        )(new Mutex())
      : (
          (lock) => (block: () => Promise<void> | void) =>
            lock.run(block)
        )(new HandLock(1))
    : impl === 'sluice'
      ? (
          (semaphore) => (block: () => Promise<void> | void) =>
            semaphore.withPermit(block)
        )(new Semaphore(PERMITS))
      : (
          (lock) => (block: () => Promise<void> | void) =>
            lock.run(block)
        )(new HandLock(PERMITS));
  const tasks = contended ? TASKS : 1;
  const each = Math.floor(n / tasks);
  const block = contended
    ? async () => {
        counter++;
        await RESOLVED;
      }
    : () => {
        counter++;
      };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: tasks }, async () => {
      for (let i = 0; i < each; i++) await run(block);
    }),
  );
  const elapsed = performance.now() - started;
  if (counter !== each * tasks) throw new Error(`lost updates: ${counter} of ${each * tasks}`);
  return (elapsed * 1e6) / (each * tasks);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function option(args: readonly string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new RangeError(`Expected ${name} to be a positive integer, got ${String(args[at + 1])}`);
  }
  return value;
}

async function main(args: readonly string[]): Promise<void> {
  if (args[0] === 'child') {
    const job = args[1] as Job;
    const impl = args[2] as Impl;
    if (!JOBS.includes(job) || !IMPLS.includes(impl)) {
      throw new TypeError(`Expected a job (${JOBS.join(', ')}) and an impl (${IMPLS.join(', ')})`);
    }
    const ns = await measure(job, impl, option(args, '--n', 200_000));
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ ns, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
    return;
  }
  const runs = option(args, '--runs', 5);
  const n = option(args, '--n', 200_000);
  const file = fileURLToPath(import.meta.url);
  const figures = new Map<string, number[]>();
  for (let round = 0; round < runs; round++) {
    for (const job of JOBS) {
      for (const impl of IMPLS) {
        process.stderr.write(`sync: round ${round + 1}/${runs} ${job} ${impl}\n`);
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', file, 'child', job, impl, '--n', String(n)],
          { encoding: 'utf8' },
        );
        const { ns } = JSON.parse(out) as { ns: number };
        const key = `${job}/${impl}`;
        figures.set(key, [...(figures.get(key) ?? []), ns]);
      }
    }
  }
  const lines = [
    `${n.toLocaleString('en')} operations per run, median of ${runs} fresh processes (rounds interleave the implementations); contended: ${TASKS} tasks, each block awaits once while it holds; semaphore: ${PERMITS} permits.`,
    '',
    '| job | sluice ns/op | hand-written ns/op | sluice / hand-written |',
    '| --- | ---: | ---: | ---: |',
  ];
  for (const job of JOBS) {
    const ours = median(figures.get(`${job}/sluice`) ?? []);
    const hand = median(figures.get(`${job}/hand`) ?? []);
    lines.push(
      `| ${job} | ${ours.toFixed(0)} | ${hand.toFixed(0)} | ${(ours / hand).toFixed(2)}x |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
