/**
 * The reconnecting client's state-machine cases, against a scripted in-memory WebSocket
 * (no server, no Node built-ins), so they run unchanged in Node and in Chromium. The Node
 * spec (reconnecting.spec.ts) adds the cases that need real `ws` servers and fake timers.
 */
import { expect } from 'chai';
import { ConnectError, ReconnectAttemptsError, WebSocketCloseError } from '../../lib/errors.js';
import { defaultShouldReconnect, reconnecting } from '../../lib/websocket/index.js';
import { delay } from '../../lib/time.js';
import type { ReceiveChannel } from '../../lib/channel-types.js';
import type {
  CloseEventLike,
  ConnectionClose,
  ReconnectingSession,
  ConnectionState,
  ReconnectingClient,
  ReconnectingHandler,
  ReconnectingOptions,
  WebSocketConstructor,
} from '../../lib/websocket/index.js';

// ------------------------------------------------------------------ scripted socket

/** What one scripted connection does. */
export type Script =
  | { readonly kind: 'refuse' }
  | {
      readonly kind: 'open';
      /** Milliseconds until the open (default 0). */
      readonly openAfter?: number;
      /** The peer closes after `after` ms (default: stays open until closed). */
      readonly close?: {
        readonly code: number;
        readonly reason?: string;
        readonly wasClean?: boolean;
        readonly after?: number;
      };
      /** Messages the peer sends right after the open. */
      readonly messages?: readonly string[];
    };

type Listener = (event: unknown) => void;

/** An in-memory WebSocket that follows a script; browser-like (no `terminate`). */
export class ScriptedSocket {
  readyState = 0;
  bufferedAmount = 0;
  binaryType = 'blob';
  protocol = '';
  readonly sent: unknown[] = [];
  /** The close this side asked for, if any. */
  localClose: { code: number | undefined; reason: string | undefined } | undefined;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #world: ScriptedWorld;

  constructor(
    readonly url: string,
    world: ScriptedWorld,
    script: Script,
  ) {
    this.#world = world;
    world.live++;
    world.maxLive = Math.max(world.maxLive, world.live);
    world.later(script.kind === 'open' ? (script.openAfter ?? 0) : 0, () => {
      if (this.readyState !== 0) return;
      if (script.kind === 'refuse') {
        this.#end({ code: 1006, reason: '', wasClean: false }, true);
        return;
      }
      this.readyState = 1;
      this.#dispatch('open', {});
      for (const data of script.messages ?? []) this.#dispatch('message', { data });
      const close = script.close;
      if (close !== undefined) {
        world.later(close.after ?? 0, () => {
          this.peerClose(close.code, close.reason ?? '', close.wasClean ?? close.code !== 1006);
        });
      }
    });
  }

  send(data: unknown): void {
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.localClose = { code, reason };
    this.readyState = 2;
    this.#world.later(0, () => {
      this.#end({ code: code ?? 1005, reason: reason ?? '', wasClean: true }, false);
    });
  }

  /** The peer closes (or, with 1006 and `wasClean: false`, the connection is lost). */
  peerClose(code: number, reason = '', wasClean = true): void {
    if (this.readyState === 3) return;
    this.#end({ code, reason, wasClean }, false);
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  #end(event: CloseEventLike, withError: boolean): void {
    this.readyState = 3;
    this.#world.live--;
    if (withError) this.#dispatch('error', { message: 'refused' });
    this.#dispatch('close', event);
  }

  #dispatch(type: string, event: unknown): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) listener(event);
  }
}

/** A scripted "network": one script per connection attempt, in order. */
export class ScriptedWorld {
  readonly sockets: ScriptedSocket[] = [];
  /** Attempt times (`Date.now()`), one per socket. */
  readonly times: number[] = [];
  live = 0;
  maxLive = 0;
  readonly #scripts: Script[];
  /** Used once the scripts run out. */
  readonly #fallback: Script;

  constructor(scripts: readonly Script[], fallback: Script = { kind: 'open' }) {
    this.#scripts = [...scripts];
    this.#fallback = fallback;
  }

  later(ms: number, action: () => void): void {
    setTimeout(action, ms);
  }

