/**
 * The channel benchmark: sluice's `Channel` beside a floor, a hand-written queue and
 * the peer libraries, each written the way its own users would write it. `npm run
 * bench` (`benchmarks/run.ts`) runs every job in fresh processes of this file; run one
 * job by hand with
 * `node --expose-gc --import tsx benchmarks/channel.bench.ts <job> <implementation> [--n N]`
 * (jobs: spsc, rendezvous, mpmc, batch, idle, pending, waiter-one, waiter-own; `memory` runs
 * all four memory jobs in one process; `thenable` runs the thenable check).
 *
 * @module
 */
import { pathToFileURL } from 'node:url';

import type { Push, Repeater } from '@repeaterjs/repeater';
import type * as Cause from 'effect/Cause';

import { shareOf, valueOf } from './lib/check.js';
import type { Check } from './lib/check.js';
import { HandQueue } from './lib/hand-queue.js';
import { measureMemory, measureThroughput } from './lib/measure.js';
import { MEMORY, isMemory, isScenario, support } from './lib/protocol.js';
import type {
  ChildResult,
  Implementation,
  MemoryFigure,
  ParkMode,
  Parked,
  ThenableReport,
} from './lib/protocol.js';
import type { TsChan } from './lib/ts-chan.js';

// Packages are imported inside each implementation's `load`, so the child that measures
// one implementation loads only that one.

const RESOLVED: Promise<void> = Promise.resolve();

/** Starts `count` tasks, `body(0)` first. */
function spawn(count: number, body: (index: number) => Promise<void>): Promise<void>[] {
  return Array.from({ length: count }, (_, index) => body(index));
}

/** An async task that awaits `receive` (the form `waiter-*` memory jobs measure). */
async function awaitIn(receive: Promise<unknown>): Promise<unknown> {
  const value = await receive;
  return value;
}

/**
 * Waiting receivers for the memory jobs: `make` a channel (one for all, or one per
 * receiver), call `receive` on it per slot, and `give` each its value on release.
 */
function parkOn<C>(
  count: number,
  mode: ParkMode,
  make: () => C,
  receive: (channel: C) => Promise<unknown>,
  give: (channel: C, value: number) => void,
): Parked {
  const held = new Array<C | undefined>(count).fill(undefined);
  return {
    start(waiting) {
      const one = mode === 'waiter-own' ? undefined : make();
      for (let i = 0; i < count; i++) {
        const channel = one ?? make();
        held[i] = channel;
        waiting[i] = mode === 'pending' ? receive(channel) : awaitIn(receive(channel));
      }
    },
    release() {
      for (let i = 0; i < count; i++) give(held[i]!, i);
    },
  };
}

function refused(what: string): never {
  throw new Error(`${what} was refused although a receiver was waiting`);
}

// ------------------------------------------------------------------ references

async function floorPipe(
  n: number,
  _capacity: number,
  producers: number,
  consumers: number,
  check: Check,
): Promise<void> {
  if (producers !== consumers) throw new Error('the floor pairs each producer with a consumer');
  // Consumers start first, so each reads the slot its producer filled just before.
  const slots = new Float64Array(producers);
  const receiving = spawn(consumers, async (c) => {
    for (let k = 0, count = shareOf(c, n, producers); k < count; k++) {
      await RESOLVED;
      check.take(c, slots[c]!);
    }
  });
  const sending = spawn(producers, async (p) => {
    for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
      slots[p] = valueOf(p, k, producers);
      await RESOLVED;
    }
  });
  await Promise.all([...receiving, ...sending]);
}

const floor: Implementation = {
  id: 'floor',
  name: 'floor',
  note: 'floor: two loops, each awaiting a resolved promise once per message, the value handed over in a plain variable (no queue); in C, four such pairs',
  lacks: {
    idle: 'not a channel',
    pending: 'not a channel',
    'waiter-one': 'not a channel',
    'waiter-own': 'not a channel',
  },
  load: async () => ({
    pipe: floorPipe,
    batch: (n, capacity, check) => floorPipe(n, capacity, 1, 1, check),
  }),
};

