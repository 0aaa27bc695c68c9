/**
 * A job queue over network channels: workers pull jobs from a server over a typed
 * contract, with back-pressure (each worker holds at most 4 jobs: the server's `send`
 * waits for room), a worker that crashes mid-job gets its jobs back into the queue (the
 * ones still in its buffer through `onUndelivered`, the one it was working on because no
 * result came), the producer cancels a job, and Ctrl+C (or the end of the work) drains:
 * the queue empties, then `server.close()` says goodbye to the workers (1001, which a
 * reconnecting worker takes as "come back later").
 *
 * Run it: `node --import tsx examples/job-queue.ts`. The test suite calls `main()` and
 * checks that every job but the cancelled one completed exactly once.
 */
import { pathToFileURL } from 'node:url';
import { Channel, delay } from 'sluice';
import type { SendChannel } from 'sluice';
import { channelEndpoint, contract, toClient, toServer } from 'sluice/network';
import { serve } from 'sluice/server';

/** A unit of work: `work` milliseconds of pretend computing. */
export interface Job {
  readonly id: number;
  readonly work: number;
}

/** What a worker reports for a job. */
export interface Result {
  readonly id: number;
  readonly worker: string;
  readonly output: number;
}

/** The shared declaration: in a real app, a module both the server and the workers import. */
export const JobQueue = channelEndpoint(
  '/jobs',
  contract('job-queue', 1, {
    jobs: toClient<Job>({ capacity: 4 }),
    results: toServer<Result>({ capacity: 16 }),
    cancels: toClient<number>({ capacity: 64 }),
  }),
);

/** Options of {@link main}. */
export interface JobQueueOptions {
  /** How many jobs the producer submits. @default 12 */
  readonly jobs?: number;
  /** The job the producer cancels right after submitting it. @default 5 */
  readonly cancel?: number;
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
  /** Resolves when the queue should drain early (Ctrl+C when run as a script). */
  readonly interrupted?: Promise<void>;
}

/** What happened, for the test. */
export interface JobQueueRun {
  /** Ids of the completed jobs, in order of completion. */
  readonly completed: number[];
  /** Ids of the jobs that went back to the queue. */
  readonly requeued: number[];
  /** How the surviving worker's connection to the draining server closed. */
  readonly drainCode: number | undefined;
  /** What the crashed worker's client ended with. */
  readonly crash: unknown;
}

export async function main(options: JobQueueOptions = {}): Promise<JobQueueRun> {
  const total = options.jobs ?? 12;
  const cancelId = options.cancel ?? 5;
  const log = options.log ?? console.log;

  // ---------------------------------------------------------------- the server
  const pending = new Channel<Job>(Infinity);
  const cancelled = new Set<number>();
  const completed: number[] = [];
  const requeued: number[] = [];
  /** Jobs handed to a worker and not finished, with the worker's connection. */
  const assigned = new Map<number, { job: Job; owner: object }>();
  const cancelChannels = new Set<SendChannel<number>>();
  let resolveAllDone: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (resolveAllDone = resolve));
  const checkDone = (): void => {
    if (completed.length + cancelled.size === total) resolveAllDone();
  };
  const requeue = (job: Job): void => {
    assigned.delete(job.id);
    if (cancelled.has(job.id) || completed.includes(job.id)) return;
    requeued.push(job.id);
    log(`server: job ${String(job.id)} back in the queue`);
    pending.trySend(job);
  };

  const server = await serve({ host: '127.0.0.1', port: 0, pingInterval: Infinity }, [
    JobQueue.handle(
      async ({ channels: { jobs, results, cancels }, scope, signal, closed }) => {
        const owner = {};
        cancelChannels.add(cancels);
        for (const id of cancelled) cancels.trySend(id);
        scope.launch(async () => {
          try {
            for await (const result of results) {
              assigned.delete(result.id);
              if (cancelled.has(result.id) || completed.includes(result.id)) continue;
              completed.push(result.id);
              log(`server: job ${String(result.id)} done by ${result.worker}`);
              checkDone();
            }
          } catch {
            // The worker's connection ended: the pump below finds out too.
          }
        });
        try {
          // Back-pressure: `send` waits while the worker holds 4 jobs.
          for await (const job of pending.iterate({ signal })) {
            if (cancelled.has(job.id)) continue;
            assigned.set(job.id, { job, owner });
            await jobs.send(job);
          }
        } finally {
          cancelChannels.delete(cancels);
          // After the end every undelivered job has been handed back by onUndelivered;
          // those left were taken by the worker and never finished.
          await closed;
          for (const { job, owner: of } of [...assigned.values()]) {
            if (of === owner) requeue(job);
          }
        }
      },
      { undelivered: { jobs: requeue } },
    ),
  ]);
  log(`server: listening`);

  // ---------------------------------------------------------------- the workers
  const worker = (name: string, crashAt?: number) =>
    JobQueue.reconnecting(
      server.url,
      async ({ channels: { jobs, results, cancels }, signal }) => {
        const dropped = new Set<number>();
        void (async () => {
          try {
            for await (const id of cancels) dropped.add(id);
          } catch {
            // ends with the connection
          }
        })();
        let taken = 0;
        for await (const job of jobs) {
          if (++taken === crashAt)
            throw new Error(`${name} crashed working on job ${String(job.id)}`);
          await delay(job.work, { signal });
          if (dropped.has(job.id)) {
            log(`${name}: job ${String(job.id)} was cancelled`);
            continue;
          }
          await results.send({ id: job.id, worker: name, output: job.id * 2 });
        }
      },
      { reconnect: { minDelay: 20, maxDelay: 20, jitter: 0 } },
    );
  const steady = worker('w1');
  const fragile = worker('w2', 2); // crashes on the 2nd job it takes

  // ---------------------------------------------------------------- the producer
  for (let id = 1; id <= total; id++) {
    pending.trySend({ id, work: 5 + (id % 3) * 5 });
    if (id === cancelId) {
      cancelled.add(id);
      for (const channel of cancelChannels) channel.trySend(id);
      log(`producer: cancelled job ${String(id)}`);
    }
  }
  checkDone();

  // ---------------------------------------------------------------- draining
  const crash = await fragile.done.then(
    () => undefined,
    (error: unknown) => error,
  );
  log(`w2: ended: ${crash instanceof Error ? crash.message : String(crash)}`);
  await Promise.race([allDone, options.interrupted ?? new Promise<never>(() => undefined)]);
  log('server: queue drained, closing');
  let drainCode: number | undefined;
  const watching = (async () => {
    for await (const state of steady.states()) {
      if (state.type === 'closed' && state.attempt === 1 && state.reason.opened) {
        drainCode = state.reason.code;
        break;
      }
    }
  })();
  await server.close();
  await watching;
  await steady.stop();
  pending.close();
  log(`w1: the server went away (${String(drainCode)}), it would come back later`);
  return { completed, requeued, drainCode, crash };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  const run = await main({ interrupted });
  console.log(`completed: ${run.completed.join(', ')}`);
}
