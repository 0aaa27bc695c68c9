// What the Bun/Deno runner reports for fixtures whose outcome is known: each state and
// error, the injected env, a module that throws while loading (one failed result), an
// unhandled rejection, a child that exits mid-run, and one that leaves a timer running
// (killed, reported).
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { bundleForRuntime, RUNTIMES, runInRuntime, runtimePath } from './run-in-runtime.js';

const fixture = (name: string): string => `spec/runtimes/fixtures/${name}.ts`;
const quiet = (): void => undefined;

describe('run-in-runtime', function () {
  this.timeout(60_000);

  describe('bundleForRuntime()', () => {
    it('keeps mocha, ws and isomorphic-ws as imports for the runtime to resolve, and bundles the rest', async () => {
      const code = await bundleForRuntime(['spec/runtimes/websocket.suite.ts']);
      expect(code).to.match(/^import \w+ from "mocha";$/m);
      expect(code).to.match(/^import \w+ from "isomorphic-ws";$/m);
      expect(code).not.to.match(/from "(?:chai|zod|\.\.?\/)/);
      expect(code).to.include('WebSocket adapter, identically on every platform');
    });
  });

  for (const runtime of RUNTIMES) {
    describe(`runInRuntime({ runtime: '${runtime}' })`, () => {
      before(function () {
        if (!existsSync(runtimePath(runtime))) this.skip();
      });

      it('reports every test with its state, the failure with its error, and the env', async () => {
        const run = await runInRuntime({
          runtime,
          modules: [fixture('outcomes')],
          env: { answer: 42 },
          log: quiet,
        });
        expect(run.results.map((r) => [r.fullTitle, r.state])).to.deep.equal([
          ['fixture passes', 'passed'],
          ['fixture fails', 'failed'],
          ['fixture is pending', 'pending'],
          ['fixture sees the injected env', 'passed'],
        ]);
        expect(run.results[1]?.error).to.include({ name: 'RangeError', message: 'on purpose' });
        expect(run.processErrors).to.deep.equal([]);
        expect(run.lingered).to.equal(false);
        expect(run.version).to.match(runtime === 'bun' ? /^Bun \d+\.\d+/ : /^Deno \d+\.\d+/);
      });

      it('reports a module that throws while loading as one failed result, and runs no test', async () => {
        const run = await runInRuntime({
          runtime,
          modules: [fixture('outcomes'), fixture('throws-on-load')],
          log: quiet,
        });
        expect(run.results.map((r) => [r.fullTitle, r.state])).to.deep.equal([
          ['loading the suites', 'failed'],
        ]);
        expect(run.results[0]?.error).to.include({ name: 'TypeError', message: 'broken module' });
        expect(run.processErrors).to.deep.equal([]);
      });

      it('reports a child that exits before its report with the missing report and the code', async () => {
        const run = await runInRuntime({ runtime, modules: [fixture('exits')], log: quiet });
        expect(run.results).to.deep.equal([]);
        const messages = run.processErrors.map((e) => e.message);
        expect(messages).to.have.length(2);
        expect(messages[0]).to.match(new RegExp(`^${runtime} wrote no report \\(Error: ENOENT`));
        expect(messages[1]).to.equal(`${runtime} exited with code 3 (signal null)`);
      });

      it('fails the test during which a rejection went unhandled', async () => {
        const run = await runInRuntime({ runtime, modules: [fixture('unhandled')], log: quiet });
        expect(run.results.map((r) => [r.fullTitle, r.state])).to.deep.equal([
          ['unhandled rejects a promise nobody handles', 'passed'],
          ['"after each" hook: afterEach for "rejects a promise nobody handles"', 'failed'],
        ]);
        expect(run.results[1]?.error?.message).to.match(
          /^unhandled rejection or uncaught exception during "unhandled rejects a promise nobody handles": SyntaxError: nobody handles me/,
        );
        expect(run.processErrors).to.deep.equal([]);
      });

      it('kills a child that stays alive after its report, and says so', async () => {
        const started = performance.now();
        const run = await runInRuntime({
          runtime,
          modules: [fixture('lingers')],
          exitTimeout: 500,
          log: quiet,
        });
        expect(run.results.map((r) => [r.fullTitle, r.state])).to.deep.equal([
          ['lingering starts an interval and never clears it', 'passed'],
        ]);
        expect(run.lingered).to.equal(true);
        expect(run.processErrors.map((e) => e.message)).to.deep.equal([
          `${runtime} was still running 500 ms after its report: something was left open`,
        ]);
        expect(performance.now() - started).to.be.below(30_000);
      });
    });
  }
});
