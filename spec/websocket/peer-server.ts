/**
 * A scripted `ws` peer for the WebSocket conformance cases (Node only). It listens on
 * 127.0.0.1 (any free port); the path picks a behaviour and the query its parameters:
 *
 * | path | behaviour |
 * |---|---|
 * | `/echo` | sends every message back, text as text and binary as binary |
 * | `/send?n=N&kind=json\|text\|binary&code=C&reason=R` | sends N messages (`{"i":k}`, `"k"`, or bytes `[k & 255]`), then Close(C, R) if `code` is given (`code=none`: a Close without code) |
 * | `/drop?n=N` | sends N messages, then drops the TCP connection without a Close frame |
 * | `/stall` | stops reading at once (`pause()`): the client's writes pile up |
 * | `/frame?text=T` / `/frame?bytes=1,2,3` | sends one text or binary frame, then waits |
 * | `/flood?n=N&size=S&close=0` | sends N text messages of S bytes as fast as it can, then Close(1000, 'flooded') unless `close=0` |
 * | `/reject?status=S` | answers the upgrade with HTTP status S and header `x-peer: rejected` |
 * | `/hang` | never answers the upgrade |
 * | `/report?target=X` | once connection `X` has closed, sends what it received as JSON (`PeerRecord`), then Close(1000) |
 *
 * Any behaviour with `id=X` in its query records what it receives (each message with its
 * type, then the Close code and reason it got, or 1006) for `/report?target=X`. `/protocol` is
 * `/echo` that selects the first subprotocol offered.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';

/** One received message as `/report` describes it. */
export type RecordedMessage = { type: 'text'; data: string } | { type: 'binary'; data: number[] };

/** What `/report?id=X` sends: the messages connection X received, and its close. */
export interface PeerRecord {
  readonly messages: RecordedMessage[];
  close: { code: number; reason: string } | null;
}

export interface PeerServer {
  /** `ws://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** Closes every connection and the server; resolves once nothing is left open. */
  close(): Promise<void>;
}

const REPORT_WAIT_MS = 10_000;

function toRecorded(data: RawData, isBinary: boolean): RecordedMessage {
  const buffer = Array.isArray(data)
    ? Buffer.concat(data)
    : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
  return isBinary
    ? { type: 'binary', data: [...buffer] }
    : { type: 'text', data: buffer.toString('utf8') };
}

function message(kind: string, k: number): string | Buffer {
  if (kind === 'text') return String(k);
  if (kind === 'binary') return Buffer.from([k & 255]);
  return JSON.stringify({ i: k });
}

export async function startPeerServer(): Promise<PeerServer> {
  const records = new Map<string, PeerRecord>();
  const waiting = new Map<string, (() => void)[]>();
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const http = createServer((_request, response) => {
    response.writeHead(426).end();
  });
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => protocols.values().next().value ?? false,
  });

  http.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', 'http://peer');
    if (url.pathname === '/hang') return; // never answered; destroyed by close()
    if (url.pathname === '/reject') {
      const status = Number(url.searchParams.get('status') ?? '401');
      socket.end(
        `HTTP/1.1 ${status} Rejected\r\nx-peer: rejected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      behave(ws, url);
    });
  });

  const finishRecord = (id: string): void => {
    for (const wake of waiting.get(id) ?? []) wake();
    waiting.delete(id);
  };

  function behave(ws: WebSocket, url: URL): void {
    const query = url.searchParams;
    const id = query.get('id');
    if (id !== null) {
      const record: PeerRecord = { messages: [], close: null };
      records.set(id, record);
      ws.on('message', (data, isBinary) => record.messages.push(toRecorded(data, isBinary)));
      ws.on('close', (code, reason) => {
        record.close = { code, reason: reason.toString('utf8') };
        finishRecord(id);
      });
    }
    const n = Number(query.get('n') ?? '0');
    switch (url.pathname) {
      case '/echo':
      case '/protocol':
        ws.on('message', (data, isBinary) => {
          ws.send(data, { binary: isBinary });
        });
        break;
      case '/send': {
        const kind = query.get('kind') ?? 'json';
        for (let k = 0; k < n; k++) ws.send(message(kind, k));
        const code = query.get('code');
        if (code === 'none') ws.close();
        else if (code !== null) ws.close(Number(code), query.get('reason') ?? '');
        break;
      }
      case '/drop': {
        // Let the messages reach the client first, then drop without a Close frame.
        const drop = (): void => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            ws.terminate();
          }, 20);
          timers.add(timer);
        };
        for (let k = 0; k < n; k++) ws.send(message('json', k), k === n - 1 ? drop : undefined);
        if (n === 0) drop();
        break;
      }
      case '/stall':
        ws.pause();
        break;
      case '/frame': {
        const bytes = query.get('bytes');
        if (bytes !== null) {
          ws.send(Buffer.from(bytes === '' ? [] : bytes.split(',').map(Number)), { binary: true });
        } else {
          ws.send(query.get('text') ?? '', { binary: false });
        }
        break;
      }
      case '/flood': {
        const size = Number(query.get('size') ?? '16');
        const body = 'x'.repeat(size);
        for (let k = 0; k < n; k++) ws.send(body);
        if (query.get('close') !== '0') ws.close(1000, 'flooded');
        break;
      }
      case '/report': {
        const target = query.get('target') ?? '';
        const send = (): void => {
          const record = records.get(target) ?? null;
          ws.send(JSON.stringify(record));
          ws.close(1000);
        };
        if (records.get(target)?.close != null) {
          send();
          break;
        }
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, REPORT_WAIT_MS);
        timers.add(timer);
        const list = waiting.get(target) ?? [];
        list.push(() => {
          clearTimeout(timer);
          timers.delete(timer);
          send();
        });
        waiting.set(target, list);
        break;
      }
      default:
        ws.close(4404, `No behaviour ${url.pathname}`);
    }
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => {
        wss.close(() => resolve());
      });
      await new Promise<void>((resolve, reject) => {
        http.close((error) => (error ? reject(error) : resolve()));
      });
    },
  };
}