const barePromise: Implementation = {
  id: 'bare-promise',
  name: 'bare promise',
  note: 'bare promise: `new Promise(...)` with its resolve function kept (in a preallocated array), alone or awaited by an async task: the least a waiting receiver can cost',
  lacks: {
    spsc: 'not a channel',
    rendezvous: 'not a channel',
    mpmc: 'not a channel',
    batch: 'not a channel',
    idle: 'not a channel',
  },
  load: async () => ({
    park: (count, mode) => {
      const resolvers = new Array<((value: number) => void) | undefined>(count).fill(undefined);
      return {
        start(waiting) {
          for (let i = 0; i < count; i++) {
            const promise = new Promise<number>((resolve) => {
              resolvers[i] = resolve;
            });
            waiting[i] = mode === 'pending' ? promise : awaitIn(promise);
          }
        },
        release() {
          for (let i = 0; i < count; i++) resolvers[i]!(i);
        },
      };
    },
  }),
};

const handQueue: Implementation = {
  id: 'hand-queue',
  name: 'hand-written queue',
  note: 'hand-written queue: benchmarks/lib/hand-queue.ts, a ring buffer and two waiter arrays, no abort/cancel/select',
  lacks: {},
  load: async () => ({
    pipe: async (n, capacity, producers, consumers, check) => {
      const queue = new HandQueue<number>(capacity);
      const receiving = spawn(consumers, async (c) => {
        for await (const value of queue) check.take(c, value);
      });
      await Promise.all(
        spawn(producers, async (p) => {
          for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
            await queue.send(valueOf(p, k, producers));
          }
        }),
      );
      queue.close();
      await Promise.all(receiving);
    },
    batch: async (n, capacity, check) => {
      const queue = new HandQueue<number>(capacity);
      const receiving = (async () => {
        for (;;) {
          const result = queue.tryReceive() ?? (await queue.next());
          if (result.done === true) return;
          check.take(0, result.value);
        }
      })();
      for (let value = 0; value < n; value++) {
        if (!queue.trySend(value)) await queue.send(value);
      }
      queue.close();
      await receiving;
    },
    idle: () => new HandQueue<number>(16),
    park: (count, mode) =>
      parkOn(
        count,
        mode,
        () => new HandQueue<number>(0),
        (queue) => queue.next(),
        (queue, value) => {
          if (!queue.trySend(value)) refused('trySend');
        },
      ),
  }),
};

// ---------------------------------------------------------------------- sluice

const sluice: Implementation = {
  id: 'sluice',
  name: 'sluice',
  lacks: {},
  load: async () => {
    const { Channel } = await import('../lib/index.js');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        const channel = new Channel<number>(capacity);
        const receiving = spawn(consumers, async (c) => {
          for await (const value of channel) check.take(c, value);
        });
        await Promise.all(
          spawn(producers, async (p) => {
            for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
              await channel.send(valueOf(p, k, producers));
            }
          }),
        );
        channel.close();
        await Promise.all(receiving);
      },
      batch: async (n, capacity, check) => {
        const channel = new Channel<number>(capacity);
        const receiving = (async () => {
          for (;;) {
            let result = channel.tryReceive();
            if (!result.ok) {
              if (result.closed) return;
              result = await channel.receiveCatching();
              if (!result.ok) return;
            }
            check.take(0, result.value);
          }
        })();
        for (let value = 0; value < n; value++) {
          if (!channel.trySend(value).ok) await channel.send(value);
        }
        channel.close();
        await receiving;
      },
      idle: () => new Channel<number>(16),
      park: (count, mode) =>
        parkOn(
          count,
          mode,
          () => new Channel<number>(),
          (channel) => channel.receive(),
          (channel, value) => {
            if (!channel.trySend(value).ok) refused('trySend');
          },
        ),
    };
  },
};

/**
 * sluice with `iterate({ signal })` in place of `for await (… of channel)`: what a
 * cancellable loop costs over a plain one (a signal that never aborts).
 */
