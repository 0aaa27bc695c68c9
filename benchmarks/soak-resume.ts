/**
 * The resume soak (issue 16): the fault scenario of spec/network/resume-scenario.ts at
 * large scale. `--clients` scenarios run at once, each a reconnecting client and its own
 * server (resume on) behind its own cutting proxy, which cuts every 50–500 ms (clean
 * close, reset, black hole; seeded, the seeds are printed). Each scenario goes on until
 * its client has resumed `--cuts / --clients` times (plus a margin), then closes its
 * channels and the oracle judges it: 0 lost, 0 duplicated, order kept, `onUndelivered`
 * never called, every `send` resolved, the topic contiguous.
 *
 * ```
 * npm run soak:resume                               # ≥ 1,000 cuts, 4 clients (2–4 minutes)
 * npm run soak:resume -- --quick                    # ≥ 100 cuts (under a minute)
 * npm run soak:resume -- --cuts 2000 --clients 8
 * SLUICE_CUT_SEED=123 npm run soak:resume           # replay (first proxy; the others +1, +2, …)
 * ```
 *
 * In-process, from the TypeScript sources (tsx). The table goes to stdout, progress to
 * stderr; the exit code is 1 when the oracle found a problem or fewer cuts than asked
 * were survived, 2 on a usage error.
 *
 * @module
 */
import os from 'node:os';
import { SMALL, describeCounts, judge, scenarioClient } from '../spec/network/resume-scenario.js';
import type { ScenarioConfig, Verdict } from '../spec/network/resume-scenario.js';
import { startScenarioRig } from '../spec/network/resume-server.js';
import { formatNumber, markdownTable } from './lib/report.js';

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function numberAfter(args: readonly string[], flag: string, fallback: number): number {
  const index = args.indexOf(flag);
  if (index < 0) return fallback;
  const value = Number(args[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected ${flag} to be a positive integer, got ${args[index + 1]}`);
  }
  return value;
}

interface Row {
  readonly seed: number;
  readonly cuts: Readonly<Record<string, number>>;
  readonly totalCuts: number;
  readonly seconds: number;
  readonly verdict: Verdict;
}

/** One scenario: a server and proxy of its own, a client, until `resumes` resumes. */
async function runOne(config: ScenarioConfig, seed: number | undefined): Promise<Row> {
  const started = Date.now();
  const rig = await startScenarioRig(config, seed);
  try {
    const side = scenarioClient(rig.proxy.url, config);
    rig.startCutting({ minMs: 50, maxMs: 500 });
    const [client, server] = await Promise.all([side.report, rig.scenario.report]);
    rig.proxy.stopCutting();
    await side.client.done.catch(() => undefined);
    await side.client.stop();
    return {
      seed: rig.proxy.seed,
      cuts: rig.proxy.cuts,
      totalCuts: rig.proxy.totalCuts,
      seconds: (Date.now() - started) / 1000,
      verdict: judge(client, server, config),
    };
  } finally {
    await rig.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  let cuts: number;
  let clients: number;
  try {
    cuts = numberAfter(args, '--cuts', quick ? 100 : 1000);
    clients = numberAfter(args, '--clients', 4);
  } catch (error) {
    progress((error as Error).message);
    process.exitCode = 2;
    return;
  }
  // Each cut of a live connection is one resume; a cut can also fall while the client is
  // reconnecting (then nothing is cut), so aim 10 % higher per client.
  const targetResumes = Math.ceil((cuts / clients) * 1.1);
  const config: ScenarioConfig = {
    ...SMALL,
    targetResumes,
    stopAfterMs: targetResumes * 2_000,
    deadlineMs: targetResumes * 2_000 + 60_000,
  };
  const firstSeed = process.env['SLUICE_CUT_SEED'];
  progress(
    `soak:resume: ${clients} clients, each until ${targetResumes} resumes, cuts every 50–500 ms (close, reset, black hole)…`,
  );
  const rows = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      runOne(config, firstSeed === undefined ? undefined : (Number(firstSeed) + i) >>> 0),
    ),
  );
  const total = rows.reduce((sum, row) => sum + row.totalCuts, 0);
  const moved = rows.reduce((sum, row) => sum + row.verdict.counts.valuesMoved, 0);
  // A failed scenario's lines start with the errors its channels ended with (the cause).
  const problems = rows.flatMap((row) => [
    ...(row.verdict.problems.length === 0
      ? []
      : row.verdict.endings.map((ending) => `seed ${row.seed}: (ended with) ${ending}`)),
    ...row.verdict.problems.map((problem) => `seed ${row.seed}: ${problem}`),
  ]);
  const table = markdownTable({
    header: [
      'seed',
      'close',
      'reset',
      'black hole',
      'cuts',
      'resumes (client/server)',
      'values moved',
      'lost',
      'duplicated',
      'onUndelivered',
      'problems',
      'seconds',
    ],
    rows: rows.map((row) => {
      const c = row.verdict.counts;
      return [
        String(row.seed),
        String(row.cuts['close'] ?? 0),
        String(row.cuts['reset'] ?? 0),
        String(row.cuts['blackhole'] ?? 0),
        String(row.totalCuts),
        `${c.resumesClient ?? 'n/a'}/${c.resumesServer ?? 'n/a'}`,
        formatNumber(c.valuesMoved),
        String(c.lost),
        String(c.duplicated),
        String(c.undelivered),
        String(row.verdict.problems.length),
        row.seconds.toFixed(1),
      ];
    }),
    right: [1, 2, 3, 4, 6, 7, 8, 9, 10, 11],
  });
  const load = os
    .loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
  process.stdout.write(
    `\nResume soak${quick ? ' (--quick)' : ''} (Node ${process.version}, ${os.cpus().length} cores, load average at the end ${load}): ` +
      `${formatNumber(total)} cuts survived, ${formatNumber(moved)} values moved, ${problems.length} problem(s)\n\n${table}\n`,
  );
  for (const row of rows) progress(`  seed ${row.seed}: ${describeCounts(row.verdict.counts)}`);
  for (const problem of problems.slice(0, 80)) process.stdout.write(`- ${problem}\n`);
  if (problems.length > 80) process.stdout.write(`- … and ${problems.length - 80} more\n`);
  if (problems.length > 0 || total < cuts) process.exitCode = 1;
}

await main();
