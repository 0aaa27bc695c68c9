/**
 * A worker pool, Go style, with structured concurrency: a producer hands out jobs over a
 * rendezvous channel (`produce`), a fixed number of workers take them as they become
 * free, each job runs under a deadline (`withTimeout`), and a collector gathers the
 * outcomes with `select`, reporting when nothing has finished for a while (`onTimeout`).
 * Everything runs inside one `scope`, so when the pool returns nothing of it is left
 * running — also when the caller stops it early.
 *
 * Two runs:
 * 1. Eight jobs, one of which hangs: it is cancelled at its deadline and reported as
 *    timed out; the outcomes are listed by job id.
 * 2. An endless stream of jobs, of which the caller wants only the first five results:
 *    once it has them, the producer and the workers are cancelled, and the jobs that were
 *    still running are reported as cancelled.
 *
 * Run it: `node --import tsx examples/worker-pool.ts`.
 */
import { pathToFileURL } from 'node:url';
import {
  Channel,
  TimeoutError,
  delay,
  onTimeout,
  produce,
  scope,
  select,
  withTimeout,
} from 'sluice';
import type { Job } from 'sluice';

/** A job: an id and how long it takes, in time units (`Infinity`: it hangs). */
export interface Task {
  readonly id: number;
  readonly cost: number;
}

/** The outcome of one job. */
export type Outcome<R> =
  | { readonly id: number; readonly worker: number; readonly ok: true; readonly value: R }
  | { readonly id: number; readonly worker: number; readonly ok: false; readonly error: string };

/** Options of {@link runPool}. */
export interface PoolOptions {
  /** How many jobs run at the same time. */
  readonly workers: number;
  /** Milliseconds each job may take before it is cancelled with a `TimeoutError`. */
  readonly timeout: number;
  /** Stop (cancelling the rest) once this many outcomes are in. @default Infinity */
  readonly take?: number;
  /** Report the running jobs when nothing finished for this many milliseconds. */
  readonly idleReport: number;
  /** Where the narration goes. */
  readonly log: (line: string) => void;
}

/** What a pool run did. */
export interface PoolReport<R> {
  /** The collected outcomes, sorted by job id. */
  readonly outcomes: readonly Outcome<R>[];
  /** Jobs that were started but whose outcome was not collected (cancelled), by id. */
  readonly cancelled: readonly number[];
  /** How many jobs the producer handed out. */
  readonly handedOut: number;
}

/**
 * Runs `work` over `tasks` with `options.workers` workers and returns once every job
 * has finished, timed out or (after `take` outcomes) been cancelled.
 */
