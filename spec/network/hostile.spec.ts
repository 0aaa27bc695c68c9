// Network channels against a hostile peer (issue 12): the peer must not set this end's
// memory nor starve its event loop. A peer that announces an unlimited capacity while the
// application loops `await send` is attacked over real `ws` sockets against a sluice
// server in a child process (a hang there shows as missing timer ticks, and the test kills
// it by its PID); the bounds themselves — maxInFlight, the session's back-pressure, the
// macrotask yield, name and cause lengths — are pinned exactly in process.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WebSocket from 'ws';
import type { RawData } from 'ws';
import { MemorySocket } from '../../lib/server/memory-socket.js';
import { BATCH_CHARS } from '../../lib/network/channels.js';
import { connect, text, wrap } from '../../lib/websocket/index.js';
import { RemoteError, channels } from '../../lib/network/index.js';
import type { MessageEventLike, Session } from '../../lib/websocket/index.js';
import type { ChannelSession, ChannelSessionOptions } from '../../lib/network/index.js';
import { rejection } from '../server/helpers.js';

/** One report of the child server: see hostile-server.ts. `at`: when it arrived here. */
interface Tick {
  readonly late: number;
  readonly heap: number;
  readonly sent: number;
  readonly at: number;
}

interface Child {
  readonly url: string;
  readonly ticks: Tick[];
  stop(): Promise<void>;
}

/** The longest close cause or cancel reason, in characters of JSON (docs/protocol.md section 6). */
const MAX_CAUSE_LENGTH = 4096;
const SERVER = fileURLToPath(new URL('./hostile-server.ts', import.meta.url));
/** How long each attack runs, in ms. */
const ATTACK = 1500;
/** The latest a 50 ms timer of the attacked server may fire (generous: 2 shared cores). */
const MAX_LATE = 300;
/** How much the attacked server's heap may grow (after gc) during an attack. */
const MAX_HEAP_GROWTH = 32 * 1024 * 1024;

/** `promise`, or a rejection naming `what` after `ms`: a starved server must fail a test, not hang it. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`${what}: nothing within ${String(ms)} ms (is the server starved?)`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function startChild(): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ticks: Tick[] = [];
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit');
  const port = await new Promise<number>((resolve, reject) => {
    lines.on('line', (line) => {
      const data = JSON.parse(line) as { port?: number; late: number; heap: number; sent: number };
      if (data.port !== undefined) resolve(data.port);
      else ticks.push({ late: data.late, heap: data.heap, sent: data.sent, at: performance.now() });
    });
    child.once('exit', (code) => {
      reject(new Error(`The server exited with ${String(code)} before it listened`));
    });
  });
  return {
    url: `ws://127.0.0.1:${String(port)}`,
    ticks,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      lines.close();
    },
  };
}

/**
 * A raw client of `/feed` that opens 'feed' with an unlimited capacity (`null`) and reads
 * every value; it acknowledges each message's values when `ack`, and stops reading (the
 * socket is paused: TCP pushes back) after `pauseAfter` values.
 */
async function attack(
  url: string,
  { ack, pauseAfter = Infinity }: { ack: boolean; pauseAfter?: number },
): Promise<{ values: () => number; paused: Promise<void>; stop: () => Promise<void> }> {
  const socket = new WebSocket(url);
  // A server killed at the end may reset the connection: the close event says enough.
  socket.on('error', () => undefined);
  let values = 0;
  let resolvePaused: () => void = () => undefined;
  const paused = new Promise<void>((resolve) => {
    resolvePaused = resolve;
  });
  socket.on('message', (data: RawData) => {
    for (const frame of (data as Buffer).toString().split('\n')) {
      if (frame.startsWith('["v",0,')) values++;
    }
    if (ack) socket.send(`["ack",0,${String(values)}]`);
    if (values >= pauseAfter && !socket.isPaused) {
      socket.pause();
      resolvePaused();
    }
  });
  // Not `once(socket, 'close')`, which rejects on an 'error' event (the reset of a killed
  // server) that nobody may be waiting for when a test failed before `stop`.
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => {
      resolve();
    });
  });
  // At once on open: `ws` may emit the server's first message in the same turn, and the
  // acks it triggers must follow the hello.
  socket.once('open', () => {
    socket.send('["sluice",1]');
    socket.send('["open",0,"feed",null]');
  });
  await within(3000, 'the attack connection', once(socket, 'open'));
  return {
    values: () => values,
    paused,
    stop: async () => {
      socket.terminate();
      await closed;
    },
  };
}