const sluiceIterate: Implementation = {
  id: 'sluice-iterate',
  name: 'sluice iterate({ signal })',
  optional: true,
  note: 'sluice iterate({ signal }): sluice with each consumer looping over `channel.iterate({ signal })` (a signal that never aborts) instead of `for await (… of channel)`',
  lacks: {
    batch: 'no loop: D uses tryReceive/receiveCatching',
    idle: 'the same channel as sluice',
    pending: 'no loop: a pending receive()',
    'waiter-one': 'no loop: a pending receive()',
    'waiter-own': 'no loop: a pending receive()',
  },
  load: async () => {
    const { Channel } = await import('../lib/index.js');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        const channel = new Channel<number>(capacity);
        const { signal } = new AbortController();
        const receiving = spawn(consumers, async (c) => {
          for await (const value of channel.iterate({ signal })) check.take(c, value);
        });
        await Promise.all(
          spawn(producers, async (p) => {
            for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
              await channel.send(valueOf(p, k, producers));
            }
          }),
        );
        channel.close();
        await Promise.all(receiving);
      },
    };
  },
};

// ----------------------------------------------------------------------- peers

const repeater: Implementation = {
  id: 'repeater',
  name: '@repeaterjs/repeater',
  note: '@repeaterjs/repeater: producers push inside the executor, consumers share the repeater with `for await`; without a buffer, `push` resolves when the consumer asks for the following value (one step later than a rendezvous)',
  lacks: {
    batch: 'no non-waiting push or next',
    pending: 'at most 1,024 pending next() calls per repeater',
    'waiter-one': 'at most 1,024 pending next() calls per repeater',
  },
  load: async () => {
    const { FixedBuffer, Repeater } = await import('@repeaterjs/repeater');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        const values = new Repeater<number, void>(
          async (push, stop) => {
            await Promise.all(
              spawn(producers, async (p) => {
                for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
                  await push(valueOf(p, k, producers));
                }
              }),
            );
            stop();
          },
          capacity > 0 ? new FixedBuffer(capacity) : undefined,
        );
        await Promise.all(
          spawn(consumers, async (c) => {
            for await (const value of values) check.take(c, value);
          }),
        );
      },
      idle: () => new Repeater<number, void>(() => undefined, new FixedBuffer(16)),
      park: (count) => {
        const pushes = new Array<Push<number> | undefined>(count).fill(undefined);
        const held = new Array<Repeater<number, void> | undefined>(count).fill(undefined);
        return {
          start(waiting) {
            for (let i = 0; i < count; i++) {
              const values = new Repeater<number, void>((push) => {
                pushes[i] = push;
              });
              held[i] = values;
              waiting[i] = awaitIn(values.next());
            }
          },
          release() {
            for (let i = 0; i < count; i++) void pushes[i]!(i);
          },
        };
      },
    };
  },
};

const itPushable: Implementation = {
  id: 'it-pushable',
  name: 'it-pushable',
  note: 'it-pushable: push() is synchronous and unbounded; the 64-message bound is emulated with `await onEmpty()` once 64 are buffered, so its producer awaits once per 64 messages, not once per message',
  lacks: {
    rendezvous: 'no rendezvous: push() never waits',
    mpmc: 'single consumer: a second waiting next() replaces the first one’s wake-up',
    batch: 'no non-waiting receive',
    pending: 'single consumer: one waiting next() per pushable',
    'waiter-one': 'single consumer: one waiting next() per pushable',
  },
  load: async () => {
    const { pushable } = await import('it-pushable');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        if (consumers !== 1) throw new Error('single consumer');
        const source = pushable<number>({ objectMode: true });
        const receiving = (async () => {
          for await (const value of source) check.take(0, value);
        })();
        await Promise.all(
          spawn(producers, async (p) => {
            for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
              source.push(valueOf(p, k, producers));
              if (source.readableLength >= capacity) await source.onEmpty();
            }
          }),
        );
        source.end();
        await receiving;
      },
      idle: () => pushable<number>({ objectMode: true }),
      park: (count, mode) =>
        parkOn(
          count,
          mode,
          () => pushable<number>({ objectMode: true }),
          (source) => source.next(),
          (source, value) => {
            source.push(value);
          },
        ),
    };
  },
};