export async function runPool<R>(
  tasks: Iterable<Task>,
  work: (task: Task, signal: AbortSignal) => Promise<R>,
  options: PoolOptions,
): Promise<PoolReport<R>> {
  const { workers, timeout, take = Infinity, idleReport, log } = options;
  const started: number[] = [];
  const running = new Set<number>();
  let handedOut = 0;

  // One job under its deadline: the job's own signal aborts at the deadline or when the
  // worker is cancelled. A timeout is an outcome; anything else is thrown.
  const attempt = async (task: Task, worker: number, signal: AbortSignal): Promise<Outcome<R>> => {
    try {
      const value = await withTimeout(timeout, (jobSignal) => work(task, jobSignal), { signal });
      return { id: task.id, worker, ok: true, value };
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      log(`worker ${worker}: job ${task.id} ${error.message.toLowerCase()}`);
      return { id: task.id, worker, ok: false, error: error.message };
    }
  };

  const outcomes = await scope(async (s) => {
    // The producer: with capacity 0 each `send` waits until a worker takes the job, so
    // it never runs ahead of the workers (an endless source is fine).
    const jobs = produce<Task>(s, async (out, signal) => {
      try {
        for (const task of tasks) {
          await out.send(task, { signal });
          handedOut++;
        }
      } finally {
        log(`producer: stopped after handing out ${handedOut} jobs`);
      }
    });

    const results = new Channel<Outcome<R>>(); // rendezvous: a worker waits for the collector
    const pool: Job[] = [];
    for (let worker = 1; worker <= workers; worker++) {
      pool.push(
        s.launch(async (signal) => {
          for (;;) {
            const next = await jobs.receiveCatching({ signal });
            if (!next.ok) return; // no more jobs
            const task = next.value;
            started.push(task.id);
            running.add(task.id);
            try {
              await results.send(await attempt(task, worker, signal), { signal });
            } catch (error) {
              // Cancelled, while working or while waiting for the collector: rethrowing
              // the reason ends the worker as cancelled, which does not fail the scope.
              // Any other error is a real failure, and fails the pool.
              if (signal.aborted) log(`worker ${worker}: job ${task.id} cancelled`);
              throw error;
            }
            running.delete(task.id);
          }
        }),
      );
    }
    // When the last worker is done, no outcome can come any more.
    s.launch(async () => {
      await Promise.all(pool.map((worker) => worker.join()));
      results.close();
    });

    // The collector: one outcome, or a report when none came for `idleReport` ms.
    const collected: Outcome<R>[] = [];
    while (collected.length < take) {
      const next = await select([
        results.onReceiveCatching((result) => result),
        onTimeout(idleReport, () => 'idle' as const),
      ]);
      if (next === 'idle') {
        log(`pool: nothing finished for ${idleReport} ms; running: ${[...running].join(', ')}`);
      } else if (next.ok) {
        collected.push(next.value);
      } else {
        break; // every worker is done
      }
    }
    if (collected.length >= take) {
      // Enough: stop handing out jobs, and stop the jobs still running. Cancelled
      // children do not fail the scope, which settles once they have all stopped.
      const enough = new DOMException(`Took ${take} results`, 'AbortError');
      jobs.cancel(enough);
      for (const worker of pool) worker.cancel(enough);
    }
    return collected;
  });

  const ids = new Set(outcomes.map((outcome) => outcome.id));
  return {
    outcomes: [...outcomes].sort((a, b) => a.id - b.id),
    cancelled: started.filter((id) => !ids.has(id)).sort((a, b) => a - b),
    handedOut,
  };
}

/** Options of {@link main}. */
export interface WorkerPoolOptions {
  /** Milliseconds per unit of job cost. @default 100 */
  readonly unit?: number;
  /** The per-job deadline in milliseconds. @default 1000 */
  readonly timeout?: number;
  /** Milliseconds of silence before the collector reports. @default 250 */
  readonly idleReport?: number;
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
}

/** What happened, for the test suite. */
export interface WorkerPoolResult {
  readonly first: PoolReport<number>;
  readonly second: PoolReport<number>;
}

/** The first run's jobs: costs in units; job 4 hangs. */
export const TASKS: readonly Task[] = [3, 1, 2, Infinity, 1, 2, 1, 3].map((cost, index) => ({
  id: index + 1,
  cost,
}));

/** Runs both pools and prints their outcomes in job order. */
export async function main(options: WorkerPoolOptions = {}): Promise<WorkerPoolResult> {
  const { unit = 100, timeout = 1000, idleReport = 250, log = console.log } = options;
  // The "work": waits `cost` units (honouring its signal, as every job must), then
  // answers the square of its id.
  const work = async (task: Task, signal: AbortSignal): Promise<number> => {
    await delay(task.cost * unit, { signal });
    return task.id * task.id;
  };
  const print = (report: PoolReport<number>): void => {
    for (const outcome of report.outcomes) {
      log(`  job ${outcome.id}: ${outcome.ok ? `${outcome.value}` : outcome.error}`);
    }
    if (report.cancelled.length > 0) log(`  cancelled: ${report.cancelled.join(', ')}`);
  };

  log('run 1: eight jobs, three workers, job 4 hangs');
  const first = await runPool(TASKS, work, { workers: 3, timeout, idleReport, log });
  log('run 1 outcomes:');
  print(first);

  log('run 2: endless jobs, the first five results are enough');
  function* endless(): Generator<Task> {
    for (let id = 1; ; id++) yield { id, cost: 1 + (id % 3) };
  }
  const second = await runPool(endless(), work, { workers: 3, timeout, idleReport, log, take: 5 });
  log('run 2 outcomes:');
  print(second);
  return { first, second };
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
