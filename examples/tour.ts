/**
 * The README's 30-second tour, as one runnable program:
 * `node --import tsx examples/tour.ts`. The test suite runs it and checks its output.
 */
import {
  Channel,
  delay,
  onTimeout,
  produce,
  scope,
  select,
  toReadableStream,
  withTimeoutOrUndefined,
} from 'sluice';
import { connect } from 'sluice/websocket';
import { serve } from 'sluice/server';

// A channel: `send` waits while the buffer is full; `for await` ends after close + drain.
const jobs = new Channel<string>(16);
const producer = (async () => {
  for (const job of ['a', 'b', 'c']) await jobs.send(job);
  jobs.close();
})();
const seen: string[] = [];
for await (const job of jobs) seen.push(job);
await producer;
console.log(`channel: ${seen.join(', ')}`);

// select: exactly one clause completes; the others leave no trace.
const fast = new Channel<string>(1);
const slow = new Channel<string>(1);
fast.trySend('fast wins');
const picked = await select([
  slow.onReceive((value) => `slow: ${value}`),
  fast.onReceive((value) => `fast: ${value}`),
  onTimeout(100, () => 'timeout'),
]);
console.log(`select: ${picked}; slow still empty: ${String(slow.isEmpty)}`);

// scope + produce: the producer lives exactly as long as the scope.
const total = await scope(async (s) => {
  const numbers = produce<number>(
    s,
    async (out, signal) => {
      for (let i = 1; i <= 4; i++) await out.send(i, { signal });
    },
    { capacity: 2 },
  );
  let sum = 0;
  // iterate({ signal }): the loop stops when the scope is cancelled or fails.
  for await (const n of numbers.iterate({ signal: s.signal })) sum += n;
  return sum;
});
console.log(`scope: sum ${total}`);

// Timeouts are cancellation: the block's signal aborts at the deadline.
const nothing = await withTimeoutOrUndefined(20, (signal) => delay(10_000, { signal }));
console.log(`timeout: ${String(nothing)}`);

// Web Streams: a channel is a ReadableStream away.
const words = new Channel<string>(Infinity);
for (const word of ['streams', 'too']) words.trySend(word);
words.close();
const read: string[] = [];
for await (const word of toReadableStream(words)) read.push(word);
console.log(`streams: ${read.join(' ')}`);

// WebSocket + server: a session is a pair of channels plus the connection's life, the
// same on both ends (and in browsers).
const server = await serve(
  { port: 0 },
  {
    '/shout': async (session) => {
      for await (const word of session.incoming) {
        await session.outgoing.send(String(word).toUpperCase());
      }
    }, // returning flushes and closes with 1000
  },
);
const session = await connect<string, string>(`${server.url}/shout`);
await session.outgoing.send('hello');
const shouted = await session.incoming.receive();
await session.close();
console.log(`websocket: ${shouted}; closed ${(await session.closed).code}`);
await server.close();
