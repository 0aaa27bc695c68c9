/**
 * Shared state synced both ways, fritz2 style: each client holds a store (a value you
 * read and update, and can watch), the server holds the authoritative copy, and a change
 * made in one client's store reaches every other client's.
 *
 * The conflict rule — **server order, last writer wins per field**:
 * - A change is a field-level patch (`{ field, value }`), sent to the server, which
 *   applies changes one at a time in the order its event loop receives them, numbers them
 *   (versions 1, 2, 3, …) and sends every change, in that order, to every client.
 * - So every client applies the same changes in the same order and ends with the same
 *   state: concurrent changes to different fields both survive; of two concurrent
 *   changes to the same field, the one the server received last wins, everywhere.
 * - A client shows its own changes at once (optimistically): its value is the last
 *   confirmed state with its own unconfirmed changes applied on top. When the server's
 *   order puts someone else's change first, the unconfirmed ones are re-applied on top of
 *   it, and once the server confirms them the value is the server's.
 *
 * `syncState` (client) and `SharedState` (server) are written here, in a few dozen lines
 * on top of channels and scopes. Only the ordering and the rebasing are theirs; they are
 * generic over the state and the change, and the per-field rule is the app's reducer
 * (`applyPatch`). The client half needs only `sluice` and `sluice/websocket`, so it runs
 * unchanged in a browser against the same server.
 *
 * Run it: `node --import tsx examples/shared-state.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Channel, scope } from 'sluice';
import type { ReceiveChannel, Scope, SendChannel } from 'sluice';
import { serve } from 'sluice/server';
import { connect, endpoint } from 'sluice/websocket';
import type { CloseReason, EndpointHandler } from 'sluice/websocket';

// ---------------------------------------------------------------------------------------
// The sync protocol and its two halves (generic over the state S and the change C).

/** Client → server: one of the client's own changes, numbered by the client. */
export interface ChangeMessage<C> {
  readonly id: number;
  readonly change: C;
}

/** Server → client: the state on connect, then every applied change in server order. */
export type SyncMessage<S, C> =
  | { readonly type: 'snapshot'; readonly version: number; readonly state: S }
  | {
      readonly type: 'applied';
      readonly version: number;
      readonly change: C;
      /** Set only for the client that made the change: the id it gave it. */
      readonly ack?: number;
    };

/** What a store looks like at one moment. */
export interface Snapshot<S> {
  /** The confirmed state with this client's unconfirmed changes on top. */
  readonly value: S;
  /** The server version of the confirmed state. */
  readonly version: number;
  /** How many of this client's changes the server has not confirmed yet. */
  readonly pending: number;
}

/** A client's copy of the shared state. */
export interface SyncedStore<S, C> {
  /** The current snapshot (value, version, pending). */
  readonly current: Snapshot<S>;
  /**
   * Applies `change` locally at once and sends it to the server; resolves once the
   * socket has taken it (not once the server confirmed it: see {@link SyncedStore.until}).
   * If it cannot be sent (the connection is closed), the change is withdrawn from the
   * value and the promise rejects as `outgoing.send` does.
   */
  update(change: C): Promise<void>;
  /**
   * A conflated channel of snapshots: the current one first, then the latest after each
   * change (a slow reader skips intermediate ones, never the last). Closed when the store
   * stops; cancel it to stop watching.
   */
  watch(): ReceiveChannel<Snapshot<S>>;
  /** Resolves with the first snapshot (from now on) that satisfies `predicate`. */
  until(predicate: (snapshot: Snapshot<S>) => boolean): Promise<Snapshot<S>>;
  /** Stops following the server (the store keeps its last value); watchers end. */
  close(): void;
}

/**
 * The client half: waits for the server's snapshot, then keeps a store in sync over
 * the connection's channels. Its reader runs as a child of `parent`, so the scope cannot
 * end while the store still follows the server; `close()` stops it.
 *
 * @throws Error if the server's first message is not a snapshot; the connection's
 *   errors as `input.receive` throws them.
 */
