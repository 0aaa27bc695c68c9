/**
 * The WebSocket adapter's conformance cases: the same `describe`/`it` blocks run in Node
 * with `ws`, in Node with its own WHATWG `WebSocket`, and in headless Chromium, against the
 * scripted peer of `peer-server.ts`. Browser-safe: no Node built-ins, no `process`.
 *
 * Where platforms genuinely differ, the case asserts each platform's outcome explicitly
 * (`env.platform`); the README lists those differences:
 * - close codes sluice sends for protocol failures (1003, 1007, 1008): `ws` sends them,
 *   browser-like sockets refuse them, so 4003, 4007, 4008 go on the wire;
 * - `terminate()`: `ws` drops the TCP connection (peer sees 1006), browser-like sockets
 *   close without a code in the background (peer sees 1005);
 * - a rejected handshake: `HandshakeError` with status and headers with `ws`, a plain
 *   `ConnectError` elsewhere;
 * - a full `incoming` with the default `'pause'` policy: `ws` pauses the socket (nothing
 *   lost), browser-like sockets cannot and fail with 1008 (4008 on the wire).
 */
import { expect } from 'chai';
import { z } from 'zod';
import { ClosedSendError, TimeoutError } from '../../lib/errors.js';
import { select } from '../../lib/select.js';
import {
  ConnectError,
  DecodeError,
  EncodeError,
  HandshakeError,
  IncomingOverflowError,
  WebSocketCloseError,
  binary,
  connect,
  json,
  raw,
  text,
  withWebSocket,
  wrap,
} from '../../lib/websocket/index.js';
import type {
  CloseReason,
  ConnectOptions,
  Session,
  WebSocketConstructor,
} from '../../lib/websocket/index.js';

export type ConformancePlatform =
  'node-ws' | 'node-native' | 'chromium' | 'bun' | 'bun-ws' | 'deno' | 'deno-ws';

export interface ConformanceEnv {
  readonly platform: ConformancePlatform;
  /** `ws://127.0.0.1:<port>` of a running peer server (see peer-server.ts). */
  peerUrl(): string;
  /** The WebSocket constructor under test. */
  readonly WebSocket: WebSocketConstructor;
}

/** Title of the top-level suite, the same on every platform. */
export const CONFORMANCE_TITLE = 'WebSocket adapter, identically on every platform';

interface PeerRecord {
  messages: ({ type: 'text'; data: string } | { type: 'binary'; data: number[] })[];
  close: { code: number; reason: string } | null;
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

type HandListener = (event: unknown) => void;

/**
 * A minimal in-memory WebSocket whose state a case sets by hand (`readyState`,
 * `bufferedAmount`), for the platform-independent cases below that need states a real
 * peer cannot produce on cue. `send` throws unless open, as a strict socket would.
 */
class HandSocket {
  binaryType = 'blob';
  protocol = '';
  bufferedAmount = 0;
  readyState: number;
  readonly sent: unknown[] = [];
  readonly closeCalls: [number | undefined, string | undefined][] = [];
  readonly #listeners = new Map<string, Set<HandListener>>();

  constructor(readyState = 1) {
    this.readyState = readyState;
  }

  send(data: unknown): void {
    if (this.readyState !== 1) throw new Error('HandSocket: send while not open');
    this.sent.push(data);
  }

  /** Closes as a socket does: CLOSING now, the close event in a later task. */
  close(code?: number, reason?: string): void {
    this.closeCalls.push([code, reason]);
    if (this.readyState >= 2) return;
    this.readyState = 2;
    setTimeout(() => {
      this.closed(code ?? 1005, reason ?? '');
    }, 0);
  }

  open(): void {
    this.readyState = 1;
    this.#emit('open', {});
  }

  /** The connection ended: CLOSED and the close event. */
  closed(code: number, reason = '', wasClean = true): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.#emit('close', { code, reason, wasClean });
  }

  addEventListener(type: string, listener: HandListener): void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: HandListener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  #emit(type: string, event: unknown): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) listener(event);
  }
}

const handWrap = <T = string>(
  socket: HandSocket,
  options: Parameters<typeof wrap<T, T>>[1] = {},
): Session<T, T> =>
  wrap<T, T>(socket as unknown as Parameters<typeof wrap>[0], {
    codec: text() as never,
    ...options,
  });

/** Counts `setTimeout` calls with a delay beyond 2^31 − 1 ms while `during` runs. */
async function overlongTimers(during: () => Promise<void>): Promise<number> {
  const original = globalThis.setTimeout;
  let count = 0;
  globalThis.setTimeout = ((handler: () => void, ms?: number, ...rest: unknown[]) => {
    if (typeof ms === 'number' && ms > 2_147_483_647) count++;
    return original(handler, ms, ...rest);
  }) as typeof setTimeout;
  try {
    await during();
  } finally {
    globalThis.setTimeout = original;
  }
  return count;
}

