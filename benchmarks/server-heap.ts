/**
 * What an idle server connection holds, by constructor: writes a heap snapshot of a bare
 * `ws` echo server and of sluice's `serve` (from `dist/`, with the raw-codec echo route of
 * `server.bench.ts`) at N idle connections (each has echoed one message; the clients live
 * in a child process), then prints, per connection, the self sizes summed by node type
 * and constructor name, sluice minus `ws`, largest first. Module code and source strings
 * show up too (they do not grow with connections): read the rows of objects.
 *
 * `--scenario channels` or `--scenario topic` compares instead the network rows of
 * `server.bench.ts` with sluice's own echo connection: an idle channel session (a
 * `channelEndpoint` with a one-channel contract, resume on, whose handler waits on its
 * channel; the client is sluice's `connect`) or an idle topic subscription
 * (`serveTopics`, a client following one topic), minus the idle sluice echo connection:
 * what the network layer adds per session. Build `dist/` first (`npm run build`). Run:
 *
 * ```
 * node --import tsx --expose-gc benchmarks/server-heap.ts            # 1,000 connections
 * node --import tsx --expose-gc benchmarks/server-heap.ts 5000 /tmp/old/dist
 * node --import tsx --expose-gc benchmarks/server-heap.ts 1000 dist --scenario channels
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import WebSocket, { WebSocketServer } from 'ws';
import { benchEndpoint, loadSluice } from './lib/sluice-dist.js';
import type { Sluice } from './lib/sluice-dist.js';
import type * as ServerModule from '../lib/server/index.js';
import type * as WebSocketModule from '../lib/websocket/index.js';

const self = fileURLToPath(import.meta.url);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What a server serves: a bare `ws` echo, sluice's echo, or a network row of the bench. */
type Kind = 'ws' | 'sluice' | 'channels' | 'topic';

function isKind(value: string | undefined): value is Kind {
  return value === 'ws' || value === 'sluice' || value === 'channels' || value === 'topic';
}

/** Serves `n` connections, writes a snapshot to `file` once they are idle, and exits. */
async function server(kind: Kind, dist: string, n: number, file: string): Promise<void> {
  let port: number;
  let count: () => number;
  if (kind === 'channels' || kind === 'topic') {
    const sluice = await loadSluice(dist);
    const { route, serve } = sluice.server;
    if (kind === 'channels') {
      let running = 0;
      const server = await serve({ maxConnections: Infinity }, [
        benchEndpoint(sluice.network).handle(async ({ channels: { results } }) => {
          running++;
          try {
            for await (const value of results) console.error('unexpected value', value);
          } finally {
            running--;
          }
        }),
      ]);
      port = server.port;
      count = () => running;
    } else {
      const { channels, serveTopics } = sluice.network;
      const topic = new sluice.core.Topic<string>({ retention: { count: 16 } });
      const server = await serve(
        { maxConnections: Infinity },
        {
          '/topic': route<string, string>({
            codec: sluice.websocket.text(),
            handler: (session) => serveTopics(channels(session), new Map([['t', topic]])),
          }),
        },
      );
      port = server.port;
      count = () => topic.subscriberCount;
    }
  } else if (kind === 'ws') {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    wss.on('connection', (ws) => {
      ws.on('error', () => undefined);
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
    });
    port = (wss.address() as AddressInfo).port;
    count = () => wss.clients.size;
  } else {
    const load = (file: string): Promise<unknown> =>
      import(pathToFileURL(path.join(dist, file)).href);
    const { route, serve } = (await load('server/index.js')) as typeof ServerModule;
    const { raw } = (await load('websocket/index.js')) as typeof WebSocketModule;
    const running = await serve(
      { maxConnections: Infinity },
      {
        '/echo': route({
          codec: raw(),
          handler: async (session) => {
            for await (const message of session.incoming) await session.outgoing.send(message);
          },
        }),
      },
    );
    port = running.port;
    count = () => running.sessions;
  }
  const clients = spawn(
    process.execPath,
    ['--import', 'tsx', self, '--clients', `ws://127.0.0.1:${port}`, String(n), kind, dist],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(clients.stdout, 'data');
  while (count() !== n) await sleep(10);
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i++) {
    await sleep(20);
    gc();
  }
  writeHeapSnapshot(file);
  clients.kill();
  // The servers and their connections are what was measured: exit without closing them.
  process.exit(0);
}

/** Opens a sluice network client of the channel or topic row; it stays open. */
async function openNetworkClient(
  sluice: Sluice,
  kind: 'channels' | 'topic',
  base: string,
): Promise<void> {
  if (kind === 'channels') {
    await new Promise<void>((resolve, reject) => {
      benchEndpoint(sluice.network)
        .connect(base, async () => {
          resolve();
          await new Promise(() => undefined);
        })
        .catch(reject);
    });
    return;
  }
  const ws = new WebSocket(`${base}/topic`, { perMessageDeflate: false });
  const session = sluice.websocket.wrap<string, string>(ws, { codec: sluice.websocket.text() });
  const feed = sluice.network.remoteTopic<string>('t', { capacity: 16, overflow: 'drop-oldest' });
  void feed.follow(sluice.network.channels(session)).catch(() => undefined);
  void (async () => {
    for await (const event of feed) {
      if (event.type === 'publication') console.error('unexpected publication', event);
    }
  })().catch(() => undefined);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
}

