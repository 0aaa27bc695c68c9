/**
 * A sluice server for hostile.spec.ts, run as a child process (`node --import tsx
 * --expose-gc`) so that a server the attack hangs cannot hang the test: the test reads
 * its reports and kills it by its PID. Routes (text codec, network channels):
 * - `/feed?inflight=N|Infinity&retain=no`: opens 'feed' (receiving nothing on it; with an
 *   `onUndelivered`, so that values are retained until acknowledged, unless `retain=no`;
 *   `maxInFlight` from the query, the default when absent) and sends 100-character values
 *   on it for ever, the well-behaved way: `for (;;) await feed.outgoing.send(value)`.
 * - `/echo`: opens 'echo' (capacity 4) and sends back every value it receives.
 *
 * It prints JSON lines on stdout: first `{"port": P}`, then every {@link TICK} ms
 * `{"late": L, "heap": H, "sent": S}`: how late (ms) that timer fired, `heapUsed` after a
 * full `gc()`, and how many values the `send`s of the latest feed loop accepted.
 */
import { route, serve } from '../../lib/server/index.js';
import { text } from '../../lib/websocket/index.js';
import { channels } from '../../lib/network/index.js';

/** The reporting timer's period, in ms. */
const TICK = 50;
const PAYLOAD = 'x'.repeat(90);
/** The values sent by the latest `/feed` connection. */
let sent = 0;
let latest: object | undefined;

const server = await serve(
  { host: '127.0.0.1', pingInterval: Infinity },
  {
    '/feed': route<string, string>({
      codec: text(),
      handler: async (session) => {
        const inflight = session.request.query.get('inflight');
        const retain = session.request.query.get('retain') !== 'no';
        const net = channels(session);
        const feed = net.channel<never, string>('feed', {
          ...(retain ? { onUndelivered: () => undefined } : {}),
          ...(inflight === null ? {} : { maxInFlight: Number(inflight) }),
        });
        sent = 0;
        const counted = {};
        latest = counted;
        try {
          for (let n = 0; ; n++) {
            await feed.outgoing.send(`${PAYLOAD}${String(n).padStart(10, '0')}`);
            if (latest === counted) sent++;
          }
        } catch {
          // The connection ended: the test is over.
        }
        await net.closed;
      },
    }),
    '/echo': route<string, string>({
      codec: text(),
      handler: async (session) => {
        const net = channels(session);
        const echo = net.channel<string>('echo', { capacity: 4 });
        try {
          for await (const value of echo.incoming) await echo.outgoing.send(value);
        } catch {
          // The connection ended.
        }
        await net.closed;
      },
    }),
  },
);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('Run with --expose-gc');
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
let due = performance.now() + TICK;
setInterval(() => {
  const now = performance.now();
  const late = now - due;
  due = now + TICK;
  gc();
  const heap = process.memoryUsage().heapUsed;
  process.stdout.write(`${JSON.stringify({ late: Math.round(late), heap, sent })}\n`);
}, TICK);