/**
 * What a platform's socket does where platforms differ (the module doc lists why). `ws`,
 * whether Node's or the one Bun substitutes for it, has all four; browser-like sockets
 * (browsers, Node's and Deno's own `WebSocket`) none; Bun's own `WebSocket` has the `ws`
 * extras (`terminate`, `pause`) and accepts every close code, but reports a rejected
 * handshake without its status, as browsers do.
 */
export interface SocketTraits {
  /** Sends 1003, 1007, 1008 as given (else sluice sends 4003, 4007, 4008). */
  readonly sendsProtocolCodes: boolean;
  /** `terminate()` drops the TCP connection (the peer sees 1006, else 1005). */
  readonly terminateDropsConnection: boolean;
  /** `pause()` stops reading, so a full `incoming` pushes back instead of failing. */
  readonly pauses: boolean;
  /** A rejected handshake is a `HandshakeError` with the status and headers. */
  readonly handshakeStatus: boolean;
}

const WS_TRAITS: SocketTraits = {
  sendsProtocolCodes: true,
  terminateDropsConnection: true,
  pauses: true,
  handshakeStatus: true,
};

const BROWSER_TRAITS: SocketTraits = {
  sendsProtocolCodes: false,
  terminateDropsConnection: false,
  pauses: false,
  handshakeStatus: false,
};

/** The traits of each platform's socket, as the cases below assert them. */
export const SOCKET_TRAITS: Readonly<Record<ConformancePlatform, SocketTraits>> = {
  'node-ws': WS_TRAITS,
  'node-native': BROWSER_TRAITS,
  chromium: BROWSER_TRAITS,
  bun: { ...WS_TRAITS, handshakeStatus: false },
  'bun-ws': WS_TRAITS,
  deno: BROWSER_TRAITS,
  'deno-ws': WS_TRAITS,
};

