/**
 * Properties of network channels Node↔Node (fast-check, seeded): several channels with
 * random capacities (0, 1..32, Infinity) and directions on one real `ws` connection,
 * random values (empty to ~64 KiB strings, nested JSON), and random interleavings of
 * send, trySend, abort, receive, tryReceive, close and cancel, with turns of the event
 * loop in between. Checked: every value is received exactly once or handed to its
 * sender's onUndelivered exactly once, never both; what arrives is what was sent, in the
 * order it was sent, per channel; every operation settles; errors are the ones that
 * explain them; and a stalled channel never blocks the others.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ClosedReceiveError, ClosedSendError } from '../../lib/index.js';
import { describeValue } from '../../lib/internal/describe-value.js';
import type { ReceiveChannel, SendChannel } from '../../lib/index.js';
import { observe } from '../helpers/async.js';
import type { Settled } from '../helpers/async.js';
import { sessionPair } from './pair.js';
import type { SessionPair } from './pair.js';
import { startPairServer } from './servers.js';
import type { PairServer } from './servers.js';

const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());
/** Runs per property: the file stays well under a minute here; CI may afford a few more. */
const RUNS = inCi ? 400 : 300;
const STALL_RUNS = inCi ? 150 : 100;

// --------------------------------------------------------------------------- values

/** What crosses: an id for the accounting, and a body that must arrive unchanged. */
interface Payload {
  readonly id: number;
  readonly body: unknown;
}

/** Strings from empty to ~64 KiB (one- to four-byte UTF-8 characters), and nested JSON. */
const bodyArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 16_384 }), fc.constantFrom('x', 'é', '€', '😀'))
      .map(([length, unit]) => unit.repeat(length)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);

const capacityArbitrary: fc.Arbitrary<number> = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 32 }),
  fc.constant(Infinity),
);

// ------------------------------------------------------------------------ programs

type Op =
  | {
      readonly op: 'send';
      readonly ch: number;
      readonly abortable: boolean;
      readonly body: unknown;
    }
  | { readonly op: 'trySend'; readonly ch: number; readonly body: unknown }
  | { readonly op: 'receive'; readonly ch: number; readonly abortable: boolean }
  | { readonly op: 'tryReceive'; readonly ch: number }
  | { readonly op: 'abort'; readonly pick: number }
  | { readonly op: 'turn' }
  | { readonly op: 'settle' }
  | { readonly op: 'close'; readonly ch: number; readonly withCause: boolean }
  | { readonly op: 'cancel'; readonly ch: number; readonly withReason: boolean };

/** Where a channel's sender is (the other end receives) and its receiving capacity. */
interface ChannelSpec {
  readonly capacity: number;
  readonly fromA: boolean;
}

interface Program {
  readonly channels: readonly ChannelSpec[];
  readonly ops: readonly Op[];
}

const programArbitrary: fc.Arbitrary<Program> = fc
  .array(fc.record({ capacity: capacityArbitrary, fromA: fc.boolean() }), {
    minLength: 1,
    maxLength: 4,
  })
  .chain((channels) => {
    const ch = fc.integer({ min: 0, max: channels.length - 1 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          op: fc.constant('send' as const),
          ch,
          abortable: fc.boolean(),
          body: bodyArbitrary,
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ op: fc.constant('trySend' as const), ch, body: bodyArbitrary }),
      },
      {
        weight: 6,
        arbitrary: fc.record({ op: fc.constant('receive' as const), ch, abortable: fc.boolean() }),
      },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('tryReceive' as const), ch }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
      { weight: 3, arbitrary: fc.constant({ op: 'turn' as const }) },
      { weight: 2, arbitrary: fc.constant({ op: 'settle' as const }) },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('close' as const), ch, withCause: fc.boolean() }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('cancel' as const), ch, withReason: fc.boolean() }),
      },
    );
    return fc.record({
      channels: fc.constant(channels),
      ops: fc.array(op, { minLength: 5, maxLength: 100 }),
    });
  });

// -------------------------------------------------------------------------- running

