/**
 * The report side of `npm run bench`: number formatting, markdown tables and the page
 * written to `benchmarks/results.md`. Everything here is a pure function of its input,
 * so `spec/benchmarks/report.spec.ts` pins the exact output without running a benchmark.
 *
 * @module
 */

/** `value` with thousands separators and exactly `digits` decimals (`NaN` prints `NaN`). */
export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** `a / b` as `1.23x`; empty when either is missing or `b` is 0. */
export function formatRatio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return '';
  return `${formatNumber(a / b, 2)}x`;
}

/** Seconds as `m:ss` (or `h:mm:ss` from an hour on). */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const s = whole % 60;
  const m = Math.floor(whole / 60) % 60;
  const h = Math.floor(whole / 3600);
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * The median of `values` (the mean of the middle two for an even count).
 *
 * @throws RangeError when `values` is empty.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('Expected at least one value, got none');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A table: `right` lists the indexes of the right-aligned (numeric) columns. */
export interface Table {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly right: readonly number[];
}

/**
 * A markdown pipe table with its columns padded, so that it reads as well in a terminal
 * as it renders on a page. A `|` inside a cell is escaped; a missing cell is blank.
 */
export function markdownTable({ header, rows, right }: Table): string {
  const escape = (cell: string): string => cell.replaceAll('|', '\\|');
  const cells = (row: readonly string[]): string[] => header.map((_, i) => escape(row[i] ?? ''));
  const body = rows.map(cells);
  const head = cells(header);
  const widths = head.map((h, i) => Math.max(3, h.length, ...body.map((r) => r[i]!.length)));
  const line = (row: readonly string[]): string =>
    `| ${row
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join(' | ')} |`;
  const rule = `|${widths
    .map((w, i) => (right.includes(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2)))
    .join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

/** One titled part of a suite's results; `body` is markdown that also reads as plain text. */
export interface Section {
  readonly title: string;
  readonly body: string;
}

/** What one suite (one benchmark file) produced. */
export interface SuiteReport {
  /** The suite's name on the command line (`channel`, `select`, …). */
  readonly name: string;
  /** What it measures, in one line. */
  readonly title: string;
  /** How to run this suite alone. */
  readonly command: string;
  readonly seconds: number;
  /** `true` when a run failed its verification or the benchmark exited with an error. */
  readonly failed: boolean;
  readonly sections: readonly Section[];
}

/** The machine and the circumstances of a run. */
export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** `process.version`. */
  readonly node: string;
  /** `linux x64`, … */
  readonly platform: string;
  /** When the run started, as an ISO 8601 string. */
  readonly date: string;
  /** The 1-minute load average, sampled during the run (at least once). */
  readonly loadSamples: readonly number[];
  /** The short commit hash of `HEAD`, when known. */
  readonly commit: string | null;
  /** Files of the library (`lib/`) that differed from `HEAD` when the run started. */
  readonly uncommitted: readonly string[];
}

/** Everything `results.md` shows. */
export interface Report {
  readonly machine: Machine;
  /** The command that produced the report, as typed. */
  readonly command: string;
  readonly seconds: number;
  readonly suites: readonly SuiteReport[];
  /**
   * The chart: its file name, relative to the markdown file, and one sentence on what it
   * shows (its alt text and caption); `null` for no chart.
   */
  readonly chart: { readonly file: string; readonly caption: string } | null;
  /** Suites that exist but were not run, with how to run them. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * What the load average says about the figures, in one sentence. The benchmark keeps
 * about one core busy itself, so a 1-minute load above `cores / 2 + 1` means that other
 * work competed for the CPU during the run.
 */
export function loadVerdict(cores: number, samples: readonly number[]): string {
  if (samples.length === 0) return 'The load average was not sampled.';
  const peak = Math.max(...samples);
  const typical = median(samples);
  const shown = `1-minute load average during the run: median ${formatNumber(typical, 2)}, peak ${formatNumber(peak, 2)}, on ${cores} cores (the benchmark itself accounts for about 1)`;
  if (typical > cores / 2 + 1) {
    return `${shown}. **The machine was loaded by other work**: expect the figures to be higher and noisier than on an idle machine; the ratios between implementations measured in the same rounds are more trustworthy than the absolute times.`;
  }
  if (peak > cores / 2 + 1) {
    return `${shown}. Other work loaded the machine for part of the run: some figures may be high.`;
  }
  return `${shown}. The machine was otherwise mostly idle.`;
}

/** The markdown page for `benchmarks/results.md`. */
export function renderMarkdown(report: Report): string {
  const { machine } = report;
  const lines: string[] = [
    '# Benchmark results',
    '',
    `Produced by \`${report.command}\` (\`benchmarks/run.ts\`) on ${machine.date}, in ${formatDuration(report.seconds)}. Written by the runner: do not edit by hand, run it again.`,
    '',
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${formatNumber(machine.memoryGiB)} GiB, ${machine.platform}`,
    `- Node ${machine.node}`,
    `- Code: ${
      machine.commit === null ? 'commit unknown' : `commit \`${machine.commit}\``
    }${machine.uncommitted.length === 0 ? '' : `, with uncommitted changes in ${machine.uncommitted.map((file) => `\`${file}\``).join(', ')}`}`,
    `- Load: ${loadVerdict(machine.cores, machine.loadSamples)}`,
    '',
  ];
  if (report.chart !== null) {
    const { file, caption } = report.chart;
    lines.push(`![${caption}](${file})`, '', `_${caption}_`, '');
  }
  for (const suite of report.suites) {
    lines.push(
      `## ${suite.name}: ${suite.title}`,
      '',
      `\`${suite.command}\` — ${formatDuration(suite.seconds)}${suite.failed ? ' — **FAILED** (see below)' : ''}`,
      '',
    );
    for (const section of suite.sections) {
      if (section.title !== '') lines.push(`### ${section.title}`, '');
      lines.push(section.body, '');
    }
  }
  if (report.skipped.length > 0) {
    lines.push(
      '## Not run',
      '',
      ...report.skipped.map(({ name, reason }) => `- ${name}: ${reason}`),
      '',
    );
  }
  return lines.join('\n');
}

/** A suite's results as plain text for the terminal (stdout). */
export function renderText(suite: SuiteReport): string {
  const parts = [`== ${suite.name}: ${suite.title}${suite.failed ? ' (FAILED)' : ''}`];
  for (const section of suite.sections) {
    parts.push(section.title === '' ? section.body : `${section.title}\n\n${section.body}`);
  }
  return parts.join('\n\n');
}

/** `text` in a fenced code block that no line of it can close early. */
export function fenced(text: string, language = 'text'): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${text}\n${fence}`;
}
