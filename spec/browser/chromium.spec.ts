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
import { NETWORK_CASES_TITLE, NETWORK_NODE_TITLE } from '../network/pair.js';
import { startRelay, startUpDown } from '../network/servers.js';
import { CHANNEL_CASES_TITLE } from './channel.cases.js';
import { RECONNECTING_CASES_TITLE } from './reconnecting.suite.js';
import type { BrowserTestResult, JsonValue, ReportedError } from './env.js';
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
const browserSuites: readonly BrowserSuite[] = [
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
];

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

function browserError(reported: ReportedError): Error {
  const error = new Error(reported.message);
  error.name = reported.name;
  error.stack = reported.stack || `${reported.name}: ${reported.message}`;
  return error;
}

interface SuiteNode {
  readonly suites: Map<string, SuiteNode>;
  readonly children: ({ title: string; suite: SuiteNode } | { result: BrowserTestResult })[];
}

function suiteNode(): SuiteNode {
  return { suites: new Map(), children: [] };
}

/** Rebuilds the browser's describe tree, in run order, from the results' title paths. */
function tree(results: readonly BrowserTestResult[]): SuiteNode {
  const root = suiteNode();
  for (const result of results) {
    let node = root;
    for (const title of result.titlePath.slice(0, -1)) {
      let child = node.suites.get(title);
      if (child === undefined) {
        child = suiteNode();
        node.suites.set(title, child);
        node.children.push({ title, suite: child });
      }
      node = child;
    }
    node.children.push({ result });
  }
  return root;
}

function declare(node: SuiteNode): void {
  for (const child of node.children) {
    if ('suite' in child) {
      describe(child.title, () => declare(child.suite));
      continue;
    }
    const { result } = child;
    const title = result.titlePath.at(-1) ?? result.fullTitle;
    if (result.state === 'pending') it(title);
    else if (result.state === 'passed') it(title, () => undefined);
    else {
      it(title, () => {
        throw browserError(result.error ?? { name: 'Error', message: 'failed', stack: '' });
      });
    }
  }
}

/** Every test declared in this mocha run, from the root suite down. */
function allTests(suite: Mocha.Suite): Mocha.Test[] {
  return [...suite.tests, ...suite.suites.flatMap(allTests)];
}

function rootSuite(runnable: Mocha.Runnable): Mocha.Suite {
  let suite = runnable.parent;
  while (suite?.parent !== undefined) suite = suite.parent;
  if (suite === undefined) throw new Error('test without a suite');
  return suite;
}

function nodeState(test: Mocha.Test): string {
  if (test.isPending()) return 'pending';
  return test.state ?? 'not run yet';
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
        cause: browserError(first),
      });
    }
  });

  it('gave the same tests and outcomes as Node for the shared suites', function () {
    const sharedWithNode = browserSuites
      .filter((suite) => suite.sharedWithNode)
      .map((suite) => suite.title);
    const inNode = allTests(rootSuite(this.test!)).filter((test) =>
      sharedWithNode.includes(test.titlePath()[0] ?? ''),
    );
    if (inNode.length === 0) this.skip();
    const inBrowser = run.results.filter((result) =>
      sharedWithNode.includes(result.titlePath[0] ?? ''),
    );
    expect(inBrowser.map((result) => result.fullTitle).sort()).to.deep.equal(
      inNode.map((test) => test.fullTitle()).sort(),
      'the same tests in both runtimes',
    );
    const browserStates = new Map(inBrowser.map((result) => [result.fullTitle, result.state]));
    const differences = inNode
      .filter((test) => test.isPending() || test.state !== undefined)
      .map((test) => [test.fullTitle(), nodeState(test), browserStates.get(test.fullTitle())])
      .filter(([, node, browser]) => node !== browser);
    expect(differences).to.deep.equal([], 'tests whose outcome differs (title, Node, Chromium)');
  });

  declare(tree(run.results));
});
