/**
 * Channel semantics that must come out the same in every runtime and for every kind of
 * channel: ordering, close, cancel, abort, exactly-once accounting (with a seeded
 * fast-check property), `for await`, `iterate({ signal })` (with a property of its own:
 * loops aborted at random points) and `await using`. The kinds are given: the local
 * ones of spec/helpers/kinds.ts (Node runs them from channel.cases.spec.ts, Chromium from
 * channel.suite.ts), or network channel pairs whose two ends are on two sessions
 * (spec/network/conformance.spec.ts, network.suite.ts). Where the cases let things happen
 * they call the kind's `settle()`: microtask ticks locally, quiescence of both ends across
 * the wire. Each place where a network pair legitimately differs reads a flag of the kind
 * (see `CaseKind`) and says why. Browser-safe: no Node built-ins, no `process`; time only
 * where the platform's own timer signal is the point.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Channel, ClosedReceiveError, ClosedSendError } from '../../lib/index.js';
import { observe } from '../helpers/async.js';
import type { Settled } from '../helpers/async.js';
import { rejection } from '../helpers/outcomes.js';
import { localCaseKinds } from '../helpers/kinds.js';
import type { CaseKind } from '../helpers/kinds.js';
import type { Platform } from './env.js';

/** Title of the top-level suite, the same on every platform. */
export const CHANNEL_CASES_TITLE = 'Channel, identically in every runtime';

/** Seed of the exactly-once property: every runtime replays the same programs. */
const SEED = 20_240_601;

/**
 * Whether `actual` is the cause `given` to close or cancel, as seen by an operation on
 * the other side of the channel (`crossed`): the same object, or, for a kind that
 * re-creates causes (across the wire), a different error of the same class (the causes
 * given here are built-in errors, which keep their class) with the same name and
 * message. An operation on the side where the cause was given always sees the object.
 */
function isCause(kind: CaseKind, actual: unknown, given: Error, crossed: boolean): boolean {
  if (actual === given) return !(crossed && kind.recreatesCauses);
  return (
    crossed &&
    kind.recreatesCauses &&
    actual instanceof Error &&
    Object.getPrototypeOf(actual) === Object.getPrototypeOf(given) &&
    actual.name === given.name &&
    actual.message === given.message
  );
}

/** Asserts what {@link isCause} tells, with a message that shows both errors. */
function expectCause(kind: CaseKind, actual: unknown, given: Error, crossed: boolean): void {
  const how = crossed && kind.recreatesCauses ? 're-created' : 'the same object';
  expect(isCause(kind, actual, given, crossed)).to.equal(
    true,
    `expected ${String(actual)} to be ${String(given)}, ${how}`,
  );
}

function undeliveredLog<T>(): { values: T[]; onUndelivered: (value: T) => void } {
  const values: T[] = [];
  return { values, onUndelivered: (value) => values.push(value) };
}

/** Whether the runtime itself parses `await using` (rather than a compiler lowering it). */
function parsesAwaitUsing(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- parsing is the point
    new Function('return async () => { await using resource = null; return resource; };');
    return true;
  } catch (error) {
    if (error instanceof SyntaxError) return false;
    throw error;
  }
}

// ------------------------------------------------------------------ the property

type Op =
  | { readonly op: 'send'; readonly sender: number; readonly abortable: boolean }
  | { readonly op: 'trySend'; readonly sender: number }
  | { readonly op: 'receive'; readonly abortable: boolean }
  | { readonly op: 'receiveCatching' }
  | { readonly op: 'tryReceive' }
  | { readonly op: 'abort'; readonly pick: number }
  | { readonly op: 'tick'; readonly n: number }
  | { readonly op: 'close'; readonly withCause: boolean }
  | { readonly op: 'cancel' };

const openOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('send' as const),
      sender: fc.integer({ min: 0, max: 2 }),
      abortable: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('trySend' as const),
      sender: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('receive' as const), abortable: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('receiveCatching' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tryReceive' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 3 }) }),
  },
);

const endOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('close' as const), withCause: fc.boolean() }),
  fc.record({ op: fc.constant('cancel' as const) }),
);

/** Mostly operations on an open channel, then a tail where close and cancel may come in. */
const programArbitrary: fc.Arbitrary<Op[]> = fc
  .tuple(
    fc.array(openOp, { minLength: 10, maxLength: 50, size: 'max' }),
    fc.array(fc.oneof(openOp, endOp), { maxLength: 12, size: 'max' }),
  )
  .map(([open, tail]) => [...open, ...tail]);

