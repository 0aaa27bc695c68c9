/**
 * The soak: the heavy versions of the hostile-client attacks of issue 12, each against a
 * fresh sluice server from the BUILT package (`dist/`) in a child process, with a
 * neighbour client streaming numbered messages through the same server. One row per
 * attack: whether the server survived (`hung` / `OOM` when it had to be killed), memory
 * per attacking connection (peak minus the baseline after GC), the server's event loop
 * delay during the attack (`perf_hooks.monitorEventLoopDelay`: p99 and max; target max
 * ≤ 100 ms), and what the neighbour lost, got twice or out of order.
 *
 * ```
 * npm run soak                                   # build, then every attack (5–6 minutes)
 * npm run soak -- --quick                        # small counts (1–3 minutes)
 * npm run soak -- --only a-close,d-slowloris     # some attacks
 * node --import tsx benchmarks/soak.ts --quick   # without rebuilding dist/
 * ```
 *
 * Attacks: (a) clients stop reading until the server's send buffer is past its high-water
 * mark, then send a Close, a FIN or a malformed frame, or (a sluice client) call
 * `close()` after not reading for 3 s; (b) clients that each send 1,000 × 1 MiB messages
 * to a slow consumer while answering pings (heartbeat every 3 s), plain and
 * permessage-deflate; (c) network-channel peers that announce an unlimited capacity
 * while the server loops `await feed.outgoing.send(x)`, and peers opening 1,000 channel
 * names of ~1 MiB; (d) slowloris sockets (handshake timeout) and more connections than
 * `maxConnections`; (e) `server.close({ timeout: 2000 })` while every handler ignores its
 * signal. Every wait is bounded: a server that stops ticking for 15 s is killed ("hung"),
 * one past 3 GiB rss or V8's 2 GiB heap is "OOM"; the table is always printed.
 *
 * The first row, `control`, runs no attack: the delay an idle server shows on the machine
 * at that moment (other load included), to read the other rows against.
 *
 * The table goes to stdout, progress to stderr. Exit code 0 even when an attack fails its
 * target: the table is the result.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import WebSocket from 'ws';
import type * as WebSocketModule from '../lib/websocket/index.js';
import { HANG_MS, SoakChild } from './lib/soak-child.js';
import type { Outcome } from './lib/soak-child.js';
import { Neighbour, TEXT, clientFrame, closeFrame, openMany, rawPeer } from './lib/soak-peers.js';
import type { NeighbourResult, RawPeer } from './lib/soak-peers.js';
import type { SoakServerConfig } from './lib/soak-server.js';

const DIST = new URL('../dist/websocket/index.js', import.meta.url);
const MiB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** What an attack's body gets. */
interface Context {
  readonly port: number;
  readonly quick: boolean;
  readonly child: SoakChild;
  /** Finishes the neighbour now (for attacks that close the server); idempotent. */
  readonly stopNeighbour: () => Promise<NeighbourResult>;
}

interface Attack {
  readonly id: string;
  /** How many attacking connections (full, quick). */
  readonly clients: readonly [number, number];
  readonly config: (quick: boolean) => SoakServerConfig;
  /** Runs the attack; returns notes for the table. Must end by itself (bounded waits). */
  readonly run: (context: Context, clients: number) => Promise<string>;
}

// ---------------------------------------------------------------- (a) writer spin

/**
 * Peers of `/flood` stop reading; once the server's buffer is full, `act` on each. How
 * long the server takes to end those sessions is read from `server.sessions` (the peers
 * cannot tell: a socket that does not read never sees the server's FIN). A server whose
 * Close cannot be written (the peer reads nothing) drops the connection at `closeTimeout`
 * (10 s by default).
 */
function writerSpin(id: string, act: (peer: RawPeer) => void): Attack {
  return {
    id,
    clients: [75, 5],
    config: () => ({}),
    run: async ({ port, child }, clients) => {
      const peers = (await openMany(clients, 50, () => rawPeer(port, '/flood'))).filter(
        (peer): peer is RawPeer => peer !== undefined,
      );
      for (const peer of peers) peer.socket.pause();
      // Kernel buffers fill within milliseconds on loopback; then the session's buffer
      // grows past its high-water mark.
      await sleep(1500);
      const acted = Date.now();
      for (const peer of peers) act(peer);
      // The neighbour is the one session left once the attack's are over.
      const deadline = acted + 14_000;
      while (child.sessions > 1 && Date.now() < deadline) await sleep(100);
      const left = Math.max(0, child.sessions - 1);
      const took = Date.now() - acted;
      for (const peer of peers) peer.socket.destroy();
      await sleep(500);
      return left === 0
        ? `${peers.length} opened; the server ended all their sessions within ${took} ms of the ${id.slice(2)}`
        : `${peers.length} opened; ${left} sessions still open ${took} ms after the ${id.slice(2)}`;
    },
  };
}