const effect: Implementation = {
  id: 'effect',
  name: 'effect Queue.bounded',
  note: 'effect: fibers in one Effect.runPromise, `yield* Queue.offer` / `yield* Queue.take` until `Queue.end`; D uses offerUnsafe/takeUnsafe first; waiting receivers are fibers (Effect.runPromise(Queue.take(q))), not async functions',
  lacks: {},
  load: async () => {
    const [Effect, Exit, Queue] = await Promise.all([
      import('effect/Effect'),
      import('effect/Exit'),
      import('effect/Queue'),
    ]);
    return {
      pipe: (n, capacity, producers, consumers, check) =>
        Effect.runPromise(
          Effect.gen(function* () {
            const queue = yield* Queue.bounded<number, Cause.Done>(capacity);
            const receivers = Array.from({ length: consumers }, (_, c) =>
              Effect.gen(function* () {
                for (;;) check.take(c, yield* Queue.take(queue));
              }).pipe(Effect.catch(() => Effect.void)),
            );
            const senders = Array.from({ length: producers }, (_, p) =>
              Effect.gen(function* () {
                for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
                  if (!(yield* Queue.offer(queue, valueOf(p, k, producers)))) {
                    check.fail('offer refused');
                  }
                }
              }),
            );
            yield* Effect.all(
              [
                Effect.all(receivers, { concurrency: 'unbounded' }),
                Effect.all(senders, { concurrency: 'unbounded' }).pipe(
                  Effect.andThen(Queue.end(queue)),
                ),
              ],
              { concurrency: 'unbounded' },
            );
          }),
        ),
      batch: (n, capacity, check) =>
        Effect.runPromise(
          Effect.gen(function* () {
            const queue = yield* Queue.bounded<number, Cause.Done>(capacity);
            const receiver = Effect.gen(function* () {
              for (;;) {
                const taken = Queue.takeUnsafe(queue);
                if (taken === undefined) check.take(0, yield* Queue.take(queue));
                else if (Exit.isSuccess(taken)) check.take(0, taken.value);
                else return;
              }
            }).pipe(Effect.catch(() => Effect.void));
            const sender = Effect.gen(function* () {
              for (let value = 0; value < n; value++) {
                if (!Queue.offerUnsafe(queue, value) && !(yield* Queue.offer(queue, value))) {
                  check.fail('offer refused');
                }
              }
              yield* Queue.end(queue);
            });
            yield* Effect.all([receiver, sender], { concurrency: 'unbounded' });
          }),
        ),
      idle: () => Effect.runSync(Queue.bounded<number>(16)),
      park: (count, mode) =>
        parkOn(
          count,
          mode,
          () => Effect.runSync(Queue.bounded<number>(0)),
          (queue) => Effect.runPromise(Queue.take(queue)),
          (queue, value) => {
            if (!Queue.offerUnsafe(queue, value)) refused('offerUnsafe');
          },
        ),
    };
  },
};

function tsChan(unsafe: boolean): Implementation {
  return {
    id: unsafe ? 'ts-chan-unsafe' : 'ts-chan',
    name: unsafe ? 'ts-chan (unsafe)' : 'ts-chan',
    optional: unsafe,
    note: unsafe
      ? 'ts-chan (unsafe): setUnsafe(true) skips its yield to the macrotask queue in send/recv'
      : 'ts-chan: default settings, whose send/recv yield to the macrotask queue (setImmediate) unless the other side already did (`--impl ts-chan-unsafe` adds the setUnsafe(true) variant)',
    lacks: {},
    load: async () => {
      const { Chan } = await import('./lib/ts-chan.js');
      const make = (capacity: number): TsChan<number> => {
        const channel = new Chan<number>(capacity);
        return unsafe ? channel.setUnsafe(true) : channel;
      };
      return {
        pipe: async (n, capacity, producers, consumers, check) => {
          const channel = make(capacity);
          const receiving = spawn(consumers, async (c) => {
            for await (const value of channel) check.take(c, value);
          });
          await Promise.all(
            spawn(producers, async (p) => {
              for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
                await channel.send(valueOf(p, k, producers));
              }
            }),
          );
          channel.close();
          await Promise.all(receiving);
        },
        batch: async (n, capacity, check) => {
          const channel = make(capacity);
          const receiving = (async () => {
            for (;;) {
              const result = channel.tryRecv() ?? (await channel.recv());
              if (result.done === true) return;
              check.take(0, result.value);
            }
          })();
          for (let value = 0; value < n; value++) {
            if (!channel.trySend(value)) await channel.send(value);
          }
          channel.close();
          await receiving;
        },
        idle: () => make(16),
        park: (count, mode) =>
          parkOn(
            count,
            mode,
            () => make(0),
            (channel) => channel.recv(),
            (channel, value) => {
              if (!channel.trySend(value)) refused('trySend');
            },
          ),
      };
    },
  };
}

