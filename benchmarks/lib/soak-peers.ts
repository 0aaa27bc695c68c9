/**
 * The clients of the soak (`benchmarks/soak.ts`): a WebSocket peer written on `node:net`
 * (it sends what no library sends, precomputed frames written as fast as TCP takes them,
 * and can stop reading), and the neighbour that streams numbered messages through the
 * server under attack and counts what came back lost, duplicated or out of order.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import WebSocket from 'ws';

/** Opcodes (RFC 6455 §5.2). */
export const TEXT = 1;
export const CLOSE = 8;
export const PING = 9;
export const PONG = 10;

/**
 * One client frame. The masking key is zero unless `randomMask` (a server cannot tell,
 * and a zero key lets the soak write the same large frame again and again without
 * masking it each time).
 */
export function clientFrame(
  opcode: number,
  payload: Uint8Array,
  { rsv1 = false, randomMask = false }: { rsv1?: boolean; randomMask?: boolean } = {},
): Buffer {
  const length = payload.byteLength;
  const head: number[] = [0x80 | (rsv1 ? 0x40 : 0) | opcode];
  if (length < 126) head.push(0x80 | length);
  else if (length < 65536) head.push(0x80 | 126, length >> 8, length & 255);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 255, (length >>> 16) & 255, (length >>> 8) & 255, length & 255);
  }
  const key = randomMask ? randomBytes(4) : Buffer.alloc(4);
  const body = Buffer.from(payload);
  if (randomMask)
    for (let i = 0; i < length; i++) body[i] = (body[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A Close frame with `code`. */
export function closeFrame(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return clientFrame(CLOSE, payload, { randomMask: true });
}

export interface RawPeer {
  readonly socket: Socket;
  /** The HTTP status of the handshake's answer (101 when upgraded). */
  readonly status: number;
  /** The code of the server's Close frame, once one arrived. */
  readonly serverClose: () => number | undefined;
  /** Resolves with the time the TCP connection closed. */
  readonly ended: Promise<number>;
  /** Writes `bytes`; resolves when TCP can take more (back-pressure), or at once if closed. */
  write(bytes: Uint8Array): Promise<void>;
}

export interface RawPeerOptions {
  /** Extra request header lines, each ending with CRLF. */
  readonly headers?: string;
  /** Called with the payload of each text message (unfragmented or reassembled). */
  readonly onText?: (payload: Buffer) => void;
  /** Milliseconds to wait for the handshake's answer before giving up (rejects). */
  readonly timeout?: number;
}

/**
 * Connects to `path` and performs the opening handshake; pings are answered with pongs
 * as long as the peer reads (`socket.pause()` stops reading, and answering).
 * Rejects if the TCP connection fails or closes before an answer.
 */
export function rawPeer(
  port: number,
  path: string,
  options: RawPeerOptions = {},
): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    let status: number | undefined;
    let serverClose: number | undefined;
    let fragments: Buffer[] = [];
    const ended = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      if (status === undefined) reject(new Error('closed during the handshake'));
    });
    const timer = setTimeout(() => {
      if (status === undefined) socket.destroy();
    }, options.timeout ?? 10_000);

    const peer: RawPeer = {
      socket,
      get status() {
        return status ?? 0;
      },
      serverClose: () => serverClose,
      ended,
      write(bytes) {
        if (socket.destroyed || socket.writableEnded) return Promise.resolve();
        if (socket.write(bytes)) return Promise.resolve();
        return new Promise((done) => {
          const finish = (): void => {
            socket.off('drain', finish);
            socket.off('close', finish);
            done();
          };
          socket.on('drain', finish);
          socket.on('close', finish);
        });
      },
    };

    const frames = (): void => {
      for (;;) {
        if (buffer.length < 2) return;
        const b0 = buffer[0] as number;
        let length = (buffer[1] as number) & 127;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = buffer.readUInt32BE(6);
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        const opcode = b0 & 15;
        const fin = (b0 & 0x80) !== 0;
        if (opcode === PING) socket.write(clientFrame(PONG, payload, { randomMask: true }));
        else if (opcode === CLOSE)
          serverClose = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        else if (opcode === TEXT || opcode === 0) {
          fragments.push(Buffer.from(payload));
          if (fin) {
            const message =
              fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
            fragments = [];
            options.onText?.(message);
          }
        }
      }
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (status === undefined) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        buffer = buffer.subarray(end + 4);
        clearTimeout(timer);
        resolve(peer);
      }
      frames();
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `${options.headers ?? ''}\r\n`,
    );
  });
}

/** Opens `count` peers, `batch` at a time (the listen backlog is 511); failures are `undefined`. */
export async function openMany<T>(
  count: number,
  batch: number,
  open: (index: number) => Promise<T>,
): Promise<(T | undefined)[]> {
  const all: (T | undefined)[] = [];
  for (let first = 0; first < count; first += batch) {
    const size = Math.min(batch, count - first);
    const opened = await Promise.all(
      Array.from({ length: size }, (_, i) => open(first + i).catch(() => undefined)),
    );
    all.push(...opened);
  }
  return all;
}

/** What the neighbour saw: numbered messages sent, echoed back, lost, duplicated, reordered. */
export interface NeighbourResult {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly reordered: number;
  /** The close code if the connection ended during the attack, else undefined. */
  readonly closedWith: number | undefined;
}

/**
 * A well-behaved client beside the attack: sends the numbers 0, 1, 2, … every
 * `intervalMs` to the echo route and checks the echoes.
 */
export class Neighbour {
  readonly #ws: WebSocket;
  #sent = 0;
  #received = 0;
  #duplicated = 0;
  #reordered = 0;
  #last = -1;
  readonly #seen = new Set<number>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closedWith: number | undefined;
  readonly #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        this.#closedWith = code;
        resolve();
      }),
    );
    ws.on('message', (data: Buffer) => {
      const n = Number(data.toString());
      this.#received++;
      if (this.#seen.has(n)) this.#duplicated++;
      else this.#seen.add(n);
      if (n < this.#last) this.#reordered++;
      this.#last = n;
    });
  }

  static async open(url: string, intervalMs = 5): Promise<Neighbour> {
    const ws = new WebSocket(url);
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error('the neighbour could not connect')));
    });
    const neighbour = new Neighbour(ws);
    neighbour.#timer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(String(neighbour.#sent++));
    }, intervalMs);
    return neighbour;
  }

  /** Stops sending, waits up to `ms` for the echoes still due, closes, and counts. */
  async finish(ms = 3000): Promise<NeighbourResult> {
    clearInterval(this.#timer);
    const deadline = Date.now() + ms;
    while (
      this.#seen.size < this.#sent &&
      Date.now() < deadline &&
      this.#closedWith === undefined
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const closedWith = this.#closedWith;
    this.#ws.terminate();
    await this.#closed;
    return {
      sent: this.#sent,
      received: this.#received,
      lost: this.#sent - this.#seen.size,
      duplicated: this.#duplicated,
      reordered: this.#reordered,
      closedWith,
    };
  }
}