const sluiceClientClose: Attack = {
  id: 'a-sluice-close',
  clients: [75, 5],
  config: () => ({}),
  run: async ({ port }, clients) => {
    const { connect, text } = (await import(DIST.href)) as typeof WebSocketModule;
    const sessions = (
      await openMany(clients, 50, () => connect(`ws://127.0.0.1:${port}/flood`, { codec: text() }))
    ).filter((session) => session !== undefined);
    await sleep(3000); // not reading incoming
    const closes = await Promise.all(
      sessions.map((session) =>
        Promise.race([session.close().then((reason) => reason.code), sleep(8000).then(() => 0)]),
      ),
    );
    for (const session of sessions) session.terminate();
    return `${sessions.length} sluice clients closed after 3 s unread: ${tally(closes.map((code) => (code === 0 ? 'no close in 8 s' : String(code))))}`;
  },
};

// ---------------------------------------------------------------- (b) incoming bytes

/** A text frame of `["aaa…"]`-free JSON: one string of about 1 MiB. */
function bigJson(): Buffer {
  return Buffer.from(`"${'a'.repeat(MiB - 16)}"`);
}

function incomingFlood(id: string, deflate: boolean, clients: readonly [number, number]): Attack {
  return {
    id,
    clients,
    // Pings every 3 s (the default pongTimeout, 10 s): a paused socket must still be able
    // to answer them within the attack.
    config: () => ({ perMessageDeflate: deflate, pingInterval: 3000 }),
    run: async ({ port, quick }, count) => {
      const json = bigJson();
      let frame: Buffer;
      if (deflate) {
        const compressed = deflateRawSync(json, { finishFlush: zlib.Z_SYNC_FLUSH });
        frame = clientFrame(TEXT, compressed.subarray(0, compressed.length - 4), { rsv1: true });
      } else {
        frame = clientFrame(TEXT, json);
      }
      const headers = deflate
        ? 'Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n'
        : '';
      const peers = (await openMany(count, 50, () => rawPeer(port, '/hold', { headers }))).filter(
        (peer): peer is RawPeer => peer !== undefined && peer.status === 101,
      );
      const deadline = Date.now() + (quick ? 6000 : 20_000);
      let written = 0;
      await Promise.all(
        peers.map(async (peer) => {
          for (let i = 0; i < 1000 && Date.now() < deadline && !peer.socket.destroyed; i++) {
            await Promise.race([peer.write(frame), sleep(Math.max(0, deadline - Date.now()))]);
            written++;
          }
        }),
      );
      await sleep(Math.max(0, deadline - Date.now()));
      const closes = peers.map((peer) =>
        peer.serverClose() !== undefined
          ? String(peer.serverClose())
          : peer.socket.destroyed
            ? 'TCP dropped'
            : 'open',
      );
      for (const peer of peers) peer.socket.destroy();
      await sleep(500);
      const wire = deflate ? ` (${frame.length} bytes each on the wire)` : '';
      return `${written} messages of 1 MiB written${wire}; connections: ${tally(closes)}`;
    },
  };
}

// ---------------------------------------------------------------- (c) network channels

function networkUnlimited(): Attack {
  return {
    id: 'c-net-unlimited',
    clients: [20, 3],
    config: () => ({}),
    run: async ({ port, quick }, count) => {
      let values = 0;
      const peers = (
        await openMany(count, 20, async () => {
          let taken = 0;
          let acked = 0;
          const peer = await rawPeer(port, '/feed', {
            onText: (message) => {
              for (const frame of message.toString().split('\n')) {
                if (frame.startsWith('["v",')) {
                  taken++;
                  values++;
                }
              }
              if (taken - acked >= 128) {
                acked = taken;
                peer.socket.write(clientFrame(TEXT, Buffer.from(`["ack",0,${taken}]`)));
              }
            },
          });
          await peer.write(clientFrame(TEXT, Buffer.from('["sluice",1]\n["open",0,"feed",null]')));
          return peer;
        })
      ).filter((peer): peer is RawPeer => peer !== undefined);
      await sleep(quick ? 5000 : 15_000);
      const closes = peers.map((peer) => String(peer.serverClose() ?? 'open'));
      for (const peer of peers) peer.socket.destroy();
      await sleep(500);
      return `values received by the peers: ${values}; connections: ${tally(closes)}`;
    },
  };
}

