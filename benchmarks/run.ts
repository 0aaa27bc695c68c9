/**
 * The runner behind `npm run bench`: runs the benchmark suites one after the other,
 * prints progress to stderr and each suite's result tables to stdout, then writes the
 * report `benchmarks/results.md` and its chart `benchmarks/results.svg`.
 *
 * ```
 * npm run bench                         # every suite but the opt-in ones (~12 min)
 * npm run bench -- --all                # every suite
 * npm run bench -- --quick              # a short run that checks the runner (~3 min)
 * npm run bench -- select pipeline      # some suites
 * npm run bench -- C memory             # channel suite: scenario C and the memory jobs
 * npm run bench -- --impl ts-chan       # channel suite: one peer (plus the references)
 * ```
 *
 * Exits with 1 when a suite failed (a sluice or reference run failed its verification,
 * the thenable check failed, or a bench file exited with an error), 2 on a usage error.
 *
 * To add a benchmark file that follows the contract in `lib/bench-file.ts`, add one
 * line to `SUITES` below.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { benchFile } from './lib/bench-file.js';
import { renderBarChart } from './lib/chart.js';
import { CHANNEL_HELP, channelSuite, isChannelFilter } from './lib/channel-suite.js';
import type { ChannelConfig } from './lib/channel-suite.js';
import { Progress } from './lib/progress.js';
import { formatDuration, formatNumber, median, renderMarkdown, renderText } from './lib/report.js';
import type { Machine, SuiteReport } from './lib/report.js';
import { UsageError } from './lib/suite.js';
import type { Suite, SuiteOutcome } from './lib/suite.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DEFAULT_OUT = join(ROOT, 'benchmarks', 'results.md');

interface Command {
  readonly suites: readonly string[];
  readonly all: boolean;
  readonly quick: boolean;
  readonly runs: number | undefined;
  readonly out: string | undefined;
  readonly filters: readonly string[];
  readonly impls: readonly string[];
  readonly n: number | undefined;
}

/**
 * Every suite, in the order they run. The channel suite is configured from the command
 * line; the others are bench files that run on their own (see `lib/bench-file.ts`).
 */
function suites(channel: ChannelConfig): readonly Suite[] {
  return [
    channelSuite(channel),
    benchFile({
      name: 'select',
      title: "select over 4 channels against ts-chan's Select",
      quick: ['--runs', '1', '--n', '100000'],
      markdown: true,
    }),
    benchFile({
      name: 'pipeline',
      title: 'producer → 4 workers → collector against effect',
      quick: ['--runs', '1', '--n', '100000'],
      markdown: true,
    }),
    benchFile({
      name: 'topic',
      title:
        "topic fan-out to 1, 10 and 1,000 subscribers against Effect's PubSub and a channel loop",
      quick: ['--runs', '1', '--deliveries', '100000'],
      markdown: true,
    }),
    benchFile({
      name: 'sync',
      title: 'Mutex.withLock and Semaphore.withPermit against a hand-written promise lock',
      quick: ['--runs', '1', '--n', '20000'],
      markdown: true,
    }),
    benchFile({ name: 'websocket', title: 'a WebSocket session against raw ws and it-ws' }),
    benchFile({
      name: 'network',
      title: 'network channels against the raw session: throughput and a slow consumer',
      quick: ['--quick', '--runs', '1'],
      markdown: true,
      optIn: 'starts two processes per run and takes about 6 minutes',
    }),
    benchFile({
      name: 'resume',
      title:
        'resumable network channels against resume: false: throughput and the time to the first resumed value',
      quick: ['--quick', '--runs', '1'],
      markdown: true,
      optIn: 'starts a server process and cuts connections through a proxy; about 2 minutes',
    }),
    benchFile({
      name: 'fanout',
      title: "one topic to 1,000 websocket clients against a raw ws loop and Socket.IO's room emit",
      quick: ['--runs', '1', '--messages', '50'],
      markdown: true,
      optIn: 'opens 1,000 connections per implementation and takes about 2 minutes',
    }),
    benchFile({
      name: 'redis',
      title:
        'cross-node publish through Redis (1 publishing node, 2 subscriber nodes) against Socket.IO with @socket.io/redis-adapter',
      quick: ['--runs', '1', '--messages', '300', '--paced', '100', '--subscribers', '10'],
      markdown: true,
      optIn:
        'starts its own redis-server (Debian: apt-get install -y redis-server) and five processes per run, about 3 minutes',
    }),
    benchFile({
      name: 'server',
      title:
        'serve from dist/ against a raw ws server: echo at 1,000 connections, memory per idle connection at 1,000 and 10,000, idle channel session and topic subscription',
      quick: ['--quick'],
      optIn: 'builds dist/, opens up to 10,000 connections and takes about 15 minutes',
    }),
  ];
}

