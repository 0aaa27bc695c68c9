// Browser entry: the resume fault scenario of issue 16 with its client side in the page,
// behind the cutting proxy (started by chromium.spec.ts with the Node-side server), judged
// by the same oracle as the Node spec (spec/network/resume-fault.spec.ts).
import { expect } from 'chai';
import { text, withWebSocket } from '../../lib/websocket/index.js';
import {
  RESUME_CHROMIUM_TITLE,
  SMALL,
  describeCounts,
  judge,
  scenarioClient,
  within,
} from '../network/resume-scenario.js';
import type { SideReport } from '../network/resume-scenario.js';
import type { ServerAnswer } from '../network/resume-server.js';
import { envString, injectedEnv } from './env.js';

const env = injectedEnv();
const proxyUrl = envString(env, 'resumeProxyUrl');
const reportUrl = envString(env, 'resumeReportUrl');

describe(RESUME_CHROMIUM_TITLE, () => {
  it('loses, duplicates and reorders nothing through ≥ 20 random cuts of every mode (the page is the client)', async function () {
    this.timeout(SMALL.deadlineMs + 30_000);
    const side = scenarioClient(proxyUrl, SMALL);
    const client: SideReport =
      (await within(side.report, SMALL.deadlineMs + 5_000)) ?? side.current;
    await within(
      side.client.done.catch(() => undefined),
      5_000,
    );
    await side.client.stop();
    const answer = await withWebSocket<string, string, ServerAnswer>(
      reportUrl,
      { codec: text() },
      async ({ incoming, outgoing }) => {
        await outgoing.send(JSON.stringify(client));
        return JSON.parse(await incoming.receive()) as ServerAnswer;
      },
    );
    const server = answer.server;
    expect(server, 'the server side finished').not.to.equal(null);
    const verdict = judge(client, server!, SMALL);
    const line = `seed ${answer.seed}: ${answer.totalCuts} cuts (${JSON.stringify(answer.cuts)}), ${describeCounts(verdict.counts)}`;
    console.log(`[resume fault, Chromium] ${line}`);
    expect(verdict.problems.join('\n'), `${line}\n${verdict.endings.join('\n')}`).to.equal('');
    expect(answer.totalCuts).to.be.at.least(20);
    expect(answer.cuts.close).to.be.at.least(1);
    expect(answer.cuts.reset).to.be.at.least(1);
    expect(answer.cuts.blackhole).to.be.at.least(1);
  });
});
