/**
 * The channel suite's results as tables, target checks and chart data: pure functions
 * of the figures the child processes of `benchmarks/channel.bench.ts` reported.
 *
 * @module
 */
import type { BarChartSpec, BarSeries } from './chart.js';
import { MEMORY, SCENARIOS, isScenario, support } from './protocol.js';
import type {
  ChildResult,
  Implementation,
  JobId,
  MemoryId,
  ScenarioId,
  ThenableReport,
} from './protocol.js';
import { formatNumber as fmt, formatRatio as ratio, markdownTable, median } from './report.js';
import type { Section } from './report.js';

/** The implementations that frame the peers rather than compete with them. */
export const REFERENCES: ReadonlySet<string> = new Set(['floor', 'bare-promise', 'hand-queue']);

/** The figures of one job for one implementation, over its runs. */
export interface Summary {
  /** Median over the runs, when every run succeeded. */
  readonly median: number | null;
  readonly min: number;
  readonly max: number;
  /** Median CPU ns/msg, for throughput jobs whose runs all succeeded. */
  readonly cpu: number | null;
  /** Consumer shares (%) of the run closest to the median, for throughput jobs. */
  readonly shares: readonly number[];
  readonly errors: readonly string[];
  readonly runs: number;
}

/** Results by `key(job, implementation id)`. */
export type Results = ReadonlyMap<string, Summary>;

/** The key of one job's figures for one implementation in `Results`: `spsc/sluice`. */
export const key = (job: JobId, id: string): string => `${job}/${id}`;

/** What the tables need to know about the run. */
export interface ChannelRun {
  readonly n: number;
  readonly runs: number;
  readonly instances: number;
  readonly jobs: readonly JobId[];
  readonly impls: readonly Implementation[];
}