/** A sluice client of `/echo`: resolves with the value echoed, or rejects after `ms`. */
async function echoed(url: string, value: string, ms: number): Promise<string> {
  const connecting = connect<string, string>(`${url}/echo`, { codec: text() });
  let session: Session<string, string>;
  try {
    session = await within(ms, 'the echo connection', connecting);
  } catch (error) {
    // The server is starved: the attempt ends when the test kills it.
    connecting.then(
      (late) => {
        late.terminate();
      },
      () => undefined,
    );
    throw error;
  }
  const net = channels(session);
  const echo = net.channel<string>('echo');
  try {
    return await within(
      ms,
      'the echo',
      (async () => {
        await echo.outgoing.send(value);
        return echo.incoming.receive();
      })(),
    );
  } finally {
    session.terminate();
    await net.closed;
  }
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** A raw `ws` client of `/echo`, and how it was closed; closed for good by `after`. */
async function rawEcho(
  url: string,
): Promise<{ socket: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const socket = new WebSocket(`${url}/echo`);
  socket.on('error', () => undefined);
  raws.push(socket);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code: number, reason: Buffer) => {
      resolve({ code, reason: reason.toString() });
    });
  });
  await within(3000, 'the connection', once(socket, 'open'));
  return { socket, closed };
}
const raws: WebSocket[] = [];

/** What the attacked server reported during an attack: its timers' lateness, its heap. */
function during(ticks: readonly Tick[], from: number, to: number): Tick[] {
  return ticks.filter((tick) => tick.at >= from && tick.at <= to);
}

function heapBefore(ticks: readonly Tick[], from: number): number {
  const before = ticks.filter((tick) => tick.at < from).slice(-5);
  expect(before.length, 'ticks before the attack').to.be.greaterThan(0);
  return Math.min(...before.map((tick) => tick.heap));
}

