/**
 * The runner behind `npm run bench`: runs every job of `channel.bench.ts` in fresh
 * child processes (5 per figure, interleaved in rounds so a burst of machine load
 * spreads over all implementations), then prints the median figures as tables.
 *
 * ```
 * npm run bench                      # everything, 1,000,000 messages, 5 processes each
 * npm run bench -- --quick           # 100,000 messages, 1 process each (smoke test)
 * npm run bench -- C                 # one scenario (A–D, or spsc, rendezvous, mpmc, batch)
 * npm run bench -- memory thenable   # the memory jobs and the thenable check
 * npm run bench -- --impl ts-chan    # one implementation (plus the references)
 * ```
 *
 * Progress goes to stderr, the tables to stdout. Exits with 1 when a sluice or
 * reference run fails its verification or the thenable check fails.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { IMPLEMENTATIONS } from './channel.bench.js';
import {
  MEMORY,
  SCENARIOS,
  childCpuSeconds,
  isMemory,
  isScenario,
  parseChildResult,
  support,
} from './lib/protocol.js';
import type {
  ChildResult,
  Implementation,
  JobId,
  MemoryId,
  ScenarioId,
  ThenableReport,
} from './lib/protocol.js';

const BENCH_FILE = fileURLToPath(new URL('./channel.bench.ts', import.meta.url));
const ROOT = dirname(dirname(BENCH_FILE));
const REFERENCES = new Set(['floor', 'bare-promise', 'hand-queue']);
const SCENARIO_IDS = Object.keys(SCENARIOS).filter(isScenario);
const MEMORY_IDS = Object.keys(MEMORY).filter(isMemory);
const ALL_JOBS: readonly JobId[] = [...SCENARIO_IDS, ...MEMORY_IDS];

interface Options {
  readonly quick: boolean;
  readonly runs: number;
  readonly n: number;
  readonly instances: number;
  readonly jobs: readonly JobId[];
  readonly thenable: boolean;
  readonly impls: readonly Implementation[];
}

const HELP = `usage: npm run bench -- [--quick] [--runs N] [--n N] [--impl ID]... [FILTER]...
  FILTER: A|spsc, B|rendezvous, C|mpmc, D|batch, memory (or idle, pending, waiter-one,
          waiter-own), thenable; none means everything
  --quick  100,000 messages and 5,000 instances (else 1,000,000 and 20,000), one process
           per figure (else 5)
  --impl   only this implementation (sluice and the references are always included); variants that run
           only when named: ${IMPLEMENTATIONS.filter((i) => i.optional === true)
             .map((i) => i.id)
             .join(', ')}; all: ${IMPLEMENTATIONS.map((i) => i.id).join(', ')}`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n${HELP}\n`);
  process.exit(2);
}

function positiveInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    usageError(`Expected ${flag} to be a positive integer, got ${String(text)}`);
  }
  return value;
}

/** The jobs a filter word names. */
function jobsNamed(word: string): readonly JobId[] | 'thenable' {
  const lower = word.toLowerCase();
  if (lower === 'thenable') return 'thenable';
  if (lower === 'memory' || lower === 'm') return MEMORY_IDS;
  const scenario = SCENARIO_IDS.find(
    (id) => lower === id || lower === SCENARIOS[id].letter.toLowerCase(),
  );
  if (scenario !== undefined) return [scenario];
  if (isMemory(lower)) return [lower];
  usageError(`Unknown filter '${word}'`);
}

