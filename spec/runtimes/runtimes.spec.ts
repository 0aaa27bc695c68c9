/**
 * Runs the shared cases in Bun and in Deno (the pinned devDependencies), once per runtime
 * while mocha loads this file, and reports every test as a Node-side test under
 * `[bun]` / `[deno]`: the channel cases, select, scopes and timers, the WebSocket
 * adapter's conformance cases (the runtime's own WebSocket and `ws` as the runtime
 * resolves it, against a peer server in Node), and a server/network subset (`serve`,
 * endpoints, malformed and faulty peers, the server conversations, network channel
 * pairs) with the server inside the runtime. Also fails when no test ran, when a listed
 * suite did not run, when the child crashed, exited with a code or left something open,
 * and when a suite shared with Node gives other results there. Without the binaries the
 * suite is skipped, except under CI, where that is a failure.
 */
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { CHANNEL_CASES_TITLE } from '../browser/channel.cases.js';
import type { JsonValue } from '../browser/env.js';
import { compareWithNode, declareReported, reportedError } from '../helpers/reported-tests.js';
import { NETWORK_CASES_TITLE } from '../network/pair.js';
import { startPeerServer } from '../websocket/peer-server.js';
import { RUNTIMES, runInRuntime, runtimePath } from './run-in-runtime.js';
import type { Runtime, RuntimeRun } from './run-in-runtime.js';

/** What runs in each runtime, in this order, in one child process. */
const MODULES = [
  'spec/browser/channel.suite.ts',
  'spec/select.spec.ts',
  'spec/scope.spec.ts',
  'spec/time.spec.ts',
  'spec/runtimes/websocket.suite.ts',
  'spec/network/conformance.spec.ts',
  'spec/server/conversation.spec.ts',
  'spec/server/serve.spec.ts',
  'spec/server/endpoint.spec.ts',
  'spec/server/malformed.spec.ts',
  'spec/server/fault.spec.ts',
];

/**
 * Run a second time in Bun with `transport: 'bun'` in the test environment ([bun-native]):
 * the server specs, on `Bun.serve` (spec/server/transport.ts), plus the transport's own.
 */
const NATIVE_MODULES = [
  'spec/server/conversation.spec.ts',
  'spec/server/serve.spec.ts',
  'spec/server/endpoint.spec.ts',
  'spec/server/malformed.spec.ts',
  'spec/server/fault.spec.ts',
  'spec/server/hostile-server.spec.ts',
  'spec/server/bun-transport.spec.ts',
];

const NATIVE_SUITES = [
  'server conformance: the same conversations over a real socket and in memory',
  'serve()',
  'endpoint()',
  'serve() under malformed traffic',
  'serve() under faults',
  'serve() against hostile clients and handlers',
  'serve({ transport })',
];

/** One child process: a runtime, what it runs, and the group its results go under. */
interface Run {
  readonly name: string;
  readonly runtime: Runtime;
  readonly modules: readonly string[];
  readonly env: Readonly<Record<string, JsonValue>>;
  readonly suites: readonly string[];
}

/** Top-level suites that must have run (a typo or a throwing module would lose them). */
const requiredSuites = (runtime: Runtime): string[] => [
  CHANNEL_CASES_TITLE,
  'select',
  'scope()',
  'delay()',
  `WebSocket conformance (${runtime})`,
  `WebSocket conformance (${runtime}-ws)`,
  NETWORK_CASES_TITLE,
  'server conformance: the same conversations over a real socket and in memory',
  'serve()',
  'endpoint()',
  'serve() under malformed traffic',
  'serve() under faults',
];

const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

type Outcome = { readonly run: RuntimeRun } | { readonly failure: unknown };

const RUNS: readonly Run[] = [
  ...RUNTIMES.map((runtime) => ({
    name: runtime,
    runtime,
    modules: MODULES,
    env: {},
    suites: requiredSuites(runtime),
  })),
  {
    name: 'bun-native',
    runtime: 'bun',
    modules: NATIVE_MODULES,
    env: { transport: 'bun' },
    suites: NATIVE_SUITES,
  },
];

async function runSuites({ name, runtime, modules, env: runEnv }: Run): Promise<Outcome> {
  const peer = await startPeerServer();
  let closed: Promise<void> | undefined;
  const closePeer = (): Promise<void> => (closed ??= peer.close());
  try {
    const env: Record<string, JsonValue> = { ...runEnv, peerUrl: peer.url };
    const run = await runInRuntime({ runtime, modules, env, onReport: closePeer });
    const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    process.stderr.write(
      `[${name}] ${run.results.length} tests in ${seconds(run.timings.total)} (bundle ${seconds(run.timings.bundle)}, run ${seconds(run.timings.run)}); ${run.version}\n`,
    );
    return { run };
  } catch (failure) {
    return { failure };
  } finally {
    await closePeer();
  }
}

const outcomes = new Map<Run, Outcome | undefined>();
for (const run of RUNS) {
  outcomes.set(run, existsSync(runtimePath(run.runtime)) ? await runSuites(run) : undefined);
}

for (const planned of RUNS) {
  const { name, runtime } = planned;
  describe(`[${name}]`, () => {
    const outcome = outcomes.get(planned);
    if (outcome === undefined) {
      const missing = `${runtimePath(runtime)} is missing`;
      if (inCi) {
        it(`has ${runtime} to run in`, () => {
          throw new Error(`${missing}; it is a devDependency: npm ci installs it`);
        });
      } else {
        it(`runs the shared cases (skipped: ${missing}; run npm ci)`);
      }
      return;
    }
    if ('failure' in outcome) {
      it('runs the shared cases', () => {
        throw outcome.failure;
      });
      return;
    }
    const { run } = outcome;

    it('ran at least one test', () => {
      expect(run.results.length).to.be.greaterThan(0, `no test ran in ${runtime}`);
    });

    it('ran every listed suite', () => {
      const ran = new Set(run.results.map((result) => result.titlePath[0]));
      const missing = planned.suites.filter((title) => !ran.has(title));
      expect(missing).to.deep.equal([], 'suites without any result');
    });

    it('exited by itself with code 0 after its report, nothing left open', () => {
      const [first] = run.processErrors;
      if (first !== undefined) {
        const all = run.processErrors.map((error) => error.message).join('\n');
        throw new Error(`${run.processErrors.length} process error(s) in ${runtime}:\n${all}`, {
          cause: reportedError(first),
        });
      }
    });

    it('gave the same tests and outcomes as Node for the suites both ran', function () {
      const titles = [...new Set(run.results.map((result) => result.titlePath[0] ?? ''))];
      const comparison = compareWithNode(this.test!, run.results, titles);
      if (comparison.inNode.length === 0) this.skip();
      if (name === 'bun-native') {
        // Tests that exist only for one transport (bun-transport.spec.ts) are left out:
        // every other test must have the same outcome as on `ws` in Node.
        const both = comparison.differences.filter(([, , other]) => other !== undefined);
        expect(both).to.deep.equal([], 'tests whose outcome differs (title, Node, bun-native)');
        const onlyHere = comparison.reported.filter((title) => !comparison.inNode.includes(title));
        expect(onlyHere.every((title) => title.startsWith('serve({ transport }) '))).to.equal(
          true,
          `tests only in bun-native outside serve({ transport }): ${onlyHere.join('; ')}`,
        );
        return;
      }
      expect(comparison.reported).to.deep.equal(comparison.inNode, 'the same tests in both');
      expect(comparison.differences).to.deep.equal(
        [],
        `tests whose outcome differs (title, Node, ${runtime})`,
      );
    });

    declareReported(run.results);
  });
}
