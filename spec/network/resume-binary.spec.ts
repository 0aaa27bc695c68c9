/**
 * Resume (protocol version 4) and binary values (version 3) together: a binary message is
 * a frame of the resume layer like any other — numbered, kept in the replay log (its
 * bytes counted toward `maxReplayBytes`), replayed in order on a resume, and counted by
 * the receiver (docs/protocol.md sections 8 and 12).
 */
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import {
  ConnectionLostError,
  channelEndpoint,
  contract,
  toClient,
  toServer,
} from '../../lib/network/index.js';
import { serve } from '../../lib/server/index.js';
import type { Server } from '../../lib/server/index.js';
import { startCutProxy } from './cut-proxy.js';
import type { CutProxy } from './cut-proxy.js';

const FAST = { minDelay: 5, maxDelay: 5, jitter: 0, minUptime: 0 } as const;
const SIZE = 64 * 1024;

/** 64 KiB whose every byte depends on `index` and the direction (LFs included). */
function bytesOf(index: number, salt: number): Uint8Array {
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) bytes[i] = (i * 31 + index * 7 + salt) & 0xff;
  return bytes;
}

/** The index a value of {@link bytesOf} was made from, or -1 if its bytes are not exact. */
function indexOf(value: unknown, salt: number, count: number): number {
  if (!(value instanceof Uint8Array) || value.byteLength !== SIZE) return -1;
  const index = (((value[0] as number) - salt) * 183) & 0xff; // 7 * 183 ≡ 1 (mod 256)
  for (let candidate = index; candidate < count; candidate += 256) {
    if (Buffer.from(value).equals(Buffer.from(bytesOf(candidate, salt)))) return candidate;
  }
  return -1;
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('Timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('resume with binary values', () => {
  let proxy: CutProxy | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await proxy?.close();
    await server?.close();
    proxy = undefined;
    server = undefined;
  });

  async function start(routes: Parameters<typeof serve>[1]): Promise<unknown[]> {
    const errors: unknown[] = [];
    server = await serve(
      { host: '127.0.0.1', port: 0, pingInterval: Infinity, onError: (e) => errors.push(e) },
      routes,
    );
    return errors;
  }

  it('delivers 64 KiB Uint8Array values both ways once, in order, exact, across cuts made while they are in flight', async () => {
    const Bytes = channelEndpoint(
      '/bytes',
      contract('bytes', 1, {
        up: toServer<Uint8Array>({ capacity: 16 }),
        down: toClient<Uint8Array>({ capacity: 16 }),
      }),
    );
    const COUNT = 48;
    const fromClient: number[] = [];
    const serverUndelivered: unknown[] = [];
    let serverRuns = 0;
    let serverResumes = -1;
    const errors = await start([
      Bytes.handle(
        async (session) => {
          const { up, down } = session.channels;
          serverRuns++;
          // Its own stream down, independent of what comes up: both directions in flight.
          const sending = (async () => {
            for (let i = 0; i < COUNT; i++) await down.send(bytesOf(i, 2));
          })();
          for await (const value of up) fromClient.push(indexOf(value, 1, COUNT));
          await sending;
          down.close();
          serverResumes = session.resumes;
        },
        { undelivered: { down: (v) => serverUndelivered.push(v) } },
      ),
    ]);
    proxy = await startCutProxy(server?.port as number);
    const p = proxy;
    const fromServer: number[] = [];
    const clientUndelivered: unknown[] = [];
    let clientRuns = 0;
    let clientResumes = -1;
    let sendsResolved = 0;
    const cutsAt = new Set([3, 13, 29]);
    const client = Bytes.reconnecting(
      p.url,
      async (session) => {
        const { up, down } = session.channels;
        clientRuns++;
        const sending = (async () => {
          for (let i = 0; i < COUNT; i++) {
            await up.send(bytesOf(i, 1));
            sendsResolved++;
          }
        })();
        while (fromServer.length < COUNT) {
          fromServer.push(indexOf(await down.receive(), 2, COUNT));
          if (cutsAt.has(fromServer.length)) {
            // Values of both directions are on their way (capacity 16 each): cut now.
            const before = session.resumes;
            p.cut();
            await until(() => session.resumes > before);
          }
        }
        await sending;
        up.close();
        expect((await down.receiveCatching()).ok).to.equal(false);
        clientResumes = session.resumes;
      },
      { reconnect: FAST, undelivered: { up: (v) => clientUndelivered.push(v) } },
    );
    expect((await client.done).code).to.equal(1000);
    const all = Array.from({ length: COUNT }, (_, i) => i);
    expect(fromServer).to.deep.equal(all);
    expect(fromClient).to.deep.equal(all);
    expect(sendsResolved).to.equal(COUNT);
    expect({ clientUndelivered, serverUndelivered }).to.deep.equal({
      clientUndelivered: [],
      serverUndelivered: [],
    });
    expect({ clientRuns, serverRuns, clientResumes }).to.deep.equal({
      clientRuns: 1,
      serverRuns: 1,
      clientResumes: cutsAt.size,
    });
    await until(() => serverResumes >= 0);
    expect(serverResumes).to.equal(cutsAt.size);
    expect(p.connections).to.equal(cutsAt.size + 1);
    expect(errors).to.deep.equal([]);
  });

  it('counts a binary value in the replay log bound: sends wait at maxReplayBytes, then go on after a recv', async () => {
    const Log = channelEndpoint(
      '/log',
      contract('log', 1, { down: toClient<Uint8Array>({ capacity: Infinity }) }),
    );
    const value = new Uint8Array(SIZE).fill(0x0a);
    const MAX = 200_000;
    let sent = 0;
    let ended: unknown;
    await start([
      Log.handle(
        async ({ channels: { down } }) => {
          try {
            for (;;) {
              await down.send(value);
              sent++;
            }
          } catch (error) {
            ended = error;
          }
        },
        { network: { maxReplayBytes: MAX } },
      ),
    ]);
    // A raw version-4 client that reads text frames and binary messages, never confirms.
    const ws = new WebSocket(`ws://127.0.0.1:${String(server?.port)}/log`);
    const frames: unknown[][] = [];
    let binaries = 0;
    let streamed = 0;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buffer = data as Buffer;
      if (isBinary) {
        binaries++;
        streamed++;
        const lf = buffer.indexOf(0x0a);
        expect(JSON.parse(buffer.subarray(0, lf).toString())).to.deep.equal(['b', 0]);
        expect(buffer.byteLength - lf - 1).to.equal(SIZE);
        return;
      }
      for (const text of buffer.toString().split('\n')) {
        const frame = JSON.parse(text) as unknown[];
        frames.push(frame);
        if (!['sluice', 'session', 'recv'].includes(frame[0] as string)) streamed++;
      }
    });
    ws.on('error', () => undefined);
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(`["sluice",4]\n["resume"]`);
    await until(() => frames.some((f) => f[0] === 'session'));
    ws.send(`["contract"]\n["open",0,"down",null]`);
    await until(() => sent > 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Each binary message is its header ["b",0] and an LF (8 bytes) plus 64 KiB: the log
    // goes over the bound with the value that crosses it, then values wait.
    const message = SIZE + 8;
    const bound = Math.floor(MAX / message) + 1;
    expect(sent).to.be.above(0);
    expect(sent).to.be.at.most(bound);
    expect(binaries).to.equal(sent);
    const stalled = sent;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent).to.equal(stalled);
    // Confirming every numbered frame (binary messages included) lets it go on.
    ws.send(`["recv",${String(streamed)}]`);
    await until(() => sent > stalled);
    await server?.close();
    await until(() => ended !== undefined);
    expect(ended).to.be.instanceOf(ConnectionLostError);
    ws.terminate();
  });

  it("hands a binary message that arrives as the client's first frame after the hellos to the channel session (decoded: 1002, beyond the allowance)", async () => {
    const Down = channelEndpoint(
      '/down',
      contract('down', 1, { down: toClient<Uint8Array>({ capacity: 1 }) }),
    );
    let runs = 0;
    await start([
      Down.handle(() => {
        runs++;
      }),
    ]);
    const ws = new WebSocket(`ws://127.0.0.1:${String(server?.port)}/down`);
    ws.on('error', () => undefined);
    const closed = new Promise<[number, string]>((resolve) => {
      ws.on('close', (code, reason) => resolve([code, reason.toString()]));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send('["sluice",4]');
    ws.send(Buffer.concat([Buffer.from('["b",0]\n'), Buffer.from([1, 2, 3])]));
    expect(await closed).to.deep.equal([
      1002,
      // The server's end 'down' (id 0) granted the client nothing: decoded as a value.
      "Received a value on channel 'down' beyond the allowance it had granted",
    ]);
    expect(runs).to.equal(0);
  });

  it("fails a client that awaits the server's session frame and gets a binary message instead (4002)", async () => {
    const Down = channelEndpoint(
      '/down',
      contract('down', 1, { down: toClient<Uint8Array>({ capacity: 1 }) }),
    );
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss.once('listening', resolve));
    const closes: [number, string][] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data: RawData) => {
        if ((data as Buffer).toString().includes('["resume"]')) {
          ws.send(Buffer.concat([Buffer.from('["b",0]\n'), Buffer.from([1])]));
        }
      });
      ws.on('close', (code, reason) => closes.push([code, reason.toString()]));
      ws.send('["sluice",4]');
    });
    let runs = 0;
    const client = Down.reconnecting(
      `ws://127.0.0.1:${String((wss.address() as { port: number }).port)}/down`,
      () => {
        runs++;
      },
      { reconnect: FAST },
    );
    try {
      await until(() => closes.length > 0);
    } finally {
      await client.stop();
      await new Promise((resolve) => wss.close(resolve));
    }
    // A client session closes with 4000 + (code − 1000), as browsers must.
    expect(closes[0]).to.deep.equal([
      4002,
      'Expected ["session", token] or ["session"] after ["resume"], got a binary message',
    ]);
    expect(runs).to.equal(0);
  });
});