function parseOptions(argv: readonly string[]): Options {
  let quick = false;
  let runs: number | undefined;
  let n: number | undefined;
  const ids: string[] = [];
  const named = new Set<JobId>();
  let thenable = false;
  let filtered = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--runs') runs = positiveInteger('--runs', argv[++i]);
    else if (arg === '--n') n = positiveInteger('--n', argv[++i]);
    else if (arg === '--impl') ids.push(argv[++i] ?? '');
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    } else if (arg.startsWith('-')) usageError(`Unknown option '${arg}'`);
    else {
      filtered = true;
      const jobs = jobsNamed(arg);
      if (jobs === 'thenable') thenable = true;
      else for (const job of jobs) named.add(job);
    }
  }
  for (const id of ids) {
    if (!IMPLEMENTATIONS.some((impl) => impl.id === id))
      usageError(`Unknown implementation '${id}'`);
  }
  return {
    quick,
    runs: runs ?? (quick ? 1 : 5),
    n: n ?? (quick ? 100_000 : 1_000_000),
    instances: quick ? 5_000 : 20_000,
    jobs: filtered ? ALL_JOBS.filter((job) => named.has(job)) : ALL_JOBS,
    thenable: filtered ? thenable : true,
    impls: IMPLEMENTATIONS.filter((impl) =>
      ids.length === 0
        ? impl.optional !== true
        : ids.includes(impl.id) || impl.id === 'sluice' || REFERENCES.has(impl.id),
    ),
  };
}

// ---------------------------------------------------------------- child runs

/** CPU seconds used by all children so far (what an idle machine would need, roughly). */
let childCpuTotal = 0;

/** Runs one child process and reads its one-line JSON result. */
function runChild(args: readonly string[], timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', BENCH_FILE, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (timedOut) {
        resolve({ ok: false, error: `timed out after ${timeoutMs / 1000} s` });
      } else if (line === '') {
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        resolve({
          ok: false,
          error: `no result (exit ${String(code ?? signal)}): ${tail.slice(0, 300)}`,
        });
      } else {
        childCpuTotal += childCpuSeconds(line);
        resolve(parseChildResult(line));
      }
    });
  });
}

interface Summary {
  /** Median over the runs, when every run succeeded. */
  readonly median: number | null;
  readonly min: number;
  readonly max: number;
  /** Median CPU ns/msg, for throughput jobs whose runs all succeeded. */
  readonly cpu: number | null;
  /** Consumer shares (%) of the median run, for throughput jobs. */
  readonly shares: readonly number[];
  readonly errors: readonly string[];
  readonly runs: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function summarize(results: readonly ChildResult[]): Summary {
  const figures: { value: number; shares: readonly number[] }[] = [];
  const cpu: number[] = [];
  const errors: string[] = [];
  for (const result of results) {
    if (!result.ok) errors.push(result.error);
    else if ('nsPerMessage' in result) {
      figures.push({ value: result.nsPerMessage, shares: result.shares });
      cpu.push(result.cpuNsPerMessage);
    } else if ('bytes' in result) figures.push({ value: result.bytes, shares: [] });
  }
  const values = figures.map((f) => f.value);
  const mid = values.length > 0 ? median(values) : null;
  const closest = figures.reduce<(typeof figures)[number] | undefined>(
    (best, f) =>
      best === undefined || Math.abs(f.value - (mid ?? 0)) < Math.abs(best.value - (mid ?? 0))
        ? f
        : best,
    undefined,
  );
  return {
    median: errors.length === 0 ? mid : null,
    min: Math.min(...values),
    max: Math.max(...values),
    cpu: errors.length === 0 && cpu.length > 0 ? median(cpu) : null,
    shares: closest?.shares ?? [],
    errors,
    runs: results.length,
  };
}

// -------------------------------------------------------------------- output

function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return '';
  return `${fmt(a / b, 2)}x`;
}

