/**
 * What the demo's Chromium specs share: the flags Chromium needs here, and the steps a
 * user takes on the chat page (join, say) and reads from it (messages, notices), through
 * playwright-core.
 */
import type { Locator, Page } from 'playwright-core';

/** Flags that let Chromium run as root on a machine without network (as run-in-chromium.ts). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The bot's greeting for `name`, as `[from, text]`. */
export const greeting = (name: string): [string, string] => [
  'bot',
  `Welcome, ${name}! Say "@bot help" to see what I can do.`,
];

declare global {
  /** Every text the status element showed, in order (recorded by the test). */
  var __statusLog: string[] | undefined;
  /** Unhandled rejections in the page (recorded by the test's init script). */
  var __rejections: string[] | undefined;
}

/** The chat messages a page shows, as `[from, text]`, in order. */
export function messages(page: Page): Promise<[string, string][]> {
  return page
    .locator('#messages li.message')
    .evaluateAll((items) =>
      items.map((item): [string, string] => [
        (item as HTMLElement).dataset['from'] ?? '',
        item.querySelector('.text')?.textContent ?? '',
      ]),
    );
}

/** Waits until the page shows at least `count` chat messages. */
export async function waitForMessages(page: Page, count: number): Promise<void> {
  await page
    .locator('#messages li.message')
    .nth(count - 1)
    .waitFor();
}

/** The page's chat messages from `from` whose text is exactly `text`. */
export function message(page: Page, from: string, text: string): Locator {
  const exactly = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return page.locator(`#messages li.message[data-from="${from}"] .text`, { hasText: exactly });
}

/** Waits until the page shows a notice with `text`. */
export async function waitForNotice(page: Page, text: string): Promise<void> {
  await page.locator('#messages li.notice', { hasText: text }).last().waitFor();
}

/** Opens `url` in `page` and joins the chat as `name`; resolves once it is in. */
export async function join(page: Page, url: string, name: string): Promise<void> {
  await page.goto(url);
  await page.locator('#name').fill(name);
  await page.locator('#join-button').click();
  await page.locator('#status[data-state="open"]').waitFor();
  await waitForNotice(page, `You joined as ${name}.`);
}

/** Sends `text` from `page` (waits until it may send). */
export async function say(page: Page, text: string): Promise<void> {
  await page.locator('#text:enabled').fill(text);
  await page.locator('#text').press('Enter');
}
