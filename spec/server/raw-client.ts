// A WebSocket client written by hand on `node:net`, for traffic that no library sends:
// malformed frames, silence after a Close, a broken handshake. Frames from the server are
// parsed minimally (RFC 6455 §5.2: no fragmentation, payloads < 2^32).
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';

export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

export interface RawClient {
  readonly socket: Socket;
  /** The HTTP status line and headers of the handshake response. */
  readonly response: string;
  /** Frames received so far; `next()` waits for the next one. */
  readonly frames: ServerFrame[];
  next(): Promise<ServerFrame>;
  /** Resolves when the TCP connection has closed. */
  readonly ended: Promise<void>;
  /** Writes one frame (masked unless `mask: false`). */
  sendFrame(
    opcode: number,
    payload: Uint8Array,
    options?: { mask?: boolean; fin?: boolean; rsv?: number },
  ): void;
  /** Writes raw bytes. */
  write(bytes: Uint8Array | string): void;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  { mask = true, fin = true, rsv = 0 }: { mask?: boolean; fin?: boolean; rsv?: number } = {},
): Buffer {
  const length = payload.byteLength;
  const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 255);
  else {
    header.push(maskBit | 127, 0, 0, 0, 0);
    header.push((length >>> 24) & 255, (length >>> 16) & 255, (length >>> 8) & 255, length & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(header), payload]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = (payload[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(header), key, masked]);
}

/** Opens a TCP connection and sends `request` as is (for broken handshakes). */
export function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(data));
    socket.write(request);
  });
}

/** Connects, performs the opening handshake, and parses what the server sends. */
export function rawClient(port: number, path = '/', extraHeaders = ''): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    let buffer = Buffer.alloc(0);
    let response: string | undefined;
    const frames: ServerFrame[] = [];
    const waiters: (() => void)[] = [];
    let closed = false;
    const ended = new Promise<void>((done) => socket.once('close', () => done()));
    void ended.then(() => {
      closed = true;
      for (const wake of waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);

    const parse = (): void => {
      for (;;) {
        if (buffer.length < 2) return;
        const b0 = buffer[0] as number;
        const b1 = buffer[1] as number;
        let length = b1 & 127;
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
        frames.push({
          fin: (b0 & 0x80) !== 0,
          opcode: b0 & 15,
          payload: buffer.subarray(offset, offset + length),
        });
        buffer = buffer.subarray(offset + length);
        for (const wake of waiters.splice(0)) wake();
      }
    };

    let read = 0;
    const client: RawClient = {
      socket,
      get response() {
        return response ?? '';
      },
      frames,
      async next() {
        while (read >= frames.length) {
          if (closed) throw new Error('connection closed');
          await new Promise<void>((wake) => waiters.push(wake));
        }
        return frames[read++] as ServerFrame;
      },
      ended,
      sendFrame(opcode, payload, options) {
        socket.write(encodeFrame(opcode, payload, options));
      },
      write(bytes) {
        socket.write(bytes);
      },
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (response === undefined) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        response = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        if (!response.startsWith('HTTP/1.1 101') || !response.includes(accept)) {
          socket.destroy();
          reject(new Error(`handshake failed: ${response}`));
          return;
        }
        resolve(client);
      }
      parse();
    });
    socket.once('close', () => {
      if (response === undefined) reject(new Error('closed during handshake'));
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
    );
  });
}

/** The close code and reason of a Close frame's payload. */
export function closeOf(frame: ServerFrame): { code: number; reason: string } {
  if (frame.opcode !== 8) throw new Error(`expected a Close frame, got opcode ${frame.opcode}`);
  if (frame.payload.length < 2) return { code: 1005, reason: '' };
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() };
}

/** Reads frames until a Close frame and returns its code and reason. */
export async function nextClose(client: RawClient): Promise<{ code: number; reason: string }> {
  for (;;) {
    const frame = await client.next();
    if (frame.opcode === 8) return closeOf(frame);
  }
}