function networkNames(): Attack {
  const NAME = MiB - 64;
  return {
    id: 'c-net-names',
    clients: [10, 2],
    config: () => ({}),
    run: async ({ port, quick }, count) => {
      const prefix = Buffer.from('["open",');
      const deadline = Date.now() + (quick ? 8000 : 20_000);
      let opened = 0;
      const peers = (await openMany(count, 10, () => rawPeer(port, '/names'))).filter(
        (peer): peer is RawPeer => peer !== undefined,
      );
      await Promise.all(
        peers.map(async (peer) => {
          await peer.write(clientFrame(TEXT, Buffer.from('["sluice",1]')));
          for (let i = 0; i < 1000 && Date.now() < deadline && !peer.socket.destroyed; i++) {
            const head = Buffer.from(`${i},"${String(i).padStart(4, '0')}`);
            const payload = Buffer.alloc(prefix.length + head.length + NAME + 5, 'n');
            prefix.copy(payload, 0);
            head.copy(payload, prefix.length);
            payload.write('",1]', payload.length - 4);
            await Promise.race([
              peer.write(clientFrame(TEXT, payload)),
              sleep(Math.max(0, deadline - Date.now())),
            ]);
            opened++;
          }
        }),
      );
      const closes = peers.map((peer) =>
        String(peer.serverClose() ?? (peer.socket.destroyed ? 'TCP dropped' : 'open')),
      );
      for (const peer of peers) peer.socket.destroy();
      await sleep(500);
      return `${opened} names of ~1 MiB sent; connections: ${tally(closes)}`;
    },
  };
}

// ---------------------------------------------------------------- (d) slowloris, limits

/** Connects, sends one message to `/echo`, waits for it back; the time it took, or -1. */
async function freshClient(port: number): Promise<number> {
  const started = performance.now();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
  ws.on('error', () => undefined);
  const ok = await Promise.race([
    new Promise<boolean>((resolve) => {
      ws.once('open', () => ws.send('1'));
      ws.once('message', () => resolve(true));
      ws.once('close', () => resolve(false));
    }),
    sleep(5000).then(() => false),
  ]);
  ws.terminate();
  return ok ? performance.now() - started : -1;
}

/** Every `ms`, a fresh client; until `stop` resolves. */
async function freshClients(port: number, ms: number, stop: Promise<void>): Promise<string> {
  const times: Promise<number>[] = [];
  const state = { stopped: false };
  void stop.then(() => (state.stopped = true));
  while (!state.stopped) {
    times.push(freshClient(port));
    await Promise.race([sleep(ms), stop]);
  }
  const done = await Promise.all(times);
  const ok = done.filter((t) => t >= 0);
  return `fresh clients ${ok.length}/${done.length} served, slowest ${Math.round(Math.max(0, ...ok))} ms`;
}

const slowloris: Attack = {
  id: 'd-slowloris',
  clients: [2000, 200],
  config: (quick) => (quick ? { handshakeTimeout: 2000 } : {}),
  run: async ({ port, quick }, count) => {
    const request = `GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n`;
    const opened: number[] = [];
    const cut: number[] = [];
    const sockets = (
      await openMany(
        count,
        200,
        (index) =>
          new Promise<Socket>((resolve, reject) => {
            const socket = netConnect(port, '127.0.0.1');
            socket.on('error', () => undefined);
            socket.once('connect', () => {
              opened[index] = Date.now();
              socket.once('close', () => cut.push(Date.now() - (opened[index] ?? 0)));
              resolve(socket);
            });
            socket.once('close', () => reject(new Error('refused')));
          }),
      )
    ).filter((socket): socket is Socket => socket !== undefined);
    let sent = 0;
    const trickle = setInterval(() => {
      const byte = request[sent++ % request.length] ?? 'x';
      for (const socket of sockets) if (!socket.destroyed) socket.write(byte);
    }, 1000);
    const duration = quick ? 4000 : 15_000;
    const fresh = freshClients(port, 250, sleep(duration));
    await sleep(duration);
    clearInterval(trickle);
    const served = await fresh;
    for (const socket of sockets) socket.destroy();
    await sleep(500);
    cut.sort((a, b) => a - b);
    const median = cut.length === 0 ? '-' : `${cut[Math.floor(cut.length / 2)]} ms`;
    return `${sockets.length} slow sockets; ${cut.length} cut by the server within ${duration / 1000} s (median ${median} after connecting); ${served}`;
  },
};