/** Sums up the results of one job's runs. */
export function summarize(results: readonly ChildResult[]): Summary {
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

function errorText(summary: Summary): string {
  const first = summary.errors[0] ?? '';
  return `ERROR in ${summary.errors.length}/${summary.runs} runs: ${first.split('\n')[0] ?? ''}`;
}

/** The opening section: what the figures are and how they were taken. */
export function introSection(run: ChannelRun): Section {
  return {
    title: '',
    body: [
      `${fmt(run.n)} messages per throughput run, median of ${run.runs} fresh process${run.runs === 1 ? '' : 'es'} per figure (rounds interleave the implementations).`,
      'ns/msg: wall time of the run / messages; cpu ns/msg: CPU time (user + system, all threads) of the run / messages,',
      'which a loaded machine disturbs less. min-max is over the processes (wall). Consumers start first,',
      'then producers send. x floor: this / floor. sluice / this: below 1.00x sluice is faster.',
      'Every run verified count, sum, no duplicates and per-producer order (else it shows ERROR, not a figure).',
    ].join('\n'),
  };
}

/** One throughput scenario's table. */
export function throughputSection(job: ScenarioId, run: ChannelRun, results: Results): Section {
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
  const rows = run.impls.flatMap((impl) => {
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
  return {
    title: `${scenario.letter}. ${scenario.title}`,
    body: markdownTable({ header, rows, right: [1, 2, 3, 4, 5, 6, 7] }),
  };
}

/** The memory jobs: bytes per instance, and sluice / each implementation. */
export function memorySection(run: ChannelRun, results: Results): Section {
  const jobs = run.jobs.filter((job): job is MemoryId => !isScenario(job));
  const header = ['implementation', ...jobs.map((job) => `${MEMORY[job].title}, B`), 'note'];
  const ratioHeader = ['sluice / this', ...jobs.map((job) => MEMORY[job].title)];
  const rows: string[][] = [];
  const ratioRows: string[][] = [];
  for (const impl of run.impls) {
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
  return {
    title: `M. Memory: heap bytes per instance (${fmt(run.instances)} instances, heapUsed delta after full GCs)`,
    body: [
      ...jobs.map((job) => `- ${MEMORY[job].title}: ${MEMORY[job].legend}`),
      '',
      markdownTable({ header, rows, right: numeric }),
      '',
      markdownTable({ header: ratioHeader, rows: ratioRows, right: numeric }),
    ].join('\n'),
  };
}

/** The thenable check: whether `await channel` takes a value, per implementation. */
export function thenableSection(reports: readonly ThenableReport[], error: string | null): Section {
  const title = 'Thenable check (`await channel` on a channel holding one buffered 42)';
  if (error !== null) return { title, body: `ERROR ${error}` };
  return {
    title,
    body: reports
      .map(
        (r) =>
          `- ${r.pass ? '' : 'FAIL '}${r.name}: ${r.thenable ? 'thenable' : 'not thenable'}; ${r.outcome}`,
      )
      .join('\n'),
  };
}

/** What each implementation's figures mean, where that needs saying. */
export function notesSection(run: ChannelRun): Section {
  return {
    title: 'Notes',
    body: run.impls
      .flatMap((impl) => (impl.note === undefined ? [] : [`- ${impl.note}`]))
      .join('\n'),
  };
}

/** sluice's targets, measured (they are never tested: a loaded machine would fail them). */
export function targetsSection(
  results: Results,
  thenable: readonly ThenableReport[],
): Section | null {
  const get = (job: JobId, id: string): number | null | undefined =>
    results.get(key(job, id))?.median;
  const lines: string[] = [];
  const check = (label: string, value: number | null | undefined, limit: number, unit = 'x') => {
    if (value === null || value === undefined) return;
    const shown = unit === 'x' ? `${fmt(value, 2)}x` : `${fmt(value)} ${unit}`;
    const limitShown = unit === 'x' ? `${fmt(limit, 2)}x` : `${fmt(limit)} ${unit}`;
    lines.push(
      `- ${value <= limit ? 'meets ' : 'MISSES'}  ${label}: ${shown} (target <= ${limitShown})`,
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
      `- ${verdict}  ${label}: ${fmt(wall, 2)}x wall, ${fmt(cpu, 2)}x cpu (target <= ${fmt(limit, 2)}x)`,
    );
  };
  for (const job of ['spsc', 'rendezvous', 'mpmc'] as const) {
    both(`${SCENARIOS[job].letter} sluice / floor`, job, 'sluice', 'floor', 1.1);
  }
  for (const job of ['spsc', 'rendezvous', 'mpmc'] as const) {
    both(`${SCENARIOS[job].letter} sluice / hand-written queue`, job, 'sluice', 'hand-queue', 1);
  }
  for (const job of ['spsc', 'rendezvous', 'mpmc'] as const) {
    both(
      `${SCENARIOS[job].letter} iterate({ signal }) / for await`,
      job,
      'sluice-iterate',
      'sluice',
      1.1,
    );
  }
  const shares = results.get(key('mpmc', 'sluice'));
  if (shares?.median != null && shares.shares.length > 0) {
    const least = Math.min(...shares.shares);
    lines.push(
      `- ${least >= 15 ? 'meets ' : 'MISSES'}  C fairness: least consumer share ${fmt(least, 1)} % (target >= 15 %)`,
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
    lines.push(`- ${sluiceThenable.pass ? 'meets ' : 'MISSES'}  a Channel is not thenable`);
  }
  return lines.length > 0
    ? { title: 'Targets (measured, not tested)', body: lines.join('\n') }
    : null;
}

/** The short name of a scenario on the chart's axis: `A. SPSC, capacity 64`. */
const AXIS_NAMES: Record<ScenarioId, string> = {
  spsc: 'A. SPSC, capacity 64',
  rendezvous: 'B. rendezvous',
  mpmc: 'C. 4 x 4, capacity 64',
  batch: 'D. batch (try* first)',
};

/**
 * The throughput chart: one group per scenario that ran, one series per implementation
 * with at least one figure (wall-time medians, ns/msg); `null` where it has none.
 */
export function throughputChart(
  run: ChannelRun,
  results: Results,
  subtitle: string,
): BarChartSpec | null {
  const jobs = run.jobs.filter(isScenario);
  if (jobs.length === 0) return null;
  const series: BarSeries[] = [];
  for (const impl of run.impls) {
    const values = jobs.map((job) => results.get(key(job, impl.id))?.median ?? null);
    if (values.every((value) => value === null)) continue;
    series.push({
      name: impl.name,
      role: impl.id === 'sluice' ? 'ours' : REFERENCES.has(impl.id) ? 'reference' : 'peer',
      values,
    });
  }
  if (series.length === 0) return null;
  return {
    title: 'Channel throughput: ns per message, lower is better',
    subtitle,
    unit: 'ns/msg',
    categories: jobs.map((job) => AXIS_NAMES[job]),
    series,
  };
}