/**
 * Runs one random program against a fresh channel, then closes it, drains it and checks
 * that every offered value was received exactly once or handed to `onUndelivered`
 * exactly once, never both; that a rejected send delivered nothing; that a failed
 * `trySend` kept its value; and that every operation settled.
 */
async function runProgram(kind: CaseKind, program: readonly Op[]): Promise<void> {
  const log = undeliveredLog<number>();
  const channel = await kind.create<number>(log);
  const closeCause = new Error('closed with a cause');
  const cancelReason = new Error('cancelled');
  const controllers: AbortController[] = [];
  const abortReasons = new Set<unknown>();
  const offered = new Set<number>();
  const keptByCaller: number[] = [];
  const received: number[] = [];
  const sends: { value: number; outcome: { state: () => Settled<void> } }[] = [];
  const operations: { state: () => Settled<unknown> }[] = [];
  const counters = [0, 0, 0];
  const nextValue = (sender: number): number => sender * 1_000 + (counters[sender]! += 1);
  const signal = (abortable: boolean): AbortSignal | undefined => {
    if (!abortable) return undefined;
    const controller = new AbortController();
    controllers.push(controller);
    return controller.signal;
  };

  for (const step of program) {
    switch (step.op) {
      case 'send': {
        const value = nextValue(step.sender);
        offered.add(value);
        const outcome = observe(channel.send(value, { signal: signal(step.abortable) }));
        sends.push({ value, outcome });
        operations.push(outcome);
        break;
      }
      case 'trySend': {
        const value = nextValue(step.sender);
        if (channel.trySend(value).ok) offered.add(value);
        else keptByCaller.push(value);
        break;
      }
      case 'receive': {
        const pending = channel.receive({ signal: signal(step.abortable) });
        operations.push(observe(pending.then((value) => void received.push(value))));
        break;
      }
      case 'receiveCatching': {
        const pending = channel.receiveCatching();
        const recorded = pending.then((result) => {
          if (result.ok) received.push(result.value);
        });
        operations.push(observe(recorded));
        break;
      }
      case 'tryReceive': {
        const result = channel.tryReceive();
        if (result.ok) received.push(result.value);
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
      case 'tick':
        await kind.settle(step.n);
        break;
      case 'close':
        channel.close(step.withCause ? closeCause : undefined);
        break;
      case 'cancel':
        channel.cancel(cancelReason);
        break;
    }
  }

  channel.close();
  try {
    for await (const value of channel) received.push(value);
  } catch (error) {
    // The close cause was given on the sending side, the cancel reason on this one.
    const known =
      isCause(kind, error, closeCause, true) || isCause(kind, error, cancelReason, false);
    expect(known, `drain ended with ${String(error)}`).to.equal(true);
  }
  await kind.settle(20);

  const unsettled = operations.filter((operation) => operation.state().status === 'pending');
  expect(unsettled, 'operations still pending after close and drain').to.have.length(0);
  for (const { value, outcome } of sends) {
    const state = outcome.state();
    if (state.status !== 'rejected') continue;
    expect(log.values, `rejected send of ${value} goes to onUndelivered`).to.include(value);
    expect(received, `rejected send of ${value} delivered nothing`).not.to.include(value);
    const { reason } = state;
    const known =
      reason instanceof ClosedSendError ||
      abortReasons.has(reason) ||
      isCause(kind, reason, closeCause, false) ||
      isCause(kind, reason, cancelReason, true);
    expect(known, `send of ${value} rejected with ${String(reason)}`).to.equal(true);
  }
  const accounted = [...received, ...log.values];
  expect(new Set(accounted).size).to.equal(accounted.length, 'no value counted twice');
  expect([...accounted].sort((a, b) => a - b)).to.deep.equal(
    [...offered].sort((a, b) => a - b),
    'every offered value received or undelivered',
  );
  for (const value of keptByCaller) expect(accounted).not.to.include(value);
}

// --------------------------------------------------------------------- the cases

/** What {@link defineChannelCases} declares, and over which kinds. */
export interface ChannelCasesOptions {
  /** Title of the top-level suite; runs that must be compared share it. */
  readonly title: string;
  /** The kinds every per-kind case runs over; 'across kinds' uses the rendezvous one. */
  readonly kinds: readonly CaseKind[];
  /**
   * True to declare also the cases that are about the runtime or about one local
   * `Channel` object (see 'across kinds'); false for kinds whose ends are apart.
   */
  readonly local: boolean;
  /** Runs once after the suite: e.g. closes the connections the kinds opened. */
  readonly after?: (() => Promise<void>) | undefined;
}

/** The local run: every kind of spec/helpers/kinds.ts, and the runtime checks. */
export const localChannelCases: ChannelCasesOptions = {
  title: CHANNEL_CASES_TITLE,
  kinds: localCaseKinds,
  local: true,
};

function rendezvousOf(kinds: readonly CaseKind[]): CaseKind {
  const found = kinds.find((kind) => kind.capacity === 0 && kind.overflow === 'suspend');
  if (found === undefined) throw new Error('Expected a rendezvous kind among the kinds');
  return found;
}

/** Declares the shared channel suite; `platform` is where it runs. */
export function defineChannelCases(
  platform: Platform,
  options: ChannelCasesOptions = localChannelCases,
): void {
  const { local } = options;
  describe(options.title, () => {
    if (options.after !== undefined) after(options.after);

    // About the runtime, not about a kind: declared once, with the local kinds.
    if (local) {
      describe('the runtime', () => {
        it('has what the channel relies on: queueMicrotask, AbortSignal reasons, DOMException', () => {
          expect(typeof queueMicrotask).to.equal('function');
          const reason = new Error('why');
          expect(AbortSignal.abort(reason).reason).to.equal(reason);
          const standard: unknown = AbortSignal.abort().reason;
          expect(standard).to.be.instanceOf(DOMException);
          expect(standard).to.include({ name: 'AbortError' });
          expect(typeof Symbol.asyncIterator).to.equal('symbol');
        });

        it('defines Symbol.asyncDispose, so a channel is async-disposable', () => {
          expect(typeof Symbol.asyncDispose).to.equal('symbol');
          expect(typeof new Channel<number>()[Symbol.asyncDispose]).to.equal('function');
        });

        it('parses `await using` itself in Chromium, Bun and Deno (Node 20 gets it lowered by the compiler)', () => {
          const native = parsesAwaitUsing();
          if (platform !== 'node') expect(native).to.equal(true);
          else expect(native).to.be.a('boolean');
        });
      });
    }

    for (const kind of options.kinds) {
      describe(kind.name, function () {
        if (kind.timeout !== undefined) this.timeout(kind.timeout);
        it('hands values over in the order the sends were accepted, across microtask interleavings', async () => {
          const channel = await kind.create<number>();
          const steps: string[] = [];
          const received: number[] = [];
          const consumer = (async () => {
            for await (const value of channel) {
              received.push(value);
              if (value % 5 === 0) await kind.settle(2);
            }
            steps.push('consumer done');
          })();
          for (let i = 0; i < 60; i++) {
            await channel.send(i);
            if (i % 7 === 0) await kind.settle(i % 3);
          }
          steps.push('producer done');
          channel.close();
          await consumer;
          expect(steps).to.deep.equal(['producer done', 'consumer done']);
          expect(received).to.deep.equal([...received].sort((a, b) => a - b));
          if (!kind.drops) expect(received).to.deep.equal([...Array(60).keys()]);
          else if (kind.overflow === 'drop-oldest') expect(received.at(-1)).to.equal(59);
        });

        it('accounts for 10,000 values exactly once: received or handed to onUndelivered', async () => {
          const log = undeliveredLog<number>();
          const channel = await kind.create<number>(log);
          let receivedSum = 0;
          let receivedCount = 0;
          const consumer = (async () => {
            for await (const value of channel) {
              receivedSum += value;
              receivedCount += 1;
            }
          })();
          for (let i = 1; i <= 10_000; i++) await channel.send(i);
          channel.close();
          await consumer;
          const undeliveredSum = log.values.reduce((sum, value) => sum + value, 0);
          expect(receivedCount + log.values.length).to.equal(10_000);
          expect(receivedSum + undeliveredSum).to.equal((10_000 * 10_001) / 2);
          if (!kind.drops) expect(log.values).to.deep.equal([]);
        });

        it('keeps values sent before close receivable, then rejects receive with ClosedReceiveError', async () => {
          const channel = await kind.create<string>();
          const sent = channel.send('last');
          expect(channel.close()).to.equal(true);
          expect(channel.close()).to.equal(false);
          expect(channel.isClosedForSend).to.equal(true);
          expect(channel.isClosedForReceive).to.equal(false);
          expect(await channel.receive()).to.equal('last');
          await sent;
          // Across the wire the close comes in a frame of its own, after the last value's:
          // the receiving end knows it is closed once that frame has arrived.
          await kind.settle();
          expect(channel.isClosedForReceive).to.equal(true);
          const error = await rejection(channel.receive());
          expect(error).to.be.instanceOf(ClosedReceiveError);
          expect(error).to.include({
            name: 'ClosedReceiveError',
            code: 'ERR_CHANNEL_CLOSED_FOR_RECEIVE',
          });
          expect(await channel.receiveCatching()).to.deep.equal({ ok: false, closed: true });
        });

        it('rejects send after close with ClosedSendError and hands its value to onUndelivered once', async () => {
          const log = undeliveredLog<number>();
          const channel = await kind.create<number>(log);
          channel.close();
          const error = await rejection(channel.send(7));
          expect(error).to.be.instanceOf(ClosedSendError);
          expect(error).to.include({
            name: 'ClosedSendError',
            code: 'ERR_CHANNEL_CLOSED_FOR_SEND',
          });
          expect(channel.trySend(8)).to.deep.equal({ ok: false, closed: true });
          expect(log.values).to.deep.equal([7]);
        });

        // Across the wire only a description of the cause crosses: the receiving side gets
        // a new Error with its name and message, the sending side keeps the object itself.
        const causeTitle = kind.recreatesCauses
          ? 'rethrows a close cause as the same object from send, and re-created with its name and message from receive and for await'
          : 'rethrows a close cause as the same object from send, receive and for await';
        it(causeTitle, async () => {
          const channel = await kind.create<number>();
          const cause = new Error('upstream failed');
          channel.close(cause);
          expect(await rejection(channel.send(1))).to.equal(cause);
          expectCause(kind, await rejection(channel.receive()), cause, true);
          const tried = channel.tryReceive();
          expect(tried).to.deep.equal({ ok: false, closed: true, cause });
          if (tried.ok) throw new Error('tryReceive took a value');
          expectCause(kind, tried.cause, cause, true);
          const thrown = await rejection(
            (async () => {
              for await (const value of channel) throw new Error(`unexpected ${value}`);
            })(),
          );
          expectCause(kind, thrown, cause, true);
        });

        it('cancel discards buffered values into onUndelivered and rejects waiters with the reason', async () => {
          const log = undeliveredLog<number>();
          const channel = await kind.create<number>(log);
          const capacity = kind.capacity === Infinity ? 2 : kind.capacity;
          for (let i = 1; i <= capacity; i++) expect(channel.trySend(i).ok).to.equal(true);
          const waitingSend = kind.suspends ? channel.send(99) : undefined;
          const closedWith: unknown[] = [];
          channel.onClose((cause) => closedWith.push(cause));
          const reason = new Error('consumer gone');
          channel.cancel(reason);
          if (waitingSend !== undefined)
            expectCause(kind, await rejection(waitingSend), reason, true);
          // Across the wire the sending end learns of the cancel from a frame: let it arrive
          // before counting what went to its onUndelivered.
          await kind.settle();
          const expected = [...Array(capacity).keys()].map((i) => i + 1);
          if (kind.suspends) expected.push(99);
          expect([...log.values].sort((a, b) => a - b)).to.deep.equal(expected);
          expect(closedWith).to.deep.equal([reason]);
          expect(await rejection(channel.receive())).to.equal(reason);
          expect(channel.isClosedForReceive).to.equal(true);
        });

        it('cancel without a reason rejects waiting receivers with a DOMException named AbortError', async () => {
          const channel = await kind.create<number>();
          const waiting = channel.receive();
          channel.cancel();
          const error = await rejection(waiting);
          expect(error).to.be.instanceOf(DOMException);
          expect(error).to.include({ name: 'AbortError' });
          expect(await rejection(channel.receive())).to.equal(error);
        });

        it('an abort withdraws a waiting receive with signal.reason and takes no value', async () => {
          const channel = await kind.create<number>();
          const controller = new AbortController();
          const aborted = channel.receive({ signal: controller.signal });
          const next = channel.receive();
          controller.abort();
          const error = await rejection(aborted);
          expect(error).to.equal(controller.signal.reason);
          expect(error).to.be.instanceOf(DOMException);
          // Across the wire a rendezvous sender may send only once the waiting receiver's
          // request has arrived: let it arrive before trySend.
          await kind.settle();
          channel.trySend(5);
          expect(await next).to.equal(5);
        });

        if (kind.suspends) {
          it('an abort withdraws a waiting send and hands its value to onUndelivered once', async () => {
            const log = undeliveredLog<string>();
            const channel = await kind.create<string>(log);
            for (let i = 0; i < kind.capacity; i++) channel.trySend(`kept ${i}`);
            const controller = new AbortController();
            const withdrawn = channel.send('withdrawn', { signal: controller.signal });
            const behind = channel.send('behind');
            const reason = new Error('changed my mind');
            controller.abort(reason);
            expect(await rejection(withdrawn)).to.equal(reason);
            controller.abort(new Error('twice'));
            const got: string[] = [];
            for (let i = 0; i <= kind.capacity; i++) got.push(await channel.receive());
            await behind;
            expect(got.at(-1)).to.equal('behind');
            expect(log.values).to.deep.equal(['withdrawn']);
          });
        }

        it('leaving for await early neither takes a value nor cancels the channel', async () => {
          const channel = await kind.create<number>();
          const producer = (async () => {
            for (let i = 0; i < 6; i++) await channel.send(i);
            channel.close();
          })();
          const seen: number[] = [];
          for await (const value of channel) {
            seen.push(value);
            if (seen.length === 2) break;
          }
          expect(channel.isClosedForReceive).to.equal(false);
          for await (const value of channel) seen.push(value);
          await producer;
          expect(seen).to.deep.equal([...seen].sort((a, b) => a - b));
          if (!kind.drops) expect(seen).to.deep.equal([0, 1, 2, 3, 4, 5]);
        });

        it('iterate({ signal }) ends a waiting loop with signal.reason; the next value goes to the next receiver', async () => {
          const channel = await kind.create<number>();
          const controller = new AbortController();
          const reason = new Error('stop');
          const seen: number[] = [];
          const loop = (async () => {
            for await (const value of channel.iterate({ signal: controller.signal })) {
              seen.push(value);
            }
          })();
          await channel.send(1);
          await kind.settle();
          controller.abort(reason);
          expect(await rejection(loop)).to.equal(reason);
          const sent = channel.send(2);
          expect(await channel.receive()).to.equal(2);
          await sent;
          expect(seen).to.deep.equal([1]);
        });

        it('iterate({ signal }) aborted in the loop body leaves the values not yet taken in the channel', async () => {
          const channel = await kind.create<number>();
          const controller = new AbortController();
          const producer = (async () => {
            for (let i = 0; i < 4; i++) await channel.send(i);
            channel.close();
          })();
          const seen: number[] = [];
          const thrown = await rejection(
            (async () => {
              for await (const value of channel.iterate({ signal: controller.signal })) {
                seen.push(value);
                controller.abort('enough');
              }
            })(),
          );
          expect(thrown).to.equal('enough');
          for await (const value of channel) seen.push(value);
          await producer;
          expect(seen).to.deep.equal([...seen].sort((a, b) => a - b));
          if (!kind.drops) expect(seen).to.deep.equal([0, 1, 2, 3]);
        });

        it('iterate({ signal }): loops aborted at random points yield every value exactly once, in order (seeded)', async () => {
          const round = fc.record({
            inBodyAfter: fc.integer({ min: 0, max: 3 }),
            settleRounds: fc.integer({ min: 0, max: 4 }),
          });
          await fc.assert(
            fc.asyncProperty(fc.array(round, { minLength: 1, maxLength: 6 }), async (rounds) => {
              const total = 30;
              const log = undeliveredLog<number>();
              const channel = await kind.create<number>(log);
              const received: number[] = [];
              const producer = (async () => {
                for (let i = 0; i < total; i++) await channel.send(i);
              })();
              for (const { inBodyAfter, settleRounds } of rounds) {
                const controller = new AbortController();
                const reason = new Error('aborted');
                let count = 0;
                const loop = (async () => {
                  for await (const value of channel.iterate({ signal: controller.signal })) {
                    received.push(value);
                    count += 1;
                    if (count === inBodyAfter) controller.abort(reason);
                  }
                })();
                const ended = rejection(loop); // it may end before the settle does
                await kind.settle(settleRounds);
                controller.abort(reason);
                expect(await ended).to.equal(reason);
              }
              const drain = (async () => {
                for await (const value of channel) received.push(value);
              })();
              await producer;
              channel.close();
              await drain;
              await kind.settle();
              const accounted = [...received, ...log.values];
              expect(new Set(accounted).size).to.equal(accounted.length, 'nothing duplicated');
              expect([...accounted].sort((a, b) => a - b)).to.deep.equal(
                [...Array(total).keys()],
                'nothing lost',
              );
              expect(received).to.deep.equal([...received].sort((a, b) => a - b));
              if (!kind.drops) expect(log.values).to.deep.equal([]);
            }),
            // Across the wire every settle waits for both ends to be quiet: fewer programs.
            { seed: SEED, numRuns: kind.recreatesCauses ? 6 : 25 },
          );
        });

        it('accounts for every value exactly once under random send, receive, abort, close and cancel (seeded)', async () => {
          await fc.assert(
            fc.asyncProperty(programArbitrary, (program) => runProgram(kind, program)),
            { seed: SEED, numRuns: 60 },
          );
        });
      });
    }

    // Over the rendezvous kind. Some cases are about one local `Channel` object and are
    // declared only with the local kinds: that a channel is not thenable and supports
    // `await using` (the objects a network user holds are the ends' local channels and the
    // ChannelSession, whose disposal is the connection's: spec/network/network.spec.ts),
    // and close handlers seeing close and cancel on the same object (across the wire close
    // and cancel act on different ends, each with its own handlers).
    describe('across kinds', () => {
      const rendezvous = rendezvousOf(options.kinds);

      it('serves waiting receivers first come, first served', async () => {
        const channel = await rendezvous.create<string>();
        const order: string[] = [];
        const waiting = ['a', 'b', 'c'].map((name) =>
          channel.receive().then((value) => order.push(`${name}=${value}`)),
        );
        for (const value of ['x', 'y', 'z']) await channel.send(value);
        await Promise.all(waiting);
        expect(order).to.deep.equal(['a=x', 'b=y', 'c=z']);
      });

      it('a rendezvous send completes only when a receiver takes the value', async () => {
        const channel = await rendezvous.create<number>();
        const sent = observe(channel.send(1));
        await rendezvous.settle();
        expect(sent.state().status).to.equal('pending');
        if (rendezvous.tryReceiveTakesWaitingSender) {
          expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 1 });
        } else {
          // Across the wire tryReceive cannot see the waiting sender (see the flag): it
          // finds nothing, and the send still waits until a receive takes the value.
          expect(channel.tryReceive()).to.deep.equal({ ok: false, closed: false });
          await rendezvous.settle();
          expect(sent.state().status).to.equal('pending');
          expect(await channel.receive()).to.equal(1);
        }
        await rendezvous.settle(1);
        expect(sent.state().status).to.equal('fulfilled');
      });

      it('AbortSignal.timeout ends a waiting receive with a DOMException named TimeoutError', async () => {
        const channel = await rendezvous.create<number>();
        const error = await rejection(channel.receive({ signal: AbortSignal.timeout(5) }));
        expect(error).to.be.instanceOf(DOMException);
        expect(error).to.include({ name: 'TimeoutError' });
      });

      if (!local) return;

      it('is not thenable: awaiting a channel takes no value', async () => {
        const channel = new Channel<number>(1);
        channel.trySend(1);
        expect('then' in channel).to.equal(false);
        // eslint-disable-next-line @typescript-eslint/await-thenable -- awaiting it is the point
        expect(await channel).to.equal(channel);
        expect(channel.tryReceive()).to.deep.equal({ ok: true, value: 1 });
      });

      it('runs close handlers once each, in registration order, with the cause', () => {
        const channel = new Channel<number>();
        const calls: unknown[] = [];
        const cause = new Error('done');
        channel.onClose((c) => calls.push(['first', c]));
        channel.onClose((c) => calls.push(['second', c]));
        channel.close(cause);
        channel.cancel();
        expect(calls).to.deep.equal([
          ['first', cause],
          ['second', cause],
        ]);
      });

      it('await using closes the channel at the end of the block, keeping buffered values', async () => {
        let escaped: Channel<number> | undefined;
        {
          await using channel = new Channel<number>(2);
          escaped = channel;
          await channel.send(1);
          expect(channel.isClosedForSend).to.equal(false);
        }
        expect(escaped.isClosedForSend).to.equal(true);
        expect(await escaped.receive()).to.equal(1);
        expect(escaped.isClosedForReceive).to.equal(true);
      });

      it('await using closes the channel when the block throws, and the error propagates', async () => {
        let escaped: Channel<number> | undefined;
        const boom = new Error('block failed');
        const thrown = await rejection(
          (async () => {
            await using channel = new Channel<number>();
            escaped = channel;
            throw boom;
          })(),
        );
        expect(thrown).to.equal(boom);
        expect(escaped?.isClosedForSend).to.equal(true);
      });
    });
  });
}
