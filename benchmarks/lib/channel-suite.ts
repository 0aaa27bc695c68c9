/**
 * The channel suite: every job of `benchmarks/channel.bench.ts` in fresh child
 * processes (5 per figure, interleaved in rounds so that a burst of machine load
 * spreads over all implementations), summed up as tables, target checks and a chart.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { IMPLEMENTATIONS } from '../channel.bench.js';
import {
  REFERENCES,
  introSection,
  key,
  memorySection,
  notesSection,
  summarize,
  targetsSection,
  thenableSection,
  throughputChart,
  throughputSection,
} from './channel-report.js';
import type { ChannelRun, Results } from './channel-report.js';
import {
  MEMORY,
  SCENARIOS,
  childCpuSeconds,
  isMemory,
  isScenario,
  parseChildResult,
  support,
} from './protocol.js';
import type { ChildResult, JobId, ThenableReport } from './protocol.js';
import { formatNumber as fmt } from './report.js';
import type { Section } from './report.js';
import { UsageError } from './suite.js';
import type { Suite, SuiteOutcome } from './suite.js';

const BENCH_FILE = fileURLToPath(new URL('../channel.bench.ts', import.meta.url));
const ROOT = dirname(dirname(BENCH_FILE));
const SCENARIO_IDS = Object.keys(SCENARIOS).filter(isScenario);
const MEMORY_IDS = Object.keys(MEMORY).filter(isMemory);
const ALL_JOBS: readonly JobId[] = [...SCENARIO_IDS, ...MEMORY_IDS];

/** The channel suite's part of the runner's usage text. */
export const CHANNEL_HELP = `channel suite:
  FILTER      A|spsc, B|rendezvous, C|mpmc, D|batch, memory (or idle, pending, waiter-one,
              waiter-own), thenable: only these channel jobs (and only the channel suite
              unless other suites are named)
  --n N       messages per throughput run (default 1,000,000; 100,000 with --quick)
  --impl ID   only this implementation (sluice and the references always run); variants
              that run only when named: ${IMPLEMENTATIONS.filter((i) => i.optional === true)
                .map((i) => i.id)
                .join(', ')}
              all: ${IMPLEMENTATIONS.map((i) => i.id).join(', ')}`;

/** The jobs a filter word names, `'thenable'`, or `null` when it names none. */
function jobsNamed(word: string): readonly JobId[] | 'thenable' | null {
  const lower = word.toLowerCase();
  if (lower === 'thenable') return 'thenable';
  if (lower === 'memory' || lower === 'm') return MEMORY_IDS;
  const scenario = SCENARIO_IDS.find(
    (id) => lower === id || lower === SCENARIOS[id].letter.toLowerCase(),
  );
  if (scenario !== undefined) return [scenario];
  if (isMemory(lower)) return [lower];
  return null;
}

/** Whether `word` is one of the channel suite's filters. */
export function isChannelFilter(word: string): boolean {
  return jobsNamed(word) !== null;
}

/** The channel suite's part of the command line. */
export interface ChannelConfig {
  /** Filter words (`C`, `memory`, `thenable`, …); none means every job. */
  readonly filters: readonly string[];
  /** `--impl` ids; none means the default peers. */
  readonly impls: readonly string[];
  /** `--n`, when given. */
  readonly n: number | undefined;
}

/** Runs one child process and reads its one-line JSON result. */
function runChild(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ result: ChildResult; cpuSeconds: number }> {
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
        resolve({
          result: { ok: false, error: `timed out after ${timeoutMs / 1000} s` },
          cpuSeconds: 0,
        });
      } else if (line === '') {
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        resolve({
          result: {
            ok: false,
            error: `no result (exit ${String(code ?? signal)}): ${tail.slice(0, 300)}`,
          },
          cpuSeconds: 0,
        });
      } else {
        resolve({ result: parseChildResult(line), cpuSeconds: childCpuSeconds(line) });
      }
    });
  });
}

/** A child's result in a few words, for the progress line. */
function describe(result: ChildResult): string {
  if (!result.ok) return `ERROR ${result.error.split('\n')[0] ?? ''}`;
  if ('nsPerMessage' in result) return `${fmt(result.nsPerMessage)} ns/msg`;
  if ('bytes' in result) return `${fmt(result.bytes)} B`;
  if ('memory' in result)
    return result.memory.map((f) => `${f.job} ${describe(f.result)}`).join(', ');
  return '';
}

/**
 * The channel suite. Checks `config` at once.
 *
 * @throws UsageError for an unknown filter word or implementation id.
 */
