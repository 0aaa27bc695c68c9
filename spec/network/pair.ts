/**
 * Network channel pairs for the shared channel cases: two ChannelSessions on the two ends
 * of one WebSocket connection, and a facade that sends on one end's `outgoing` and
 * receives on the other end's `incoming`, so that the cases written for one local
 * `Channel` drive a channel whose ends are apart. Browser-safe (no Node built-ins): the
 * page builds its pairs with it too; where the two sockets come from is the caller's
 * business (a `ws` server in Node, a relay for two browser sockets in Chromium).
 */
import type {
  ChannelOptions,
  ReceiveChannel,
  ReceiveIterator,
  ReceiveResult,
  SelectClause,
  SendChannel,
  SendResult,
  WaitOptions,
} from '../../lib/index.js';
import { text, wrap } from '../../lib/websocket/index.js';
import { channels } from '../../lib/network/index.js';
import type { WebSocketLike } from '../../lib/websocket/index.js';
import type { ChannelSession } from '../../lib/network/index.js';
import type { CaseKind, ChannelUnderTest } from '../helpers/kinds.js';

/** Title of the shared channel cases over network pairs, the same in Node and Chromium. */
export const NETWORK_CASES_TITLE = 'Channel across the wire (a network channel pair)';

/** Title of the Chromium↔Node suite (spec/browser/network-node.suite.ts). */
export const NETWORK_NODE_TITLE = 'Network channels, Chromium↔Node';

/** Title of the Chromium↔Node topics suite (spec/browser/topics-node.suite.ts). */
export const TOPICS_NODE_TITLE = 'Topics, Chromium↔Node';

/** The capacity of 'up' on the Node side of the '/updown' route (spec/network/servers.ts). */
export const UP_CAPACITY = 4;

// ------------------------------------------------------------------ counting frames

/** How many frames one socket has handed to the network and received, so far. */
export interface FrameCount {
  readonly sent: number;
  readonly received: number;
}

/**
 * Starts counting the frames `socket` sends (calls of its `send`) and receives (its
 * `message` events). Call it before anything uses the socket; the frames themselves are
 * left as they are.
 */
export function countFrames(socket: WebSocketLike): FrameCount {
  const count = { sent: 0, received: 0 };
  const send = socket.send.bind(socket);
  socket.send = (data) => {
    count.sent += 1;
    send(data);
  };
  socket.addEventListener('message', () => {
    count.received += 1;
  });
  return count;
}

/**
 * One task turn, as cheap as the runtime allows: `setImmediate` in Node, a message on a
 * fresh `MessageChannel` in browsers (not subject to the clamping of nested timers).
 */