const asyncChannel: Implementation = {
  id: 'async-channel',
  name: 'async-channel',
  note: 'async-channel: `await push(v)`, `for await`; every value is wrapped in a promise internally',
  lacks: { batch: 'no non-waiting send or receive' },
  load: async () => {
    const { Channel: AsyncChannel } = await import('async-channel');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        const channel = new AsyncChannel<number>(capacity);
        const receiving = spawn(consumers, async (c) => {
          for await (const value of channel) check.take(c, value);
        });
        await Promise.all(
          spawn(producers, async (p) => {
            for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
              await channel.push(valueOf(p, k, producers));
            }
          }),
        );
        channel.close();
        await Promise.all(receiving);
      },
      idle: () => new AsyncChannel<number>(16),
      park: (count, mode) =>
        parkOn(
          count,
          mode,
          () => new AsyncChannel<number>(0),
          (channel) => channel.get(),
          (channel, value) => {
            void channel.push(value);
          },
        ),
    };
  },
};

const medium: Implementation = {
  id: 'medium',
  name: 'medium',
  note: 'medium: `await put(ch, v)`, `await take(ch)` until CLOSED (it has no async iterator); rendezvous is chan() (chan(0) never releases a put)',
  lacks: { batch: 'no non-waiting put or take' },
  load: async () => {
    const { CLOSED, chan, close, put, take } = await import('medium');
    return {
      pipe: async (n, capacity, producers, consumers, check) => {
        const channel = capacity === 0 ? chan<number>() : chan<number>(capacity);
        const receiving = spawn(consumers, async (c) => {
          for (;;) {
            const value = await take(channel);
            // (`typeof` narrows for the compiler: a destructured unique symbol does not.)
            if (value === CLOSED || typeof value !== 'number') return;
            check.take(c, value);
          }
        });
        await Promise.all(
          spawn(producers, async (p) => {
            for (let k = 0, count = shareOf(p, n, producers); k < count; k++) {
              if (!(await put(channel, valueOf(p, k, producers)))) check.fail('put refused');
            }
          }),
        );
        close(channel);
        await Promise.all(receiving);
      },
      idle: () => chan<number>(16),
      park: (count, mode) =>
        parkOn(
          count,
          mode,
          () => chan<number>(),
          (channel) => take(channel),
          (channel, value) => {
            void put(channel, value);
          },
        ),
    };
  },
};

/** Every implementation, in table order. */
export const IMPLEMENTATIONS: readonly Implementation[] = [
  floor,
  barePromise,
  sluice,
  sluiceIterate,
  handQueue,
  repeater,
  itPushable,
  effect,
  tsChan(false),
  tsChan(true),
  asyncChannel,
  medium,
];

// -------------------------------------------------------------------- thenable

/** What `await x` does to a channel holding one buffered 42. */
async function awaitOutcome(channel: unknown, stillThere: () => boolean): Promise<string> {
  const awaited: unknown = await channel;
  if (awaited === channel) {
    return stillThere()
      ? '`await channel` gives back the channel; the buffered 42 stays'
      : '`await channel` gives back the channel but the buffered 42 is gone';
  }
  return `\`await channel\` takes a value (got ${String(awaited)})`;
}