export function defineConformance(env: ConformanceEnv): void {
  const traits = SOCKET_TRAITS[env.platform];
  /** The code that reaches the wire when sluice closes with protocol code `code`. */
  const wire = (code: number): number => (traits.sendsProtocolCodes ? code : code + 3000);
  let next = 0;
  const newId = (): string => `${env.platform}-${Date.now()}-${next++}`;

  function open<In = unknown, Out = In>(
    path: string,
    options: ConnectOptions<In, Out> = {},
  ): Promise<Session<In, Out>> {
    return connect<In, Out>(`${env.peerUrl()}${path}`, { WebSocket: env.WebSocket, ...options });
  }

  /** What the peer recorded for connection `id` (waits until that connection closed). */
  async function report(id: string): Promise<PeerRecord> {
    const session = await open<PeerRecord>(`/report?target=${id}`);
    const record = await session.incoming.receive();
    await session.closed;
    return record;
  }

  describe(CONFORMANCE_TITLE, function () {
    this.timeout(20_000);

    describe('messages', () => {
      it('round-trips JSON, and both sides see the same clean close', async () => {
        const id = newId();
        const session = await open<{ n: number }>(`/echo?id=${id}`);
        await session.outgoing.send({ n: 1 });
        expect(await session.incoming.receive()).to.deep.equal({ n: 1 });
        expect(await session.close(4000, 'done')).to.deep.equal({
          code: 4000,
          reason: 'done',
          wasClean: true,
        });
        expect(await session.closed).to.deep.equal({ code: 4000, reason: 'done', wasClean: true });
        const record = await report(id);
        expect(record.close).to.deep.equal({ code: 4000, reason: 'done' });
        expect(record.messages).to.deep.equal([{ type: 'text', data: '{"n":1}' }]);
      });

      it('keeps text as text and binary as binary, empty messages included', async () => {
        const id = newId();
        const session = await open(`/echo?id=${id}`, { codec: raw() });
        const sent = ['', 'a', new Uint8Array(0), new Uint8Array([1, 2, 255])];
        for (const message of sent) await session.outgoing.send(message);
        const received = [];
        for (let i = 0; i < sent.length; i++) received.push(await session.incoming.receive());
        expect(received[0]).to.equal('');
        expect(received[1]).to.equal('a');
        expect(received[2]).to.be.instanceOf(Uint8Array);
        expect(received[2]).to.have.length(0);
        expect(received[3]).to.be.instanceOf(Uint8Array);
        expect([...(received[3] as Uint8Array)]).to.deep.equal([1, 2, 255]);
        expect(Object.getPrototypeOf(received[3])).to.equal(Uint8Array.prototype);
        await session.close();
        expect((await report(id)).messages).to.deep.equal([
          { type: 'text', data: '' },
          { type: 'text', data: 'a' },
          { type: 'binary', data: [] },
          { type: 'binary', data: [1, 2, 255] },
        ]);
      });

      it('receives binary() messages as Uint8Array, never Blob or ArrayBuffer', async () => {
        const session = await open('/frame?bytes=7,8', { codec: text() });
        const error = await rejection(session.incoming.receive());
        expect(error).to.be.instanceOf(DecodeError);
        const other = await open('/frame?bytes=7,8', { codec: binary() });
        const bytes = await other.incoming.receive();
        expect(Object.getPrototypeOf(bytes)).to.equal(Uint8Array.prototype);
        expect([...bytes]).to.deep.equal([7, 8]);
        await other.close();
        await session.closed;
      });
    });

    describe('the peer closes', () => {
      it('delivers every message before Close(4001), then incoming fails with WebSocketCloseError', async () => {
        const session = await open<{ i: number }>('/send?n=100&code=4001&reason=bye');
        const received: number[] = [];
        const error = await rejection(
          (async () => {
            for await (const message of session.incoming) received.push(message.i);
          })(),
        );
        expect(received).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
        expect(error).to.be.instanceOf(WebSocketCloseError);
        expect(error).to.include({
          name: 'WebSocketCloseError',
          code: 'ERR_WEBSOCKET_CLOSED',
          closeCode: 4001,
          reason: 'bye',
          wasClean: true,
        });
        expect(await session.closed).to.deep.equal({ code: 4001, reason: 'bye', wasClean: true });
      });

      for (const [query, code] of [
        ['code=1000', 1000],
        ['code=1001', 1001],
        ['code=none', 1005],
      ] as const) {
        it(`ends incoming normally after every message for ${code}`, async () => {
          const session = await open<{ i: number }>(`/send?n=3&${query}`);
          const received: number[] = [];
          for await (const message of session.incoming) received.push(message.i);
          expect(received).to.deep.equal([0, 1, 2]);
          expect(await session.closed).to.deep.equal({ code, reason: '', wasClean: true });
        });
      }

      it('reports a lost connection as 1006, wasClean false, after the messages before it', async () => {
        const session = await open<{ i: number }>('/drop?n=3');
        const received: number[] = [];
        const error = await rejection(
          (async () => {
            for await (const message of session.incoming) received.push(message.i);
          })(),
        );
        expect(received).to.deep.equal([0, 1, 2]);
        expect(error).to.be.instanceOf(WebSocketCloseError);
        expect(error).to.include({ closeCode: 1006, wasClean: false });
        expect(await session.closed).to.deep.equal({ code: 1006, reason: '', wasClean: false });
      });

      it('rejects later sends with ClosedSendError and hands their values to onUndelivered', async () => {
        const undelivered: unknown[] = [];
        const session = await open('/send?n=0&code=4002', {
          onUndelivered: (value) => undelivered.push(value),
        });
        await session.closed;
        const error = await rejection(session.outgoing.send('late'));
        expect(error).to.be.instanceOf(ClosedSendError);
        expect(undelivered).to.deep.equal(['late']);
        expect(session.outgoing.isClosedForSend).to.equal(true);
      });
    });

    describe('closing from this side', () => {
      it('transmits all 10,000 accepted messages, in order, before the Close', async () => {
        const id = newId();
        const session = await open<number>(`/echo?id=${id}`);
        const sends = Array.from({ length: 10_000 }, (_, i) => session.outgoing.send(i));
        expect(await session.close(4002, 'all sent')).to.deep.equal({
          code: 4002,
          reason: 'all sent',
          wasClean: true,
        });
        await Promise.all(sends);
        const record = await report(id);
        expect(record.messages).to.have.length(10_000);
        expect(record.messages.map((m) => Number(m.data))).to.deep.equal(
          Array.from({ length: 10_000 }, (_, i) => i),
        );
        expect(record.close).to.deep.equal({ code: 4002, reason: 'all sent' });
      });

      it('outgoing.close() flushes, then closes with 1000; a second close is a no-op', async () => {
        const id = newId();
        const session = await open<number>(`/echo?id=${id}`);
        void session.outgoing.send(1);
        void session.outgoing.send(2);
        expect(session.outgoing.close()).to.equal(true);
        expect(session.outgoing.close()).to.equal(false);
        const first = session.close(4009);
        expect(session.close(4010, 'ignored')).to.equal(first);
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
        const record = await report(id);
        expect(record.messages.map((m) => m.data)).to.deep.equal(['1', '2']);
        expect(record.close).to.deep.equal({ code: 1000, reason: '' });
        expect(await rejection(session.outgoing.send(3))).to.be.instanceOf(ClosedSendError);
      });

      it('refuses close codes and reasons that browsers refuse, with the same errors everywhere', async () => {
        const session = await open('/echo');
        for (const code of [999, 1001, 1005, 1006, 1011, 2999, 5000, 3000.5]) {
          expect(() => session.close(code)).to.throw(
            RangeError,
            `Expected code to be 1000 or an integer from 3000 to 4999, got ${code}`,
          );
        }
        expect(() => session.close('1000' as never)).to.throw(TypeError, /^Expected code/);
        expect(() => session.close(1000, 'é'.repeat(62))).to.throw(
          RangeError,
          'Expected reason to be at most 123 bytes of UTF-8, got 124 bytes',
        );
        expect(() => session.close(1000, 5 as never)).to.throw(TypeError, /^Expected reason/);
        // Still open and usable.
        await session.outgoing.send('still open');
        expect(await session.incoming.receive()).to.equal('still open');
        expect(await session.close(1000, 'é'.repeat(61))).to.deep.equal({
          code: 1000,
          reason: 'é'.repeat(61),
          wasClean: true,
        });
      });

      it('flush() resolves once everything accepted has been written', async () => {
        const id = newId();
        const session = await open<number>(`/echo?id=${id}`);
        for (let i = 0; i < 100; i++) await session.outgoing.send(i);
        await session.flush();
        for (let i = 0; i < 100; i++) expect(await session.incoming.receive()).to.equal(i);
        await session.close();
        await session.flush();
      });

      it('terminate() drops the connection: waiting values go to onUndelivered, closed is 1006', async () => {
        const undelivered: unknown[] = [];
        const socket = new env.WebSocket(`${env.peerUrl()}/echo`);
        const session = wrap<number>(socket, {
          onUndelivered: (value) => undelivered.push(value),
        });
        // Sends made while the socket connects wait in the channel.
        const sends = [session.outgoing.send(1), session.outgoing.send(2)];
        session.terminate();
        for (const send of sends) expect(await rejection(send)).to.be.instanceOf(ClosedSendError);
        expect(undelivered).to.deep.equal([1, 2]);
        expect(await session.closed).to.deep.equal({ code: 1006, reason: '', wasClean: false });
        expect(await session.incoming.receiveCatching()).to.deep.equal({ ok: false, closed: true });
        session.terminate();
      });

      it('terminate() on an open connection: ws drops TCP (1006), browsers close without code (1005)', async () => {
        const id = newId();
        const session = await open<string>(`/echo?id=${id}`);
        await session.outgoing.send('x');
        expect(await session.incoming.receive()).to.equal('x');
        session.terminate();
        expect(await session.closed).to.deep.equal({ code: 1006, reason: '', wasClean: false });
        const record = await report(id);
        expect(record.close?.code).to.equal(traits.terminateDropsConnection ? 1006 : 1005);
      });

      it('sends made before the socket opens are delivered after it opens, in order', async () => {
        const session = wrap<number>(new env.WebSocket(`${env.peerUrl()}/echo`));
        const sends = [1, 2, 3].map((n) => session.outgoing.send(n));
        await Promise.all(sends);
        for (const n of [1, 2, 3]) expect(await session.incoming.receive()).to.equal(n);
        await session.close();
      });
    });

    describe('bad frames and values', () => {
      it('fails invalid JSON with DecodeError and closes with 1007 (4007 where refused)', async () => {
        const session = await open('/frame?text=not-json&id=' + newId());
        const error = (await rejection(session.incoming.receive())) as DecodeError;
        expect(error).to.be.instanceOf(DecodeError);
        expect(error).to.include({ closeCode: 1007, data: 'not-json' });
        const closed = await session.closed;
        expect(closed).to.deep.equal({
          code: wire(1007),
          reason: 'Invalid payload',
          wasClean: true,
        });
      });

      it('closes with 1003 (4003 where refused) on a binary frame for a text codec', async () => {
        const id = newId();
        const session = await open(`/frame?bytes=1,2&id=${id}`, { codec: text() });
        const error = (await rejection(session.incoming.receive())) as DecodeError;
        expect(error).to.be.instanceOf(DecodeError);
        expect(error.closeCode).to.equal(1003);
        expect([...(error.data as Uint8Array)]).to.deep.equal([1, 2]);
        await session.closed;
        expect((await report(id)).close).to.deep.equal({
          code: wire(1003),
          reason: 'Unsupported data',
        });
      });

      it('attaches the schema issues when validation fails', async () => {
        const session = await open(`/frame?text=${encodeURIComponent('{"n":"x"}')}`, {
          codec: json(z.object({ n: z.number() })),
        });
        const error = (await rejection(session.incoming.receive())) as DecodeError;
        expect(error).to.be.instanceOf(DecodeError);
        expect(error.issues?.[0]?.path).to.deep.equal(['n']);
        expect(error.data).to.equal('{"n":"x"}');
        await session.closed;
      });

      it("skips undecodable frames with onDecodeError: 'skip'", async () => {
        const session = await open<unknown, string>('/echo', {
          codec: { encode: (value: string) => value, decode: (data) => json().decode(data) },
          onDecodeError: 'skip',
        });
        await session.outgoing.send('oops');
        await session.outgoing.send('{"a":1}');
        expect(await session.incoming.receive()).to.deep.equal({ a: 1 });
        await session.close();
      });

      it('rejects a value that cannot be encoded with EncodeError and stays usable', async () => {
        const undelivered: unknown[] = [];
        const session = await open('/echo', {
          onUndelivered: (value) => undelivered.push(value),
        });
        const error = await rejection(session.outgoing.send(10n));
        expect(error).to.be.instanceOf(EncodeError);
        expect(error).to.include({ name: 'EncodeError', code: 'ERR_WEBSOCKET_ENCODE', value: 10n });
        expect(undelivered).to.deep.equal([10n]);
        expect(() => session.outgoing.trySend(10n)).to.throw(EncodeError);
        await session.outgoing.send({ ok: true });
        expect(await session.incoming.receive()).to.deep.equal({ ok: true });
        await session.close();
      });
    });

    describe('flow control', () => {
      it('a full incoming: ws pauses (nothing lost), browser-like sockets fail with 1008', async () => {
        const id = newId();
        const session = await open<string>(`/flood?n=2000&size=16&close=0&id=${id}`, {
          incomingCapacity: 10,
          codec: text(),
        });
        if (!traits.pauses) {
          // Nobody reads: the flood overflows incoming, which fails the connection.
          await session.closed;
          const received: string[] = [];
          const error = await rejection(
            (async () => {
              for await (const message of session.incoming) received.push(message);
            })(),
          );
          expect(received).to.have.length(10);
          expect(error).to.be.instanceOf(IncomingOverflowError);
          expect(error).to.include({ code: 'ERR_WEBSOCKET_INCOMING_OVERFLOW', capacity: 10 });
          await session.closed;
          expect((await report(id)).close?.code).to.equal(wire(1008));
        } else {
          let count = 0;
          for (let i = 0; i < 2000; i++) {
            expect(await session.incoming.receive()).to.equal('x'.repeat(16));
            count++;
          }
          expect(count).to.equal(2000);
          await session.close();
        }
      });

      it('send waits while bufferedAmount is at the high-water mark (peer not reading)', async () => {
        const undelivered: number[] = [];
        const session = await open<number, number>('/stall', {
          highWaterMark: 64 * 1024,
          codec: {
            encode: (n: number) => `${n}:${'y'.repeat(64 * 1024)}`,
            decode: () => 0,
          },
          onUndelivered: (n) => undelivered.push(n),
        });
        let resolved = 0;
        let pending: Promise<void> | undefined;
        for (let n = 0; n < 1000; n++) {
          const send = session.outgoing.send(n);
          const settledInTime = await Promise.race([
            send.then(() => true),
            sleep(500).then(() => false),
          ]);
          if (!settledInTime) {
            pending = send;
            break;
          }
          resolved++;
        }
        expect(pending, 'a send eventually waits').to.not.equal(undefined);
        expect(resolved).to.be.lessThan(1000);
        session.terminate();
        expect(await rejection(pending as Promise<void>)).to.be.instanceOf(ClosedSendError);
        expect(undelivered).to.deep.equal([resolved]);
      });

      it('idleTimeout fails a silent connection locally with 1006 and a TimeoutError cause', async () => {
        const session = await open('/echo', { idleTimeout: 150 });
        const error = (await rejection(session.incoming.receive())) as WebSocketCloseError;
        expect(error).to.be.instanceOf(WebSocketCloseError);
        expect(error).to.include({ closeCode: 1006, wasClean: false });
        expect(error.cause).to.be.instanceOf(TimeoutError);
        expect(await session.closed).to.deep.equal({
          code: 1006,
          reason: 'Idle timeout: no frame received for 150 ms',
          wasClean: false,
        });
      });

      it('idleTimeout stays quiet while frames keep arriving', async () => {
        const session = await open<number>('/echo', { idleTimeout: 300 });
        for (let i = 0; i < 8; i++) {
          await session.outgoing.send(i);
          expect(await session.incoming.receive()).to.equal(i);
          await sleep(100);
        }
        expect(await session.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      });
    });

    describe('connect()', () => {
      it('resolves with the negotiated subprotocol', async () => {
        const session = await open('/protocol', { protocols: ['p1', 'p2'] });
        expect(session.protocol).to.equal('p1');
        await session.close();
      });

      it('rejects with ConnectError when the connection is refused', async () => {
        const error = await rejection(connect('ws://127.0.0.1:1/', { WebSocket: env.WebSocket }));
        expect(error).to.be.instanceOf(ConnectError);
        expect(error).to.include({ name: 'ConnectError', code: 'ERR_WEBSOCKET_CONNECT' });
        // The message names the URL, and the system error where the runtime gives one.
        const message = (error as ConnectError).message;
        if (env.platform === 'node-ws') {
          expect(message).to.equal(
            'Could not connect to ws://127.0.0.1:1/: connect ECONNREFUSED 127.0.0.1:1',
          );
        } else {
          expect(message).to.match(/^Could not connect to ws:\/\/127\.0\.0\.1:1\/: \S/);
        }
      });

      it('reports a rejected handshake: HandshakeError with ws, ConnectError elsewhere', async () => {
        const error = await rejection(open('/reject?status=403'));
        expect(error).to.be.instanceOf(ConnectError);
        if (!traits.handshakeStatus) {
          expect(error).not.to.be.instanceOf(HandshakeError);
        } else {
          expect(error).to.be.instanceOf(HandshakeError);
          expect(error).to.include({
            name: 'HandshakeError',
            code: 'ERR_WEBSOCKET_HANDSHAKE',
            status: 403,
          });
          expect((error as HandshakeError).headers['x-peer']).to.equal('rejected');
        }
      });

      it('rejects with ConnectError caused by TimeoutError after openTimeout', async () => {
        const error = (await rejection(open('/hang', { openTimeout: 100 }))) as ConnectError;
        expect(error).to.be.instanceOf(ConnectError);
        expect(error.cause).to.be.instanceOf(TimeoutError);
      });

      it('rejects with the abort reason when aborted while connecting, or already aborted', async () => {
        const controller = new AbortController();
        const reason = new Error('stop');
        const connecting = open('/hang', { signal: controller.signal });
        controller.abort(reason);
        expect(await rejection(connecting)).to.equal(reason);
        expect(await rejection(open('/echo', { signal: controller.signal }))).to.equal(reason);
      });

      it('rejects invalid options with TypeError/RangeError before opening anything', async () => {
        expect(await rejection(open('/echo', { incomingCapacity: -1 }))).to.be.instanceOf(
          RangeError,
        );
        expect(await rejection(open('/echo', { highWaterMark: '1' as never }))).to.be.instanceOf(
          TypeError,
        );
        expect(
          await rejection(open('/echo', { incomingOverflow: 'grow' as never })),
        ).to.be.instanceOf(RangeError);
        expect(await rejection(connect(42 as never))).to.be.instanceOf(TypeError);
      });

      it('leaves nothing unhandled when nobody awaits closed', async () => {
        // The peer drops the connection; neither `closed` nor `incoming` is ever looked at.
        await open('/drop?n=1');
        await sleep(100);
      });
    });

    describe('withWebSocket()', () => {
      it('lives as long as the handler: returns its result and closes with 1000 after flushing', async () => {
        const id = newId();
        const result = await withWebSocket<number, number, number>(
          `${env.peerUrl()}/echo?id=${id}`,
          { WebSocket: env.WebSocket },
          async ({ incoming, outgoing }) => {
            await outgoing.send(20);
            await outgoing.send(22);
            void outgoing.send(99); // accepted before return: must still be sent
            return (await incoming.receive()) + (await incoming.receive());
          },
        );
        expect(result).to.equal(42);
        const record = await report(id);
        expect(record.messages.map((m) => m.data)).to.deep.equal(['20', '22', '99']);
        expect(record.close).to.deep.equal({ code: 1000, reason: '' });
      });

      it('rejects with the handler error and closes with 4000', async () => {
        const id = newId();
        const failure = new Error('handler failed');
        let closed: Promise<CloseReason> | undefined;
        const error = await rejection(
          withWebSocket(`${env.peerUrl()}/echo?id=${id}`, { WebSocket: env.WebSocket }, (s) => {
            closed = s.closed;
            throw failure;
          }),
        );
        expect(error).to.equal(failure);
        expect(await closed).to.deep.equal({
          code: 4000,
          reason: 'Application error',
          wasClean: true,
        });
        expect((await report(id)).close).to.deep.equal({ code: 4000, reason: 'Application error' });
      });

      it('on abort cancels the channels with the reason, closes, and rejects with the reason', async () => {
        const id = newId();
        const controller = new AbortController();
        const reason = new Error('aborted');
        let seen: unknown;
        const running = withWebSocket(
          `${env.peerUrl()}/echo?id=${id}`,
          { WebSocket: env.WebSocket, signal: controller.signal },
          async ({ incoming }) => {
            setTimeout(() => controller.abort(reason), 20);
            try {
              await incoming.receive();
            } catch (error) {
              seen = error;
              throw error;
            }
          },
        );
        expect(await rejection(running)).to.equal(reason);
        expect(seen).to.equal(reason);
        expect((await report(id)).close).to.deep.equal({ code: 1000, reason: '' });
      });
    });

    describe('scripted socket states (platform-independent)', () => {
      for (const code of [0, 999, 5000]) {
        it(`reports a close event with code ${code} (Deno gives 0 for a dropped connection) as a lost connection, 1006, after the messages before it`, async () => {
          const socket = new HandSocket();
          const session = handWrap(socket);
          const received: string[] = [];
          const error = rejection(
            (async () => {
              for await (const message of session.incoming) received.push(message);
            })(),
          );
          socket.closed(code, 'ignored', code === 5000);
          const reason = { code: 1006, reason: '', wasClean: false };
          expect(await session.closed).to.deep.equal(reason);
          const thrown = await error;
          expect(thrown).to.be.instanceOf(WebSocketCloseError);
          expect(thrown).to.include({ closeCode: 1006, wasClean: false });
          expect(received).to.deep.equal([]);
        });
      }

      it('an onSend clause run against the parked writer is written before a later send; clauses stay inert and reusable', async () => {
        const socket = new HandSocket();
        const session = handWrap(socket);
        await sleep(1); // the writer parks
        const clause = session.outgoing.onSend('a'); // made, not run: changes nothing
        await session.outgoing.send('x');
        await sleep(1);
        const chosen = select([clause]); // 'a' goes to the parked writer first
        await session.outgoing.send('b');
        await chosen;
        await select([clause]); // the same clause again
        await sleep(1);
        expect(socket.sent).to.deep.equal(['x', 'a', 'b', 'a']);
        socket.closed(1000);
      });

      it('a tight await-send loop to a socket that keeps up lets a timer set before it fire, only while every 256th send waits; all values written once, in order', async () => {
        const socket = new HandSocket(); // takes every frame at once, bufferedAmount stays 0
        const session = handWrap(socket);
        await sleep(1); // the writer parks: every send below takes the direct route
        const timer = { fired: false };
        const handle = setTimeout(() => {
          timer.fired = true;
        }, 0);
        const limit = 256 * 4000; // far beyond a 0 ms timer unless sends never yield
        let sent = 0;
        while (!timer.fired && sent < limit) {
          await session.outgoing.send(String(sent));
          sent++;
        }
        clearTimeout(handle);
        expect(timer.fired, `timer fired within ${String(limit)} sends`).to.equal(true);
        // Sends 1–255 of each 256 resolve without a macrotask: the timer can only have run
        // while a 256th send was waiting.
        expect(sent % 256, `sends before the timer fired: ${String(sent)}`).to.equal(0);
        expect(socket.sent).to.have.length(sent);
        expect(socket.sent.every((data, i) => data === String(i))).to.equal(true);

        // The exact bound, from a yield on: 255 sends resolve with no macrotask between them;
        // the 256th is written at once but resolves only after one, even if aborted meanwhile.
        const second = { fired: false };
        const secondHandle = setTimeout(() => {
          second.fired = true;
        }, 0);
        for (let i = 1; i <= 255; i++) await session.outgoing.send(`b${String(i)}`);
        expect(second.fired, 'a macrotask ran during sends 1–255').to.equal(false);
        const controller = new AbortController();
        let settled = false;
        const last = session.outgoing
          .send('b256', { signal: controller.signal })
          .then(() => (settled = true));
        controller.abort(new Error('too late'));
        expect(socket.sent.at(-1)).to.equal('b256');
        for (let i = 0; i < 20; i++) await Promise.resolve();
        expect(settled, 'send 256 resolved without a macrotask').to.equal(false);
        expect(await last).to.equal(true);
        clearTimeout(secondHandle);
        expect(socket.sent).to.have.length(sent + 256);
        socket.closed(1000);
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      });

      it("a send waiting at the high-water mark when the peer's Close arrives rejects with ClosedSendError, its value undelivered once; later sends get a new ClosedSendError each", async () => {
        const socket = new HandSocket();
        const undelivered: string[] = [];
        const session = handWrap(socket, {
          highWaterMark: 10,
          onUndelivered: (value) => undelivered.push(value),
        });
        await sleep(1);
        socket.bufferedAmount = 100; // at the high-water mark
        await session.outgoing.send('m1'); // written directly
        await session.outgoing.send('m2'); // taken by the writer, which then polls
        let settled = false;
        const waiting = session.outgoing.send('m3').finally(() => {
          settled = true;
        });
        waiting.catch(() => undefined);
        await sleep(5);
        expect(settled, 'm3 waits at the high-water mark').to.equal(false);
        socket.readyState = 2; // the peer's Close arrived; no close event yet
        socket.bufferedAmount = 0;
        const error = await rejection(waiting);
        expect(error).to.be.instanceOf(ClosedSendError);
        expect(undelivered).to.deep.equal(['m3']);
        const later = [
          await rejection(session.outgoing.send('m4')),
          await rejection(session.outgoing.send('m5')),
        ];
        expect(later[0]).to.be.instanceOf(ClosedSendError);
        expect(later[1]).to.be.instanceOf(ClosedSendError);
        expect(later[0]).to.not.equal(later[1]);
        expect(later[0]).to.not.equal(error);
        expect(undelivered).to.deep.equal(['m3', 'm4', 'm5']);
        expect(socket.sent).to.deep.equal(['m1', 'm2']);
        socket.closed(1000);
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      });

      it("a send to the parked writer after the peer's Close arrived rejects with ClosedSendError and is undelivered once", async () => {
        const socket = new HandSocket();
        const undelivered: string[] = [];
        const session = handWrap(socket, { onUndelivered: (value) => undelivered.push(value) });
        await sleep(1); // the writer parks
        socket.readyState = 2;
        expect(await rejection(session.outgoing.send('late'))).to.be.instanceOf(ClosedSendError);
        expect(undelivered).to.deep.equal(['late']);
        expect(socket.sent).to.deep.equal([]);
        socket.closed(1000);
        await session.closed;
      });

      it("a send after the peer's Close arrived rejects with ClosedSendError even when the last direct write reached the high-water mark", async () => {
        // The direct write that reaches the mark closes the direct route; the next send
        // then went to the writer's queue, where the waiting writer took it (and its send
        // resolved) although the socket was no longer open: the value was never written
        // and went to onUndelivered after its send had resolved (as old as the direct
        // route, not from the lazily made queue).
        const socket = new HandSocket();
        const undelivered: string[] = [];
        const session = handWrap(socket, {
          highWaterMark: 10,
          onUndelivered: (value) => undelivered.push(value),
        });
        await sleep(1); // the writer idles
        socket.bufferedAmount = 100;
        await session.outgoing.send('m1'); // written directly, at the high-water mark
        socket.readyState = 2; // the peer's Close arrived; no close event yet
        expect(await rejection(session.outgoing.send('late'))).to.be.instanceOf(ClosedSendError);
        expect(session.outgoing.trySend('later')).to.deep.include({ ok: false, closed: true });
        await sleep(1);
        expect(undelivered).to.deep.equal(['late']);
        expect(socket.sent).to.deep.equal(['m1']);
        socket.closed(1000);
        expect(await session.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      });

      it('after outgoing.close(cause) sends reject with that cause; after close() with a new ClosedSendError each', async () => {
        const failing = new HandSocket();
        const session = handWrap(failing);
        await sleep(1);
        const cause = new Error('app failed');
        expect(session.outgoing.close(cause)).to.equal(true);
        expect(await rejection(session.outgoing.send('late'))).to.equal(cause);
        expect(await session.closed).to.deep.equal({
          code: 4000,
          reason: 'Application error',
          wasClean: true,
        });
        expect(await rejection(session.outgoing.send('later'))).to.equal(cause);
        expect(failing.closeCalls).to.deep.equal([[4000, 'Application error']]);

        for (const end of ['session.close', 'outgoing.close'] as const) {
          const socket = new HandSocket();
          const other = handWrap(socket);
          await sleep(1);
          if (end === 'session.close') void other.close();
          else other.outgoing.close();
          const first = await rejection(other.outgoing.send('1'));
          const second = await rejection(other.outgoing.send('2'));
          expect(first, end).to.be.instanceOf(ClosedSendError);
          expect(second, end).to.be.instanceOf(ClosedSendError);
          expect(first, end).to.not.equal(second);
          await other.closed;
          expect(socket.closeCalls, end).to.deep.equal([[1000, '']]);
        }
      });

      it('withWebSocket: a signal aborted between the open and its listener closes the connection and rejects with the reason; the handler never runs', async () => {
        const controller = new AbortController();
        const reason = new Error('stop');
        const sockets: HandSocket[] = [];
        class OpensThenAborts extends HandSocket {
          constructor() {
            super(0);
            sockets.push(this);
            setTimeout(() => {
              this.open();
              controller.abort(reason); // connect has resolved; withWebSocket not yet listening
            }, 1);
          }
        }
        let ran = false;
        const outcome = withWebSocket(
          'ws://scripted.invalid',
          {
            WebSocket: OpensThenAborts as unknown as WebSocketConstructor,
            signal: controller.signal,
          },
          () => {
            ran = true;
          },
        ).then(
          () => 'resolved',
          (error: unknown) => error,
        );
        let timer: ReturnType<typeof setTimeout> | undefined;
        const result = await Promise.race([
          outcome,
          new Promise((resolve) => {
            timer = setTimeout(() => resolve('still pending'), 2000);
          }),
        ]);
        clearTimeout(timer); // leave no timer behind (later suites count them)
        expect(result).to.equal(reason);
        expect(ran).to.equal(false);
        expect(sockets).to.have.length(1);
        expect(sockets[0]?.closeCalls).to.deep.equal([[1000, '']]);
      });

      it('openTimeout and idleTimeout beyond 2^31 − 1 ms do not fire early', async () => {
        const controller = new AbortController();
        let settled = false;
        let connecting: Promise<unknown> = Promise.resolve();
        const stays = new HandSocket();
        let idleSession: Session<string> | undefined;
        let idleEnded = false;
        const overlong = await overlongTimers(async () => {
          connecting = connect('ws://scripted.invalid', {
            WebSocket: class extends HandSocket {
              constructor() {
                super(0); // never opens
              }
            } as unknown as WebSocketConstructor,
            openTimeout: 2 ** 32,
            signal: controller.signal,
          }).finally(() => {
            settled = true;
          });
          connecting.catch(() => undefined);
          idleSession = handWrap(stays, { idleTimeout: 2 ** 32 });
          void idleSession.closed.then(() => {
            idleEnded = true;
          });
          await sleep(30);
        });
        expect(overlong, 'setTimeout calls beyond 2^31 − 1 ms').to.equal(0);
        expect(settled, 'connect still waiting to open').to.equal(false);
        expect(idleEnded, 'idle connection still open').to.equal(false);
        const reason = new Error('done');
        controller.abort(reason);
        expect(await rejection(connecting)).to.equal(reason);
        idleSession?.terminate();
        expect(await idleSession?.closed).to.deep.equal({
          code: 1006,
          reason: '',
          wasClean: false,
        });
      });
    });
  });
}
