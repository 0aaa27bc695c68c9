/**
 * The demo end to end, as a user sees it: the page in headless Chromium (Debian's, driven
 * by playwright-core), two tabs chatting through the demo server and its bot, the server
 * restarted on the same port while the tabs stay open, and a screenshot. The tests are the
 * steps of one session and run in order. Without Chromium they are skipped, except under
 * CI, where that is a failure.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { startDemo } from '../../demo/server.js';
import type { Demo } from '../../demo/server.js';
import { chromiumPath } from '../browser/run-in-chromium.js';
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

const VIEWPORT = { width: 1000, height: 700 };
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Starts recording every text the status element shows from now on. */
async function recordStatus(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: string[] = [];
    globalThis.__statusLog = log;
    const status = document.getElementById('status');
    if (status === null) throw new Error('no #status');
    // textContent replaces the text node: each added node is one state, even when two
    // states are shown within the same task.
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.addedNodes) log.push(node.textContent ?? '');
      }
    }).observe(status, { childList: true });
  });
}

const statusLog = (page: Page): Promise<string[]> =>
  page.evaluate(() => globalThis.__statusLog ?? []);

describe('demo in Chromium (npm start, end to end)', function () {
  this.timeout(90_000);
  let demo: Demo | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let shots: string | undefined;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  before(async function () {
    if (!existsSync(chromiumPath)) {
      const missing = `Chromium is not installed at ${chromiumPath}`;
      if (inCi) throw new Error(`${missing}; CI must install it (apt-get install -y chromium)`);
      this.skip();
    }
    demo = await startDemo({ port: 0 });
    profile = await mkdtemp(path.join(tmpdir(), 'sluice-demo-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: VIEWPORT,
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
    await demo?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true, maxRetries: 5 });
    if (shots !== undefined) await rm(shots, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (context === undefined) return;
    const rejections = [
      ...(await alice.evaluate(() => globalThis.__rejections ?? [])),
      ...(await bob.evaluate(() => globalThis.__rejections ?? [])),
    ];
    expect([...pageErrors, ...rejections]).to.deep.equal([], 'page errors or unhandled rejections');
  });

  it('two pages join under their names, and the bot greets each newcomer', async () => {
    await join(alice, demo!.url, 'alice');
    expect(await alice.locator('#status').textContent()).to.equal('open (connection 1)');
    await waitForMessages(alice, 1);
    await join(bob, demo!.url, 'bob');
    await waitForMessages(bob, 1);
    await waitForMessages(alice, 2);
    expect(await messages(alice)).to.deep.equal([greeting('alice'), greeting('bob')]);
    expect(await messages(bob)).to.deep.equal([greeting('bob')]);
    expect(await alice.locator('#members li').allTextContents()).to.deep.equal([
      'bot',
      'alice (you)',
      'bob',
    ]);
  });

  it('the pages exchange messages through the server, in order, with their senders', async () => {
    await say(alice, 'hello bob');
    await waitForMessages(bob, 2);
    await say(bob, 'hi alice');
    await say(bob, 'how are you?');
    await waitForMessages(alice, 5);
    await waitForMessages(bob, 4);
    const exchanged: [string, string][] = [
      ['alice', 'hello bob'],
      ['bob', 'hi alice'],
      ['bob', 'how are you?'],
    ];
    expect(await messages(alice)).to.deep.equal([greeting('alice'), greeting('bob'), ...exchanged]);
    expect(await messages(bob)).to.deep.equal([greeting('bob'), ...exchanged]);
    // Each page marks its own messages.
    expect(await bob.locator('#messages li.mine .text').allTextContents()).to.deep.equal([
      'hi alice',
      'how are you?',
    ]);
  });

  it('the bot answers a message that mentions it', async () => {
    await say(bob, '@bot ping');
    await waitForMessages(alice, 7);
    await waitForMessages(bob, 6);
    const tail: [string, string][] = [
      ['bob', '@bot ping'],
      ['bot', 'pong, bob'],
    ];
    expect((await messages(alice)).slice(-2)).to.deep.equal(tail);
    expect((await messages(bob)).slice(-2)).to.deep.equal(tail);
  });

  it('after a server restart on the same port, both pages reconnect on their own and messages flow again', async () => {
    const pages = [alice, bob];
    const before = await Promise.all(pages.map((page) => messages(page)));
    for (const page of pages) await recordStatus(page);
    const port = demo!.port;
    await demo!.close();
    for (const page of pages) {
      await waitForNotice(page, 'Disconnected (1001 Going away); reconnecting on its own…');
      // At least one attempt against the stopped server, shown as such.
      await page.waitForFunction(() =>
        (globalThis.__statusLog ?? []).some((text) => text.startsWith('reconnecting…')),
      );
      expect(await page.locator('#text').isDisabled()).to.equal(true, 'no sending while offline');
    }
    demo = await startDemo({ port });
    for (const [page, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      await page.locator('#status[data-state="open"][data-connection="2"]').waitFor();
      await waitForNotice(page, `You are back as ${name}.`);
      await waitForNotice(page, 'Reconnected.');
      // The new bot greets every (re)joining page: wait for this page's own greeting.
      await message(page, 'bot', greeting(name)[1]).nth(1).waitFor();
      const log = await statusLog(page);
      expect(log[0]).to.match(/^closed \(1001 Going away\), retrying in \d+\.\d s \(attempt 1\)$/);
      expect(log.filter((text) => /^reconnecting… \(attempt \d+\)$/.test(text))).not.to.be.empty;
      expect(log.at(-1)).to.equal('open (connection 2)');
    }

    await say(alice, 'back again');
    await message(bob, 'alice', 'back again').waitFor();
    await say(bob, 'welcome back');
    for (const [index, page] of pages.entries()) {
      await message(page, 'bob', 'welcome back').waitFor();
      const after = (await messages(page)).slice(before[index]!.length);
      // Greetings for those who came back (this page's own at least), then the messages.
      expect(after.slice(-2)).to.deep.equal([
        ['alice', 'back again'],
        ['bob', 'welcome back'],
      ]);
      const greetings = after.slice(0, -2);
      const own = greeting(index === 0 ? 'alice' : 'bob');
      expect(greetings).to.deep.include(own);
      for (const item of greetings)
        expect([greeting('alice'), greeting('bob')]).to.deep.include(item);
    }
  });

  it('a screenshot of the page is a real image (PNG, not blank)', async () => {
    shots = await mkdtemp(path.join(tmpdir(), 'sluice-demo-shot-'));
    const file = path.join(shots, 'chat.png');
    await alice.screenshot({ path: file });
    const png = await readFile(file);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).to.equal(true, 'PNG signature');
    expect(png.length).to.be.greaterThan(10_000);
    // IHDR: width and height right after the signature and the chunk header.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).to.deep.equal([
      VIEWPORT.width,
      VIEWPORT.height,
    ]);
    // Decoded by the browser: many colours, not a blank or single-colour image.
    const colours = await alice.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context2d = canvas.getContext('2d');
      if (context2d === null) throw new Error('no 2d context');
      context2d.drawImage(bitmap, 0, 0);
      const { data } = context2d.getImageData(0, 0, bitmap.width, bitmap.height);
      const seen = new Set<number>();
      for (let i = 0; i < data.length; i += 4) {
        seen.add(((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0));
      }
      return seen.size;
    }, png.toString('base64'));
    expect(colours).to.be.greaterThan(50);
  });
});
