// The resume oracle (judge() of resume-scenario.ts) on made-up reports: a clean run
// passes, and each kind of broken promise is reported, so that the fault test cannot
// pass by an oracle that sees nothing.
import { expect } from 'chai';
import { DOWN_NAMES, SMALL, UP_NAMES, judge } from './resume-scenario.js';
import type { ReceiveTally, ScenarioConfig, SendTally, SideReport } from './resume-scenario.js';

const N = 50;

function sent(attempted = N): SendTally {
  return { attempted, resolved: attempted, rejected: [], pending: 0, undelivered: [] };
}

function received(count = N): ReceiveTally {
  return {
    count,
    first: count === 0 ? null : 1,
    last: count === 0 ? null : count,
    duplicates: 0,
    skipped: 0,
    anomalies: [],
    ended: 'closed',
  };
}

/** A clean run's two reports: every channel 1..N, the topic 1..N, one resume each. */
function cleanRun(): { client: SideReport; server: SideReport } {
  const side = (
    name: 'client' | 'server',
    sends: readonly string[],
    receives: readonly string[],
  ) => ({
    side: name,
    handlerRuns: 1,
    resumes: 3,
    sends: Object.fromEntries(sends.map((channel) => [channel, sent()])),
    receives: Object.fromEntries(receives.map((channel) => [channel, received()])),
    topic: null,
    published: 0,
    errors: [],
    elapsedMs: 1000,
  });
  const client: SideReport = {
    ...side('client', UP_NAMES, DOWN_NAMES),
    topic: { publications: N, gaps: 0, anomalies: [], lastOffset: N, ended: 'closed' },
  };
  const server: SideReport = { ...side('server', DOWN_NAMES, UP_NAMES), published: N };
  return { client, server };
}

const resumeOn: ScenarioConfig = SMALL;

describe('resume oracle (judge)', () => {
  it('finds nothing wrong in a clean run, and counts what moved', () => {
    const { client, server } = cleanRun();
    const verdict = judge(client, server, resumeOn);
    expect(verdict.problems).to.deep.equal([]);
    expect(verdict.counts).to.deep.equal({
      valuesMoved: 9 * N,
      upValues: 4 * N,
      downValues: 4 * N,
      topicValues: N,
      resumesClient: 3,
      resumesServer: 3,
      lost: 0,
      duplicated: 0,
      undelivered: 0,
      rejectedSends: 0,
    });
  });

  it('reports a value lost at the end (sent and resolved, never received)', () => {
    const { client, server } = cleanRun();
    server.receives['up16'] = received(N - 1);
    expect(judge(client, server, resumeOn).problems).to.deep.equal([
      `up16: accounting broken: ${N} given, received ${N - 1} (1..${N - 1}), onUndelivered got [], expected [${N}]`,
      'up16: 1 value(s) lost',
    ]);
  });

  it('reports a value skipped in the middle, a duplicate and the order', () => {
    const { client, server } = cleanRun();
    client.receives['down1'] = {
      ...received(N),
      skipped: 1,
      duplicates: 1,
      anomalies: ['12 after 10 (skipped 1)', '11 after 12'],
    };
    expect(judge(client, server, resumeOn).problems).to.deep.equal([
      'down1: received 12 after 10 (skipped 1)',
      'down1: received 11 after 12',
      'down1: 1 value(s) duplicated',
      'down1: 1 value(s) skipped',
      'down1: 1 value(s) lost',
    ]);
  });

  it('reports onUndelivered for a value that arrived, a rejected and an unsettled send', () => {
    const { client, server } = cleanRun();
    client.sends['up0'] = {
      attempted: N,
      resolved: N - 2,
      rejected: ['ConnectionLostError'],
      pending: 1,
      undelivered: [N],
    };
    expect(judge(client, server, resumeOn).problems).to.deep.equal([
      `up0: 1 send(s) never settled`,
      `up0: accounting broken: ${N} given, received ${N} (1..${N}), onUndelivered got [${N}], expected []`,
      'up0: onUndelivered called 1 time(s)',
      'up0: send rejected with ConnectionLostError',
      'up0: 2 send(s) did not resolve',
    ]);
  });

  it('reports a channel that ended with an error, a second logical session and no resume', () => {
    const { client, server } = cleanRun();
    server.receives['upInf'] = { ...received(N), ended: 'SessionExpiredError' };
    client.handlerRuns = 2;
    server.resumes = 0;
    client.resumes = null;
    expect(judge(client, server, resumeOn).problems).to.deep.equal([
      'upInf: the receiver ended with SessionExpiredError',
      'client: the handler ran 2 times (a new logical session each)',
      'client: the session has no `resumes` (resume not implemented)',
      'server: the session never resumed',
    ]);
  });

  it('reports a gap, a repeat and a short count in the topic', () => {
    const { client, server } = cleanRun();
    client.topic = {
      publications: N - 2,
      gaps: 1,
      anomalies: ['gap 5–6', 'offset 9 (value 9) after 9'],
      lastOffset: N,
      ended: 'closed',
    };
    expect(judge(client, server, resumeOn).problems).to.deep.equal([
      'topic: gap 5–6',
      'topic: offset 9 (value 9) after 9',
      `topic: ${N} published, ${N - 2} received`,
    ]);
  });

  it('with resume off, accepts undelivered values that were not received (today’s exact accounting)', () => {
    const { client, server } = cleanRun();
    client.sends['up1'] = {
      attempted: N,
      resolved: N - 3,
      rejected: ['ConnectionLostError'],
      pending: 0,
      undelivered: [N - 2, N - 1, N],
    };
    server.receives['up1'] = { ...received(N - 3), ended: 'ConnectionLostError' };
    const verdict = judge(client, server, { ...resumeOn, resume: false });
    expect(verdict.problems).to.deep.equal(['up1: the receiver ended with ConnectionLostError']);
    expect(verdict.counts).to.include({ lost: 3, undelivered: 3, rejectedSends: 1 });
  });
});
