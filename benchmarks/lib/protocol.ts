/**
 * What the runner (`benchmarks/run.ts`) and a benchmark child process
 * (`benchmarks/channel.bench.ts <job> <implementation>`) agree on: the jobs, the shape
 * of an implementation, and the one JSON line a child prints.
 *
 * @module
 */
import type { Check } from './check.js';

/** Throughput scenarios: 1,000,000 integers through a channel. */
export const SCENARIOS = {
  spsc: {
    letter: 'A',
    title: 'SPSC, capacity 64: `await send(i)` in a loop, `for await` to receive',
    capacity: 64,
    producers: 1,
    consumers: 1,
  },
  rendezvous: {
    letter: 'B',
    title: 'rendezvous (capacity 0): `await send(i)`, `for await`',
    capacity: 0,
    producers: 1,
    consumers: 1,
  },
  mpmc: {
    letter: 'C',
    title: '4 producers x 4 consumers, capacity 64: `await send(i)`, `for await`',
    capacity: 64,
    producers: 4,
    consumers: 4,
  },
  batch: {
    letter: 'D',
    title: 'batch, capacity 64: `trySend`/`tryReceive`, awaiting only when they fail',
    capacity: 64,
    producers: 1,
    consumers: 1,
  },
} as const;
export type ScenarioId = keyof typeof SCENARIOS;

/** Memory jobs: heap bytes per instance, from `heapUsed` deltas after full GCs. */
export const MEMORY = {
  idle: { title: 'idle (cap 16)', legend: 'an idle channel of capacity 16' },
  pending: {
    title: 'pending receive',
    legend: 'the promise of a waiting receive, all on one channel (no task around it)',
  },
  'waiter-one': {
    title: 'task, one channel',
    legend: 'an async task awaiting a receive, all tasks on one channel',
  },
  'waiter-own': {
    title: 'task + own channel',
    legend: 'an async task awaiting a receive on a rendezvous channel of its own, channel included',
  },
} as const;
export type MemoryId = keyof typeof MEMORY;

export type JobId = ScenarioId | MemoryId;

export function isScenario(id: string): id is ScenarioId {
  return Object.hasOwn(SCENARIOS, id);
}

export function isMemory(id: string): id is MemoryId {
  return Object.hasOwn(MEMORY, id);
}

/**
 * Scenarios A–C, written the idiomatic way for the implementation: each producer
 * awaits every send of its values, the channel is closed once all producers are done,
 * each consumer receives until the end with the implementation's natural loop.
 */
export type Pipe = (
  n: number,
  capacity: number,
  producers: number,
  consumers: number,
  check: Check,
) => Promise<void>;

/** Scenario D: one producer and one consumer using the non-waiting operations first. */
export type Batch = (n: number, capacity: number, check: Check) => Promise<void>;

/**
 * How waiting receivers are parked for a memory job: `pending`, the bare promise of a
 * receive call, all on one channel; `waiter-one`, an async task awaiting it, all on one
 * channel; `waiter-own`, such a task on a channel of its own.
 */
export type ParkMode = Exclude<MemoryId, 'idle'>;

/**
 * Waiting receivers for the memory jobs, in two steps so the harness can take its
 * baseline after `park` allocated its bookkeeping and before `start` creates anything.
 */
export interface Parked {
  /** Creates the channels and one waiting receive per slot. */
  start(waiting: Promise<unknown>[]): void;
  /** Sends the value `i` for the receive in slot `i` (or, on one channel, the `i`-th). */
  release(): void;
}

/** What an implementation can run, once its package is loaded. */
export interface Operations {
  readonly pipe?: Pipe;
  readonly batch?: Batch;
  /** One idle channel of capacity 16. */
  readonly idle?: () => unknown;
  /** `count` receivers waiting as `mode` says. */
  readonly park?: (count: number, mode: ParkMode) => Parked;
}

/**
 * An implementation under test: what the runner needs to plan and print, plus `load`,
 * which imports the package only in the child that runs it (a child measuring one peer
 * does not load the others).
 */