export async function syncState<S, C>(
  parent: Scope,
  output: SendChannel<ChangeMessage<C>>,
  input: ReceiveChannel<SyncMessage<S, C>>,
  apply: (state: S, change: C) => S,
): Promise<SyncedStore<S, C>> {
  const first = await input.receive();
  if (first.type !== 'snapshot') throw new Error(`Expected a snapshot first, got ${first.type}`);
  let confirmed = first.state;
  let version = first.version;
  const pending: ChangeMessage<C>[] = [];
  let lastId = 0;
  let following = true;
  const watchers = new Set<Channel<Snapshot<S>>>();

  const current = (): Snapshot<S> => ({
    value: pending.reduce((state, mine) => apply(state, mine.change), confirmed),
    version,
    pending: pending.length,
  });
  const publish = (): void => {
    const snapshot = current();
    for (const watcher of watchers) watcher.trySend(snapshot); // drop-oldest: never fails
  };

  const reader = parent.launch(async (signal) => {
    try {
      for (;;) {
        const result = await input.receiveCatching({ signal });
        if (!result.ok) {
          if ('cause' in result) throw result.cause; // the connection failed
          return; // the connection closed normally
        }
        const message = result.value;
        if (message.type !== 'applied') continue;
        confirmed = apply(confirmed, message.change);
        version = message.version;
        // The server handles one client's changes in the order they were sent.
        if (message.ack !== undefined && pending[0]?.id === message.ack) pending.shift();
        publish();
      }
    } finally {
      following = false;
      for (const watcher of watchers) watcher.close();
    }
  });

  const store: SyncedStore<S, C> = {
    get current() {
      return current();
    },
    update(change) {
      const message = { id: ++lastId, change };
      pending.push(message);
      publish();
      return output.send(message).catch((error: unknown) => {
        pending.splice(pending.indexOf(message), 1);
        publish();
        throw error;
      });
    },
    watch() {
      const watcher = new Channel<Snapshot<S>>(1, { overflow: 'drop-oldest' });
      watcher.trySend(current());
      if (!following) watcher.close();
      else {
        watchers.add(watcher);
        watcher.onClose(() => watchers.delete(watcher));
      }
      return watcher;
    },
    async until(predicate) {
      const watcher = store.watch();
      try {
        for await (const snapshot of watcher) if (predicate(snapshot)) return snapshot;
        throw new Error('The store stopped following the server first');
      } finally {
        watcher.cancel();
      }
    },
    close() {
      reader.cancel();
    },
  };
  return store;
}

/** One entry of the server's history: which version, who, what. */
export interface Applied<C> {
  readonly version: number;
  readonly by: string;
  readonly change: C;
}

/**
 * The server half: the authoritative state, changed only in server order. `handler`
 * serves one client: it sends the snapshot, then relays every change. Each client has
 * an outbox of `capacity` messages; one that falls that far behind is disconnected
 * (1011) rather than slowing everyone down.
 */
export class SharedState<S, C> {
  #state: S;
  #version = 0;
  readonly #history: Applied<C>[] = [];
  readonly #outboxes = new Set<Channel<SyncMessage<S, C>>>();
  readonly #apply: (state: S, change: C) => S;
  readonly #capacity: number;

  constructor(initial: S, apply: (state: S, change: C) => S, capacity = 1024) {
    this.#state = initial;
    this.#apply = apply;
    this.#capacity = capacity;
  }

