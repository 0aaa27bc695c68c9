/**
 * Runs the browser suites in headless Chromium, once, while mocha loads this file, and
 * reports every browser test as a Node-side test titled `[chromium] <full browser title>`,
 * failing with the browser's error. Also fails when no browser test ran, when a listed
 * suite did not run, on any page error or unhandled rejection, and when a suite shared
 * with Node gives other results there. Without Chromium the suite is skipped, except
 * under CI, where that is a failure.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CONFORMANCE_TITLE } from '../websocket/conformance.cases.js';
import { startPeerServer } from '../websocket/peer-server.js';
import { NETWORK_CASES_TITLE, NETWORK_NODE_TITLE, TOPICS_NODE_TITLE } from '../network/pair.js';
import { startRelay, startUpDown } from '../network/servers.js';
import { startTopicServer } from '../network/topic-server.js';
import { RESUME_CHROMIUM_TITLE, SMALL } from '../network/resume-scenario.js';
import { REPORT_PATH, startScenarioRig } from '../network/resume-server.js';
import { CHANNEL_CASES_TITLE } from './channel.cases.js';
import { RECONNECTING_CASES_TITLE } from './reconnecting.suite.js';
import type { JsonValue } from './env.js';
import { compareWithNode, declareReported, reportedError } from '../helpers/reported-tests.js';
import { chromiumPath, runInChromium } from './run-in-chromium.js';
import type { ChromiumRun } from './run-in-chromium.js';

const PREFIX = '[chromium]';

/** One suite that runs in the page. */
interface BrowserSuite {
  /** Its top-level `describe` title: the run fails when no test of it ran. */
  readonly title: string;
  /** The browser-safe module that declares it when imported, relative to this file. */
  readonly module: string;
  /** True when a Node spec declares the same suite: both runs must give the same results. */
  readonly sharedWithNode: boolean;
  /**
   * Starts what the suite needs on the Node side (e.g. a peer server); `env` is merged
   * into the page's `__SLUICE_TEST_ENV__`, and `close` runs once the browser is done.
   */
  readonly setup?: () => Promise<{ env: Record<string, JsonValue>; close(): Promise<void> }>;
}

/** Every suite that runs in Chromium, in this order, in one browser launch. */
const allBrowserSuites: readonly BrowserSuite[] = [
  { title: CHANNEL_CASES_TITLE, module: 'channel.suite.ts', sharedWithNode: true },
  {
    title: CONFORMANCE_TITLE,
    module: 'websocket.suite.ts',
    sharedWithNode: false, // Node runs it with other platforms: spec/websocket/conformance.spec.ts
    setup: async () => {
      const peer = await startPeerServer();
      return { env: { peerUrl: peer.url }, close: () => peer.close() };
    },
  },
  {
    title: RECONNECTING_CASES_TITLE,
    module: 'reconnecting.suite.ts',
    sharedWithNode: false, // Node runs the same cases in spec/websocket/reconnecting.spec.ts
  },
  {
    title: NETWORK_CASES_TITLE,
    module: 'network.suite.ts',
    sharedWithNode: true, // Node runs the same cases Node↔Node: spec/network/conformance.spec.ts
    setup: async () => {
      const relay = await startRelay();
      return { env: { relayUrl: relay.url }, close: () => relay.close() };
    },
  },
  {
    title: NETWORK_NODE_TITLE,
    module: 'network-node.suite.ts',
    sharedWithNode: false, // the page talks to a Node-side ChannelSession
    setup: async () => {
      const upDown = await startUpDown();
      return { env: { upDownUrl: upDown.url }, close: () => upDown.close() };
    },
  },
  {
    title: 'Topic (properties)',
    module: 'topic-properties.suite.ts',
    sharedWithNode: false, // Node runs the same file: spec/topics/topic.property.spec.ts
  },
  {
    title: 'StateTopic',
    module: 'state-topic.suite.ts',
    sharedWithNode: false, // Node runs the same file: spec/topics/state-topic.spec.ts
  },
  {
    title: TOPICS_NODE_TITLE,
    module: 'topics-node.suite.ts',
    sharedWithNode: false, // the page follows topics served by Node
    setup: async () => {
      const topics = await startTopicServer();
      return { env: { topicsUrl: topics.url }, close: () => topics.close() };
    },
  },
  {
    title: RESUME_CHROMIUM_TITLE,
    module: 'resume.suite.ts',
    sharedWithNode: false, // Node runs the scenario Node↔Node: spec/network/resume-fault.spec.ts
    setup: async () => {
      // The page's client connects through the proxy, which cuts at random once values
      // flow (rig.startCutting: a cut before the server's resume token arrived is by design
      // an expiry, not a resume); the page exchanges reports on REPORT_PATH, directly.
      const rig = await startScenarioRig(SMALL);
      rig.startCutting({ minMs: 50, maxMs: 500 });
      return {
        env: { resumeProxyUrl: rig.proxy.url, resumeReportUrl: `${rig.directUrl}${REPORT_PATH}` },
        close: () => rig.close(),
      };
    },
  },
];