export interface Implementation {
  /** The name on the command line: `channel.bench.ts <job> <id>`. */
  readonly id: string;
  /** The name in the tables. */
  readonly name: string;
  /** Runs only when named with `--impl` (a variant, not one of the default peers). */
  readonly optional?: boolean;
  /** A line printed under the tables when the implementation needs explaining. */
  readonly note?: string;
  /** Why a job is missing, for every job the implementation cannot run. */
  readonly lacks: Partial<Record<JobId, string>>;
  readonly load: () => Promise<Operations>;
}

/** Whether `impl` runs `job`, or why not. */
export function support(impl: Implementation, job: JobId): true | string {
  return impl.lacks[job] ?? true;
}

/** What a child prints, as one JSON line on stdout. */
export type ChildResult =
  | {
      readonly ok: true;
      /** Wall time of the run per message. */
      readonly nsPerMessage: number;
      /** CPU time (user + system, all threads) of the run per message. */
      readonly cpuNsPerMessage: number;
      readonly shares: readonly number[];
    }
  | { readonly ok: true; readonly bytes: number }
  | { readonly ok: true; readonly memory: readonly MemoryFigure[] }
  | { readonly ok: true; readonly thenable: readonly ThenableReport[] }
  | { readonly ok: false; readonly error: string };

/** One memory job's figure, from a child that ran several (`memory <impl>`). */
export interface MemoryFigure {
  readonly job: MemoryId;
  readonly result: ChildResult;
}

export interface ThenableReport {
  readonly name: string;
  /** Whether the channel object has a callable `then`. */
  readonly thenable: boolean;
  /** What `await channel` did, in words. */
  readonly outcome: string;
  /** `false` when the result breaks sluice's contract (only judged for sluice). */
  readonly pass: boolean;
}

function isNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((x) => typeof x === 'number');
}

function isMemoryFigure(value: unknown): value is MemoryFigure {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.job === 'string' && isMemory(r.job) && typeof r.result === 'object';
}

function isThenableReport(value: unknown): value is ThenableReport {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.name === 'string' &&
    typeof r.thenable === 'boolean' &&
    typeof r.outcome === 'string' &&
    typeof r.pass === 'boolean'
  );
}

/** The CPU seconds a child reported using in all (startup included), or 0. */
export function childCpuSeconds(line: string): number {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null) {
      const cpu = (value as Record<string, unknown>).processCpuSeconds;
      if (typeof cpu === 'number') return cpu;
    }
  } catch {
    // An unreadable line is reported by parseChildResult.
  }
  return 0;
}

/** Reads a child's output line; anything unexpected becomes an error result. */
export function parseChildResult(line: string): ChildResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: `unreadable output: ${line.slice(0, 200)}` };
  }
  if (typeof value === 'object' && value !== null) {
    const r = value as Record<string, unknown>;
    if (r.ok === false && typeof r.error === 'string') return { ok: false, error: r.error };
    if (
      r.ok === true &&
      typeof r.nsPerMessage === 'number' &&
      typeof r.cpuNsPerMessage === 'number' &&
      isNumberArray(r.shares)
    ) {
      return {
        ok: true,
        nsPerMessage: r.nsPerMessage,
        cpuNsPerMessage: r.cpuNsPerMessage,
        shares: r.shares,
      };
    }
    if (r.ok === true && typeof r.bytes === 'number') return { ok: true, bytes: r.bytes };
    if (r.ok === true && Array.isArray(r.memory) && r.memory.every(isMemoryFigure)) {
      return {
        ok: true,
        memory: r.memory.map((figure) => ({
          job: figure.job,
          result: parseChildResult(JSON.stringify(figure.result)),
        })),
      };
    }
    if (r.ok === true && Array.isArray(r.thenable) && r.thenable.every(isThenableReport)) {
      return { ok: true, thenable: r.thenable };
    }
  }
  return { ok: false, error: `unexpected output: ${line.slice(0, 200)}` };
}