  /** The constructor to pass as `options.WebSocket`. */
  get WebSocket(): WebSocketConstructor {
    const create = (url: string): ScriptedSocket => {
      const socket = new ScriptedSocket(url, this, this.#scripts.shift() ?? this.#fallback);
      this.sockets.push(socket);
      this.times.push(Date.now());
      return socket;
    };
    // A plain function: `new` on it returns the scripted socket.
    return function (url: string) {
      return create(url);
    } as unknown as WebSocketConstructor;
  }
}

// ------------------------------------------------------------------ helpers

const URL_ = 'ws://scripted.invalid/';

/** Options that make the backoff exact and fast. */
export const FAST = { minDelay: 1, maxDelay: 1000, factor: 2, jitter: 0 } as const;

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Every state of `client` from now until it ends. */
export async function collect(client: ReconnectingClient): Promise<ConnectionState[]> {
  const states: ConnectionState[] = [];
  for await (const state of client.states()) states.push(state);
  return states;
}

/** A compact form of a state sequence for exact comparisons. */
export function brief(states: readonly ConnectionState[]): string[] {
  return states.map((s) => {
    if (s.type === 'connecting') return `connecting ${s.attempt}`;
    if (s.type === 'open') return `open ${s.attempt} #${s.connection}`;
    const r = s.reason;
    const flags = `${r.local ? ' local' : ''}${r.opened ? '' : ' never-opened'}`;
    return `closed ${s.attempt} ${r.code}${flags} retry ${s.retryIn === undefined ? '-' : String(s.retryIn)}`;
  });
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Waits (bounded) until `check()` holds. */
export async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** A handler that drains `incoming` and lets whatever it ends with propagate. */
const drain = async ({ incoming }: { incoming: ReceiveChannel<unknown> }): Promise<void> => {
  const received: unknown[] = [];
  for await (const message of incoming) received.push(message);
};

function client(
  world: ScriptedWorld,
  options: Omit<ReconnectingOptions<unknown, unknown>, 'WebSocket'> = {},
  handler: ReconnectingHandler<unknown, unknown> = drain,
): ReconnectingClient {
  return reconnecting(URL_, { ...FAST, ...options, WebSocket: world.WebSocket }, handler);
}

// ------------------------------------------------------------------ cases

export function defineReconnectingCases(): void {
  describe('reconnecting() arguments', () => {
    const bad: [string, () => unknown, typeof TypeError, string][] = [
      [
        'a url that is not a string or URL',
        () => reconnecting(42 as unknown as string, {}, drain),
        TypeError,
        'Expected url to be a string or a URL, got 42 (number)',
      ],
      [
        'options that are not an object',
        () => reconnecting(URL_, null as unknown as object, drain),
        TypeError,
        'Expected options to be an object, got null',
      ],
      [
        'a handler that is not a function',
        () => reconnecting(URL_, {}, 'x' as unknown as typeof drain),
        TypeError,
        "Expected handler to be a function, got 'x' (string)",
      ],
      [
        'a negative minDelay',
        () => reconnecting(URL_, { minDelay: -1 }, drain),
        RangeError,
        'Expected minDelay to be a non-negative finite number of milliseconds, got -1',
      ],
      [
        'a minDelay that is not a number',
        () => reconnecting(URL_, { minDelay: '5' as unknown as number }, drain),
        TypeError,
        "Expected minDelay to be a non-negative finite number of milliseconds, got '5' (string)",
      ],
      [
        'a NaN minDelay',
        () => reconnecting(URL_, { minDelay: NaN }, drain),
        RangeError,
        'Expected minDelay to be a non-negative finite number of milliseconds, got NaN',
      ],
      [
        'a maxDelay below minDelay',
        () => reconnecting(URL_, { minDelay: 100, maxDelay: 50 }, drain),
        RangeError,
        'Expected maxDelay to be a finite number of milliseconds ≥ minDelay (100), got 50',
      ],
      [
        'an infinite maxDelay',
        () => reconnecting(URL_, { maxDelay: Infinity }, drain),
        RangeError,
        'Expected maxDelay to be a finite number of milliseconds ≥ minDelay (1000), got Infinity',
      ],
      [
        'a factor below 1',
        () => reconnecting(URL_, { factor: 0.5 }, drain),
        RangeError,
        'Expected factor to be a finite number ≥ 1, got 0.5',
      ],
      [
        'a jitter above 1',
        () => reconnecting(URL_, { jitter: 1.5 }, drain),
        RangeError,
        'Expected jitter to be a number from 0 to 1, got 1.5',
      ],
      [
        'a negative jitter',
        () => reconnecting(URL_, { jitter: -0.1 }, drain),
        RangeError,
        'Expected jitter to be a number from 0 to 1, got -0.1',
      ],
      [
        'an infinite minUptime',
        () => reconnecting(URL_, { minUptime: Infinity }, drain),
        RangeError,
        'Expected minUptime to be a non-negative finite number of milliseconds, got Infinity',
      ],
      [
        'a maxAttempts of 0',
        () => reconnecting(URL_, { maxAttempts: 0 }, drain),
        RangeError,
        'Expected maxAttempts to be a positive integer or Infinity, got 0',
      ],
      [
        'a fractional maxAttempts',
        () => reconnecting(URL_, { maxAttempts: 1.5 }, drain),
        RangeError,
        'Expected maxAttempts to be a positive integer or Infinity, got 1.5',
      ],
      [
        'a shouldReconnect that is not a function',
        () => reconnecting(URL_, { shouldReconnect: true as unknown as () => boolean }, drain),
        TypeError,
        'Expected shouldReconnect to be a function or undefined, got true (boolean)',
      ],
      [
        'a signal that is not an AbortSignal',
        () => reconnecting(URL_, { signal: {} as AbortSignal }, drain),
        TypeError,
        'Expected signal to be an AbortSignal or undefined, got object',
      ],
    ];
    for (const [what, call, Class, message] of bad) {
      it(`throws ${Class.name} for ${what}, before opening anything`, () => {
        expect(call).to.throw(Class, message).with.property('message', message);
      });
    }

    it('accepts the documented extremes (minDelay 0, factor 1, jitter 0 and 1, minUptime 0)', async () => {
      for (const options of [
        { minDelay: 0, maxDelay: 0 },
        { factor: 1, jitter: 0, minUptime: 0 },
        { jitter: 1, maxAttempts: Infinity },
      ]) {
        const world = new ScriptedWorld([]);
        const c = client(world, options);
        await c.stop();
        expect(await c.done).to.include({ local: true });
      }
    });

    it('rejects done with the connect option error, after one attempt and no retry', async () => {
      const world = new ScriptedWorld([]);
      const c = client(world, { openTimeout: -1 });
      const states = collect(c);
      const error = await rejection(c.done);
      expect(error).to.be.instanceOf(RangeError);
      expect((error as Error).message).to.match(/^Expected openTimeout to be/);
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'closed 1 1006 never-opened retry -',
      ]);
      expect(world.sockets).to.have.length(0);
    });
  });

