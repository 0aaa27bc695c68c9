// `incomingMaxBytes`: what a session holds for `incoming` is bounded in bytes as well as
// in messages, and a session paused for back-pressure reads again for the heartbeat's
// pong. Driven by hand on a pausable in-memory socket, so every step is exact.
import { expect } from 'chai';
import { IncomingOverflowError } from '../../lib/errors.js';
import { binary, text, wrap } from '../../lib/websocket/index.js';
import type { Session, SessionOptions } from '../../lib/websocket/index.js';
import { SocketSession } from '../../lib/websocket/session.js';

type Listener = (event: unknown) => void;

/** An open socket with `ws`'s extras: pause/resume (counted) and ping/pong events. */
class PausableSocket {
  binaryType = 'blob';
  protocol = '';
  bufferedAmount = 0;
  readyState = 1;
  isPaused = false;
  pauses = 0;
  resumes = 0;
  readonly closeCalls: [number | undefined, string | undefined][] = [];
  readonly #listeners = new Map<string, Set<Listener>>();

  send(): void {
    // Taken at once.
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push([code, reason]);
    if (this.readyState >= 2) return;
    this.readyState = 2;
    setTimeout(() => {
      this.readyState = 3;
      this.#emit('close', { code: code ?? 1005, reason: reason ?? '', wasClean: true });
    }, 0);
  }

  pause(): void {
    this.isPaused = true;
    this.pauses++;
  }

  resume(): void {
    this.isPaused = false;
    this.resumes++;
  }

  /** A message as the socket would deliver it (also while paused: `ws` does so). */
  deliver(data: unknown): void {
    this.#emit('message', { data });
  }

  pong(): void {
    this.#emit('pong', undefined);
  }

  listeners(type: string): number {
    return this.#listeners.get(type)?.size ?? 0;
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  on(type: string, listener: Listener): void {
    this.addEventListener(type, listener);
  }

  off(type: string, listener: Listener): void {
    this.removeEventListener(type, listener);
  }

  #emit(type: string, event: unknown): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) listener(event);
  }
}

