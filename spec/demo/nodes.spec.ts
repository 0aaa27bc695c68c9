/**
 * The demo across nodes, as a user sees it: two demo processes (`demo/start.ts` with
 * `REDIS_URL` and `DEMO_PEERS`) on one redis-server of the test's own, a page in headless
 * Chromium on each. The pages see each other's messages; then the first page's process is
 * killed (SIGKILL: no goodbye, no `left`), the second page keeps talking, and the first
 * page reconnects to the other process on its own and shows exactly what it missed, once,
 * in order. The tests are the steps of one session and run in order. Without Chromium or
 * redis-server they are skipped, except under CI, where that is a failure.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { expect } from 'chai';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumPath } from '../browser/run-in-chromium.js';
import { REDIS_SERVER, freePort, startRedis } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import {
  CHROMIUM_ARGS,
  greeting,
  join,
  message,
  messages,
  say,
  waitForMessages,
  waitForNotice,
} from './chat-page.js';

const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

/** One `demo/start.ts` process. */
interface DemoNode {
  readonly url: string;
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Starts `demo/start.ts` on `port`; resolves once it prints its URL. */
async function startNode(env: Record<string, string>): Promise<DemoNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/start.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const found = /^sluice chat demo: (http:\/\/\S+)$/m.exec(output);
      if (found?.[1] !== undefined) {
        child.stdout.off('data', onData);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', onData);
    void exited.then(({ code, signal }) => {
      reject(new Error(`demo exited (${String(code ?? signal)}) before it was up:\n${output}`));
    });
  });
  return { url, child, exited, output: () => output };
}

/** Ends a node that is still running: SIGTERM (a clean shutdown), SIGKILL after 10 s. */
async function stopNode(node: DemoNode | undefined): Promise<void> {
  if (node === undefined) return;
  if (node.child.exitCode === null && node.child.signalCode === null) {
    node.child.kill('SIGTERM');
    const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
    await node.exited;
    clearTimeout(timer);
  }
}

describe('demo across nodes in Chromium (REDIS_URL, two processes, one killed)', function () {
  this.timeout(90_000);
  let redis: RedisServer | undefined;
  let nodeA: DemoNode | undefined;
  let nodeB: DemoNode | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  before(async function () {
    for (const [what, file] of [
      ['Chromium', chromiumPath],
      ['redis-server', REDIS_SERVER],
    ] as const) {
      if (!existsSync(file)) {
        const missing = `${what} is not installed at ${file}`;
        if (inCi) throw new Error(`${missing}; CI must install it`);
        this.skip();
      }
    }
    redis = await startRedis();
    const [portA, portB] = [await freePort(), await freePort()];
    const shared = { REDIS_URL: redis.url, DEMO_HOST: '127.0.0.1' };
    // The bot runs on A only: one bot per room (a second one would greet everyone twice).
    [nodeA, nodeB] = await Promise.all([
      startNode({ ...shared, PORT: String(portA), DEMO_PEERS: `http://127.0.0.1:${portB}` }),
      startNode({
        ...shared,
        PORT: String(portB),
        DEMO_PEERS: `http://127.0.0.1:${portA}`,
        DEMO_BOT: '0',
      }),
    ]);
    profile = await mkdtemp(path.join(tmpdir(), 'sluice-demo-nodes-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [...CHROMIUM_ARGS],
    });
    context.setDefaultTimeout(20_000);
    await context.addInitScript(() => {
      const rejections: string[] = [];
      globalThis.__rejections = rejections;
      addEventListener('unhandledrejection', (event) => {
        rejections.push(String(event.reason));
      });
    });
    alice = context.pages()[0] ?? (await context.newPage());
    bob = await context.newPage();
    for (const [name, page] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.stack ?? error.message}`));
    }
  });

  after(async () => {
    await context?.close();
    await Promise.all([stopNode(nodeA), stopNode(nodeB)]);
    await redis?.stop();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true, maxRetries: 5 });
  });

  afterEach(async function () {
    if (context === undefined) return;
    const rejections = [
      ...(await alice.evaluate(() => globalThis.__rejections ?? [])),
      ...(await bob.evaluate(() => globalThis.__rejections ?? [])),
    ];
    expect([...pageErrors, ...rejections]).to.deep.equal([], 'page errors or unhandled rejections');
  });

  it('each node says its room is shared through Redis with the other', () => {
    for (const [node, peer] of [
      [nodeA!, nodeB!],
      [nodeB!, nodeA!],
    ] as const) {
      expect(node.output()).to.include(
        `The room is shared through Redis at ${redis!.url} with ${peer.url.replace(/\/$/, '')}.`,
      );
    }
  });

  it('a page on each node: the bot (on A) greets both, each sees the other’s messages', async () => {
    await join(alice, nodeA!.url, 'alice');
    await waitForMessages(alice, 1);
    await join(bob, nodeB!.url, 'bob');
    await waitForMessages(bob, 1); // the bot on A greets bob on B, through Redis
    await waitForMessages(alice, 2);
    await say(alice, 'hello from A');
    await message(bob, 'alice', 'hello from A').waitFor();
    await say(bob, 'hello from B');
    await message(alice, 'bob', 'hello from B').waitFor();
    const exchanged: [string, string][] = [
      ['alice', 'hello from A'],
      ['bob', 'hello from B'],
    ];
    expect(await messages(alice)).to.deep.equal([greeting('alice'), greeting('bob'), ...exchanged]);
    expect(await messages(bob)).to.deep.equal([greeting('bob'), ...exchanged]);
  });

  it('when A is killed, its page reconnects to B on its own and misses nothing', async () => {
    const before = await messages(alice);
    nodeA!.child.kill('SIGKILL');
    expect(await nodeA!.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    await alice.locator('#status[data-state="open"]').waitFor({ state: 'detached' });
    await waitForNotice(alice, 'Disconnected (1006); reconnecting on its own…');
    // Said while alice has no connection: she can only get these from the room's history.
    expect(await alice.locator('#status').getAttribute('data-state')).not.to.equal('open');
    await say(bob, 'while you were away');
    await say(bob, 'and once more');
    await message(bob, 'bob', 'and once more').waitFor();

    await alice.locator('#status[data-state="open"][data-connection="2"]').waitFor();
    await waitForNotice(alice, 'You are back as alice.');
    await message(alice, 'bob', 'and once more').waitFor();
    await say(alice, 'back, through B');
    await message(bob, 'alice', 'back, through B').waitFor();
    await message(alice, 'alice', 'back, through B').waitFor();

    // Exactly once each, in order: nothing missed, nothing shown twice.
    expect(await messages(alice)).to.deep.equal([
      ...before,
      ['bob', 'while you were away'],
      ['bob', 'and once more'],
      ['alice', 'back, through B'],
    ]);
    expect((await messages(bob)).slice(-3)).to.deep.equal([
      ['bob', 'while you were away'],
      ['bob', 'and once more'],
      ['alice', 'back, through B'],
    ]);
    // B counted alice as here already (A never said she left): bob is not told she joined.
    expect(await bob.locator('#messages li.notice', { hasText: 'alice joined' }).count()).to.equal(
      0,
    );
    expect(
      await alice.locator('#messages li.notice', { hasText: 'no longer kept' }).count(),
    ).to.equal(0);
  });
});