  describe('reconnecting() connection loop', () => {
    it('runs the handler once per connection with fresh channels, until stopped', async () => {
      const world = new ScriptedWorld([
        { kind: 'open', close: { code: 1006, wasClean: false } },
        { kind: 'open', close: { code: 1001, reason: 'restart' } },
        { kind: 'open', messages: ['"hello"'] },
      ]);
      const runs: {
        context: ReconnectingSession<unknown>;
        incoming: unknown;
        outgoing: unknown;
      }[] = [];
      const errors: unknown[] = [];
      let c: ReconnectingClient | undefined = undefined;
      c = client(world, { minUptime: 60_000 }, async (context) => {
        const { incoming, outgoing } = context;
        runs.push({ context, incoming, outgoing });
        await outgoing.send(`hi ${context.connection}`);
        try {
          for await (const message of incoming) {
            expect(message).to.equal('hello');
            void c?.stop();
          }
        } catch (error) {
          errors.push(error);
          throw error;
        }
      });
      const states = collect(c);
      const last = await c.done;
      expect(runs.map((r) => [r.context.attempt, r.context.connection])).to.deep.equal([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      expect(new Set(runs.map((r) => r.incoming)).size).to.equal(3);
      expect(new Set(runs.map((r) => r.outgoing)).size).to.equal(3);
      expect(world.sockets.map((s) => s.sent)).to.deep.equal([['"hi 1"'], ['"hi 2"'], ['"hi 3"']]);
      // 1006 ends incoming with a WebSocketCloseError (the handler rethrew it); 1001 normally;
      // the stop cancels incoming with an AbortError, which is not recorded as an error.
      expect(errors).to.have.length(2);
      expect(errors[0]).to.be.instanceOf(WebSocketCloseError).with.property('closeCode', 1006);
      expect(errors[1]).to.be.instanceOf(DOMException).with.property('name', 'AbortError');
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'open 1 #1',
        'closed 1 1006 retry 1',
        'connecting 2',
        'open 2 #2',
        'closed 2 1001 retry 2',
        'connecting 3',
        'open 3 #3',
        'closed 3 1000 local retry -',
      ]);
      expect(last).to.deep.equal({
        code: 1000,
        reason: '',
        wasClean: true,
        attempt: 3,
        opened: true,
        local: true,
        error: undefined,
      });
      expect(world.sockets[2]?.localClose).to.deep.equal({ code: 1000, reason: '' });
      expect(world.maxLive).to.equal(1);
    });

    it('gives the policy how each attempt ended: code, reason, attempt, opened, local, error', async () => {
      const world = new ScriptedWorld([
        { kind: 'refuse' },
        { kind: 'open', close: { code: 4001, reason: 'bye' } },
      ]);
      const seen: ConnectionClose[] = [];
      const c = client(
        world,
        {
          shouldReconnect: (close) => {
            seen.push(close);
            return close.code !== 4001;
          },
        },
        async ({ incoming }) => {
          // 4001 is not a normal close: incoming ends with a WebSocketCloseError.
          await incoming.receiveCatching();
        },
      );
      const last = await c.done;
      expect(seen).to.have.length(2);
      expect(seen[0]).to.include({
        code: 1006,
        reason: '',
        wasClean: false,
        attempt: 1,
        opened: false,
        local: false,
      });
      expect(seen[0]?.error).to.be.instanceOf(ConnectError);
      expect(seen[1]).to.deep.equal({
        code: 4001,
        reason: 'bye',
        wasClean: true,
        attempt: 2,
        opened: true,
        local: false,
        error: undefined,
      });
      expect(last).to.equal(seen[1]);
      expect(c.state).to.deep.equal({
        type: 'closed',
        attempt: 2,
        reason: last,
        retryIn: undefined,
      });
      expect(c.isActive).to.equal(false);
    });

    it('waits min(maxDelay, minDelay × factor^(n−2)) before attempt n ≥ 2 and gives up after maxAttempts', async () => {
      const world = new ScriptedWorld([], { kind: 'refuse' });
      const c = client(world, { minDelay: 1, factor: 3, maxDelay: 20, maxAttempts: 6 });
      const states = collect(c);
      const error = await rejection(c.done);
      expect(brief(await states).filter((s) => s.startsWith('closed'))).to.deep.equal([
        'closed 1 1006 never-opened retry 1',
        'closed 2 1006 never-opened retry 3',
        'closed 3 1006 never-opened retry 9',
        'closed 4 1006 never-opened retry 20',
        'closed 5 1006 never-opened retry 20',
        'closed 6 1006 never-opened retry -',
      ]);
      expect(world.sockets).to.have.length(6);
      expect(error).to.be.instanceOf(ReconnectAttemptsError);
      const gaveUp = error as ReconnectAttemptsError;
      expect(gaveUp.name).to.equal('ReconnectAttemptsError');
      expect(gaveUp.code).to.equal('ERR_WEBSOCKET_RECONNECT_ATTEMPTS');
      expect(gaveUp.attempts).to.equal(6);
      expect(gaveUp.lastClose).to.deep.equal({ code: 1006, reason: '', wasClean: false });
      expect(gaveUp.message).to.equal(
        'Gave up reconnecting after 6 failed attempts in a row (last close: 1006)',
      );
      expect(gaveUp.cause).to.be.instanceOf(ConnectError);
      // Each wait really elapsed (timers may only be late, never early).
      for (let n = 1; n < 6; n++) {
        const gap = (world.times[n] as number) - (world.times[n - 1] as number);
        expect(gap).to.be.at.least([1, 3, 9, 20, 20][n - 1] as number);
      }
    });

    it('takes jitter × Math.random() of each wait off', async () => {
      const random = Math.random;
      const draws = [0.25, 1, 0];
      Math.random = () => draws.shift() ?? 0;
      try {
        const world = new ScriptedWorld([], { kind: 'refuse' });
        const c = client(world, { minDelay: 8, factor: 2, jitter: 0.5, maxAttempts: 4 });
        const states = collect(c);
        await rejection(c.done);
        const retries = (await states).flatMap((s) => (s.type === 'closed' ? [s.retryIn] : []));
        // Bases 8, 16, 32: 8 × (1 − 0.5 × 0.25), 16 × (1 − 0.5 × 1), 32 × (1 − 0.5 × 0).
        expect(retries).to.deep.equal([7, 8, 32, undefined]);
      } finally {
        Math.random = random;
      }
    });

    it('counts a connection that closes before minUptime as a failed attempt', async () => {
      const world = new ScriptedWorld(
        [
          { kind: 'open', close: { code: 1011 } },
          { kind: 'open', close: { code: 1011 } },
        ],
        { kind: 'refuse' },
      );
      const c = client(world, { minUptime: 60_000, maxAttempts: 3 });
      const states = collect(c);
      const error = await rejection(c.done);
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'open 1 #1',
        'closed 1 1011 retry 1',
        'connecting 2',
        'open 2 #2',
        'closed 2 1011 retry 2',
        'connecting 3',
        'closed 3 1006 never-opened retry -',
      ]);
      expect(error).to.be.instanceOf(ReconnectAttemptsError).with.property('attempts', 3);
    });

