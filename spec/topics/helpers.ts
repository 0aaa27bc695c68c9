/** Helpers for the topic specs: draining a subscription, describing events compactly. */
import type { Subscription, TopicEvent } from '../../lib/index.js';

/**
 * An event as a short string: `3=c` for a publication of `'c'` at offset 3, `gap 1-2`
 * for a gap (`gap 1-0+` when it starts in another epoch). Epochs are checked apart.
 */
export function show(event: TopicEvent<unknown>): string {
  if (event.type === 'publication') return `${event.position.offset}=${String(event.value)}`;
  return `gap ${event.from.offset}-${event.to.offset}${event.previous === undefined ? '' : '+'}`;
}

/** Takes every event available now (`tryReceive`), shown. */
export function takeNow<T>(subscription: Subscription<T>): string[] {
  const shown: string[] = [];
  for (let r = subscription.tryReceive(); r.ok; r = subscription.tryReceive()) {
    shown.push(show(r.value));
  }
  return shown;
}

/** Receives until the subscription ends; returns the events and how it ended. */
export async function drain<T>(
  subscription: Subscription<T>,
): Promise<{ events: TopicEvent<T>[]; error: unknown }> {
  const events: TopicEvent<T>[] = [];
  try {
    for await (const event of subscription) events.push(event);
  } catch (error) {
    return { events, error };
  }
  return { events, error: undefined };
}