/** The suites as a plain `npm run bench` configures them: their names and opt-in notes. */
const CATALOGUE = suites({ filters: [], impls: [], n: undefined });
const SUITE_NAMES = CATALOGUE.map((suite) => suite.name);

const HELP = `usage: npm run bench -- [SUITE]... [--all] [--quick] [--runs N] [--out FILE] [channel options]
  SUITE       ${SUITE_NAMES.join(', ')}; none: every suite but the opt-in ones
              (${CATALOGUE.filter((s) => s.optIn !== undefined)
                .map((s) => `${s.name}: ${s.optIn}`)
                .join('; ')})
  --all       every suite
  --quick     a short run that checks the runner itself (its figures are not worth reading)
  --runs N    fresh processes per figure, in every suite (default 5; 1 with --quick)
  --out FILE  the markdown report; the chart goes beside it (same name, .svg). Default:
              benchmarks/results.md after a default or --all run with no other option,
              else ${join(os.tmpdir(), 'sluice-bench', 'results.md')}
${CHANNEL_HELP}`;

function positiveInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`Expected ${flag} to be a positive integer, got ${String(text)}`);
  }
  return value;
}

function parseCommand(argv: readonly string[]): Command | 'help' {
  const named: string[] = [];
  const filters: string[] = [];
  const impls: string[] = [];
  let all = false;
  let quick = false;
  let runs: number | undefined;
  let n: number | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    else if (arg === '--all') all = true;
    else if (arg === '--quick') quick = true;
    else if (arg === '--runs') runs = positiveInteger('--runs', argv[++i]);
    else if (arg === '--n') n = positiveInteger('--n', argv[++i]);
    else if (arg === '--impl') impls.push(argv[++i] ?? '');
    else if (arg === '--out') {
      out = argv[++i];
      if (out === undefined || out === '') throw new UsageError('Expected a file after --out');
    } else if (arg.startsWith('-')) throw new UsageError(`Unknown option '${arg}'`);
    else if (SUITE_NAMES.includes(arg.toLowerCase())) named.push(arg.toLowerCase());
    else if (isChannelFilter(arg)) filters.push(arg);
    else throw new UsageError(`Unknown suite or channel filter '${arg}'`);
  }
  // A channel filter on its own means the channel suite alone.
  const chosen = filters.length > 0 && !named.includes('channel') ? [...named, 'channel'] : named;
  return { suites: chosen, all, quick, runs, out, filters, impls, n };
}

/** The machine, the code and the load, for the report's header. */
function machineFacts(loadSamples: readonly number[]): Machine {
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return null;
    }
  };
  // `git()` trims the whole output, which would eat the first line's leading status
  // column; name-only output has no columns to lose.
  const changed = git('diff', 'HEAD', '--name-only', '--', 'lib');
  const added = git('ls-files', '--others', '--exclude-standard', '--', 'lib');
  const status = [changed, added].filter((list) => list !== null && list !== '').join('\n');
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    loadSamples,
    commit: git('rev-parse', '--short', 'HEAD'),
    uncommitted: status === '' ? [] : status.split('\n').map((line) => line.trim()),
  };
}

/**
 * How the run was started, as the user typed it (as far as it can be told): through an
 * npm script, whose own arguments come first in `argv`, or with node.
 */