    it('restarts at attempt 1 (a wait of minDelay) after a connection that stayed up minUptime', async () => {
      const world = new ScriptedWorld(
        [
          { kind: 'refuse' },
          { kind: 'open', close: { code: 1001 } },
          { kind: 'open', close: { code: 1001 } },
        ],
        { kind: 'refuse' },
      );
      const c = client(world, { minUptime: 0, maxAttempts: 2 });
      const states = collect(c);
      const error = await rejection(c.done);
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'closed 1 1006 never-opened retry 1',
        'connecting 2',
        'open 2 #1',
        'closed 2 1001 retry 1',
        'connecting 1',
        'open 1 #2',
        'closed 1 1001 retry 1',
        'connecting 1',
        'closed 1 1006 never-opened retry 1',
        'connecting 2',
        'closed 2 1006 never-opened retry -',
      ]);
      expect(error).to.be.instanceOf(ReconnectAttemptsError).with.property('attempts', 2);
    });

    it('never has more than one socket alive, and the next attempt waits for the handler', async () => {
      const world = new ScriptedWorld(
        Array.from(
          { length: 5 },
          () => ({ kind: 'open', close: { code: 1006, wasClean: false } }) as const,
        ),
        { kind: 'open', close: { code: 1000 } },
      );
      let running = 0;
      let maxRunning = 0;
      // Asserted after the run: a failing expect in the handler would only end it.
      const liveAfterClose: number[] = [];
      const c = client(world, { minDelay: 0, maxDelay: 0 }, async ({ incoming }) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await incoming.receiveCatching();
        // Outlive the connection: the next attempt must still wait for us.
        await sleep(5);
        liveAfterClose.push(world.live);
        running--;
      });
      const last = await c.done;
      expect(last).to.include({ code: 1000, attempt: 6, local: false });
      expect(world.sockets).to.have.length(6);
      expect(world.maxLive).to.equal(1);
      expect(maxRunning).to.equal(1);
      expect(liveAfterClose).to.deep.equal([0, 0, 0, 0, 0, 0]);
    });
  });

  describe('reconnecting() policy', () => {
    const base = { attempt: 1, opened: true, error: undefined, reason: '', wasClean: true };
    const table: [number, boolean][] = [
      [1000, false],
      [1001, true],
      [1002, false],
      [1003, false],
      [1005, true],
      [1006, true],
      [1007, false],
      [1008, false],
      [1009, false],
      [1010, false],
      [1011, true],
      [1012, true],
      [1013, true],
      [1014, true],
      [1015, true],
      [3000, true],
      [4000, true],
      [4999, true],
    ];
    it('reconnects by default except after 1000 and the fatal codes 1002, 1003, 1007–1010', () => {
      for (const [code, expected] of table) {
        expect(defaultShouldReconnect({ ...base, code, local: false }), String(code)).to.equal(
          expected,
        );
      }
    });

    it('never reconnects by default after a local close, whatever the code', () => {
      for (const [code] of table) {
        expect(defaultShouldReconnect({ ...base, code, local: true }), String(code)).to.equal(
          false,
        );
      }
    });

    it('reconnects by default after an attempt that never connected', () => {
      expect(
        defaultShouldReconnect({
          code: 1006,
          reason: '',
          wasClean: false,
          attempt: 7,
          opened: false,
          local: false,
          error: new ConnectError('refused', URL_),
        }),
      ).to.equal(true);
    });

    for (const code of [1000, 1008]) {
      it(`ends after the peer closes with ${code}: done resolves with that close`, async () => {
        const world = new ScriptedWorld([{ kind: 'open', close: { code, reason: 'end' } }]);
        const c = client(world, {}, async ({ incoming }) => {
          await incoming.receiveCatching();
        });
        const states = collect(c);
        const last = await c.done;
        expect(last).to.deep.equal({
          code,
          reason: 'end',
          wasClean: true,
          attempt: 1,
          opened: true,
          local: false,
          error: undefined,
        });
        expect(brief(await states)).to.deep.equal([
          'connecting 1',
          'open 1 #1',
          `closed 1 ${code} retry -`,
        ]);
        expect(world.sockets).to.have.length(1);
      });
    }

    it('rejects done with the handler’s error when the policy ends the client after it', async () => {
      const world = new ScriptedWorld([{ kind: 'open', close: { code: 1008, reason: 'policy' } }]);
      let thrown: unknown;
      const c = client(world, {}, async ({ incoming }) => {
        try {
          const received: unknown[] = [];
          for await (const message of incoming) received.push(message);
        } catch (error) {
          thrown = error;
          throw error;
        }
      });
      const error = await rejection(c.done);
      expect(thrown).to.be.instanceOf(WebSocketCloseError).with.property('closeCode', 1008);
      expect(error).to.equal(thrown);
      expect(c.state).to.have.nested.property('reason.error', thrown);
    });

    it('closes with 1000 and ends when the handler returns while the connection is open', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const c = client(world, {}, async ({ outgoing }) => {
        await outgoing.send('last words');
      });
      const last = await c.done;
      expect(last).to.include({ code: 1000, local: true, opened: true, error: undefined });
      expect(world.sockets[0]?.sent).to.deep.equal(['"last words"']);
      expect(world.sockets[0]?.localClose).to.deep.equal({ code: 1000, reason: '' });
      expect(world.sockets).to.have.length(1);
    });

    it('closes with 4000 and rejects done with the same error when the handler throws while open', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const bug = new Error('bug');
      const c = client(world, {}, () => {
        throw bug;
      });
      expect(await rejection(c.done)).to.equal(bug);
      expect(world.sockets[0]?.localClose).to.deep.equal({
        code: 4000,
        reason: 'Application error',
      });
      expect(c.state).to.deep.include({ type: 'closed', retryIn: undefined });
      expect(c.state).to.have.nested.property('reason.local', true);
      expect(world.sockets).to.have.length(1);
    });

    it('reconnects after a local close when shouldReconnect says so, keeping the error in the state', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }, { kind: 'open' }]);
      const bug = new Error('bug');
      let runs = 0;
      const c = client(world, { shouldReconnect: () => runs < 2 }, () => {
        runs++;
        throw bug;
      });
      const states = collect(c);
      expect(await rejection(c.done)).to.equal(bug);
      const closes = (await states).flatMap((s) => (s.type === 'closed' ? [s.reason] : []));
      expect(closes.map((r) => [r.code, r.local, r.error])).to.deep.equal([
        [4000, true, bug],
        [4000, true, bug],
      ]);
    });

    it('rejects done with the error of a throwing shouldReconnect', async () => {
      const world = new ScriptedWorld([{ kind: 'refuse' }]);
      const oops = new Error('oops');
      const c = client(world, {
        shouldReconnect: () => {
          throw oops;
        },
      });
      expect(await rejection(c.done)).to.equal(oops);
      expect(world.sockets).to.have.length(1);
    });
  });

  describe('reconnecting() stopping', () => {
    it('stop() while open cancels incoming, aborts the context signal, closes with 1000 and resolves', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      let context: ReconnectingSession<unknown> | undefined;
      let receiveError: unknown;
      const c = client(world, {}, async (session) => {
        context = session;
        const { incoming } = session;
        try {
          await incoming.receive();
        } catch (error) {
          receiveError = error;
        }
      });
      await until(() => c.isOpen, 'open');
      await c.stop();
      expect(receiveError).to.be.instanceOf(DOMException).with.property('name', 'AbortError');
      expect(context?.signal.aborted).to.equal(true);
      expect(context?.signal.reason).to.equal(receiveError);
      expect(world.sockets[0]?.localClose).to.deep.equal({ code: 1000, reason: '' });
      expect(await c.done).to.include({ code: 1000, local: true, opened: true, error: undefined });
      expect(c.isActive).to.equal(false);
      await sleep(10);
      expect(world.sockets).to.have.length(1);
    });

    it('stop() awaited inside the handler resumes once the connection has closed; the client ends after the handler returns', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const steps: string[] = [];
      let c: ReconnectingClient | undefined = undefined;
      c = client(world, {}, async ({ closed, signal }) => {
        steps.push('handler');
        await c?.stop(); // deadlocked before: stop() waited for this very handler
        steps.push(`stopped: closed ${(await closed).code}, signal ${String(signal.aborted)}`);
        steps.push(`active while the handler runs: ${String(c?.isActive)}`);
      });
      // Bounded: a deadlock shows as 'deadlock' in a second, not as a mocha timeout.
      const timer = new AbortController();
      const outcome = await Promise.race([
        c.done.then((close) => close),
        delay(1000, { signal: timer.signal }).then(() => 'deadlock' as const),
      ]);
      timer.abort();
      steps.push('done');
      expect(steps).to.deep.equal([
        'handler',
        'stopped: closed 1000, signal true',
        'active while the handler runs: true',
        'done',
      ]);
      expect(outcome).to.include({ code: 1000, local: true, opened: true, error: undefined });
      expect(c.isActive).to.equal(false);
      expect(c.state).to.include({ type: 'closed', retryIn: undefined });
    });

    it('stop() from outside while a handler runs resolves once the connection has closed; done waits for the handler', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const steps: string[] = [];
      let release = (): void => undefined;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const c = client(world, {}, async ({ signal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        steps.push('handler saw the stop');
        await released; // a handler still cleaning up after the close
        steps.push('handler returned');
      });
      await until(() => c.isOpen, 'open');
      await c.stop();
      steps.push('stop resolved');
      expect(c.isActive).to.equal(true);
      const done = c.done.then(() => steps.push('done'));
      release();
      await done;
      expect(steps).to.deep.equal([
        'handler saw the stop',
        'stop resolved',
        'handler returned',
        'done',
      ]);
    });

    it('await using waits for the running handler to return', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const steps: string[] = [];
      const c = client(world, {}, async ({ signal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        await delay(5);
        steps.push('handler returned');
      });
      await until(() => c.isOpen, 'open');
      await c[Symbol.asyncDispose]();
      steps.push('disposed');
      expect(steps).to.deep.equal(['handler returned', 'disposed']);
      expect(c.isActive).to.equal(false);
    });

    it('stop() while connecting drops the attempt: no open state, no retry', async () => {
      const world = new ScriptedWorld([{ kind: 'open', openAfter: 5000 }]);
      let ran = false;
      const c = client(world, {}, () => {
        ran = true;
      });
      const states = collect(c);
      await until(() => world.sockets.length === 1, 'the first socket');
      await c.stop();
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'closed 1 1006 local never-opened retry -',
      ]);
      expect(await c.done).to.include({ local: true, opened: false, error: undefined });
      expect(ran).to.equal(false);
      expect(world.live).to.equal(0);
    });

    it('stop() during the backoff cancels the planned attempt at once', async () => {
      const world = new ScriptedWorld([{ kind: 'refuse' }]);
      const c = client(world, { minDelay: 60_000, maxDelay: 60_000 });
      await until(() => c.state.type === 'closed', 'the first close');
      expect(c.state).to.have.property('retryIn', 60_000);
      await c.stop();
      expect(await c.done).to.include({ attempt: 1, opened: false, local: false });
      expect(c.state).to.have.property('retryIn', 60_000);
      expect(world.sockets).to.have.length(1);
    });

    it('aborting the signal while open closes with 1000 and rejects done with signal.reason', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const controller = new AbortController();
      const c = client(world, { signal: controller.signal });
      await until(() => c.isOpen, 'open');
      const reason = new Error('leaving');
      controller.abort(reason);
      expect(await rejection(c.done)).to.equal(reason);
      expect(world.sockets[0]?.localClose).to.deep.equal({ code: 1000, reason: '' });
      expect(c.state).to.have.nested.property('reason.local', true);
      expect(world.sockets).to.have.length(1);
    });

    it('with an already aborted signal opens nothing and rejects done with its reason', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const reason = new Error('never mind');
      const c = client(world, { signal: AbortSignal.abort(reason) });
      expect(c.state).to.deep.equal({ type: 'connecting', attempt: 1 });
      const states = collect(c);
      expect(await rejection(c.done)).to.equal(reason);
      expect(brief(await states)).to.deep.equal([
        'connecting 1',
        'closed 1 1006 local never-opened retry -',
      ]);
      expect(world.sockets).to.have.length(0);
    });

    it('ignores a second stop() and a stop() after the end; stop() never rejects', async () => {
      const world = new ScriptedWorld([{ kind: 'refuse' }]);
      const c = client(world, { maxAttempts: 1 });
      await rejection(c.done);
      await c.stop();
      const d = client(new ScriptedWorld([]));
      await Promise.all([d.stop(), d.stop()]);
      expect(await d.done).to.include({ local: true });
    });

    it('stops at the end of an `await using` block', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      let outer: ReconnectingClient | undefined;
      {
        await using c = client(world);
        outer = c;
        await until(() => c.isOpen, 'open');
      }
      expect(outer.isActive).to.equal(false);
      expect(world.sockets[0]?.localClose).to.deep.equal({ code: 1000, reason: '' });
    });
  });

  describe('reconnecting() state', () => {
    it('is connecting (attempt 1) synchronously, and open while the handler runs', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      let seen: ConnectionState | undefined;
      const c = client(world, {}, () => {
        seen = c.state;
      });
      expect(c.state).to.deep.equal({ type: 'connecting', attempt: 1 });
      expect(c.isOpen).to.equal(false);
      expect(c.isActive).to.equal(true);
      await c.done;
      expect(seen).to.deep.equal({ type: 'open', attempt: 1, connection: 1, protocol: '' });
    });

    it('delivers every transition to every subscriber, however late it reads', async () => {
      const world = new ScriptedWorld(
        Array.from({ length: 10 }, () => ({ kind: 'refuse' }) as const),
        { kind: 'open', close: { code: 1000 } },
      );
      const c = client(world, { minDelay: 0, maxDelay: 0 });
      const early = c.states();
      const eager = collect(c);
      await c.done;
      // `early` was not read at all until the end: nothing was dropped or conflated.
      const lazy: ConnectionState[] = [];
      for await (const state of early) lazy.push(state);
      expect(lazy).to.have.length(2 * 10 + 3);
      expect(lazy).to.deep.equal(await eager);
      expect(brief(lazy).slice(-3)).to.deep.equal([
        'connecting 11',
        'open 11 #1',
        'closed 11 1000 retry -',
      ]);
    });

    it('starts a late subscription with the current state', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const c = client(world);
      await until(() => c.isOpen, 'open');
      const states = c.states();
      expect(states.tryReceive()).to.deep.equal({ ok: true, value: c.state });
      await c.stop();
      expect(brief(await collectChannel(states))).to.deep.equal(['closed 1 1000 local retry -']);
    });

    it('gives a subscription made after the end the final state, then closes it', async () => {
      const c = client(new ScriptedWorld([]));
      await c.stop();
      const states = c.states();
      expect(states.tryReceive()).to.deep.equal({ ok: true, value: c.state });
      expect(states.isClosedForReceive).to.equal(true);
    });

    it('unsubscribes a cancelled subscription without disturbing the others', async () => {
      const world = new ScriptedWorld([{ kind: 'open' }]);
      const c = client(world);
      const cancelled = c.states();
      const kept = c.states();
      cancelled.cancel();
      await until(() => c.isOpen, 'open');
      await c.stop();
      expect(cancelled.isClosedForReceive).to.equal(true);
      expect(brief(await collectChannel(kept))).to.deep.equal([
        'connecting 1',
        'open 1 #1',
        'closed 1 1000 local retry -',
      ]);
    });

    it('freezes states', async () => {
      const c = client(new ScriptedWorld([]));
      expect(Object.isFrozen(c.state)).to.equal(true);
      await c.stop();
    });
  });
}

async function collectChannel(
  channel: ReceiveChannel<ConnectionState>,
): Promise<ConnectionState[]> {
  const states: ConnectionState[] = [];
  for await (const state of channel) states.push(state);
  return states;
}
