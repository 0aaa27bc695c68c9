/**
 * Shared state synced both ways, fritz2 style: each client holds a store (a value you
 * read and update, and can watch), the server holds the authoritative copy, and a change
 * made in one client's store reaches every other client's.
 *
 * The conflict rule — **server order, last writer wins per field**:
 * - A change is a field-level patch (`{ field, value }`), sent to the server, which
 *   applies changes one at a time in the order its event loop receives them and
 *   publishes each resulting state (with its position) to every client.
 * - So every client ends with the same state: concurrent changes to different fields
 *   both survive; of two concurrent changes to the same field, the one the server
 *   received last wins, everywhere.
 * - A client shows its own changes at once (optimistically): its value is the last
 *   server state with its own unconfirmed changes applied on top. Once the server's
 *   state includes them, the value is the server's.
 *
 * The library does the syncing (`SharedState` on the server, `syncState` on the client,
 * over network channels); the app only supplies the reducer (`applyPatch`). The client
 * half needs only `sluice/websocket`, so it runs unchanged in a browser.
 *
 * Run it: `node --import tsx examples/shared-state.ts`.
 */
import { pathToFileURL } from 'node:url';
import { route, serve } from 'sluice/server';
import { connect, text } from 'sluice/websocket';
import { SharedState, channels, syncState } from 'sluice/network';
import type { CloseReason } from 'sluice/websocket';
import type { SyncedState } from 'sluice/network';

/** One entry of the server's history: which version, who, what. */
export interface Applied<C> {
  readonly version: number;
  readonly by: string;
  readonly change: C;
}

/** What a store looks like at one moment. */
export interface Snapshot<S> {
  /** The server's state with this client's unconfirmed changes on top. */
  readonly value: S;
  /** The position (offset) of the server state it is based on. */
  readonly version: number;
  /** How many of this client's changes the server's state does not include yet. */
  readonly pending: number;
}

const snapshot = <S, C>(store: SyncedState<S, C>): Snapshot<S> => ({
  value: store.value,
  version: store.position?.offset ?? 0,
  pending: store.pending,
});

// ---------------------------------------------------------------------------------------
// The app: a shared shopping list header that two people edit at once.

/** The shared state. */
export interface ListHeader {
  readonly title: string;
  readonly owner: string;
  readonly note: string;
}

/** A change: set one field. */
export interface Patch {
  readonly field: keyof ListHeader;
  readonly value: string;
}

/** The reducer both sides run: the same changes in the same order give the same state. */
export const applyPatch = (state: ListHeader, patch: Patch): ListHeader => ({
  ...state,
  [patch.field]: patch.value,
});

/** The path clients connect to (with `?name=`). */
export const LIST_PATH = '/list/sync';

/** Options of {@link main}. */
export interface SharedStateOptions {
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
}

/** What happened, for the test suite. */
export interface SharedStateResult {
  /** The two clients' final snapshots. */
  readonly ann: Snapshot<ListHeader>;
  readonly bob: Snapshot<ListHeader>;
  /** What each showed right after its own concurrent edit, before the server's answer. */
  readonly optimistic: { readonly ann: ListHeader; readonly bob: ListHeader };
  /** The server's final state, and every change in server order. */
  readonly server: { readonly state: ListHeader; readonly version: number };
  readonly history: readonly Applied<Patch>[];
  /** How each connection closed (client side), and clients left on the server. */
  readonly closed: readonly CloseReason[];
  readonly clientsLeft: number;
}

const show = (state: ListHeader): string =>
  `title=${state.title} owner=${state.owner} note=${state.note || '-'}`;

/** Two clients, one server: an edit that travels, then a conflict resolved by server order. */
export async function main(options: SharedStateOptions = {}): Promise<SharedStateResult> {
  const { log = console.log } = options;
  const history: Applied<Patch>[] = [];
  const shared: SharedState<ListHeader, Patch> = new SharedState<ListHeader, Patch>(
    { title: 'Shopping', owner: 'nobody', note: '' },
    {
      name: 'list',
      // The reducer runs once per change, in server order: record who did what.
      apply: (state, patch, origin) => {
        const version = (shared.topic.latest?.offset ?? 0) + 1;
        history.push({ version, by: origin ?? '?', change: patch });
        return applyPatch(state, patch);
      },
    },
  );
  let clients = 0;
  const server = await serve(
    { port: 0 },
    {
      [LIST_PATH]: route<string, string>({
        codec: text(),
        handler: async (session) => {
          clients += 1;
          try {
            const origin = session.request.query.get('name') ?? '?';
            await shared.serve(channels(session), { origin });
          } finally {
            clients -= 1;
          }
        },
      }),
    },
  );
  try {
    const open = async (name: string) => {
      const session = await connect<string, string>(`${server.url}${LIST_PATH}?name=${name}`, {
        codec: text(),
      });
      const network = channels(session);
      const store = syncState<ListHeader, Patch>('list', {
        initial: { title: '', owner: '', note: '' },
        apply: applyPatch,
      });
      const following = store.follow(network);
      await store.until(() => store.position !== undefined); // the server's state arrived
      return { store, network, following };
    };
    const annEnd = await open('ann');
    const bobEnd = await open('bob');
    const ann = annEnd.store;
    const bob = bobEnd.store;
    log(`ann sees ${show(ann.value)}`);
    log(`bob sees ${show(bob.value)}`);

    // 1. A change travels: ann renames the list, bob's store follows.
    const renamed = await ann.update({ field: 'title', value: 'Groceries' });
    await bob.until(() => (bob.position?.offset ?? 0) >= renamed.offset);
    log(`bob sees ${show(bob.value)} (version ${renamed.offset})`);

    // 2. A conflict: both claim the list at once, and bob adds a note. Neither waits
    //    for the other, so each first sees its own claim (optimistic)...
    const claims = [
      ann.update({ field: 'owner', value: 'ann' }),
      bob.update({ field: 'owner', value: 'bob' }),
      bob.update({ field: 'note', value: 'milk' }),
    ];
    const optimistic = { ann: ann.value, bob: bob.value };
    log(`ann shows ${show(optimistic.ann)} (not confirmed yet)`);
    log(`bob shows ${show(optimistic.bob)} (not confirmed yet)`);
    const last = Math.max(...(await Promise.all(claims)).map((position) => position.offset));

    // ...and once the server has ordered all three, both agree: the owner change the
    // server received last wins, and the note (another field) survives.
    const settled = (store: SyncedState<ListHeader, Patch>) => () =>
      (store.position?.offset ?? 0) >= last && store.pending === 0;
    await Promise.all([ann.until(settled(ann)), bob.until(settled(bob))]);
    const order = history
      .map(({ version, by, change }) => `${version}:${by} ${change.field}=${change.value}`)
      .join(', ');
    log(`server order: ${order}`);
    log(`ann sees ${show(ann.value)}`);
    log(`bob sees ${show(bob.value)}`);
    const result = { ann: snapshot(ann), bob: snapshot(bob), optimistic };
    ann.close();
    bob.close();

    const closed = await Promise.all([annEnd.network.close(), bobEnd.network.close()]);
    await Promise.all([annEnd.following, bobEnd.following]);
    await server.close();
    return {
      ...result,
      server: { state: shared.value, version: shared.topic.latest?.offset ?? 0 },
      history,
      closed,
      clientsLeft: clients,
    };
  } finally {
    await server.close(); // a second call returns the same promise
  }
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