describe('network channels against a hostile peer', function () {
  this.timeout(30_000);

  describe('a peer announcing an unlimited capacity, the server looping `await send`', () => {
    let child: Child;

    before(async () => {
      child = await startChild();
      // Let the child settle (compilation, first gc) before measuring.
      while (child.ticks.length < 5) await sleep(50);
    });

    after(async () => {
      for (const socket of raws.splice(0)) socket.terminate();
      await child.stop();
    });

    it('keeps the timers on time, the heap bounded and other connections served while the peer reads and acknowledges everything', async () => {
      const from = performance.now();
      const heap = heapBefore(child.ticks, from);
      const peer = await attack(`${child.url}/feed`, { ack: true });
      await sleep(ATTACK / 2);
      expect(await echoed(child.url, 'during', 3000)).to.equal('during');
      await sleep(ATTACK / 2);
      const to = performance.now();
      const values = peer.values();
      await peer.stop();
      expect(await echoed(child.url, 'after', 3000)).to.equal('after');
      const ticks = during(child.ticks, from, to);
      // A 50 ms timer: about ATTACK / 50 ticks; a starved loop gives none.
      expect(ticks.length, 'timer ticks during the attack').to.be.at.least(ATTACK / 50 / 3);
      expect(Math.max(...ticks.map((tick) => tick.late)), 'ms late').to.be.at.most(MAX_LATE);
      expect(Math.max(...ticks.map((tick) => tick.heap)) - heap, 'heap growth').to.be.below(
        MAX_HEAP_GROWTH,
      );
      // The feed did run past maxInFlight (1024): it is only kept in bounds, not stopped.
      expect(values).to.be.greaterThan(2 * 1024);
    });

    it('stops sending at maxInFlight (1024 by default) while the peer acknowledges nothing', async () => {
      const from = performance.now();
      const peer = await attack(`${child.url}/feed`, { ack: false });
      await sleep(ATTACK);
      const to = performance.now();
      const values = peer.values();
      const ticks = during(child.ticks, from, to);
      await peer.stop();
      expect(values).to.equal(1024);
      expect(ticks.at(-1)?.sent).to.equal(1024);
      expect(ticks.length, 'timer ticks during the attack').to.be.at.least(ATTACK / 50 / 3);
      expect(Math.max(...ticks.map((tick) => tick.late)), 'ms late').to.be.at.most(MAX_LATE);
    });

    it('waits for the session when the peer stops reading, with no maxInFlight (back-pressure reaches send)', async () => {
      const from = performance.now();
      const heap = heapBefore(child.ticks, from);
      const peer = await attack(`${child.url}/feed?inflight=Infinity&retain=no`, {
        ack: true,
        pauseAfter: 2000,
      });
      await within(3000, 'the first 2000 values', peer.paused);
      // The socket buffers fill first (the kernel's, which grow for a while, then the
      // session's up to its high-water mark); then the sends wait.
      let stalled = -1;
      for (const deadline = performance.now() + 10_000; performance.now() < deadline;) {
        const before = child.ticks.at(-1)?.sent;
        await sleep(300);
        if (child.ticks.at(-1)?.sent === before) {
          stalled = before ?? -1;
          break;
        }
      }
      await sleep(ATTACK / 3);
      const to = performance.now();
      const ticks = during(child.ticks, from, to);
      expect(await echoed(child.url, 'paused', 3000)).to.equal('paused');
      await peer.stop();
      expect(stalled, 'values sent when they stopped').to.be.greaterThan(0);
      expect(ticks.at(-1)?.sent, 'values sent while the peer does not read').to.equal(stalled);
      expect(ticks.length, 'timer ticks during the attack').to.be.at.least(ATTACK / 50 / 3);
      expect(Math.max(...ticks.map((tick) => tick.late)), 'ms late').to.be.at.most(MAX_LATE);
      expect(Math.max(...ticks.map((tick) => tick.heap)) - heap, 'heap growth').to.be.below(
        MAX_HEAP_GROWTH,
      );
    });

    it('closes with 1002 a connection whose peer opens a name longer than maxNameLength, and only that one', async () => {
      const { socket, closed } = await rawEcho(child.url);
      socket.send('["sluice",1]');
      socket.send(`["open",0,"${'n'.repeat(256)}",1]`);
      socket.send(`["open",1,"${'n'.repeat(257)}",1]`);
      expect(await within(3000, 'the close', closed)).to.deep.equal({
        code: 1002,
        reason: 'Received an open of a name of 257 characters, beyond maxNameLength (256)',
      });
      expect(await echoed(child.url, 'still', 3000)).to.equal('still');
    });

    it('closes with 1002 a connection whose peer sends a close cause longer than 4096 characters of JSON', async () => {
      const { socket, closed } = await rawEcho(child.url);
      socket.send('["sluice",1]');
      // {"value":"…"} is 12 characters of JSON around the string.
      socket.send(`["close",0,{"value":"${'c'.repeat(MAX_CAUSE_LENGTH - 12)}"}]`);
      socket.send(`["open",0,"echo",1]`);
      socket.send(`["close",0,{"value":"${'c'.repeat(MAX_CAUSE_LENGTH - 11)}"}]`);
      expect(await within(3000, 'the close', closed)).to.deep.equal({
        code: 1002,
        reason: "Received a close cause for channel 'echo' longer than 4096 characters of JSON",
      });
      expect(await echoed(child.url, 'still', 3000)).to.equal('still');
    });
  });

  describe('in process', () => {
    /** A channel session on one end of an in-memory pair; the test speaks for the other. */
    function rawPeer(
      options: ChannelSessionOptions = {},
      highWaterMark?: number,
    ): {
      net: ChannelSession;
      left: MemorySocket;
      right: MemorySocket;
      frames: string[];
      send: (...frames: string[]) => void;
    } {
      const [left, right] = MemorySocket.pair();
      const session = wrap<string, string>(left, {
        codec: text(),
        ...(highWaterMark === undefined ? {} : { highWaterMark }),
      });
      const net = channels(session, options);
      const frames: string[] = [];
      right.addEventListener('message', (event: MessageEventLike) => {
        const arrived = String(event.data).split('\n');
        frames.push(...arrived);
        if (arrived.includes('["bye"]')) right.send('["bye"]');
      });
      const send = (...sent: string[]): void => {
        for (const frame of sent) right.send(frame);
      };
      return { net, left, right, frames, send };
    }

    /** Lets the in-memory sockets deliver (each delivery is one macrotask). */
    async function turns(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        await new Promise((resolve) => {
          setImmediate(resolve);
        });
      }
    }

    describe('maxInFlight', () => {
      it('lets at most maxInFlight values leave a channel the peer announced unlimited, more as acks arrive', async () => {
        const { net, frames, send } = rawPeer();
        send('["sluice",1]', '["open",0,"x",null]');
        const x = net.channel<number>('x', { maxInFlight: 3 });
        const sends = [1, 2, 3, 4, 5].map((n) => x.outgoing.send(n));
        const settled: number[] = [];
        sends.forEach((promise, index) => {
          void promise.then(() => settled.push(index + 1));
        });
        await turns(5);
        expect(frames.slice(1)).to.deep.equal([
          '["open",0,"x",0]',
          '["v",0,1]',
          '["v",0,2]',
          '["v",0,3]',
        ]);
        expect(settled).to.deep.equal([1, 2, 3]);
        expect(x.outgoing.trySend(6)).to.deep.equal({ ok: false, closed: false });
        send('["ack",0,2]');
        await turns(5);
        expect(frames.slice(5)).to.deep.equal(['["v",0,4]', '["v",0,5]']);
        expect(settled).to.deep.equal([1, 2, 3, 4, 5]);
        await net.close();
      });

      it('caps the window of a buffered peer, and takes the session default (1024) and a channel override', async () => {
        const { net, frames, send } = rawPeer({ maxInFlight: 2 });
        send('["sluice",1]', '["open",0,"x",100]', '["open",1,"y",100]', '["open",2,"z",null]');
        const x = net.channel<number>('x');
        const y = net.channel<number>('y', { maxInFlight: 4 });
        for (let n = 0; n < 6; n++) {
          // They end with the connection (ConnectionLostError): nothing to see there.
          x.outgoing.send(n).catch(() => undefined);
          y.outgoing.send(n).catch(() => undefined);
        }
        await turns(5);
        expect(frames.filter((frame) => frame.startsWith('["v",0,'))).to.have.length(2);
        expect(frames.filter((frame) => frame.startsWith('["v",1,'))).to.have.length(4);
        await net.close();
        const other = rawPeer();
        other.send('["sluice",1]', '["open",0,"z",null]');
        const z = other.net.channel<number>('z', { onUndelivered: () => undefined });
        await turns(2);
        const accepted = [];
        for (let n = 0; n < 1100; n++) accepted.push(z.outgoing.trySend(n).ok);
        await turns(2);
        expect(accepted.indexOf(false)).to.equal(1024);
        expect(other.frames.filter((frame) => frame.startsWith('["v",0,'))).to.have.length(1024);
        await other.net.close();
      });

      it('bounds a rendezvous peer that grants more than maxInFlight', async () => {
        const { net, frames, send } = rawPeer();
        send('["sluice",1]', '["open",0,"r",0]', '["pull",0,1000]');
        const r = net.channel<number>('r', { maxInFlight: 2 });
        const sends = [1, 2, 3].map((n) => r.outgoing.send(n));
        await turns(5);
        expect(frames.filter((frame) => frame.startsWith('["v",0,'))).to.deep.equal([
          '["v",0,1]',
          '["v",0,2]',
        ]);
        send('["ack",0,1]');
        await sends[0];
        await turns(5);
        expect(frames.filter((frame) => frame.startsWith('["v",0,'))).to.have.length(3);
        send('["ack",0,3]');
        await Promise.all(sends);
        await net.close();
      });

      it('rejects a maxInFlight that is not a positive integer or Infinity', () => {
        const { net } = rawPeer();
        expect(() => net.channel('a', { maxInFlight: 0 })).to.throw(
          RangeError,
          'Expected maxInFlight to be a positive integer, Infinity or undefined, got 0',
        );
        expect(() => net.channel('b', { maxInFlight: '8' as never })).to.throw(
          TypeError,
          "Expected maxInFlight to be a positive integer, Infinity or undefined, got '8' (string)",
        );
        const [left] = MemorySocket.pair();
        const session = wrap<string, string>(left, { codec: text() });
        expect(() => channels(session, { maxInFlight: 1.5 })).to.throw(
          RangeError,
          'Expected maxInFlight to be a positive integer, Infinity or undefined, got 1.5',
        );
        expect(() => channels(session, { maxNameLength: Infinity })).to.throw(
          RangeError,
          'Expected maxNameLength to be a positive integer or undefined, got Infinity',
        );
        session.terminate();
        net.close().catch(() => undefined);
      });
    });

    it('resolves every 256th send that did not wait only after a macrotask', async () => {
      const { net, send } = rawPeer({ maxInFlight: Infinity });
      send('["sluice",1]', '["open",0,"x",null]');
      const x = net.channel<number>('x');
      await turns(2);
      let resolved = 0;
      let atImmediate = -1;
      setImmediate(() => {
        atImmediate = resolved;
      });
      for (let n = 0; n < 600; n++) {
        await x.outgoing.send(n);
        resolved++;
      }
      expect(atImmediate).to.equal(255);
      await net.close();
    });

    it('stops the values at the session high-water mark until the peer reads again, losing none', async () => {
      const highWaterMark = 4096;
      const { net, left, right, frames, send } = rawPeer({ maxInFlight: Infinity }, highWaterMark);
      send('["sluice",1]', '["open",0,"x",null]');
      const x = net.channel<string>('x');
      await turns(2);
      right.pause();
      const total = 3000;
      let resolved = 0;
      const loop = (async () => {
        for (let n = 0; n < total; n++) {
          await x.outgoing.send(`${'p'.repeat(90)}${String(n).padStart(10, '0')}`);
          resolved++;
        }
      })();
      await turns(20);
      const stalled = resolved;
      await turns(20);
      expect(resolved, 'sends resolved while the peer does not read').to.equal(stalled);
      expect(stalled).to.be.below(total / 2);
      // The session holds at most a high-water mark and one batch more.
      expect(left.bufferedAmount).to.be.at.most(highWaterMark + 2 * BATCH_CHARS);
      right.resume();
      await loop;
      await turns(5);
      const values = frames.filter((frame) => frame.startsWith('["v",0,'));
      expect(values).to.have.length(total);
      expect(values.map((frame) => Number(frame.slice(-12, -2)))).to.deep.equal(
        Array.from({ length: total }, (_, n) => n),
      );
      await net.close();
    });

    it('sends the pending frames and the bye when closed while congested, every resolved send delivered', async () => {
      const { net, right, frames, send } = rawPeer({ maxInFlight: Infinity }, 1024);
      send('["sluice",1]', '["open",0,"x",null]');
      const x = net.channel<string>('x');
      await turns(2);
      right.pause();
      let resolved = 0;
      const loop = (async () => {
        for (;;) {
          await x.outgoing.send('q'.repeat(100));
          resolved++;
        }
      })();
      await turns(10);
      const closing = net.close();
      right.resume();
      expect(await rejection(loop)).to.have.property('name', 'ConnectionLostError');
      await closing;
      const values = frames.filter((frame) => frame.startsWith('["v",0,'));
      expect(values).to.have.length(resolved);
      expect(frames.at(-1)).to.equal('["bye"]');
    });

    describe('names', () => {
      it('throws a RangeError for a name longer than maxNameLength, and takes one that long', () => {
        const { net } = rawPeer({ maxNameLength: 8 });
        expect(() => net.channel('123456789')).to.throw(
          RangeError,
          'Expected name to be at most 8 characters long (maxNameLength), got one of 9',
        );
        expect(net.channel('12345678').name).to.equal('12345678');
        const other = rawPeer();
        expect(() => other.net.channel('n'.repeat(257))).to.throw(
          RangeError,
          'Expected name to be at most 256 characters long (maxNameLength), got one of 257',
        );
        void net.close();
        void other.net.close();
      });
    });

    describe('causes', () => {
      it('cuts an error cause too long to send, and replaces a JSON value too long by an Error', async () => {
        const [left, right] = MemorySocket.pair();
        const one = channels(wrap<string, string>(left, { codec: text() }));
        const two = channels(wrap<string, string>(right, { codec: text() }));
        const p = one.channel<string>('p');
        const q = one.channel<string>('q');
        const r = one.channel<string>('r');
        const p2 = two.channel<string>('p');
        const q2 = two.channel<string>('q');
        const r2 = two.channel<string>('r');
        const error = new TypeError('m'.repeat(10_000));
        Object.assign(error, { code: 'C'.repeat(1000) });
        p.outgoing.close(error);
        q.outgoing.close('v'.repeat(5000));
        r2.incoming.cancel(new RangeError('short'));
        const received = await rejection(p2.incoming.receive());
        expect(received).to.be.instanceOf(TypeError);
        const overhead = JSON.stringify({
          error: { name: 'TypeError', message: '', code: `${'C'.repeat(255)}…` },
        }).length;
        // Compared by length and shape: a failing diff of 4,000 characters helps nobody.
        const message = (received as Error).message;
        expect(message.length).to.equal(MAX_CAUSE_LENGTH - overhead - 1);
        expect(message).to.match(/^m+…$/);
        expect(Reflect.get(received as Error, 'code')).to.equal(`${'C'.repeat(255)}…`);
        const value = await rejection(q2.incoming.receive());
        expect(value).to.be.instanceOf(Error);
        expect((value as Error).message).to.equal(
          'The peer closed with a cause too long to send (5012 characters of JSON, at most 4096)',
        );
        const cancelled = await rejection(r.outgoing.send('x'));
        expect(cancelled).to.be.instanceOf(RangeError);
        expect(cancelled).not.to.be.instanceOf(RemoteError);
        await Promise.all([one.close(), two.closed]);
      });
    });
  });
});
