// What the browser runner guarantees without launching a browser (chromium.spec.ts is the
// one launch per run): the bundle refuses Node-only modules and keeps modern syntax.
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { bundleForBrowser } from './run-in-chromium.js';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

describe('run-in-chromium', () => {
  describe('bundleForBrowser()', () => {
    it('refuses ws and node: imports, naming the module that imports them', async () => {
      const error: unknown = await bundleForBrowser([here('fixtures/node-only.ts')]).then(
        () => 'bundled',
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(Error);
      const { message } = error as Error;
      expect(message).to.match(/"ws" is Node-only .*fixtures\/node-only\.ts/);
      expect(message).to.match(/"node:events" is Node-only .*fixtures\/node-only\.ts/);
    });

    it('bundles the channel suite without Node built-ins, keeping `await using` as written', async () => {
      const warnings: string[] = [];
      const bundle = await bundleForBrowser([here('channel.suite.ts')], process.cwd(), (line) =>
        warnings.push(line),
      );
      expect(warnings).to.deep.equal([]);
      expect(bundle.code).to.match(/\bawait using\b/);
      expect(bundle.code).not.to.match(/\brequire\(/);
      const { sources } = JSON.parse(bundle.map) as { sources: string[] };
      expect(sources).to.include('spec/browser/channel.cases.ts');
      expect(sources).to.include('lib/channel.ts');
    });
  });
});
