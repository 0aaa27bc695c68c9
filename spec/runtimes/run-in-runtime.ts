/**
 * Runs mocha suites in Bun or Deno and brings the results back to Node (Node-only). One
 * call = one esbuild bundle (written under `.tmp/runtimes/` so that the runtime resolves
 * `mocha`, `ws` and `isomorphic-ws` from the project's node_modules, as a user's app
 * would) and one child process, whose report comes back as JSON in a file. Bun and Deno
 * are the pinned devDependencies (`node_modules/.bin/bun`, `node_modules/.bin/deno`);
 * Deno gets its own `DENO_DIR` in a temporary directory. Everything, the child included,
 * is gone before the call settles.
 *
 * @example
 * const run = await runInRuntime({ runtime: 'deno', modules: ['spec/runtimes/channel.suite.ts'] });
 * for (const result of run.results) console.log(result.state, result.fullTitle);
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import type { BrowserTestResult, JsonValue, PageReport, ReportedError } from '../browser/env.js';
import { REPORT_FILE_VARIABLE, TEST_ENV_VARIABLE, TEST_TIMEOUT_VARIABLE } from './variables.js';

/** The runtimes this runner knows. */
export type Runtime = 'bun' | 'deno';

export const RUNTIMES: readonly Runtime[] = ['bun', 'deno'];

/** Packages the runtime resolves itself: mocha (Node's build), and `ws` (Bun has its own). */
const EXTERNAL = ['mocha', 'ws', 'isomorphic-ws'];

const harnessPath = fileURLToPath(new URL('harness.ts', import.meta.url));

/** `node_modules/.bin/<runtime>` of the project in `cwd`. */
export function runtimePath(runtime: Runtime, cwd: string = process.cwd()): string {
  return path.join(cwd, 'node_modules', '.bin', runtime);
}

export interface RunInRuntimeOptions {
  readonly runtime: Runtime;
  /**
   * Modules (TypeScript or JavaScript) imported in this order after the harness; each
   * declares suites with `describe`/`it` when it is evaluated. Resolved against `cwd`.
   */
  readonly modules: readonly string[];
  /** Set as `globalThis.__SLUICE_TEST_ENV__` (with `platform: runtime`) before any module. */
  readonly env?: Readonly<Record<string, JsonValue>>;
  /** Mocha's per-test timeout in the runtime. @default 20000 */
  readonly testTimeout?: number;
  /** Upper bound for the whole run, from spawn to exit. @default 300000 */
  readonly runTimeout?: number;
  /**
   * How long the child may take to exit once its report is written; longer means it left
   * something open (a socket, a server, a timer): that is reported as `lingered`.
   * @default 5000
   */
  readonly exitTimeout?: number;
  /**
   * Called once the child has written its report, before `exitTimeout` starts: closes
   * what the Node side started for the suites (a peer that never reads can hold a
   * runtime's closing handshake open; once the peer is gone, nothing may remain).
   * @default nothing
   */
  readonly onReport?: () => Promise<void>;
  /** Receives the child's stdout and stderr, one line each. @default stderr, prefixed */
  readonly log?: (line: string) => void;
}

export interface RuntimeRun {
  /** One entry per test (passed, failed or pending) and per failed hook, in run order. */
  readonly results: readonly BrowserTestResult[];
  /** Errors outside any test: the child crashed, exited with a code, or lingered. */
  readonly processErrors: readonly ReportedError[];
  /** The runtime and its version, as the child saw itself (e.g. `Bun 1.4.5`). */
  readonly version: string;
  /** True when the child did not exit by itself within `exitTimeout` after its report. */
  readonly lingered: boolean;
  /** Milliseconds spent bundling, running the child, and in total. */
  readonly timings: { bundle: number; run: number; total: number };
}

/**
 * Bundles the harness and `modules` as one ESM file for `runtime`. Node built-ins and the
 * {@link EXTERNAL} packages stay imports; everything else (lib/, chai, fast-check, zod) is
 * in the file. Keeps modern syntax as written.
 */