function open(
  options: SessionOptions<string, string> = {},
): [PausableSocket, SocketSession<string, string>] {
  const socket = new PausableSocket();
  const session = new SocketSession<string, string>(socket as never, { codec: text(), ...options });
  return [socket, session];
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const chars = (c: string, n: number): string => c.repeat(n);

async function drain(session: Session<string>): Promise<{ got: string[]; error: unknown }> {
  const got: string[] = [];
  try {
    for await (const message of session.incoming) got.push(message);
    return { got, error: undefined };
  } catch (error) {
    return { got, error };
  }
}

describe('Session incomingMaxBytes', () => {
  it('pauses reading once the bytes held reach half the bound, and resumes under half', async () => {
    const [socket, session] = open({ incomingMaxBytes: 100 });
    socket.deliver(chars('a', 30));
    expect(socket.pauses).to.equal(0);
    socket.deliver(chars('b', 20)); // 50 bytes held: half
    expect([socket.pauses, socket.isPaused]).to.deep.equal([1, true]);
    expect(await session.incoming.receive()).to.equal(chars('a', 30)); // 20 held
    // Reading resumes at the session's next read turn (read-turns.ts): after a macrotask.
    expect([socket.resumes, socket.isPaused]).to.deep.equal([0, true]);
    await tick();
    expect([socket.resumes, socket.isPaused]).to.deep.equal([1, false]);
    session.terminate();
  });

  it('holds what arrives after the pause up to the bound, then fails with 1009 and IncomingOverflowError', async () => {
    const [socket, session] = open({ incomingMaxBytes: 100 });
    for (const c of 'abc') socket.deliver(chars(c, 30)); // 90 held: paused at 60
    expect(socket.pauses).to.equal(1);
    socket.deliver(chars('d', 11)); // 101 > 100
    socket.deliver(chars('e', 1)); // ignored: the connection is failing
    await tick();
    expect(socket.closeCalls).to.deep.equal([[1009, 'Incoming buffer overflow']]);
    const { got, error } = await drain(session);
    expect(got).to.deep.equal([chars('a', 30), chars('b', 30), chars('c', 30)]);
    expect(error).to.be.instanceOf(IncomingOverflowError);
    expect(error).to.include({
      code: 'ERR_WEBSOCKET_INCOMING_OVERFLOW',
      capacity: 1024,
      maxBytes: 100,
      message: 'More bytes arrived than incoming may hold (incomingMaxBytes 100)',
    });
    await session.closed;
  });

  it('counts what the backlog holds too (rendezvous incoming: everything waits there)', async () => {
    const [socket, session] = open({ incomingMaxBytes: 100, incomingCapacity: 0 });
    socket.deliver(chars('a', 40));
    expect(socket.pauses).to.equal(1); // count: nobody receives
    socket.deliver(chars('b', 40));
    socket.deliver(chars('c', 40)); // 120 > 100
    await tick();
    expect(socket.closeCalls).to.deep.equal([[1009, 'Incoming buffer overflow']]);
    const { got, error } = await drain(session);
    expect(got).to.deep.equal([chars('a', 40), chars('b', 40)]);
    expect((error as IncomingOverflowError).maxBytes).to.equal(100);
    await session.closed;
  });

  it('counts binary frames by their bytes', async () => {
    const socket = new PausableSocket();
    const session = wrap(socket as never, { codec: binary(), incomingMaxBytes: 100 });
    socket.deliver(new Uint8Array(49).buffer);
    expect(socket.pauses).to.equal(0);
    socket.deliver(new Uint8Array(1).buffer);
    expect(socket.pauses).to.equal(1);
    session.terminate();
  });

  it('lets one message bigger than the bound through when nothing else is held', async () => {
    const [socket, session] = open({ incomingMaxBytes: 100 });
    socket.deliver(chars('x', 500));
    await tick();
    expect(socket.closeCalls).to.deep.equal([]);
    expect(await session.incoming.receive()).to.equal(chars('x', 500));
    socket.deliver(chars('y', 10));
    expect(await session.incoming.receive()).to.equal(chars('y', 10));
    expect(socket.closeCalls).to.deep.equal([]);
    session.terminate();
  });

  it("with 'close', never pauses and fails past the bound", async () => {
    const [socket, session] = open({ incomingMaxBytes: 100, incomingOverflow: 'close' });
    for (const c of 'abc') socket.deliver(chars(c, 30));
    expect(socket.pauses).to.equal(0);
    socket.deliver(chars('d', 30));
    await tick();
    expect(socket.closeCalls).to.deep.equal([[1009, 'Incoming buffer overflow']]);
    const { got } = await drain(session);
    expect(got).to.have.length(3);
  });

  it("with 'drop-oldest', drops the oldest messages to make room", async () => {
    const [socket, session] = open({ incomingMaxBytes: 100, incomingOverflow: 'drop-oldest' });
    for (const c of 'abcd') socket.deliver(chars(c, 40));
    void session.close();
    const { got, error } = await drain(session);
    expect([got, error]).to.deep.equal([[chars('c', 40), chars('d', 40)], undefined]);
    expect(socket.pauses).to.equal(0);
  });

  it("with 'drop-latest', drops the arriving message", async () => {
    const [socket, session] = open({ incomingMaxBytes: 100, incomingOverflow: 'drop-latest' });
    for (const c of 'abcd') socket.deliver(chars(c, 40));
    socket.deliver(chars('e', 20));
    void session.close();
    const { got, error } = await drain(session);
    expect([got, error]).to.deep.equal([
      [chars('a', 40), chars('b', 40), chars('e', 20)],
      undefined,
    ]);
  });

  it('counts messages still being decoded (asynchronous codec)', async () => {
    const asyncText = { ...text(), decode: (data: unknown) => Promise.resolve(data as string) };
    const [socket, session] = open({ incomingMaxBytes: 100, codec: asyncText });
    socket.deliver(chars('a', 60));
    socket.deliver(chars('b', 60)); // 120 > 100 while the first is still decoding
    await tick();
    expect(socket.closeCalls).to.deep.equal([[1009, 'Incoming buffer overflow']]);
    const { got, error } = await drain(session);
    expect(got).to.deep.equal([chars('a', 60)]);
    expect((error as IncomingOverflowError).maxBytes).to.equal(100);
    await session.closed;
  });

  it('with a drop policy and an asynchronous codec, drops by bytes in order', async () => {
    const asyncText = { ...text(), decode: (data: unknown) => Promise.resolve(data as string) };
    const [socket, session] = open({
      incomingMaxBytes: 100,
      incomingOverflow: 'drop-latest',
      codec: asyncText,
    });
    for (const c of 'abc') socket.deliver(chars(c, 40)); // c: 120 > 100, dropped
    await tick();
    socket.deliver(chars('d', 20));
    void session.close();
    const { got, error } = await drain(session);
    expect([got, error]).to.deep.equal([
      [chars('a', 40), chars('b', 40), chars('d', 20)],
      undefined,
    ]);
  });

  it("with 'drop-oldest' and a full count, keeps the sizes of what the buffer holds", async () => {
    const [socket, session] = open({
      incomingMaxBytes: 100,
      incomingCapacity: 2,
      incomingOverflow: 'drop-oldest',
    });
    for (const c of 'abc') socket.deliver(chars(c, 10)); // a dropped by count: 20 held
    socket.deliver(chars('d', 80)); // b dropped by count: c and d, 90 held
    socket.deliver(chars('e', 10)); // c dropped by count: 90 held, nothing by bytes
    void session.close();
    const { got } = await drain(session);
    expect(got).to.deep.equal([chars('d', 80), chars('e', 10)]);
  });

  it('keeps counting right when receivers take messages as they arrive', async () => {
    const [socket, session] = open({ incomingMaxBytes: 100, incomingCapacity: 4 });
    const got: string[] = [];
    const reading = (async () => {
      for await (const message of session.incoming) got.push(message);
    })();
    for (let i = 0; i < 50; i++) {
      socket.deliver(chars(String(i % 10), 40));
      await tick();
    }
    expect(socket.pauses).to.equal(0);
    expect(got).to.have.length(50);
    void session.close();
    await reading;
  });

  it('rejects a bound that is not a positive integer or Infinity', () => {
    for (const [value, kind] of [
      [0, RangeError],
      [1.5, RangeError],
      [-1, RangeError],
      ['1', TypeError],
    ] as const) {
      expect(() => open({ incomingMaxBytes: value as never }))
        .to.throw(kind)
        .with.property('message')
        .that.matches(/^Expected incomingMaxBytes to be a positive integer or Infinity, got /);
    }
  });
});

describe('Session paused for back-pressure, pinged by the heartbeat', () => {
  const pausedSession = (): [PausableSocket, SocketSession<string, string>] => {
    const pair = open({ incomingMaxBytes: 800, incomingCapacity: 1 });
    pair[0].deliver('a');
    pair[0].deliver('b'); // incoming full: paused
    expect(pair[0].isPaused).to.equal(true);
    return pair;
  };

  it('reads again (at its next read turn) until the pong arrives, then pauses again; unreadUntil tells', async () => {
    const [socket, session] = pausedSession();
    expect(session.unreadUntil).to.equal(Infinity);
    const before = performance.now();
    session.pinged();
    // The wait for the read turn counts against the peer: unreadUntil is the ping's time.
    expect([socket.isPaused, socket.listeners('pong')]).to.deep.equal([true, 1]);
    const pinged = session.unreadUntil;
    expect(pinged).to.be.within(before, performance.now());
    await tick();
    expect([socket.isPaused, socket.listeners('pong')]).to.deep.equal([false, 1]);
    expect(session.unreadUntil).to.equal(pinged);
    socket.deliver('c'); // held while reading for the pong
    socket.pong();
    expect([socket.isPaused, socket.listeners('pong')]).to.deep.equal([true, 0]);
    expect(session.unreadUntil).to.equal(Infinity);
    session.terminate();
  });

  it('pauses again without the pong once the bytes held reach five eighths of the bound', async () => {
    const [socket, session] = pausedSession();
    session.pinged();
    await tick();
    socket.deliver(chars('c', 400)); // 402 held
    expect(socket.isPaused).to.equal(false);
    socket.deliver(chars('d', 98)); // 500 = 5/8 of 800
    expect([socket.isPaused, session.unreadUntil]).to.deep.equal([true, Infinity]);
    session.pinged(); // no room left to read for a pong
    expect(socket.isPaused).to.equal(true);
    session.terminate();
  });

  it('does nothing for a session that is reading', () => {
    const [socket, session] = open();
    session.pinged();
    expect([socket.resumes, socket.listeners('pong')]).to.deep.equal([0, 0]);
    expect(session.unreadUntil).to.equal(-Infinity);
    session.terminate();
  });

  it('stops reading for the pong when the consumer makes room (reading resumes for good)', async () => {
    const [socket, session] = pausedSession();
    session.pinged();
    expect(await session.incoming.receive()).to.equal('a');
    await tick();
    expect(await session.incoming.receive()).to.equal('b');
    await tick();
    expect([socket.isPaused, socket.listeners('pong')]).to.deep.equal([false, 0]);
    expect(session.unreadUntil).to.be.below(Infinity);
    session.terminate();
  });
});