function taskTurn(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      port2.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** One turn of the timer queue: what was scheduled with `setTimeout(0)` before has run. */
function timerTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** How many task turns in a row nothing may move before the final timer turn. */
const QUIET_TURNS = 3;
/** A bound on the wait, so that a chatty end fails the test instead of hanging it. */
const MAX_WAIT_MS = 10_000;

/**
 * Resolves once the two ends of a connection are quiescent: every frame each end sent
 * has been received by the other, and no count moved for {@link QUIET_TURNS} task turns
 * in a row and then one timer turn (so what a received frame set off — microtasks,
 * `setTimeout(0)` batching, the frames it answers with — has happened). Rejects after
 * {@link MAX_WAIT_MS} without quiet.
 */
export async function quiescent(a: FrameCount, b: FrameCount): Promise<void> {
  const snapshot = (): string => `${a.sent}/${a.received} ${b.sent}/${b.received}`;
  const balanced = (): boolean => a.sent === b.received && b.sent === a.received;
  const deadline = performance.now() + MAX_WAIT_MS;
  let last = snapshot();
  let quiet = 0;
  while (performance.now() < deadline) {
    await taskTurn();
    const now = snapshot();
    quiet = balanced() && now === last ? quiet + 1 : 0;
    last = now;
    if (quiet < QUIET_TURNS) continue;
    await timerTurn();
    if (snapshot() === last && balanced()) return;
    quiet = 0;
    last = snapshot();
  }
  throw new Error(`The two ends were still busy after ${MAX_WAIT_MS} ms (sent/received: ${last})`);
}

// ------------------------------------------------------------------------ the facade

/**
 * One channel whose sending members act on `sender` (end A's `outgoing`) and whose
 * receiving members act on `receiver` (end B's `incoming`). `onClose` is the sending
 * half's (it is a `SendChannel` member): it sees a close at once, and a cancel of the
 * receiving half once the cancel has arrived, with the reason re-created.
 */
class PairChannel<T> implements ChannelUnderTest<T> {
  readonly #sender: SendChannel<T>;
  readonly #receiver: ReceiveChannel<T>;

  constructor(sender: SendChannel<T>, receiver: ReceiveChannel<T>) {
    this.#sender = sender;
    this.#receiver = receiver;
  }

  send(value: T, options?: WaitOptions): Promise<void> {
    return this.#sender.send(value, options);
  }

  trySend(value: T): SendResult {
    return this.#sender.trySend(value);
  }

  close(...cause: [cause?: unknown]): boolean {
    return this.#sender.close(...cause);
  }

  get isClosedForSend(): boolean {
    return this.#sender.isClosedForSend;
  }

  onSend(value: T): SelectClause<undefined>;
  onSend<R>(value: T, handler: () => R | PromiseLike<R>): SelectClause<R>;
  onSend<R>(value: T, handler?: () => R | PromiseLike<R>): SelectClause<R | undefined> {
    return handler === undefined ? this.#sender.onSend(value) : this.#sender.onSend(value, handler);
  }

  onClose(handler: (cause: unknown) => void): () => void {
    return this.#sender.onClose(handler);
  }

  receive(options?: WaitOptions): Promise<T> {
    return this.#receiver.receive(options);
  }

  tryReceive(): ReceiveResult<T> {
    return this.#receiver.tryReceive();
  }

  receiveCatching(options?: WaitOptions): Promise<ReceiveResult<T>> {
    return this.#receiver.receiveCatching(options);
  }

  cancel(...reason: [reason?: unknown]): void {
    this.#receiver.cancel(...reason);
  }

  get isClosedForReceive(): boolean {
    return this.#receiver.isClosedForReceive;
  }

  get isEmpty(): boolean {
    return this.#receiver.isEmpty;
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined, undefined> {
    return this.#receiver[Symbol.asyncIterator]();
  }

  iterate(options?: WaitOptions): ReceiveIterator<T> {
    return this.#receiver.iterate(options);
  }

  async consume<R>(
    block: (channel: this) => R | PromiseLike<R>,
    options?: WaitOptions,
  ): Promise<R> {
    const signal = options?.signal;
    const onAbort = (): void => {
      this.cancel(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort);
    try {
      return await block(this);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.cancel();
    }
  }

  consumeEach(action: (value: T) => unknown, options?: WaitOptions): Promise<void> {
    return this.#receiver.consumeEach(action, options);
  }

  onReceive(): SelectClause<T>;
  onReceive<R>(handler: (value: T) => R | PromiseLike<R>): SelectClause<R>;
  onReceive<R>(handler?: (value: T) => R | PromiseLike<R>): SelectClause<T | R> {
    return handler === undefined ? this.#receiver.onReceive() : this.#receiver.onReceive(handler);
  }

  onReceiveCatching(): SelectClause<ReceiveResult<T>>;
  onReceiveCatching<R>(handler: (result: ReceiveResult<T>) => R | PromiseLike<R>): SelectClause<R>;
  onReceiveCatching<R>(
    handler?: (result: ReceiveResult<T>) => R | PromiseLike<R>,
  ): SelectClause<ReceiveResult<T> | R> {
    return handler === undefined
      ? this.#receiver.onReceiveCatching()
      : this.#receiver.onReceiveCatching(handler);
  }
}

// ------------------------------------------------------------------------- the kinds

/** Two connected WebSockets (open or opening): the two ends of one connection. */
export type SocketPair = readonly [a: WebSocketLike, b: WebSocketLike];

/** One connection with a ChannelSession on each end, and how to wait for it to be quiet. */
export interface SessionPair {
  readonly a: ChannelSession;
  readonly b: ChannelSession;
  /** Resolves once both ends are quiescent: see {@link quiescent}. */
  readonly settle: () => Promise<void>;
  /** The two sockets under the sessions (end a's, end b's), e.g. to drop the connection. */
  readonly sockets: SocketPair;
}

/** Wraps both sockets with the text codec, counting frames, and puts channels on each. */
export function sessionPair([socketA, socketB]: SocketPair): SessionPair {
  const countA = countFrames(socketA);
  const countB = countFrames(socketB);
  // A generous goodbye: on a loaded machine a late answer must not turn an orderly close
  // (exact accounting, which the properties assert) into a timed-out one.
  const options = { byeTimeout: 10_000 };
  const a = channels(wrap<string, string>(socketA, { codec: text() }), options);
  const b = channels(wrap<string, string>(socketB, { codec: text() }), options);
  return { a, b, settle: () => quiescent(countA, countB), sockets: [socketA, socketB] };
}

/** The network kinds and what ends them. */
export interface NetworkKinds {
  /** Rendezvous, 1, 16 and unlimited (the only overflow across the wire is 'suspend'). */
  readonly kinds: readonly CaseKind[];
  /** Closes every connection the kinds opened (normally, with 1000) and waits for it. */
  close(): Promise<void>;
}

/**
 * The network kinds the shared cases run over. Each kind opens its own connection with
 * `open` the first time it is used, and each `create` opens a fresh channel name on it
 * (one connection, many channels: multiplexing). Both ends of a channel are open and
 * announced to each other before `create` resolves.
 */
export function networkKinds(open: () => Promise<SocketPair>): NetworkKinds {
  const opened: Promise<SessionPair>[] = [];
  let names = 0;

  const kind = (name: string, capacity: number): CaseKind => {
    let connection: Promise<SessionPair> | undefined;
    const connect = (): Promise<SessionPair> => {
      if (connection === undefined) {
        connection = open().then(sessionPair);
        opened.push(connection);
      }
      return connection;
    };
    return {
      name,
      capacity,
      overflow: 'suspend',
      suspends: capacity !== Infinity,
      drops: false,
      recreatesCauses: true,
      tryReceiveTakesWaitingSender: false,
      // Each rendezvous value is a round trip (two through the browser relay): on a busy
      // machine 10,000 of them can take longer than the default 20 s.
      timeout: 60_000,
      async create<T>(
        options?: Pick<ChannelOptions<T>, 'onUndelivered'>,
      ): Promise<ChannelUnderTest<T>> {
        const { a, b, settle } = await connect();
        names += 1;
        const channelName = `case-${names}`;
        const onUndelivered = options?.onUndelivered;
        const sending = a.channel<never, T>(
          channelName,
          onUndelivered === undefined ? {} : { onUndelivered },
        );
        const receiving = b.channel<T, never>(channelName, { capacity });
        await settle();
        return new PairChannel(sending.outgoing, receiving.incoming);
      },
      async settle(rounds?: number): Promise<void> {
        if (rounds === 0) return;
        await (await connect()).settle();
      },
    };
  };

  return {
    kinds: [
      kind('rendezvous', 0),
      kind('buffered(1)', 1),
      kind('buffered(16)', 16),
      kind('unlimited', Infinity),
    ],
    async close() {
      for (const connection of opened) {
        const { a, b } = await connection;
        await a.close();
        await b.closed;
      }
    },
  };
}