/**
 * Opens `n` connections that each echo one message (or, for a network row, `n` sluice
 * network clients), then stays until killed.
 */
async function openClients(base: string, n: number, kind: Kind, dist: string): Promise<void> {
  if (kind === 'channels' || kind === 'topic') {
    const sluice = await loadSluice(dist);
    for (let start = 0; start < n; start += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, n - start) }, () =>
          openNetworkClient(sluice, kind, base),
        ),
      );
    }
    process.stdout.write('OPEN\n');
    setInterval(() => undefined, 1000);
    return;
  }
  const url = `${base}/echo`;
  for (let start = 0; start < n; start += 100) {
    await Promise.all(
      Array.from(
        { length: Math.min(100, n - start) },
        () =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(url, { perMessageDeflate: false });
            ws.on('open', () => {
              ws.send('hi');
            });
            ws.once('message', () => {
              resolve();
            });
            ws.on('error', reject);
          }),
      ),
    );
  }
  process.stdout.write('OPEN\n');
  setInterval(() => undefined, 1000);
}

interface Snapshot {
  readonly snapshot: {
    readonly meta: { readonly node_fields: string[]; readonly node_types: [string[]] };
  };
  readonly nodes: number[];
  readonly strings: string[];
}

/** Self sizes summed by `type:name` (strings and code lumped together). */
function bySelfSize(file: string): Map<string, number> {
  const heap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const sums = new Map<string, number>();
  for (let i = 0; i < heap.nodes.length; i += fields.length) {
    const type = types[heap.nodes[i + typeAt!]!]!;
    const name =
      type.includes('string') || type === 'code' ? '' : heap.strings[heap.nodes[i + nameAt!]!]!;
    const key = `${type}:${name}`.slice(0, 80);
    sums.set(key, (sums.get(key) ?? 0) + heap.nodes[i + sizeAt!]!);
  }
  return sums;
}

const args = process.argv.slice(2);
if (args[0] === '--server') {
  const [, kind, dist, n, file] = args;
  if (!isKind(kind)) throw new Error(`Expected ws, sluice, channels or topic, got ${kind}`);
  await server(kind, dist!, Number(n), file!);
} else if (args[0] === '--clients') {
  const [, base, n, kind, dist] = args;
  if (!isKind(kind)) throw new Error(`Expected ws, sluice, channels or topic, got ${kind}`);
  await openClients(base!, Number(n), kind, dist!);
} else {
  const at = args.indexOf('--scenario');
  const scenario = at >= 0 ? args.splice(at, 2)[1] : undefined;
  if (scenario !== undefined && scenario !== 'channels' && scenario !== 'topic') {
    throw new Error(`Expected --scenario channels or topic, got ${scenario}`);
  }
  const n = Number(args[0] ?? 1000);
  const dist = path.resolve(args[1] ?? path.join(path.dirname(self), '..', 'dist'));
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-heap-'));
  // Without a scenario: sluice's echo minus bare `ws`; with one: that row minus sluice's echo.
  const [base, measured]: [Kind, Kind] =
    scenario === undefined ? ['ws', 'sluice'] : ['sluice', scenario];
  try {
    const files = {
      ws: path.join(dir, `${base}.heapsnapshot`),
      sluice: path.join(dir, `${measured}.heapsnapshot`),
    };
    for (const [key, kind] of [
      ['ws', base],
      ['sluice', measured],
    ] as const) {
      const child = spawn(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', self, '--server', kind, dist, String(n), files[key]],
        { stdio: 'inherit' },
      );
      const [code] = (await once(child, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`the ${kind} server failed`);
    }
    const ws = bySelfSize(files.ws);
    const sluice = bySelfSize(files.sluice);
    const rows = [...new Set([...ws.keys(), ...sluice.keys()])]
      .map((key) => [key, ((sluice.get(key) ?? 0) - (ws.get(key) ?? 0)) / n] as const)
      .filter(([, bytes]) => Math.abs(bytes) >= 8)
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    console.log(
      `bytes per connection, ${measured} minus ${base}, ${n} idle connections (self sizes):`,
    );
    for (const [key, bytes] of rows) console.log(`${bytes.toFixed(0).padStart(8)}  ${key}`);
    // Strings and code are mostly the modules' source and compiled code, which do not grow
    // with connections (the request's header strings do, and hide among them).
    const objects = rows
      .filter(([key]) => !key.startsWith('code:') && !key.includes('string:'))
      .reduce((sum, [, bytes]) => sum + bytes, 0);
    console.log(`${objects.toFixed(0).padStart(8)}  total without strings and code`);
    const withStrings = rows
      .filter(([key]) => !key.startsWith('code:'))
      .reduce((sum, [, bytes]) => sum + bytes, 0);
    console.log(`${withStrings.toFixed(0).padStart(8)}  in all, code left out`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
