/**
 * A "people updates" stream, Ktor style: the server streams the changes made to a list
 * of people (saves and deletes) to each connected client, and the client tells the
 * server which kinds it wants — saves, deletes or both — and may change its mind while
 * the stream runs. The server applies the filter before sending, so unwanted updates
 * never cross the network.
 *
 * How it fits together: the repository hands each subscriber its own bounded channel of
 * updates; the connection's handler `select`s between that channel and the client's
 * filter messages. The select is biased towards updates, so every change made before a
 * filter change reached the server is judged by the old filter, and the server confirms
 * each filter change in the stream itself: the client knows exactly from which update on
 * the new filter applies.
 *
 * Run it: `node --import tsx examples/people-updates.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Channel, select } from 'sluice';
import type { ReceiveChannel } from 'sluice';
import { serve } from 'sluice/server';
import { endpoint } from 'sluice/websocket';
import type { CloseReason } from 'sluice/websocket';

/** A person in the list. */
export interface Person {
  readonly id: number;
  readonly name: string;
}

/** Which updates a client wants. */
export type Filter = 'saves' | 'deletes' | 'both';

/** A change to the list. */
export type Update =
  | { readonly type: 'saved'; readonly person: Person }
  | { readonly type: 'deleted'; readonly id: number };

/** What the client sends: the filter to apply from now on. */
export interface FilterMessage {
  readonly filter: Filter;
}

/** What the server sends: updates, and the confirmation of each filter change. */
export type ServerMessage = Update | { readonly type: 'filter'; readonly filter: Filter };

/** The shared endpoint definition (client sends filters, server sends updates). */
export const PeopleUpdates = endpoint<FilterMessage, ServerMessage>('/people/updates');

/**
 * The people list with a subscription per listener. Each subscriber gets a channel of
 * `capacity` updates; one that falls that far behind is closed with an error (its
 * connection then ends with 1011) instead of making the list wait or grow a queue
 * without bound.
 */
export class People {
  readonly #people = new Map<number, Person>();
  readonly #subscribers = new Set<Channel<Update>>();
  readonly #capacity: number;

  constructor(capacity = 256) {
    this.#capacity = capacity;
  }

  /** How many subscriptions are open (for the test: each connection cleans up its own). */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Adds or replaces a person and tells every subscriber. */
  save(person: Person): void {
    this.#people.set(person.id, person);
    this.#publish({ type: 'saved', person });
  }

  /** Removes a person (if present) and tells every subscriber. */
  delete(id: number): void {
    if (this.#people.delete(id)) this.#publish({ type: 'deleted', id });
  }

  /** A channel of every later update; cancel it to unsubscribe. */
  subscribe(): ReceiveChannel<Update> {
    const updates = new Channel<Update>(this.#capacity);
    this.#subscribers.add(updates);
    updates.onClose(() => this.#subscribers.delete(updates));
    return updates;
  }

  #publish(update: Update): void {
    for (const subscriber of this.#subscribers) {
      // trySend never waits: the list does not slow down for a slow subscriber.
      if (!subscriber.trySend(update).ok) {
        subscriber.close(new Error(`Subscriber fell ${this.#capacity} updates behind`));
      }
    }
  }
}

function wanted(filter: Filter, update: Update): boolean {
  if (filter === 'both') return true;
  return filter === 'saves' ? update.type === 'saved' : update.type === 'deleted';
}

function describe(message: ServerMessage): string {
  switch (message.type) {
    case 'saved':
      return `saved ${message.person.name} (${message.person.id})`;
    case 'deleted':
      return `deleted ${message.id}`;
    case 'filter':
      return `filter is now ${message.filter}`;
  }
}

/** Options of {@link main}. */
export interface PeopleUpdatesOptions {
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
}

/** What happened, for the test suite. */
export interface PeopleUpdatesResult {
  /** Every message the client received, in order. */
  readonly received: readonly ServerMessage[];
  /** How the connection closed, as the client saw it. */
  readonly closed: CloseReason;
  /** Subscriptions still open once the server has shut down (0: nothing leaked). */
  readonly subscribersLeft: number;
}

/** Starts the server, runs one client that changes its filter twice, and shuts down. */
export async function main(options: PeopleUpdatesOptions = {}): Promise<PeopleUpdatesResult> {
  const { log = console.log } = options;
  const people = new People();

  const server = await serve({ port: 0 }, [
    PeopleUpdates.handle(async ({ incoming, outgoing, signal }) => {
      const updates = people.subscribe();
      let filter: Filter = 'both';
      try {
        for (;;) {
          // Exactly one clause wins each turn; updates first (see the module comment).
          const event = await select(
            [
              updates.onReceive((update) => ({ kind: 'update', update }) as const),
              incoming.onReceiveCatching((result) => ({ kind: 'filter', result }) as const),
            ],
            { signal },
          );
          if (event.kind === 'update') {
            if (wanted(filter, event.update)) await outgoing.send(event.update);
            else log(`server: skipped ${describe(event.update)} (filter: ${filter})`);
          } else if (event.result.ok) {
            filter = event.result.value.filter;
            log(`server: filter set to ${filter}`);
            await outgoing.send({ type: 'filter', filter });
          } else {
            break; // the client closed the connection
          }
        }
      } finally {
        updates.cancel(); // unsubscribes
      }
    }),
  ]);

  try {
    const { received, closed } = await PeopleUpdates.connect(
      server.url,
      async ({ incoming, outgoing, closed: ended }) => {
        const seen: ServerMessage[] = [];
        const next = async (count = 1): Promise<void> => {
          for (let i = 0; i < count; i++) {
            const message = await incoming.receive();
            log(`client: ${describe(message)}`);
            seen.push(message);
          }
        };
        const edit = (what: string, change: () => void): void => {
          log(`people: ${what}`);
          change();
        };

        // Only saves, please. The confirmation marks where the filter starts to apply.
        await outgoing.send({ filter: 'saves' });
        await next();
        edit('save Ada', () => people.save({ id: 1, name: 'Ada' }));
        edit('save Bob', () => people.save({ id: 2, name: 'Bob' }));
        edit('delete 1', () => people.delete(1));
        await next(2); // the two saves; the delete is filtered out on the server

        // Changed our mind: only deletes.
        await outgoing.send({ filter: 'deletes' });
        await next();
        edit('save Cy', () => people.save({ id: 3, name: 'Cy' }));
        edit('delete 2', () => people.delete(2));
        await next(); // only the delete

        // Everything.
        await outgoing.send({ filter: 'both' });
        await next();
        edit('save Dee', () => people.save({ id: 4, name: 'Dee' }));
        edit('delete 3', () => people.delete(3));
        await next(2);

        // Returning closes the connection with 1000.
        return { received: seen, closed: ended };
      },
    );
    const reason = await closed;
    log(`client: closed with ${reason.code}`);
    await server.close();
    return { received, closed: reason, subscribersLeft: people.subscribers };
  } finally {
    await server.close(); // a second call returns the same promise
  }
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