const maxConnections: Attack = {
  id: 'd-max-connections',
  clients: [1100, 60],
  config: (quick) => (quick ? { maxConnections: 50 } : {}),
  run: async ({ port }, count) => {
    const statuses: string[] = [];
    const sockets = await openMany(
      count,
      100,
      () =>
        new Promise<WebSocket | undefined>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
          ws.on('error', () => undefined);
          ws.once('open', () => {
            statuses.push('101');
            resolve(ws);
          });
          ws.once('unexpected-response', (_request, response) => {
            statuses.push(String(response.statusCode));
            response.resume();
            ws.terminate();
            resolve(undefined);
          });
          ws.once('close', () => resolve(undefined));
        }),
    );
    const served = await freshClients(port, 250, sleep(2000));
    for (const ws of sockets) ws?.terminate();
    await sleep(500);
    return `upgrades: ${tally(statuses)}; while full: ${served}`;
  },
};

// ---------------------------------------------------------------- (e) close timeout

const closeTimeout: Attack = {
  id: 'e-close-timeout',
  clients: [200, 10],
  config: () => ({}),
  run: async ({ port, child, stopNeighbour }, count) => {
    const clients = await openMany(
      count,
      100,
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/stubborn`);
          ws.on('error', () => undefined);
          ws.once('open', () => resolve(ws));
          ws.once('close', () => reject(new Error('closed')));
        }),
    );
    await stopNeighbour();
    await sleep(300);
    const before = child.sessions;
    const closed = await child.request('close 2000', 'closed', 7000);
    for (const ws of clients) ws?.terminate();
    if (closed === undefined) {
      return `close({ timeout: 2000 }) with ${before} stubborn handlers: unresolved after 7 s (sessions ${child.sessions})`;
    }
    return `close({ timeout: 2000 }) with ${before} stubborn handlers took ${String(closed.ms)} ms; sessions after: ${String(closed.sessions)}; onError: ${JSON.stringify(closed.errors)}`;
  },
};

// ---------------------------------------------------------------- table

function tally(items: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([item, n]) => `${item}×${n}`).join(', ') || 'none';
}

/** No attack: the neighbour alone, for the machine's own event loop noise. */
const control: Attack = {
  id: 'control',
  clients: [0, 0],
  config: () => ({}),
  run: async ({ quick }) => {
    await sleep(quick ? 3000 : 8000);
    return 'no attack: the delay of an idle server on this machine now';
  },
};

const ATTACKS: readonly Attack[] = [
  control,
  writerSpin('a-close', (peer) => peer.socket.write(closeFrame(1001))),
  writerSpin('a-fin', (peer) => peer.socket.end()),
  writerSpin('a-malformed', (peer) =>
    peer.socket.write(clientFrame(3, Buffer.alloc(0), { randomMask: true })),
  ),
  sluiceClientClose,
  incomingFlood('b-1MiB-messages', false, [200, 10]),
  incomingFlood('b-deflate', true, [50, 5]),
  networkUnlimited(),
  networkNames(),
  slowloris,
  maxConnections,
  closeTimeout,
];

interface Row {
  readonly attack: string;
  readonly clients: number;
  readonly outcome: Outcome | 'error';
  readonly perConnection: string;
  readonly rssPerConnection: string;
  readonly p99: string;
  readonly max: string;
  /** The longest stall: its length and the CPU the server used during it. */
  readonly stall: string;
  readonly target: string;
  readonly neighbour: string;
  readonly notes: string;
}

function size(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-'; // also no clients (0/0, x/0)
  if (Math.abs(bytes) >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

async function runAttack(attack: Attack, quick: boolean): Promise<Row> {
  const clients = attack.clients[quick ? 1 : 0];
  progress(`${attack.id}: ${clients} clients…`);
  const child = await SoakChild.start(attack.config(quick));
  let neighbour: Neighbour;
  try {
    neighbour = await Neighbour.open(`ws://127.0.0.1:${child.port}/echo`);
  } catch (error) {
    await child.stop();
    throw error;
  }
  let finished: Promise<NeighbourResult> | undefined;
  const stopNeighbour = (): Promise<NeighbourResult> => (finished ??= neighbour.finish());
  await sleep(300);
  const base = await child.request('mark', 'mark', 10_000);
  child.resetPeaks();
  let notes: string;
  let failed = false;
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    notes = await Promise.race([
      attack.run({ port: child.port, quick, child, stopNeighbour }, clients),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('the attack itself did not end within 120 s'), 120_000);
      }),
    ]);
    clearTimeout(timer);
  } catch (error) {
    failed = true;
    notes = `attack failed: ${String(error)}`;
  }
  // A stalled server answers late (its histogram then holds the stall); a hung one, never:
  // the watchdog kills it within HANG_MS and the request resolves with nothing.
  const report = await child.request('report', 'report', HANG_MS + 5000);
  const seen = await stopNeighbour();
  await child.request('gc', 'gc', HANG_MS + 5000);
  const outcome = child.outcome;
  await child.stop();
  const baseBytes = base === undefined ? NaN : Number(base.heap) + Number(base.external);
  const baseRss = base === undefined ? NaN : Number(base.rss);
  // A server killed as hung or OOM answers no report: its last ticks still tell memory.
  const ticked = (n: number): number => (n === 0 ? NaN : n);
  const peak =
    report === undefined ? ticked(child.peaks.heapExternal) : Number(report.peakHeapExternal);
  const peakRss = report === undefined ? ticked(child.peaks.rss) : Number(report.peakRss);
  const max = report === undefined ? NaN : Number(report.max);
  const stuck = outcome === 'hung' ? `≥ ${HANG_MS} ms` : 'no report';
  const row: Row = {
    attack: attack.id,
    clients,
    outcome: failed ? 'error' : outcome,
    perConnection: size((peak - baseBytes) / clients),
    rssPerConnection: size((peakRss - baseRss) / clients),
    p99: report === undefined ? stuck : `${String(report.p99)} ms`,
    max: report === undefined ? stuck : `${String(report.max)} ms`,
    stall:
      report === undefined ? '-' : `${String(report.stallWall)} / ${String(report.stallCpu)} ms`,
    target: outcome === 'ok' && max <= 100 ? 'yes' : 'NO',
    neighbour:
      `${seen.lost}/${seen.duplicated}/${seen.reordered} of ${seen.sent}` +
      (seen.closedWith === undefined ? '' : ` (closed ${seen.closedWith})`),
    notes,
  };
  progress(`  ${row.outcome}, loop max ${row.max}; ${notes}`);
  return row;
}