function typedCommand(argv: readonly string[]): string {
  const script = process.env.npm_lifecycle_event;
  const line = process.env.npm_lifecycle_script ?? '';
  const own = line.split('benchmarks/run.ts')[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
  if (script !== undefined && own.every((word, i) => argv[i] === word)) {
    const extra = argv.slice(own.length);
    return `npm run ${script}${extra.length === 0 ? '' : ` -- ${extra.join(' ')}`}`;
  }
  return ['node --import tsx benchmarks/run.ts', ...argv].join(' ');
}

async function main(argv: readonly string[]): Promise<number> {
  const command = parseCommand(argv);
  if (command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const every = suites({ filters: command.filters, impls: command.impls, n: command.n });
  const chosen = every.filter((suite) =>
    command.suites.length > 0
      ? command.suites.includes(suite.name)
      : command.all || suite.optIn === undefined,
  );
  const complete =
    !command.quick &&
    command.suites.length === 0 &&
    command.runs === undefined &&
    command.n === undefined &&
    command.impls.length === 0;
  const out =
    command.out ?? (complete ? DEFAULT_OUT : join(os.tmpdir(), 'sluice-bench', 'results.md'));

  const loadSamples = [os.loadavg()[0]!];
  const sampler = setInterval(() => loadSamples.push(os.loadavg()[0]!), 5000);
  sampler.unref();
  const machine = machineFacts(loadSamples);
  const progress = new Progress(process.stderr);
  progress.line(
    'bench',
    `suites: ${chosen.map((s) => s.name).join(', ')}${command.quick ? ' (quick)' : ''}; load average ${os
      .loadavg()
      .map((l) => formatNumber(l, 2))
      .join(' ')} on ${machine.cores} cores`,
  );

  const outcomes: SuiteOutcome[] = [];
  for (const suite of chosen) {
    const outcome = await suite.run({ quick: command.quick, runs: command.runs, progress });
    outcomes.push(outcome);
    process.stdout.write(`\n${renderText(outcome.report)}\n`);
  }
  clearInterval(sampler);
  loadSamples.push(os.loadavg()[0]!);

  const reports: SuiteReport[] = outcomes.map((o) => o.report);
  const load = `1-minute load average ${formatNumber(median(loadSamples), 2)} (median) on ${machine.cores} cores`;
  // Only the channel suite draws a chart today; the first chart is the report's.
  const chart = outcomes.find((o) => o.chart !== undefined)?.chart;
  mkdirSync(dirname(out), { recursive: true });
  const svgFile = out.replace(/\.md$/, '') + '.svg';
  if (chart !== undefined) {
    const { spec } = chart;
    writeFileSync(svgFile, renderBarChart({ ...spec, subtitle: `${spec.subtitle}\n${load}` }));
  }
  const seconds = progress.elapsedSeconds;
  const markdown = renderMarkdown({
    machine,
    command: typedCommand(argv),
    seconds,
    suites: reports,
    chart: chart === undefined ? null : { file: basename(svgFile), caption: chart.caption },
    skipped: every
      .filter((suite) => !chosen.includes(suite))
      .map((suite) => ({
        name: suite.name,
        reason:
          suite.optIn !== undefined && command.suites.length === 0
            ? `opt-in (${suite.optIn}): \`npm run bench -- ${suite.name}\` or \`--all\``
            : `not selected: \`npm run bench -- ${suite.name}\``,
      })),
  });
  writeFileSync(out, markdown);
  const shown = (file: string): string =>
    relative(process.cwd(), file).startsWith('..') ? file : relative(process.cwd(), file);
  process.stdout.write(
    `\nNode ${machine.node}, ${machine.cores} cores (${machine.cpuModel}), ${load}. Total ${formatDuration(seconds)}.\n`,
  );
  progress.line(
    'bench',
    `wrote ${shown(out)}${chart === undefined ? '' : ` and ${shown(svgFile)}`}`,
  );
  const failed = reports.filter((r) => r.failed).map((r) => r.name);
  if (failed.length > 0) progress.line('bench', `FAILED: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${HELP}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? '') : String(error)}\n`);
    process.exitCode = 1;
  },
);
