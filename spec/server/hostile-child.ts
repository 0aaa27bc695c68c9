// The process under attack for hostile-session.spec.ts, started with `fork` and killed by
// its PID when a test ends. It talks to the test over IPC only:
// - every report is `{ type, ... }` sent with `process.send`;
// - `{ type: 'lateness' }` asks for the worst lateness of a 10 ms interval timer since the
//   last such question. A process whose event loop is stuck never answers.
//
// Modes (argv[2]):
// - `server`: `serve` with `/stream` (streams 16 KiB text messages until a send is stuck,
//   then adds three more sends and reports how all four settle) and `/echo`.
// - `client <url>`: a `connect()` client on `url` doing the same as `/stream`.
// - `memory [deflate]`: `serve` (with `perMessageDeflate` if asked) and `/hold`, whose
//   handler never reads `incoming`; `{ type: 'heap' }` answers with heapUsed and
//   arrayBuffers after a GC.
// - `slow`: `serve` with `/slow` (JSON, 4 MiB messages allowed; takes one message every
//   50 ms) and `/echo`: many clients flooding big messages to slow consumers.
import { serve, route } from '../../lib/server/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { connect, text } from '../../lib/websocket/index.js';

type Report = Record<string, unknown> & { type: string };
const report = (message: Report): void => {
  process.send?.(message);
};

const PERIOD = 10;
let last = performance.now();
let worst = 0;
const probe = setInterval(() => {
  const now = performance.now();
  worst = Math.max(worst, now - last - PERIOD);
  last = now;
}, PERIOD);

const PAD = 'x'.repeat(16 * 1024);
const message = (n: number): string => `${n}:${PAD}`;
const numberOf = (value: string): number => Number(value.slice(0, value.indexOf(':')));

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

/** Streams until a send is stuck behind the high-water mark, then reports how it ends. */
async function stream(session: Session<string>, undelivered: number[]): Promise<void> {
  for (let n = 0; ; n++) {
    const sending = session.outgoing.send(message(n));
    if (await settlesWithin(sending, 300)) {
      await sending;
      continue;
    }
    const all = [sending, ...[1, 2, 3].map((k) => session.outgoing.send(message(n + k)))];
    report({ type: 'blocked', first: n });
    const outcomes = await Promise.allSettled(all);
    const first = outcomes[0]?.status === 'rejected' ? (outcomes[0].reason as unknown) : undefined;
    report({
      type: 'settled',
      outcomes: outcomes.map((outcome) =>
        outcome.status === 'fulfilled'
          ? { status: 'fulfilled' }
          : {
              status: 'rejected',
              name: (outcome.reason as Error).name,
              message: (outcome.reason as Error).message,
              sameAsFirst: outcome.reason === first,
            },
      ),
      undelivered: [...undelivered],
    });
    report({ type: 'closed', reason: await session.closed });
    return;
  }
}

process.on('message', (raw: Report) => {
  if (raw.type === 'lateness') {
    report({ type: 'lateness', worst });
    worst = 0;
  } else if (raw.type === 'heap') {
    const gc = (globalThis as { gc?: () => void }).gc as () => void;
    gc();
    gc();
    const usage = process.memoryUsage();
    report({ type: 'heap', heapUsed: usage.heapUsed, arrayBuffers: usage.arrayBuffers });
  } else if (raw.type === 'exit') {
    clearInterval(probe);
    process.exit(0);
  }
});

const mode = process.argv[2];
if (mode === 'server') {
  const undelivered: number[] = [];
  const server = await serve(
    { closeTimeout: 1000 },
    {
      '/stream': route<string>({
        codec: text(),
        highWaterMark: 64 * 1024,
        onUndelivered: (value) => undelivered.push(numberOf(value)),
        handler: (session) => stream(session, undelivered),
      }),
      '/echo': route<string>({
        codec: text(),
        handler: async (session) => {
          for await (const line of session.incoming) await session.outgoing.send(line);
        },
      }),
    },
  );
  report({ type: 'ready', url: server.url });
} else if (mode === 'client') {
  const undelivered: number[] = [];
  const session = await connect<string>(process.argv[3] as string, {
    codec: text(),
    highWaterMark: 64 * 1024,
    onUndelivered: (value) => undelivered.push(numberOf(value)),
  });
  report({ type: 'ready' });
  await stream(session, undelivered);
} else if (mode === 'slow') {
  const server = await serve(
    { maxMessageSize: 4 * 1024 * 1024 },
    {
      '/slow': route({
        incomingMaxBytes: 16 * 1024 * 1024,
        handler: async (session) => {
          while ((await session.incoming.receiveCatching()).ok) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        },
      }),
      '/echo': route<string>({
        codec: text(),
        handler: async (session) => {
          for await (const line of session.incoming) await session.outgoing.send(line);
        },
      }),
    },
  );
  report({ type: 'ready', url: server.url });
} else if (mode === 'memory') {
  const deflate = process.argv[3] === 'deflate';
  const server = await serve(
    { perMessageDeflate: deflate, pingInterval: 300, closeTimeout: 500 },
    {
      // Never reads: everything the peer sends stays with the session.
      '/hold': route<string>({
        codec: text(),
        handler: (session) =>
          session.closed.then((reason) => {
            if (process.env.HOSTILE_DEBUG !== undefined) console.error('closed', reason);
          }),
      }),
    },
  );
  report({ type: 'ready', url: server.url });
}