export function channelSuite(config: ChannelConfig): Suite {
  const named = new Set<JobId>();
  let thenable = config.filters.length === 0;
  for (const word of config.filters) {
    const jobs = jobsNamed(word);
    if (jobs === null) throw new UsageError(`Unknown filter '${word}'`);
    if (jobs === 'thenable') thenable = true;
    else for (const job of jobs) named.add(job);
  }
  for (const id of config.impls) {
    if (!IMPLEMENTATIONS.some((impl) => impl.id === id)) {
      throw new UsageError(`Unknown implementation '${id}'`);
    }
  }
  const jobs = config.filters.length === 0 ? ALL_JOBS : ALL_JOBS.filter((job) => named.has(job));
  const impls = IMPLEMENTATIONS.filter((impl) =>
    config.impls.length === 0
      ? impl.optional !== true
      : config.impls.includes(impl.id) || impl.id === 'sluice' || REFERENCES.has(impl.id),
  );
  return {
    name: 'channel',
    title: 'Channel throughput and memory against the peer libraries',
    async run({ quick, runs, progress }): Promise<SuiteOutcome> {
      const run: ChannelRun = {
        n: config.n ?? (quick ? 100_000 : 1_000_000),
        runs: runs ?? (quick ? 1 : 5),
        instances: quick ? 5_000 : 20_000,
        jobs,
        impls,
      };
      const started = progress.elapsedSeconds;
      let cpuSeconds = 0;
      const collected = new Map<string, ChildResult[]>();
      const record = (job: JobId, id: string, result: ChildResult): void => {
        const list = collected.get(key(job, id)) ?? [];
        list.push(result);
        collected.set(key(job, id), list);
      };
      // One child per throughput figure; one child per implementation for its memory figures.
      const plan: { label: string; args: string[]; take: (result: ChildResult) => void }[] = [];
      for (const job of jobs.filter(isScenario)) {
        for (const impl of impls.filter((each) => support(each, job) === true)) {
          plan.push({
            label: `${SCENARIOS[job].letter} ${job} · ${impl.name}`,
            args: [job, impl.id, '--n', String(run.n)],
            take: (result) => {
              record(job, impl.id, result);
            },
          });
        }
      }
      const memoryJobs = jobs.filter(isMemory);
      for (const impl of impls) {
        const own = memoryJobs.filter((job) => support(impl, job) === true);
        if (own.length === 0) continue;
        plan.push({
          label: `memory · ${impl.name}`,
          args: ['memory', impl.id, '--n', String(run.instances), '--jobs', own.join(',')],
          take: (result) => {
            if (result.ok && 'memory' in result) {
              for (const figure of result.memory) record(figure.job, impl.id, figure.result);
            } else {
              for (const job of own) record(job, impl.id, result);
            }
          },
        });
      }
      const timeoutMs = quick ? 60_000 : 180_000;
      const total = plan.length * run.runs + (thenable ? 1 : 0);
      let done = 0;
      progress.line(
        'channel',
        `${plan.length} child processes x ${run.runs} round${run.runs === 1 ? '' : 's'}${thenable ? ' + the thenable check' : ''}`,
      );
      for (let round = 1; round <= run.runs; round++) {
        for (const { label, args, take } of plan) {
          const { result, cpuSeconds: used } = await runChild(args, timeoutMs);
          cpuSeconds += used;
          take(result);
          progress.step(
            'channel',
            ++done,
            total,
            `round ${round}/${run.runs} · ${label}: ${describe(result)}`,
          );
        }
      }
      let reports: readonly ThenableReport[] = [];
      let thenableError: string | null = null;
      if (thenable) {
        const { result } = await runChild(['thenable'], timeoutMs);
        if (result.ok && 'thenable' in result) reports = result.thenable;
        else thenableError = result.ok ? 'no report' : result.error;
        progress.step('channel', ++done, total, `thenable check: ${thenableError ?? 'done'}`);
      }

      const results: Results = new Map(
        [...collected].map(([name, list]) => [name, summarize(list)] as const),
      );
      const sections: Section[] = [introSection(run)];
      for (const job of jobs) {
        if (isScenario(job)) sections.push(throughputSection(job, run, results));
      }
      if (memoryJobs.length > 0) sections.push(memorySection(run, results));
      if (thenable) sections.push(thenableSection(reports, thenableError));
      sections.push(notesSection(run));
      const goals = targetsSection(results, reports);
      if (goals !== null) sections.push(goals);
      const seconds = progress.elapsedSeconds - started;
      sections.push({
        title: '',
        body: `The child processes used ${fmt(cpuSeconds)} s of CPU in ${fmt(seconds)} s.`,
      });
      const failed =
        [...results].some(
          ([name, summary]) =>
            summary.errors.length > 0 &&
            ['sluice', ...REFERENCES].includes(name.split('/')[1] ?? ''),
        ) ||
        thenableError !== null ||
        reports.some((r) => !r.pass);
      const chart = throughputChart(
        run,
        results,
        `${fmt(run.n)} integers through a channel; wall-time medians of ${run.runs} fresh process${run.runs === 1 ? '' : 'es'} each; missing bar: the library has no such operation`,
      );
      const words = [
        'channel',
        ...(quick ? ['--quick'] : []),
        ...(runs === undefined ? [] : ['--runs', String(runs)]),
        ...(config.n === undefined ? [] : ['--n', String(config.n)]),
        ...config.impls.flatMap((id) => ['--impl', id]),
        ...config.filters,
      ];
      return {
        report: {
          name: 'channel',
          title: 'Channel throughput and memory against the peer libraries',
          command: `npm run bench -- ${words.join(' ')}`,
          seconds,
          failed,
          sections,
        },
        ...(chart === null
          ? {}
          : {
              chart: {
                spec: chart,
                caption:
                  'Channel throughput in ns per message (log scale, lower is better): sluice beside each peer library and two references, the floor (no queue at all) and a hand-written queue',
              },
            }),
      };
    },
  };
}
