/**
 * Turns test results that came from another runtime (Chromium, Bun, Deno) back into
 * mocha tests of this run, in their describe tree and run order, and compares them with
 * the tests Node itself ran under the same titles (Node-only: mocha's globals).
 */
import type { BrowserTestResult, ReportedError } from '../browser/env.js';

/** An Error that reads like the one reported (name, message, stack). */
export function reportedError(reported: ReportedError): Error {
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

/** Rebuilds the describe tree, in run order, from the results' title paths. */
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
        throw reportedError(result.error ?? { name: 'Error', message: 'failed', stack: '' });
      });
    }
  }
}

/**
 * Declares one mocha test per result, inside `describe`s that rebuild the results' tree:
 * passed ones pass, pending ones are pending, failed ones throw the reported error.
 */
export function declareReported(results: readonly BrowserTestResult[]): void {
  declare(tree(results));
}

/** Every test declared in this mocha run, from the root suite down. */
function allTests(suite: Mocha.Suite): Mocha.Test[] {
  return [...suite.tests, ...suite.suites.flatMap(allTests)];
}

/** The root suite of the run that `runnable` belongs to. */
export function rootSuite(runnable: Mocha.Runnable): Mocha.Suite {
  let suite = runnable.parent;
  while (suite?.parent !== undefined) suite = suite.parent;
  if (suite === undefined) throw new Error('test without a suite');
  return suite;
}

function nodeState(test: Mocha.Test): string {
  if (test.isPending()) return 'pending';
  return test.state ?? 'not run yet';
}

/** How the results under `titles` compare with the tests Node ran under the same titles. */
export interface NodeComparison {
  /** Full titles of the tests Node declared under `titles`, sorted. */
  readonly inNode: readonly string[];
  /** Full titles of the reported results under the `titles` that Node has, sorted. */
  readonly reported: readonly string[];
  /** `[full title, Node's state, the other runtime's state]` where they differ. */
  readonly differences: readonly (readonly [string, string, string | undefined])[];
}

/**
 * Compares `results` under the top-level suites `titles` with the tests of this run
 * (found from `runnable`) under the same titles; Node's tests that have not run yet
 * (later in this run) are left out of the differences.
 */
export function compareWithNode(
  runnable: Mocha.Runnable,
  results: readonly BrowserTestResult[],
  titles: readonly string[],
): NodeComparison {
  const inNode = allTests(rootSuite(runnable)).filter((test) =>
    titles.includes(test.titlePath()[0] ?? ''),
  );
  const nodeTitles = new Set(inNode.map((test) => test.titlePath()[0]));
  const reported = results.filter((result) => nodeTitles.has(result.titlePath[0] ?? ''));
  const states = new Map(reported.map((result) => [result.fullTitle, result.state]));
  const differences = inNode
    .filter((test) => test.isPending() || test.state !== undefined)
    .map((test) => [test.fullTitle(), nodeState(test), states.get(test.fullTitle())] as const)
    .filter(([, node, other]) => node !== other);
  return {
    inNode: inNode.map((test) => test.fullTitle()).sort(),
    reported: reported.map((result) => result.fullTitle).sort(),
    differences,
  };
}
