/**
 * Issue 16's fault test at small scale: the resume scenario (resume-scenario.ts) between a
 * reconnecting client and a server, through a proxy that cuts the connection every
 * 50–500 ms (clean close, reset, black hole), judged by the oracle. And the oracle's
 * self-test: with `resume: false` the same scenario must be reported as losing values.
 * The proxy's seed is printed when a test fails: `SLUICE_CUT_SEED=<seed>` replays it.
 */
import { expect } from 'chai';
import { CUT_MODES } from '../helpers/cutting-proxy.js';
import {
  DOWN_NAMES,
  SMALL,
  UP_NAMES,
  describeCounts,
  judge,
  scenarioClient,
  within,
} from './resume-scenario.js';
import type { ScenarioConfig, SideReport } from './resume-scenario.js';
import { startScenarioRig } from './resume-server.js';
import type { ScenarioRig } from './resume-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 10 ms for up to `ms`; returns whether it became true. */
async function eventually(condition: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; !condition() && waited < ms; waited += 10) await sleep(10);
  return condition();
}

describe('resume across connection loss (issue 16 fault test)', function () {
  this.timeout(60_000);
  let rig: ScenarioRig | undefined;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && rig !== undefined) {
      process.stderr.write(
        `  cutting proxy seed ${rig.proxy.seed} (replay: SLUICE_CUT_SEED=${rig.proxy.seed}), cuts ${JSON.stringify(rig.proxy.cuts)}\n`,
      );
    }
    await rig?.close();
    rig = undefined;
  });

  it('loses, duplicates and reorders nothing through ≥ 20 random cuts of every mode, channels at capacities 0, 1, 16 and unlimited both ways plus a topic', async () => {
    const config: ScenarioConfig = { ...SMALL };
    rig = await startScenarioRig(config);
    const { proxy, scenario } = rig;
    const side = scenarioClient(proxy.url, config);
    rig.startCutting({ minMs: 50, maxMs: 500, modes: CUT_MODES });
    const limit = config.deadlineMs + 5_000;
    const [client, server] = await Promise.all([
      within(side.report, limit),
      within(scenario.report, limit),
    ]);
    proxy.stopCutting();
    await within(
      side.client.done.catch(() => undefined),
      5_000,
    );
    await side.client.stop();
    const verdict = judge(client ?? side.current, server ?? scenario.current, config);
    const line = `${proxy.totalCuts} cuts (${JSON.stringify(proxy.cuts)}), ${describeCounts(verdict.counts)}`;
    process.stderr.write(`  [resume fault] seed ${proxy.seed}: ${line}\n`);
    expect(verdict.problems.join('\n'), `${line}\n${verdict.endings.join('\n')}`).to.equal('');
    expect(client, 'the client side finished').not.to.equal(undefined);
    expect(server, 'the server side finished').not.to.equal(undefined);
    expect(proxy.totalCuts).to.be.at.least(20);
    for (const mode of CUT_MODES) expect(proxy.cuts[mode], mode).to.be.at.least(1);
    expect(verdict.counts.resumesClient).to.be.at.least(config.targetResumes);
    expect(verdict.counts.valuesMoved).to.be.greaterThan(0);
  });

  it('loses nothing when the new connection is reset during its resume handshake, after a black hole or a reset', async () => {
    // The scenario ends at targetResumes; a round makes one or two resumes (the reset 0–6 ms
    // into the handshake often lands after a localhost handshake completed: one more
    // resume) and one or two resets. 24 resumes take at least 12 rounds: ≥ 12 resets (at
    // 12 the scenario ended after 9 resets when every round resumed twice).
    const config: ScenarioConfig = { ...SMALL, targetResumes: 24 };
    rig = await startScenarioRig(config);
    const { proxy, scenario } = rig;
    const side = scenarioClient(proxy.url, config);
    let finished = false;
    const reports = Promise.all([side.report, scenario.report]).finally(() => {
      finished = true;
    });
    const isFinished = (): boolean => finished;
    const moved = (): number =>
      DOWN_NAMES.reduce((sum, name) => sum + (side.current.receives[name]?.count ?? 0), 0);
    // Each round: once values flow, cut (a black hole, else a reset), wait for the client's
    // next connection, and reset it 0–6 ms after the proxy accepted it: mid-handshake.
    for (let round = 0; round < 40 && !isFinished(); round++) {
      const before = moved();
      await eventually(() => (proxy.live > 0 && moved() >= before + 5) || isFinished(), 10_000);
      if (isFinished()) break;
      const accepted = proxy.accepted;
      proxy.cut(round % 2 === 0 ? 'blackhole' : 'reset');
      await eventually(() => proxy.accepted > accepted || isFinished(), 5_000);
      await sleep((round % 4) * 2);
      proxy.cut('reset');
    }
    const [client, server] = (await within(reports, config.deadlineMs)) ?? [
      side.current,
      scenario.current,
    ];
    await within(
      side.client.done.catch(() => undefined),
      5_000,
    );
    await side.client.stop();
    const verdict = judge(client, server, config);
    const line = `${proxy.totalCuts} cuts (${JSON.stringify(proxy.cuts)}), ${describeCounts(verdict.counts)}`;
    process.stderr.write(`  [resume fault, mid-handshake] ${line}\n`);
    expect(verdict.problems.join('\n'), `${line}\n${verdict.endings.join('\n')}`).to.equal('');
    expect(proxy.cuts.reset).to.be.at.least(12);
  });

  it('the oracle reports the losses when the same scenario runs with resume: false (one reset mid-stream)', async () => {
    const config: ScenarioConfig = { ...SMALL, resume: false };
    rig = await startScenarioRig(config);
    const { proxy, scenario } = rig;
    const side = scenarioClient(proxy.url, config);
    // Cut once every channel has moved some values both ways.
    const moving = (report: SideReport, names: readonly string[]): boolean =>
      names.every((name) => (report.receives[name]?.count ?? 0) >= 5);
    const flowing = await eventually(
      () => moving(side.current, DOWN_NAMES) && moving(scenario.current, UP_NAMES),
      10_000,
    );
    expect(flowing, 'values flow on every channel before the cut').to.equal(true);
    expect(proxy.cut('reset')).to.equal(1);
    const client = await within(side.report, 10_000);
    const server = await within(scenario.report, 10_000);
    // The client reconnects (1006 is retried); its handler runs again and closes at once.
    await within(
      side.client.done.catch(() => undefined),
      10_000,
    );
    await eventually(() => scenario.current.handlerRuns === 2, 5_000);
    expect(client, JSON.stringify(side.current)).not.to.equal(undefined);
    expect(server).not.to.equal(undefined);
    const verdict = judge(client!, server!, config);
    process.stderr.write(`  [resume: false] ${describeCounts(verdict.counts)}\n`);

    for (const name of [...UP_NAMES, ...DOWN_NAMES]) {
      expect(verdict.problems).to.include(`${name}: the receiver ended with ConnectionLostError`);
      const sender = (UP_NAMES.includes(name) ? client : server)!.sends[name]!;
      // The first send after the loss rejected, and its value went to onUndelivered.
      expect(sender.rejected, name).to.deep.equal(['ConnectionLostError']);
      expect(sender.undelivered, name).to.include(sender.attempted);
      expect(sender.pending, name).to.equal(0);
    }
    expect(verdict.problems).to.include(
      'client: the handler ran 2 times (a new logical session each)',
    );
    expect(verdict.problems).to.include(
      'server: the handler ran 2 times (a new logical session each)',
    );
    expect(verdict.counts.rejectedSends).to.equal(8);
    expect(verdict.counts.undelivered).to.be.at.least(8);
    // Each channel lost at least the value of its rejected send, except in the one window
    // of docs/protocol.md section 7: a value taken just before the reset whose ack was
    // lost is reported to onUndelivered although received (the oracle flags that channel's
    // accounting, and counts nothing lost on it).
    const windows = verdict.problems.filter((problem) => problem.includes('accounting broken'));
    expect(windows.length).to.be.at.most(8);
    expect(verdict.counts.lost).to.be.at.least(8 - windows.length);
    // Resume off: no session resumed (`resumes` is 0, or absent where resume is not built).
    expect(verdict.counts.resumesClient ?? 0).to.equal(0);
    expect(verdict.counts.resumesServer ?? 0).to.equal(0);
  });
});
