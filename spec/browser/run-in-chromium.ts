/**
 * Runs browser-safe mocha suites in headless Chromium and brings the results back to Node
 * (Node-only). One call = one esbuild bundle, one http server on 127.0.0.1, one browser;
 * everything is closed and the temporary profile deleted before the call settles, so the
 * Node-side mocha exits without `--exit`.
 *
 * @example
 * const run = await runInChromium({
 *   modules: ['spec/browser/suites.ts'],
 *   env: { peerUrl: 'ws://127.0.0.1:4567' },
 * });
 * for (const result of run.results) console.log(result.state, result.fullTitle);
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { builtinModules, createRequire, SourceMap } from 'node:module';
import type { SourceMapPayload } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import type { BrowserContext, ConsoleMessage } from 'playwright-core';
import { ENV_GLOBAL, REPORT_BINDING } from './env.js';
import type { BrowserTestResult, JsonValue, PageReport, ReportedError, TestEnv } from './env.js';

/** Debian's chromium; override with `SLUICE_CHROMIUM`. */
export const chromiumPath: string = process.env['SLUICE_CHROMIUM'] ?? '/usr/bin/chromium';

/** Flags that let Chromium run as root on a machine without network. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface RunInChromiumOptions {
  /**
   * Browser-safe modules (TypeScript or JavaScript), imported in this order once mocha is
   * set up in the page; each declares suites with `describe`/`it` when it is evaluated
   * (typically an entry that calls `defineX(env)` functions). Paths are resolved against
   * `process.cwd()`.
   */
  readonly modules: readonly string[];
  /**
   * Set as `globalThis.__SLUICE_TEST_ENV__` (with `platform: 'chromium'`) before any
   * module is evaluated; read it with `injectedEnv()` from `./env.js`.
   */
  readonly env?: Readonly<Record<string, JsonValue>>;
  /** Mocha's per-test timeout in the page. @default 20000 */
  readonly testTimeout?: number;
  /** Upper bound for loading the page and running mocha in it. @default 180000 */
  readonly runTimeout?: number;
  /** Only run tests whose full title matches (mocha's `grep`). @default undefined */
  readonly grep?: string;
  /** @default chromiumPath */
  readonly executablePath?: string;
  /**
   * Receives the page's console messages and the browser's page errors, one line each.
   * @default writes them to stderr, prefixed with `[chromium …]`
   */
  readonly log?: (line: string) => void;
}

export interface ChromiumRun {
  /** One entry per test (passed, failed or pending) and per failed hook, in run order. */
  readonly results: readonly BrowserTestResult[];
  /** Uncaught exceptions and unhandled rejections in the page; any of them is a failure. */
  readonly pageErrors: readonly ReportedError[];
  readonly userAgent: string;
  /** Milliseconds spent bundling, launching the browser, running mocha, and in total. */
  readonly timings: { bundle: number; launch: number; run: number; total: number };
}

const require = createRequire(import.meta.url);
const harnessPath = fileURLToPath(new URL('page-harness.ts', import.meta.url));
const mochaBrowserBuild = path.join(path.dirname(require.resolve('mocha')), 'mocha.js');

/** `ws`, `node:*` and every bare Node built-in name (`events`, `fs/promises`, …). */
const nodeOnly = new RegExp(
  `^(?:node:.*|ws|${builtinModules.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})(?:/.*)?$`,
);

/** Refuses Node-only imports in the browser bundle, naming the module that made them. */
const refuseNodeOnly: esbuild.Plugin = {
  name: 'refuse-node-only',
  setup(build) {
    build.onResolve({ filter: nodeOnly }, (args) => ({
      errors: [
        {
          text: `"${args.path}" is Node-only and cannot be part of the browser bundle (imported by ${args.importer}); browser code must use globals such as WebSocket`,
        },
      ],
    }));
  },
};

/** The page's script: the harness, then `modules` in order, then mocha's run. */
export interface BrowserBundle {
  readonly code: string;
  /** Its source map (sources relative to `cwd`). */
  readonly map: string;
}

/**
 * Bundles the page script for `runInChromium` (exported to check bundles without a
 * browser). Rejects when a module imports `ws`, `node:*` or a Node built-in, naming the
 * importer.
 */