/** The row of an attack that could not run (its server did not start). */
function failedRow(attack: Attack, quick: boolean, error: unknown): Row {
  return {
    attack: attack.id,
    clients: attack.clients[quick ? 1 : 0],
    outcome: 'error',
    perConnection: '-',
    rssPerConnection: '-',
    p99: '-',
    max: '-',
    stall: '-',
    target: 'NO',
    neighbour: '-',
    notes: String(error).split('\n')[0] ?? '',
  };
}

function table(rows: readonly Row[]): string {
  const header = [
    'attack',
    'clients',
    'server',
    'heap+ext/conn',
    'rss/conn',
    'loop p99',
    'loop max',
    'longest stall / its CPU',
    'max ≤ 100 ms',
    'neighbour lost/dup/reordered',
    'notes',
  ];
  const lines = rows.map((row) => [
    row.attack,
    String(row.clients),
    row.outcome,
    row.perConnection,
    row.rssPerConnection,
    row.p99,
    row.max,
    row.stall,
    row.target,
    row.neighbour,
    row.notes,
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...lines.map((line) => (line[i] ?? '').length)),
  );
  const format = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    format(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...lines.map(format),
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? (args[onlyIndex + 1] ?? '').split(',') : undefined;
  const unknown = only?.filter((id) => !ATTACKS.some((attack) => attack.id === id)) ?? [];
  if (unknown.length > 0) {
    progress(
      `Expected --only to list attacks among ${ATTACKS.map((a) => a.id).join(', ')}, got ${unknown.join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  if (!existsSync(DIST)) {
    progress('dist/ is missing: run `npm run build` first (`npm run soak` does)');
    process.exitCode = 2;
    return;
  }
  const rows: Row[] = [];
  for (const attack of ATTACKS) {
    if (only !== undefined && !only.includes(attack.id)) continue;
    try {
      rows.push(await runAttack(attack, quick));
    } catch (error) {
      progress(`  ${attack.id}: ${String(error)}`);
      rows.push(failedRow(attack, quick, error));
    }
  }
  const load = os
    .loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
  process.stdout.write(
    `\nSoak${quick ? ' (--quick)' : ''}: sluice from dist/, server in a child process (Node ${process.version}, ${os.cpus().length} cores, load average at the end ${load}); ` +
      `memory = peak during the attack minus the baseline after GC, per attacking connection; ` +
      `longest stall / its CPU = the longest gap of a 10 ms timer and the CPU time the server used during it (far less CPU than wall: the machine's other load held it off the cores); ` +
      `neighbour: numbered messages echoed during the attack\n\n${table(rows)}\n`,
  );
}

await main();
