// The `browser` stub of sluice/server: a bundler resolves every name the real entry
// point exports, and the bundle fails at load with the stub's own message.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import * as esbuild from 'esbuild';

const STUB = fileURLToPath(new URL('../../lib/server/browser.ts', import.meta.url));
const INDEX = fileURLToPath(new URL('../../lib/server/index.ts', import.meta.url));
const MESSAGE =
  "sluice/server runs only in Node: import 'sluice/websocket' in browser code (connect, withWebSocket, endpoint)";

/** The names `file` exports at run time, as esbuild sees them. */
async function exportNames(file: string, platform: 'node' | 'browser'): Promise<string[]> {
  const result = await esbuild.build({
    entryPoints: [file],
    bundle: true,
    platform,
    format: 'esm',
    write: false,
    metafile: true,
    packages: 'external',
    outdir: 'out',
    logLevel: 'silent',
  });
  return Object.values(result.metafile.outputs).flatMap((output) => output.exports);
}

/** Bundles `source` for the browser with `sluice/server` resolved to the stub. */
async function bundle(source: string): Promise<string> {
  const result = await esbuild.build({
    stdin: { contents: source, loader: 'js', resolveDir: process.cwd() },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'sluice-server-browser',
        setup(build) {
          // As published: compiled JavaScript (importing a missing name from a .ts file
          // is not an error to esbuild, since it could be a type; from .js it is).
          build.onResolve({ filter: /^sluice\/server$/ }, () => ({
            path: 'browser.js',
            namespace: 'stub',
          }));
          build.onLoad({ filter: /.*/, namespace: 'stub' }, async () => ({
            contents: (await esbuild.transform(await readFile(STUB, 'utf8'), { loader: 'ts' }))
              .code,
            loader: 'js',
          }));
        },
      },
    ],
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error('esbuild wrote nothing');
  // Not even a warning such as `Import "serve" will always be undefined`.
  expect(result.warnings.map((warning) => warning.text)).to.deep.equal([]);
  return output.text;
}

describe('sluice/server in a browser bundle (the stub)', () => {
  it('exports exactly the run-time names of sluice/server', async () => {
    const [stub, real] = await Promise.all([
      exportNames(STUB, 'browser'),
      exportNames(INDEX, 'node'),
    ]);
    expect(real).to.include('serve');
    expect([...stub].sort()).to.deep.equal([...real].sort());
  });

  it('bundles every import, and loading the bundle throws the stub message', async () => {
    const code = await bundle(
      `import { serve, route, Route, testConversation, endpoint, ServerClosedError } from 'sluice/server';
       export const names = [serve, route, Route, testConversation, endpoint, ServerClosedError];`,
    );
    const url = `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`;
    let thrown: unknown;
    try {
      await import(url);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(Error).with.property('message', MESSAGE);
  });

  it('each export throws the same message if reached', async () => {
    // Evaluate the stub without its last statement (the throw at load), to reach the exports.
    const code = await bundle(
      `export { serve, route, Route, testConversation, endpoint, ServerClosedError } from 'sluice/server';`,
    );
    const body = code.replace(/\nunavailable\(\);\n/, '\n');
    expect(body).not.to.equal(code);
    const stub = (await import(
      `data:text/javascript;base64,${Buffer.from(body).toString('base64')}`
    )) as Record<string, new () => unknown>;
    for (const name of ['serve', 'route', 'testConversation', 'endpoint']) {
      const fn = stub[name] as unknown as () => unknown;
      expect(fn, name).to.throw(Error, MESSAGE);
    }
    for (const name of ['Route', 'ServerClosedError']) {
      const Class = stub[name] as new () => unknown;
      expect(() => new Class(), name).to.throw(Error, MESSAGE);
    }
  });
});