let server: PairServer | undefined;

async function openPair(): Promise<SessionPair> {
  if (server === undefined) throw new Error('the pair server is not running');
  return sessionPair(await server.open());
}

async function closePair(pair: SessionPair): Promise<void> {
  await pair.a.close();
  await pair.b.closed;
}

/** A macrotask turn: frames in flight may or may not arrive meanwhile. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Same class, name and message: how a built-in error given on one end is seen on the
 * other (re-created, docs/protocol.md section 6).
 */
function sameError(actual: unknown, expected: Error): boolean {
  return (
    actual instanceof Error &&
    Object.getPrototypeOf(actual) === Object.getPrototypeOf(expected) &&
    actual.name === expected.name &&
    actual.message === expected.message
  );
}

/** An error or value as a failure message shows it. */
function show(value: unknown): string {
  if (value instanceof Error) return `${value.constructor.name} ${value.name}: ${value.message}`;
  return describeValue(value);
}

/**
 * The default reason of `cancel()`: a DOMException named 'AbortError', on the cancelling
 * end and (re-created) on the other.
 */
function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

/** One channel of a program, with everything recorded about it. */
class Tracked {
  readonly offered = new Map<number, string>();
  readonly keptByCaller: number[] = [];
  /** Each value taken, with the position of the operation that took it (see `take`). */
  readonly taken: { readonly value: Payload; readonly position: number }[] = [];
  readonly undelivered: number[] = [];
  readonly sends: { id: number; outcome: { state: () => Settled<void> } }[] = [];
  readonly receives: { state: () => Settled<unknown> }[] = [];
  readonly closeCause: Error;
  readonly cancelReason: Error;
  readonly sender: SendChannel<Payload>;
  readonly receiver: ReceiveChannel<Payload>;

  constructor(pair: SessionPair, index: number, spec: ChannelSpec) {
    const name = `ch${index}`;
    const [sending, receiving] = spec.fromA ? [pair.a, pair.b] : [pair.b, pair.a];
    this.closeCause = new TypeError(`${name} closed with a cause`);
    this.cancelReason = new RangeError(`${name} cancelled with a reason`);
    this.sender = sending.channel<never, Payload>(name, {
      onUndelivered: (value) => this.undelivered.push(value.id),
    }).outgoing;
    this.receiver = receiving.channel<Payload, never>(name, { capacity: spec.capacity }).incoming;
  }

  #positions = 0;