/**
 * `SLUICE_BROWSER_ONLY=resume` runs only the suites whose module name contains it: for
 * repeating one suite locally. Unset (as in CI), every suite runs.
 */
const only = process.env['SLUICE_BROWSER_ONLY'];
const browserSuites: readonly BrowserSuite[] =
  only === undefined || only === ''
    ? allBrowserSuites
    : allBrowserSuites.filter((suite) => suite.module.includes(only));

const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

type Outcome = { readonly run: ChromiumRun } | { readonly failure: unknown };

const networkHandles = (): number =>
  process
    .getActiveResourcesInfo()
    .filter((kind) => kind === 'TCPServerWrap' || kind === 'TCPSocketWrap').length;

/**
 * Waits (up to 2 s) until no more TCP handles are open than `count`. A closed server's
 * handle can stay listed for a few milliseconds after its `close` callback; later spec
 * files take their baseline of open resources while loading, so ours must be gone.
 */
async function networkHandlesReleased(count: number): Promise<void> {
  for (let waited = 0; networkHandles() > count && waited < 2_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function runBrowserSuites(): Promise<Outcome> {
  const before = networkHandles();
  const env: Record<string, JsonValue> = {};
  const started: { close(): Promise<void> }[] = [];
  try {
    for (const suite of browserSuites) {
      if (suite.setup === undefined) continue;
      const resources = await suite.setup();
      started.push(resources);
      Object.assign(env, resources.env);
    }
    const run = await runInChromium({
      modules: browserSuites.map((suite) => fileURLToPath(new URL(suite.module, import.meta.url))),
      env,
      // The suites take ~100 s on a loaded machine, and the resume fault run up to its
      // deadline (70 s) on top.
      runTimeout: 300_000,
    });
    const { bundle, launch, run: mocha, total } = run.timings;
    const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    process.stderr.write(
      `${PREFIX} ${run.results.length} tests in ${seconds(total)} (bundle ${seconds(bundle)}, launch ${seconds(launch)}, mocha ${seconds(mocha)}); ${run.userAgent}\n`,
    );
    return { run };
  } catch (failure) {
    return { failure };
  } finally {
    for (const resources of started.reverse()) await resources.close();
    await networkHandlesReleased(before);
  }
}

const available = existsSync(chromiumPath);
const outcome = available ? await runBrowserSuites() : undefined;

describe(PREFIX, () => {
  if (outcome === undefined) {
    const missing = `Chromium is not installed at ${chromiumPath}`;
    if (inCi) {
      it('has a browser to run in', () => {
        throw new Error(`${missing}; CI must install it (apt-get install -y chromium)`);
      });
    } else {
      it(`runs the browser suites (skipped: ${missing}; apt-get install -y chromium)`);
    }
    return;
  }
  if ('failure' in outcome) {
    it('runs the browser suites', () => {
      throw outcome.failure;
    });
    return;
  }
  const { run } = outcome;

  it('ran at least one browser test', () => {
    expect(run.results.length).to.be.greaterThan(0, 'no test ran in Chromium');
  });

  it('ran every listed browser suite', () => {
    const ran = new Set(run.results.map((result) => result.titlePath[0]));
    const missing = browserSuites.filter((suite) => !ran.has(suite.title));
    expect(missing.map((suite) => suite.title)).to.deep.equal([], 'suites without any result');
  });

  it('had no page error and no unhandled rejection', () => {
    const [first] = run.pageErrors;
    if (first !== undefined) {
      const all = run.pageErrors.map((error) => error.stack || error.message).join('\n---\n');
      throw new Error(`${run.pageErrors.length} page error(s) in Chromium:\n${all}`, {
        cause: reportedError(first),
      });
    }
  });

  it('gave the same tests and outcomes as Node for the shared suites', function () {
    const sharedWithNode = browserSuites
      .filter((suite) => suite.sharedWithNode)
      .map((suite) => suite.title);
    const comparison = compareWithNode(this.test!, run.results, sharedWithNode);
    if (comparison.inNode.length === 0) this.skip();
    expect(comparison.reported).to.deep.equal(comparison.inNode, 'the same tests in both runtimes');
    expect(comparison.differences).to.deep.equal(
      [],
      'tests whose outcome differs (title, Node, Chromium)',
    );
  });

  declareReported(run.results);
});