/** A `Channel` must not be thenable: `await channel` must not take a value. */
export async function probeThenables(): Promise<ThenableReport[]> {
  const reports: ThenableReport[] = [];
  const { Channel } = await import('../lib/index.js');
  const channel = new Channel<number>(1);
  channel.trySend(42);
  const thenable = typeof Reflect.get(channel, 'then') === 'function';
  const outcome = await awaitOutcome(channel, () => {
    const result = channel.tryReceive();
    return result.ok && result.value === 42;
  });
  reports.push({
    name: sluice.name,
    thenable,
    outcome,
    pass: !thenable && outcome.endsWith('the buffered 42 stays'),
  });
  const { Channel: AsyncChannel } = await import('async-channel');
  const viaAsyncChannel = new AsyncChannel<number>(1);
  void viaAsyncChannel.push(42);
  reports.push({
    name: asyncChannel.name,
    thenable: true,
    outcome: await awaitOutcome(viaAsyncChannel, () => viaAsyncChannel.bufferSize === 1),
    pass: true,
  });
  const { chan, put } = await import('medium');
  const viaMedium = chan<number>(1);
  void put(viaMedium, 42);
  reports.push({
    name: medium.name,
    thenable: true,
    outcome: await awaitOutcome(viaMedium, () => false),
    pass: true,
  });
  for (const impl of IMPLEMENTATIONS) {
    if (impl.optional === true || support(impl, 'idle') !== true) continue;
    if (reports.some((r) => r.name === impl.name)) continue;
    const idle = (await impl.load()).idle?.();
    const isThenable =
      typeof idle === 'object' && idle !== null && typeof Reflect.get(idle, 'then') === 'function';
    reports.push({
      name: impl.name,
      thenable: isThenable,
      outcome: isThenable
        ? 'has a then method'
        : 'no then method, so `await` gives back the channel',
      pass: true,
    });
  }
  return reports;
}

// ----------------------------------------------------------------------- child

const USAGE =
  'usage: channel.bench.ts <spsc|rendezvous|mpmc|batch|idle|pending|waiter-one|waiter-own> <implementation> [--n N] | memory <implementation> [--n N] [--jobs idle,pending,...] | thenable';

async function child(args: readonly string[]): Promise<ChildResult> {
  const [job = '', id = '', ...rest] = args;
  if (job === 'thenable') return { ok: true, thenable: await probeThenables() };
  const options = new Map<string, string>();
  for (let i = 0; i + 1 < rest.length; i += 2) options.set(rest[i]!, rest[i + 1]!);
  const impl = IMPLEMENTATIONS.find((candidate) => candidate.id === id);
  if (impl === undefined) {
    return {
      ok: false,
      error: `unknown implementation '${id}' (${IMPLEMENTATIONS.map((i) => i.id).join(', ')}); ${USAGE}`,
    };
  }
  const nText = options.get('--n');
  const n = nText === undefined ? undefined : Number(nText);
  if (n !== undefined && !(Number.isSafeInteger(n) && n > 0)) {
    return { ok: false, error: `Expected --n to be a positive integer, got ${String(nText)}` };
  }
  if (job === 'memory') {
    // Several memory jobs in one process, one after the other, each from its own baseline.
    const jobs = (options.get('--jobs') ?? Object.keys(MEMORY).join(',')).split(',');
    const memory: MemoryFigure[] = [];
    const ops = await impl.load();
    for (const each of jobs) {
      if (!isMemory(each)) return { ok: false, error: `unknown memory job '${each}'` };
      if (support(impl, each) !== true) continue;
      memory.push({ job: each, result: await measureMemory(ops, each, n ?? 20_000) });
    }
    return { ok: true, memory };
  }
  if (!isScenario(job) && !isMemory(job))
    return { ok: false, error: `unknown job '${job}'; ${USAGE}` };
  const supported = support(impl, job);
  if (supported !== true) return { ok: false, error: `${impl.name} has no '${job}': ${supported}` };
  const ops = await impl.load();
  if (isScenario(job)) return measureThroughput(ops, job, n ?? 1_000_000);
  return measureMemory(ops, job, n ?? 20_000);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  let printed = false;
  const print = (result: ChildResult): void => {
    if (printed) return;
    printed = true;
    const cpu = process.cpuUsage();
    const processCpuSeconds = (cpu.user + cpu.system) / 1e6;
    process.stdout.write(`${JSON.stringify({ ...result, processCpuSeconds })}\n`);
  };
  const failWith = (error: unknown): void => {
    print({
      ok: false,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exitCode = 1;
  };
  process.on('unhandledRejection', failWith);
  process.on('exit', () => {
    print({
      ok: false,
      error:
        'the run never finished: nothing was left to run while tasks still waited (a lost value or a lost wake-up)',
    });
  });
  child(process.argv.slice(2)).then(print, failWith);
}