  /** The authoritative state and its version. */
  get state(): { readonly state: S; readonly version: number } {
    return { state: this.#state, version: this.#version };
  }

  /** Every change applied so far, in server order. */
  get history(): readonly Applied<C>[] {
    return this.#history;
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#outboxes.size;
  }

  /** A handler for `endpoint.handle`; `name` says who a connection is (for the history). */
  handler(
    name: (query: URLSearchParams) => string,
  ): EndpointHandler<ChangeMessage<C>, SyncMessage<S, C>> {
    return async ({ incoming, outgoing, request, scope }) => {
      const who = name(request.query);
      const outbox = new Channel<SyncMessage<S, C>>(this.#capacity);
      outbox.trySend({ type: 'snapshot', version: this.#version, state: this.#state });
      this.#outboxes.add(outbox);
      // The writer: outbox → socket. A send fails only once the connection is ending,
      // which `session.closed` reports; then there is nobody left to write to.
      scope.launch(async (signal) => {
        try {
          for await (const message of outbox.iterate({ signal })) {
            const sent = await outgoing.send(message, { signal }).then(
              () => true,
              () => false,
            );
            if (!sent) break;
          }
        } finally {
          outbox.cancel();
        }
      });
      try {
        for await (const { id, change } of incoming) this.#applyChange(who, id, change, outbox);
      } finally {
        this.#outboxes.delete(outbox);
        outbox.close(); // the writer sends what is left, then ends
      }
    };
  }

  #applyChange(who: string, id: number, change: C, from: Channel<SyncMessage<S, C>>): void {
    this.#state = this.#apply(this.#state, change);
    const version = ++this.#version;
    this.#history.push({ version, by: who, change });
    for (const outbox of this.#outboxes) {
      const message: SyncMessage<S, C> =
        outbox === from
          ? { type: 'applied', version, change, ack: id }
          : { type: 'applied', version, change };
      if (!outbox.trySend(message).ok) {
        outbox.close(new Error(`Client fell ${this.#capacity} messages behind`));
      }
    }
  }
}

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

/** The endpoint: clients send changes, the server sends the snapshot and applied changes. */
export const ListSync = endpoint<ChangeMessage<Patch>, SyncMessage<ListHeader, Patch>>(
  '/list/sync',
);

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
  const shared = new SharedState<ListHeader, Patch>(
    { title: 'Shopping', owner: 'nobody', note: '' },
    applyPatch,
  );
  const server = await serve({ port: 0 }, [
    ListSync.handle(shared.handler((query) => query.get('name') ?? '?')),
  ]);
  try {
    // `connect` hands out a session; the endpoint's codec keeps both directions typed.
    const open = (name: string) =>
      connect<SyncMessage<ListHeader, Patch>, ChangeMessage<Patch>>(
        `${server.url}${ListSync.path}?name=${name}`,
        { codec: ListSync.clientCodec },
      );
    const annSession = await open('ann');
    const bobSession = await open('bob');

    const result = await scope(async (s) => {
      const ann = await syncState(s, annSession.outgoing, annSession.incoming, applyPatch);
      const bob = await syncState(s, bobSession.outgoing, bobSession.incoming, applyPatch);
      log(`ann sees ${show(ann.current.value)}`);
      log(`bob sees ${show(bob.current.value)}`);

      // 1. A change travels: ann renames the list, bob's store follows.
      await ann.update({ field: 'title', value: 'Groceries' });
      const bobAfter = await bob.until((snapshot) => snapshot.version === 1);
      log(`bob sees ${show(bobAfter.value)} (version 1)`);

      // 2. A conflict: both claim the list at once, and bob adds a note. Neither waits
      //    for the other, so each first sees its own claim (optimistic)...
      const claims = [
        ann.update({ field: 'owner', value: 'ann' }),
        bob.update({ field: 'owner', value: 'bob' }),
        bob.update({ field: 'note', value: 'milk' }),
      ];
      const optimistic = { ann: ann.current.value, bob: bob.current.value };
      log(`ann shows ${show(optimistic.ann)} (not confirmed yet)`);
      log(`bob shows ${show(optimistic.bob)} (not confirmed yet)`);
      await Promise.all(claims);

      // ...and once the server has ordered all three, both agree: the owner change the
      // server received last wins, and the note (another field) survives.
      const settled = (snapshot: Snapshot<ListHeader>): boolean =>
        snapshot.version === 4 && snapshot.pending === 0;
      const [annFinal, bobFinal] = await Promise.all([ann.until(settled), bob.until(settled)]);
      const order = shared.history
        .map(({ version, by, change }) => `${version}:${by} ${change.field}=${change.value}`)
        .join(', ');
      log(`server order: ${order}`);
      log(`ann sees ${show(annFinal.value)}`);
      log(`bob sees ${show(bobFinal.value)}`);
      ann.close();
      bob.close();
      return { ann: annFinal, bob: bobFinal, optimistic };
    });

    const closed = await Promise.all([annSession.close(), bobSession.close()]);
    await server.close();
    return {
      ...result,
      server: shared.state,
      history: shared.history,
      closed,
      clientsLeft: shared.clients,
    };
  } finally {
    await server.close(); // a second call returns the same promise
  }
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