export async function bundleForRuntime(
  modules: readonly string[],
  cwd: string = process.cwd(),
  outfile: string = path.join(cwd, 'bundle.mjs'),
): Promise<string> {
  // Dynamic imports (bundled all the same), so that a module that throws while loading
  // is reported as such instead of ending the child before any report.
  const imports = modules.map(
    (module) => `  await import(${JSON.stringify(path.resolve(cwd, module))});`,
  );
  const result = await esbuild.build({
    stdin: {
      contents: [
        `import { reportLoadFailure, runRegisteredSuites } from ${JSON.stringify(harnessPath)};`,
        'try {',
        ...imports,
        '  runRegisteredSuites();',
        '} catch (error) {',
        '  reportLoadFailure(error);',
        '}',
      ].join('\n'),
      resolveDir: cwd,
      sourcefile: 'runtime-entry.ts',
      loader: 'ts',
    },
    absWorkingDir: cwd,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'esnext',
    external: EXTERNAL,
    // Where the bundle will be: the source map's paths are relative to it.
    outfile,
    // CommonJS dependencies inside an ESM bundle may call `require` for Node built-ins.
    banner: {
      js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);",
    },
    sourcemap: 'inline',
    sourcesContent: false,
    write: false,
    // The package says `sideEffects: false`; suite modules are imported for their effects.
    ignoreAnnotations: true,
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error('esbuild produced no bundle');
  return output.text;
}

/** The command line that runs `file` in `runtime` with every permission. */
function commandLine(runtime: Runtime, file: string): string[] {
  return runtime === 'bun'
    ? ['run', '--no-install', file]
    : [
        'run',
        '-A',
        '--v8-flags=--expose-gc',
        '--no-lock',
        '--no-config',
        '--node-modules-dir=manual',
        file,
      ];
}

/**
 * Runs `modules` with mocha in `runtime` and returns every result. Rejects when the bundle
 * cannot be built or the runtime binary is missing; a crash, an exit code other than 0,
 * a missing report or a child that does not exit are in the returned run (see
 * `processErrors`, `lingered`), so the caller can report them as failed tests.
 */
export async function runInRuntime(options: RunInRuntimeOptions): Promise<RuntimeRun> {
  const started = performance.now();
  const cwd = process.cwd();
  const { runtime } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`[${runtime}] ${line}\n`));
  const executable = runtimePath(runtime, cwd);
  if (!existsSync(executable)) {
    throw new Error(
      `Expected ${runtime} at ${executable} (a pinned devDependency: run npm ci), got nothing`,
    );
  }
  // Inside the project, so that bare imports resolve from its node_modules.
  const bundleDir = path.join(cwd, '.tmp', 'runtimes');
  await mkdir(bundleDir, { recursive: true });
  const work = await mkdtemp(path.join(bundleDir, `${runtime}-`));
  const denoDir = await mkdtemp(path.join(tmpdir(), 'sluice-deno-dir-'));
  const file = path.join(work, 'bundle.mjs');
  const reportFile = path.join(work, 'report.json');
  let bundled = started;

  const processErrors: ReportedError[] = [];
  const failure = (message: string): void => {
    processErrors.push({ name: 'Error', message, stack: message });
  };
  const state = { lingered: false };
  try {
    await writeFile(file, await bundleForRuntime(options.modules, cwd, file));
    bundled = performance.now();
    const child = spawn(executable, commandLine(runtime, file), {
      cwd,
      env: {
        ...process.env,
        [REPORT_FILE_VARIABLE]: reportFile,
        [TEST_ENV_VARIABLE]: JSON.stringify({ ...options.env, platform: runtime }),
        [TEST_TIMEOUT_VARIABLE]: String(options.testTimeout ?? 20_000),
        DENO_DIR: denoDir,
        DENO_NO_UPDATE_CHECK: '1',
        DO_NOT_TRACK: '1',
        NO_COLOR: '1',
        // Node's own options (e.g. --import=tsx from mocha) mean nothing to the child.
        NODE_OPTIONS: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forward = (stream: NodeJS.ReadableStream): void => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) log(line);
      });
      stream.on('end', () => {
        if (rest !== '') log(rest);
      });
    };
    forward(child.stdout);
    forward(child.stderr);

    const runTimeout = options.runTimeout ?? 300_000;
    const exitTimeout = options.exitTimeout ?? 5_000;
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      let reportSeenAt: number | undefined;
      const limit = setTimeout(() => {
        failure(`${runtime} did not finish within ${runTimeout} ms; killed`);
        child.kill('SIGKILL');
      }, runTimeout);
      // Polls for the report, to tell a child that lingers after it from a slow one.
      let reported = false;
      const poll = setInterval(() => {
        if (!reported) {
          if (!existsSync(reportFile)) return;
          reported = true;
          void (options.onReport?.() ?? Promise.resolve()).then(
            () => (reportSeenAt = performance.now()),
            (error: unknown) => {
              failure(`closing the suites' resources failed: ${String(error)}`);
              reportSeenAt = performance.now();
            },
          );
        } else if (reportSeenAt !== undefined && performance.now() - reportSeenAt > exitTimeout) {
          state.lingered = true;
          child.kill('SIGKILL');
        }
      }, 100);
      child.once('error', (error) => failure(`${runtime} could not start: ${error.message}`));
      child.once('close', (code, signal) => {
        clearTimeout(limit);
        clearInterval(poll);
        resolve({ code, signal });
      });
    });
    const ran = performance.now();

    let report: PageReport | undefined;
    try {
      report = JSON.parse(await readFile(reportFile, 'utf8')) as PageReport;
    } catch (error) {
      failure(`${runtime} wrote no report (${String(error)})`);
    }
    if (state.lingered) {
      failure(
        `${runtime} was still running ${exitTimeout} ms after its report: something was left open`,
      );
    } else if (exit.code !== 0) {
      failure(`${runtime} exited with code ${exit.code} (signal ${exit.signal})`);
    }
    return {
      results: report?.results ?? [],
      processErrors,
      version: report?.userAgent ?? runtime,
      lingered: state.lingered,
      timings: { bundle: bundled - started, run: ran - bundled, total: ran - started },
    };
  } finally {
    await rm(work, { recursive: true, force: true, maxRetries: 5 });
    await rm(denoDir, { recursive: true, force: true, maxRetries: 5 });
  }
}