/** A plain-text table with padded columns; `right` marks right-aligned columns. */
function table(header: readonly string[], rows: readonly (readonly string[])[], right: number[]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.includes(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function errorText(summary: Summary): string {
  const first = summary.errors[0] ?? '';
  return `ERROR in ${summary.errors.length}/${summary.runs} runs: ${first.split('\n')[0] ?? ''}`;
}

type Results = Map<string, Summary>;
const key = (job: JobId, id: string): string => `${job}/${id}`;

function throughputTable(job: ScenarioId, options: Options, results: Results): string {
  const scenario = SCENARIOS[job];
  const floor = results.get(key(job, 'floor'));
  const sluice = results.get(key(job, 'sluice'));
  const showShares = scenario.consumers > 1;
  const header = [
    'implementation',
    'ns/msg',
    'min-max',
    'x floor',
    'sluice / this',
    'cpu ns/msg',
    'x floor',
    'sluice / this',
  ];
  if (showShares) header.push('consumer shares %');
  header.push('note');
  const blank = header.length - 2;
  const rows = options.impls.flatMap((impl) => {
    const supported = support(impl, job);
    if (supported !== true) {
      if (impl.id === 'bare-promise') return [];
      return [[impl.name, '-', ...new Array<string>(blank - 1).fill(''), `lacks: ${supported}`]];
    }
    const summary = results.get(key(job, impl.id));
    if (summary === undefined) return [];
    if (summary.median === null) {
      return [[impl.name, '-', ...new Array<string>(blank - 1).fill(''), errorText(summary)]];
    }
    const row = [
      impl.name,
      fmt(summary.median),
      `${fmt(summary.min)}-${fmt(summary.max)}`,
      ratio(summary.median, floor?.median),
      ratio(sluice?.median, summary.median),
      fmt(summary.cpu ?? NaN),
      ratio(summary.cpu, floor?.cpu),
      ratio(sluice?.cpu, summary.cpu),
    ];
    if (showShares) row.push(summary.shares.map((share) => fmt(share, 1)).join(' / '));
    row.push('');
    return [row];
  });
  const title = `${scenario.letter}. ${scenario.title}`;
  return `${title}\n\n${table(header, rows, [1, 2, 3, 4, 5, 6, 7])}`;
}

function memoryTables(options: Options, results: Results): string {
  const jobs = options.jobs.filter((job): job is MemoryId => !isScenario(job));
  const header = ['implementation', ...jobs.map((job) => `${MEMORY[job].title}, B`), 'note'];
  const ratioHeader = ['sluice / this', ...jobs.map((job) => MEMORY[job].title)];
  const rows: string[][] = [];
  const ratioRows: string[][] = [];
  for (const impl of options.impls) {
    if (jobs.every((job) => support(impl, job) !== true)) continue;
    // Jobs grouped by the reason they have no figure: "pending, waiter-one: reason".
    const notes = new Map<string, string[]>();
    const note = (job: JobId, text: string): void => {
      notes.set(text, [...(notes.get(text) ?? []), job]);
    };
    const cells = jobs.map((job) => {
      const supported = support(impl, job);
      if (supported !== true) {
        note(job, supported);
        return '-';
      }
      const summary = results.get(key(job, impl.id));
      if (summary === undefined) return '';
      if (summary.median === null) {
        note(job, errorText(summary));
        return '-';
      }
      return fmt(summary.median);
    });
    const noteText = [...notes].map(([text, names]) => `${names.join(', ')}: ${text}`).join('; ');
    rows.push([impl.name, ...cells, noteText]);
    ratioRows.push([
      impl.name,
      ...jobs.map((job) =>
        ratio(results.get(key(job, 'sluice'))?.median, results.get(key(job, impl.id))?.median),
      ),
    ]);
  }
  const numeric = jobs.map((_, i) => i + 1);
  return [
    `M. Memory: heap bytes per instance (${fmt(options.instances)} instances, heapUsed delta after full GCs)`,
    '',
    ...jobs.map((job) => `  ${MEMORY[job].title}: ${MEMORY[job].legend}`),
    '',
    table(header, rows, numeric),
    '',
    table(ratioHeader, ratioRows, numeric),
  ].join('\n');
}

function targets(options: Options, results: Results, thenable: readonly ThenableReport[]) {
  const get = (job: JobId, id: string): number | null | undefined =>
    results.get(key(job, id))?.median;
  const lines: string[] = [];
  const check = (label: string, value: number | null | undefined, limit: number, unit = 'x') => {
    if (value === null || value === undefined) return;
    const shown = unit === 'x' ? `${fmt(value, 2)}x` : `${fmt(value)} ${unit}`;
    const limitShown = unit === 'x' ? `${fmt(limit, 2)}x` : `${fmt(limit)} ${unit}`;
    lines.push(
      `  ${value <= limit ? 'meets ' : 'MISSES'}  ${label}: ${shown} (target <= ${limitShown})`,
    );
  };
  const both = (label: string, job: ScenarioId, of: string, to: string, limit: number) => {
    const a = results.get(key(job, of));
    const b = results.get(key(job, to));
    if (a?.median == null || b?.median == null || a.cpu === null || b.cpu === null) return;
    const wall = a.median / b.median;
    const cpu = a.cpu / b.cpu;
    const verdict =
      wall <= limit && cpu <= limit ? 'meets ' : wall > limit && cpu > limit ? 'MISSES' : 'mixed ';
    lines.push(
      `  ${verdict}  ${label}: ${fmt(wall, 2)}x wall, ${fmt(cpu, 2)}x cpu (target <= ${fmt(limit, 2)}x)`,
    );
  };
  for (const job of ['spsc', 'rendezvous', 'mpmc'] as const) {
    both(`${SCENARIOS[job].letter} sluice / floor`, job, 'sluice', 'floor', 1.1);
  }
  const shares = results.get(key('mpmc', 'sluice'));
  if (shares?.median != null && shares.shares.length > 0) {
    const least = Math.min(...shares.shares);
    lines.push(
      `  ${least >= 15 ? 'meets ' : 'MISSES'}  C fairness: least consumer share ${fmt(least, 1)} % (target >= 15 %)`,
    );
  }
  both('D sluice / hand-written queue', 'batch', 'sluice', 'hand-queue', 1.2);
  const pending = get('pending', 'sluice');
  const bare = get('pending', 'bare-promise');
  if (pending != null && bare != null) check('pending receive / bare promise', pending / bare, 1.2);
  const task = get('waiter-one', 'sluice');
  const bareTask = get('waiter-one', 'bare-promise');
  if (task != null && bareTask != null) {
    check('task awaiting receive / task awaiting bare promise', task / bareTask, 1.2);
  }
  check('idle channel (capacity 16)', get('idle', 'sluice'), 200, 'B');
  const sluiceThenable = thenable.find((r) => r.name === 'sluice');
  if (sluiceThenable !== undefined) {
    lines.push(`  ${sluiceThenable.pass ? 'meets ' : 'MISSES'}  a Channel is not thenable`);
  }
  return lines.length > 0 ? `Targets (measured, not tested):\n${lines.join('\n')}` : '';
}

// ---------------------------------------------------------------------- main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const load = (): string =>
    os
      .loadavg()
      .map((l) => fmt(l, 2))
      .join(' ');
  const loadAtStart = load();
  const collected = new Map<string, ChildResult[]>();
  const record = (job: JobId, id: string, result: ChildResult): void => {
    const list = collected.get(key(job, id)) ?? [];
    list.push(result);
    collected.set(key(job, id), list);
  };
  const describe = (result: ChildResult): string =>
    !result.ok
      ? `ERROR ${result.error.split('\n')[0] ?? ''}`
      : 'nsPerMessage' in result
        ? `${fmt(result.nsPerMessage)} ns/msg`
        : 'bytes' in result
          ? `${fmt(result.bytes)} B`
          : 'memory' in result
            ? result.memory.map((f) => `${f.job} ${describe(f.result)}`).join(', ')
            : '';
  // One child per throughput figure; one child per implementation for its memory figures.
  const plan: { label: string; args: string[]; take: (result: ChildResult) => void }[] = [];
  for (const job of options.jobs.filter(isScenario)) {
    for (const impl of options.impls.filter((each) => support(each, job) === true)) {
      plan.push({
        label: `${SCENARIOS[job].letter} ${job} ${impl.name}`,
        args: [job, impl.id, '--n', String(options.n)],
        take: (result) => {
          record(job, impl.id, result);
        },
      });
    }
  }
  const memoryJobs = options.jobs.filter(isMemory);
  for (const impl of options.impls) {
    const jobs = memoryJobs.filter((job) => support(impl, job) === true);
    if (jobs.length === 0) continue;
    plan.push({
      label: `memory ${impl.name}`,
      args: ['memory', impl.id, '--n', String(options.instances), '--jobs', jobs.join(',')],
      take: (result) => {
        if (result.ok && 'memory' in result) {
          for (const figure of result.memory) record(figure.job, impl.id, figure.result);
        } else {
          for (const job of jobs) record(job, impl.id, result);
        }
      },
    });
  }
  const timeoutMs = options.quick ? 60_000 : 180_000;
  const total = plan.length * options.runs;
  let done = 0;
  process.stderr.write(
    `sluice channel benchmark: ${plan.length} child processes x ${options.runs} rounds (load ${loadAtStart})\n`,
  );
  for (let round = 1; round <= options.runs; round++) {
    for (const { label, args, take } of plan) {
      const result = await runChild(args, timeoutMs);
      take(result);
      done++;
      process.stderr.write(
        `[${done}/${total}, round ${round}, ${fmt((performance.now() - started) / 1000)} s] ${label}: ${describe(result)}\n`,
      );
    }
  }
  let thenable: readonly ThenableReport[] = [];
  let thenableError: string | null = null;
  if (options.thenable) {
    const result = await runChild(['thenable'], timeoutMs);
    if (result.ok && 'thenable' in result) thenable = result.thenable;
    else thenableError = result.ok ? 'no report' : result.error;
  }

  const results: Results = new Map(
    [...collected].map(([name, list]) => [name, summarize(list)] as const),
  );
  const sections: string[] = [
    `sluice channel benchmark: ${fmt(options.n)} messages per throughput run, median of ${options.runs} fresh process${options.runs === 1 ? '' : 'es'} per figure`,
    `Node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), load average ${loadAtStart} at start, ${load()} at end`,
    [
      'ns/msg: wall time of the run / messages; cpu ns/msg: CPU time (user + system, all threads) of the run / messages,',
      'which a loaded machine disturbs less. Medians; min-max is over the processes (wall). Consumers start first,',
      'then producers send. x floor: this / floor. sluice / this: below 1.00x sluice is faster.',
      'Every run verified count, sum, no duplicates and per-producer order (else it shows ERROR, not a figure).',
    ].join('\n'),
  ];
  for (const job of options.jobs) {
    if (isScenario(job)) sections.push(throughputTable(job, options, results));
  }
  if (options.jobs.some((job) => !isScenario(job))) sections.push(memoryTables(options, results));
  if (options.thenable) {
    sections.push(
      thenableError !== null
        ? `Thenable check: ERROR ${thenableError}`
        : [
            'Thenable check (`await channel` on a channel holding one buffered 42):',
            ...thenable.map(
              (r) =>
                `  ${r.pass ? '' : 'FAIL '}${r.name}: ${r.thenable ? 'thenable' : 'not thenable'}; ${r.outcome}`,
            ),
          ].join('\n'),
    );
  }
  const notes = options.impls.flatMap((impl) =>
    impl.note === undefined ? [] : [`- ${impl.note}`],
  );
  sections.push(`Notes:\n${notes.join('\n')}`);
  const goals = targets(options, results, thenable);
  if (goals !== '') sections.push(goals);
  sections.push(
    `Total time ${fmt((performance.now() - started) / 1000)} s; the child processes used ${fmt(childCpuTotal)} s of CPU.`,
  );
  process.stdout.write(`\n${sections.join('\n\n')}\n`);

  const failed = [...results].filter(
    ([name, summary]) =>
      summary.errors.length > 0 && ['sluice', ...REFERENCES].includes(name.split('/')[1] ?? ''),
  );
  return failed.length > 0 || thenableError !== null || thenable.some((r) => !r.pass) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? '') : String(error)}\n`);
    process.exitCode = 1;
  },
);