export async function bundleForBrowser(
  modules: readonly string[],
  cwd: string = process.cwd(),
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<BrowserBundle> {
  const imports = modules.map((module) => `import ${JSON.stringify(path.resolve(cwd, module))};`);
  const result = await esbuild.build({
    stdin: {
      contents: [
        `import { runRegisteredSuites } from ${JSON.stringify(harnessPath)};`,
        ...imports,
        'runRegisteredSuites();',
      ].join('\n'),
      resolveDir: cwd,
      sourcefile: 'chromium-entry.ts',
      loader: 'ts',
    },
    absWorkingDir: cwd,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    // Keep modern syntax (e.g. `await using`) as written: the browser must support it.
    target: 'esnext',
    outfile: path.join(cwd, 'chromium-bundle.js'),
    sourcemap: 'external',
    sourcesContent: false,
    write: false,
    // The package says `sideEffects: false`; suite modules are imported for their effects.
    ignoreAnnotations: true,
    logLevel: 'silent',
    plugins: [refuseNodeOnly],
  });
  for (const warning of result.warnings) {
    const where = warning.location ? ` (${warning.location.file}:${warning.location.line})` : '';
    log(`[esbuild warning] ${warning.text}${where}`);
  }
  const code = result.outputFiles.find((file) => file.path.endsWith('.js'));
  const map = result.outputFiles.find((file) => file.path.endsWith('.map'));
  if (code === undefined || map === undefined) throw new Error('esbuild produced no bundle');
  return { code: code.text, map: map.text };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Rewrites `http://127.0.0.1:port/bundle.js:line:col` in a stack to the source file. */
function sourceMapper(origin: string, map: string, cwd: string): (text: string) => string {
  const sourceMap = new SourceMap(JSON.parse(map) as SourceMapPayload);
  // Mocha's stack filter strips the origin from the frames it reports; page errors keep it.
  const location = new RegExp(
    `(?:${escapeRegExp(origin)}/|(?<![\\w/.-]))bundle\\.js:(\\d+):(\\d+)`,
    'g',
  );
  const mochaFrame = /^\s+at .*\bmocha\.js:\d+:\d+\)?$/;
  return (text) =>
    text
      .split('\n')
      .filter((line) => !mochaFrame.test(line))
      .join('\n')
      .replace(location, (whole, line: string, column: string) => {
        const entry = sourceMap.findEntry(Number(line) - 1, Number(column) - 1);
        if (!('originalSource' in entry)) return whole;
        const source = path.relative(cwd, path.resolve(cwd, entry.originalSource));
        return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
      });
}

/**
 * Errors seen both by Playwright (`pageerror`) and by the page itself are listed once;
 * the page sees those that mocha handles, Playwright those that break the page's scripts.
 */
function mergeErrors(
  fromPlaywright: readonly ReportedError[],
  fromPage: readonly ReportedError[],
): ReportedError[] {
  const merged = [...fromPlaywright];
  for (const error of fromPage) {
    const twin = merged.findIndex(
      (other) => other.message === error.message && other.stack === error.stack,
    );
    if (twin >= 0) merged.splice(twin, 1);
    merged.push(error);
  }
  return merged;
}

function page(env: TestEnv, testTimeout: number, grep: string | undefined): string {
  // `<` escaped so that no value can close the script element.
  const json = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');
  const setup = { ui: 'bdd', timeout: testTimeout, ...(grep === undefined ? {} : { grep }) };
  return `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>sluice specs</title>
<link rel="icon" href="data:,">
<script src="/mocha.js"></script>
<script>
mocha.setup(${json(setup)});
globalThis.${ENV_GLOBAL} = ${json(env)};
</script>
<script type="module" src="/bundle.js"></script>
</head>
<body></body>
</html>
`;
}

async function serve(files: ReadonlyMap<string, [type: string, body: string]>): Promise<Server> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const file = files.get(new URL(request.url ?? '/', 'http://localhost').pathname);
    if (request.method !== 'GET' || file === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' });
    response.end(file[1]);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Let the closed handles go (next turn of the event loop) before the caller checks for
  // open resources.
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Bundles `modules`, runs their suites with mocha in headless Chromium, and returns every
 * result. Rejects when the bundle cannot be built (e.g. a Node-only import), the browser
 * cannot start, or the page does not report within `runTimeout`; test failures and page
 * errors do not reject, they are in the returned run.
 */
export async function runInChromium(options: RunInChromiumOptions): Promise<ChromiumRun> {
  const started = performance.now();
  const cwd = process.cwd();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const executablePath = options.executablePath ?? chromiumPath;
  if (!existsSync(executablePath)) {
    throw new Error(`Expected a Chromium executable at ${executablePath}`);
  }
  const env: TestEnv = { ...options.env, platform: 'chromium' };

  const built = await bundleForBrowser(options.modules, cwd, log);
  const bundled = performance.now();

  const files = new Map<string, [string, string]>([
    ['/', ['text/html; charset=utf-8', page(env, options.testTimeout ?? 20_000, options.grep)]],
    ['/mocha.js', ['text/javascript', await readFile(mochaBrowserBuild, 'utf8')]],
    ['/bundle.js', ['text/javascript', built.code]],
  ]);
  const server = await serve(files);
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const mapStack = sourceMapper(origin, built.map, cwd);
  const mapError = (error: ReportedError): ReportedError => ({
    name: error.name,
    message: error.message,
    stack: mapStack(error.stack),
  });

  const profile = await mkdtemp(path.join(tmpdir(), 'sluice-chromium-'));
  let context: BrowserContext | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const launched = performance.now();
    const tab = context.pages()[0] ?? (await context.newPage());

    const pageErrors: ReportedError[] = [];
    tab.on('console', (message: ConsoleMessage) => {
      log(`[chromium console.${message.type()}] ${mapStack(message.text())}`);
    });
    tab.on('pageerror', (error: Error) => {
      const mapped = mapError({
        name: error.name,
        message: error.message,
        stack: error.stack ?? '',
      });
      pageErrors.push(mapped);
      log(`[chromium page error] ${mapped.stack || mapped.message}`);
    });

    const report = await new Promise<PageReport>((resolve, reject) => {
      const limit = options.runTimeout ?? 180_000;
      timer = setTimeout(() => {
        const errors = pageErrors.map((error) => error.stack || error.message).join('\n');
        reject(new Error(`Chromium did not report within ${limit} ms${errors && `:\n${errors}`}`));
      }, limit);
      tab.once('crash', () => reject(new Error('the Chromium page crashed')));
      tab
        .exposeFunction(REPORT_BINDING, (received: PageReport) => resolve(received))
        .then(() => tab.goto(`${origin}/`))
        .catch(reject);
    });
    const ran = performance.now();

    return {
      results: report.results.map((result) =>
        result.error === undefined ? result : { ...result, error: mapError(result.error) },
      ),
      pageErrors: mergeErrors(pageErrors, report.pageErrors.map(mapError)),
      userAgent: report.userAgent,
      timings: {
        bundle: bundled - started,
        launch: launched - bundled,
        run: ran - launched,
        total: ran - started,
      },
    };
  } finally {
    clearTimeout(timer);
    await context?.close().catch(() => undefined);
    await closeServer(server);
    await rm(profile, { recursive: true, force: true, maxRetries: 5 });
  }
}