  /**
   * The position of a receiving operation started now. Receivers are served first come,
   * first served, so ordered by position the values they took must be in sending order,
   * whenever their promises happen to settle.
   */
  position(): number {
    return (this.#positions += 1);
  }

  /** Records a value taken by the operation at `position`. */
  take(value: Payload, position: number): void {
    this.taken.push({ value, position });
  }

  /** The values taken, in the order the operations that took them started. */
  get received(): Payload[] {
    return [...this.taken].sort((a, b) => a.position - b.position).map((entry) => entry.value);
  }
}

async function runProgram(program: Program): Promise<void> {
  const pair = await openPair();
  try {
    const tracked = program.channels.map((spec, index) => new Tracked(pair, index, spec));
    await pair.settle();
    const controllers: AbortController[] = [];
    const abortReasons = new Set<unknown>();
    let nextId = 0;
    const signal = (abortable: boolean): AbortSignal | undefined => {
      if (!abortable) return undefined;
      const controller = new AbortController();
      controllers.push(controller);
      return controller.signal;
    };

    for (const step of program.ops) {
      switch (step.op) {
        case 'send': {
          const channel = tracked[step.ch]!;
          const id = (nextId += 1);
          channel.offered.set(id, JSON.stringify(step.body));
          const outcome = observe(
            channel.sender.send({ id, body: step.body }, { signal: signal(step.abortable) }),
          );
          channel.sends.push({ id, outcome });
          break;
        }
        case 'trySend': {
          const channel = tracked[step.ch]!;
          const id = (nextId += 1);
          if (channel.sender.trySend({ id, body: step.body }).ok) {
            channel.offered.set(id, JSON.stringify(step.body));
          } else {
            channel.keptByCaller.push(id);
          }
          break;
        }
        case 'receive': {
          const channel = tracked[step.ch]!;
          const position = channel.position();
          const pending = channel.receiver.receive({ signal: signal(step.abortable) });
          channel.receives.push(observe(pending.then((value) => channel.take(value, position))));
          break;
        }
        case 'tryReceive': {
          const channel = tracked[step.ch]!;
          const result = channel.receiver.tryReceive();
          if (result.ok) channel.take(result.value, channel.position());
          break;
        }
        case 'abort': {
          const live = controllers.filter((controller) => !controller.signal.aborted);
          const controller = live[step.pick % Math.max(live.length, 1)];
          const reason = new Error('aborted');
          abortReasons.add(reason);
          controller?.abort(reason);
          break;
        }
        case 'turn':
          await turn();
          break;
        case 'settle':
          await pair.settle();
          break;
        case 'close': {
          const channel = tracked[step.ch]!;
          channel.sender.close(step.withCause ? channel.closeCause : undefined);
          break;
        }
        case 'cancel': {
          const channel = tracked[step.ch]!;
          if (step.withReason) channel.receiver.cancel(channel.cancelReason);
          else channel.receiver.cancel();
          break;
        }
      }
    }

    // The end: every sender closes, every receiver drains, all at once (a stalled channel
    // must not hold the others up), then both ends settle.
    for (const channel of tracked) channel.sender.close();
    const drained = tracked.map(async (channel): Promise<unknown> => {
      try {
        for await (const value of channel.receiver) channel.take(value, channel.position());
        return undefined;
      } catch (error) {
        return error;
      }
    });
    const endings = await Promise.all(drained);
    await pair.settle();

    tracked.forEach((channel, index) => {
      const where = `channel ${index} (${JSON.stringify(program.channels[index])})`;
      const ending = endings[index];
      if (ending !== undefined) {
        const known =
          sameError(ending, channel.closeCause) ||
          ending === channel.cancelReason ||
          isAbortError(ending);
        expect(known, `${where}: drain ended with ${show(ending)}`).to.equal(true);
      }
      for (const operation of [...channel.sends.map((send) => send.outcome), ...channel.receives]) {
        expect(operation.state().status, `${where}: an operation still pending`).not.to.equal(
          'pending',
        );
      }
      for (const operation of channel.receives) {
        const state = operation.state();
        if (state.status !== 'rejected') continue;
        const { reason } = state;
        const known =
          reason instanceof ClosedReceiveError ||
          abortReasons.has(reason) ||
          sameError(reason, channel.closeCause) ||
          reason === channel.cancelReason ||
          isAbortError(reason);
        expect(known, `${where}: receive rejected with ${show(reason)}`).to.equal(true);
      }
      const receivedIds = channel.received.map((value) => value.id);
      for (const { id, outcome } of channel.sends) {
        const state = outcome.state();
        if (state.status !== 'rejected') continue;
        expect(channel.undelivered, `${where}: rejected send ${id} undelivered`).to.include(id);
        expect(receivedIds, `${where}: rejected send ${id} delivered nothing`).not.to.include(id);
        const { reason } = state;
        const known =
          reason instanceof ClosedSendError ||
          abortReasons.has(reason) ||
          reason === channel.closeCause ||
          sameError(reason, channel.cancelReason) ||
          isAbortError(reason);
        expect(known, `${where}: send ${id} rejected with ${show(reason)}`).to.equal(true);
      }
      const accounted = [...receivedIds, ...channel.undelivered];
      expect(new Set(accounted).size).to.equal(accounted.length, `${where}: counted twice`);
      expect([...accounted].sort((a, b) => a - b)).to.deep.equal(
        [...channel.offered.keys()].sort((a, b) => a - b),
        `${where}: every value received or undelivered`,
      );
      for (const id of channel.keptByCaller) expect(accounted).not.to.include(id);
      expect(receivedIds).to.deep.equal(
        [...receivedIds].sort((a, b) => a - b),
        `${where}: in the order sent`,
      );
      for (const value of channel.received) {
        expect(JSON.stringify(value.body), `${where}: body of ${value.id}`).to.equal(
          channel.offered.get(value.id),
        );
      }
    });
  } finally {
    await closePair(pair);
  }
}

// ------------------------------------------------------------------ the stall property

interface StallCase {
  readonly stalled: ChannelSpec;
  readonly stalledSends: number;
  readonly others: readonly ChannelSpec[];
  readonly values: number;
}

const stallArbitrary: fc.Arbitrary<StallCase> = fc.record({
  stalled: fc.record({ capacity: capacityArbitrary, fromA: fc.boolean() }),
  stalledSends: fc.integer({ min: 1, max: 40 }),
  others: fc.array(fc.record({ capacity: capacityArbitrary, fromA: fc.boolean() }), {
    minLength: 1,
    maxLength: 3,
  }),
  values: fc.integer({ min: 1, max: 50 }),
});

/**
 * One channel whose receiver never takes anything, with more sends than it has room for;
 * meanwhile every other channel on the connection carries all its values, in order. The
 * stalled sender has exactly as many sends resolved as the receiver has room; cancelling
 * its receiver then rejects the rest and hands every one of its values to onUndelivered.
 */
async function runStall(test: StallCase): Promise<void> {
  const pair = await openPair();
  try {
    const stalled = new Tracked(pair, 0, test.stalled);
    const others = test.others.map((spec, index) => new Tracked(pair, index + 1, spec));
    await pair.settle();
    const stalledSends = Array.from({ length: test.stalledSends }, (_, i) =>
      observe(stalled.sender.send({ id: i, body: `stalled ${i}` })),
    );
    await Promise.all(
      others.map(async (channel) => {
        const consumer = (async () => {
          for await (const value of channel.receiver) channel.take(value, channel.position());
        })();
        for (let id = 0; id < test.values; id++) await channel.sender.send({ id, body: id });
        channel.sender.close();
        await consumer;
      }),
    );
    for (const channel of others) {
      expect(channel.received.map((value) => value.id)).to.deep.equal([
        ...Array(test.values).keys(),
      ]);
      expect(channel.undelivered).to.deep.equal([]);
    }
    await pair.settle();
    const resolved = stalledSends.filter((send) => send.state().status === 'fulfilled').length;
    expect(resolved, 'stalled sends resolved').to.equal(
      Math.min(test.stalled.capacity, test.stalledSends),
    );
    expect(stalledSends.filter((send) => send.state().status === 'rejected')).to.deep.equal([]);
    stalled.receiver.cancel(stalled.cancelReason);
    await pair.settle();
    stalledSends.forEach((send, i) => {
      const state = send.state();
      if (i < resolved) expect(state.status).to.equal('fulfilled');
      else if (state.status !== 'rejected') expect.fail(`stalled send ${i} is ${state.status}`);
      else expect(sameError(state.reason, stalled.cancelReason)).to.equal(true);
    });
    expect([...stalled.undelivered].sort((a, b) => a - b)).to.deep.equal([
      ...Array(test.stalledSends).keys(),
    ]);
  } finally {
    await closePair(pair);
  }
}

// ------------------------------------------------------------------------ the specs

describe('network channels, properties (Node↔Node, one connection per run)', () => {
  before(async () => {
    server = await startPairServer();
  });

  after(async () => {
    await server?.close();
    server = undefined;
  });

  it('accounts for every value exactly once, unchanged and in order per channel, under random send, receive, abort, close and cancel on several channels (seeded)', async () => {
    await fc.assert(fc.asyncProperty(programArbitrary, runProgram), {
      seed: 20_251_122,
      numRuns: RUNS,
    });
  });

  it('a stalled channel holds exactly its capacity of sends and never blocks the other channels (seeded)', async () => {
    await fc.assert(fc.asyncProperty(stallArbitrary, runStall), {
      seed: 20_251_123,
      numRuns: STALL_RUNS,
    });
  });
});
