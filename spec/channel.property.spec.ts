/**
 * Model-based property tests of `Channel`: random programs run against a real channel and
 * against the reference model of `spec/helpers/channel-model.ts`, over capacities 0, 1, 3
 * and `Infinity` and every overflow policy.
 *
 * - The first property drives one program step by step (send, trySend, receive,
 *   receiveCatching, tryReceive, close, cancel, aborting a signal, microtask ticks) with
 *   three senders and any number of pending receivers, and compares after every step:
 *   each `try*` and `close` result, `isClosedForSend` / `isClosedForReceive` / `isEmpty`,
 *   the `onUndelivered` and `onClose` calls, and at checkpoints how every promise settled.
 * - The second runs sender, receiver and control loops that `await` each operation, their
 *   interleaving chosen by `fc.scheduler()`, and checks each outcome when its loop sees it.
 *
 * Both end with a `cancel` that must settle everything, then check the books: every value
 * given to the channel was received exactly once or passed to `onUndelivered` exactly once,
 * and values from one sender arrived in order. Runs: 1000 per property when `CI` is set,
 * 2000 otherwise.
 *
 * @module
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Channel, ClosedReceiveError, ClosedSendError } from '../lib/index.js';
import type { ReceiveResult, SendResult } from '../lib/index.js';
import {
  ChannelModel,
  DEFAULT_CANCEL_REASON,
  NO_CAUSE,
  type Expected,
  type ExpectedError,
  type ExpectedReceiveResult,
  type ExpectedSendResult,
  type OpKind,
  type Overflow,
} from './helpers/channel-model.js';

const RUNS = process.env.CI === undefined ? 2000 : 1000;
const SENDERS = 3;
const SIGNALS = 3;
/** Microtask yields that let every promise chain of the channel settle. */
const DRAIN_TICKS = 32;

interface Config {
  readonly capacity: number;
  readonly overflow: Overflow;
}

/** Every kind of channel, weighted towards those whose buffer can fill up and wait. */
const CONFIGS: readonly { readonly weight: number; readonly config: Config }[] = [
  { weight: 4, config: { capacity: 0, overflow: 'suspend' } },
  { weight: 4, config: { capacity: 1, overflow: 'suspend' } },
  { weight: 4, config: { capacity: 3, overflow: 'suspend' } },
  { weight: 1, config: { capacity: Infinity, overflow: 'suspend' } },
  { weight: 2, config: { capacity: 1, overflow: 'drop-oldest' } },
  { weight: 2, config: { capacity: 1, overflow: 'drop-latest' } },
  { weight: 2, config: { capacity: 3, overflow: 'drop-oldest' } },
  { weight: 2, config: { capacity: 3, overflow: 'drop-latest' } },
  { weight: 1, config: { capacity: Infinity, overflow: 'drop-oldest' } },
  { weight: 1, config: { capacity: Infinity, overflow: 'drop-latest' } },
];

type CauseKind = 'none' | 'error' | 'null';
type ReasonKind = 'default' | 'error' | 'null';

type Step =
  | { readonly t: 'send'; readonly sender: number; readonly signal: number | null }
  | { readonly t: 'trySend'; readonly sender: number }
  | { readonly t: 'receive'; readonly signal: number | null }
  | { readonly t: 'receiveCatching'; readonly signal: number | null }
  | { readonly t: 'tryReceive' }
  | { readonly t: 'close'; readonly cause: CauseKind }
  | { readonly t: 'cancel'; readonly reason: ReasonKind }
  | {
      readonly t: 'abort';
      readonly signal: number;
      readonly reason: 'default' | 'error';
      /** Whether later operations get a fresh signal in that slot, or the aborted one. */
      readonly renew: boolean;
    }
  | { readonly t: 'tick'; readonly n: number }
  | { readonly t: 'flush' };

type Observed =
  | { readonly state: 'pending' }
  | { readonly state: 'fulfilled'; readonly value: unknown }
  | { readonly state: 'rejected'; readonly error: unknown };

async function drain(ticks = DRAIN_TICKS): Promise<void> {
  for (let i = 0; i < ticks; i++) await Promise.resolve();
}

function sortedNumbers(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Values are `sender * 1000 + seq`, so each is unique and names its sender. */
const senderOf = (value: number): number => Math.floor(value / 1000);

/**
 * One channel and its model, driven together: each method calls the channel, then the
 * model, and compares what can be compared at once. Causes and reasons are named, so that
 * outcomes compare as strings that keep object identity.
 */
class Harness {
  readonly channel: Channel<number>;
  readonly model: ChannelModel;
  readonly controllers: AbortController[] = [];
  readonly undelivered: number[] = [];
  readonly closeCalls: unknown[] = [];
  readonly observed: Observed[] = [];
  /** Every value given to the channel: each `send`, each accepted `trySend`. */
  readonly given: number[] = [];
  /** Values taken by `receive`, `receiveCatching` and `tryReceive`, by call number. */
  readonly receipts: { readonly call: number; readonly value: number }[] = [];
  readonly #names = new Map<unknown, string>();
  readonly #nextSeq: number[] = [];
  #receiveCalls = 0;
  #defaultCancelReason: unknown = NO_CAUSE;
  #causes = 0;

  constructor(config: Config) {
    this.channel = new Channel<number>(config.capacity, {
      overflow: config.overflow,
      onUndelivered: (value) => this.undelivered.push(value),
    });
    this.channel.onClose((cause) => this.closeCalls.push(cause));
    this.model = new ChannelModel(config.capacity, config.overflow);
    for (let i = 0; i < SIGNALS; i++) this.controllers.push(new AbortController());
    this.#names.set(null, 'null');
  }

  nextValue(sender: number): number {
    const seq = this.#nextSeq[sender] ?? 0;
    this.#nextSeq[sender] = seq + 1;
    return sender * 1000 + seq;
  }

  /** A fresh cause object, named for the failure messages. */
  cause(kind: 'error' | 'null', label: string): unknown {
    if (kind === 'null') return null;
    const cause = new Error(`${label} #${++this.#causes}`);
    this.#names.set(cause, cause.message);
    return cause;
  }

  send(sender: number, signalIndex: number | null): { id: number; promise: Promise<void> } {
    const value = this.nextValue(sender);
    const signal = this.#signal(signalIndex);
    const promise =
      signal === undefined ? this.channel.send(value) : this.channel.send(value, { signal });
    const op = this.model.send(value, signal);
    this.given.push(value);
    this.#track(op.id, promise, false);
    return { id: op.id, promise };
  }

  trySend(sender: number, where: string): void {
    const value = this.nextValue(sender);
    const actual = this.channel.trySend(value);
    const expected = this.model.trySend(value);
    expect(this.#describeResult(actual), `${where}: trySend result`).to.equal(
      this.#describeExpectedResult(expected),
    );
    if (actual.ok) this.given.push(value);
  }

  receive(
    catching: boolean,
    signalIndex: number | null,
  ): { id: number; promise: Promise<unknown> } {
    const signal = this.#signal(signalIndex);
    const options = signal === undefined ? undefined : { signal };
    const promise: Promise<number | ReceiveResult<number>> = catching
      ? this.channel.receiveCatching(options)
      : this.channel.receive(options);
    const op = this.model.receive(catching, signal);
    this.#track(op.id, promise, true);
    return { id: op.id, promise };
  }

  tryReceive(where: string): void {
    const call = this.#receiveCalls++;
    const actual = this.channel.tryReceive();
    const expected = this.model.tryReceive();
    expect(this.#describeResult(actual), `${where}: tryReceive result`).to.equal(
      this.#describeExpectedResult(expected),
    );
    if (actual.ok) this.receipts.push({ call, value: actual.value });
  }

  close(kind: CauseKind, where: string): void {
    const cause = kind === 'none' ? undefined : this.cause(kind, 'close cause');
    const actual = kind === 'none' ? this.channel.close() : this.channel.close(cause);
    const expected = this.model.close(kind === 'none' ? NO_CAUSE : cause);
    expect(actual, `${where}: close() result`).to.equal(expected);
  }

  cancel(kind: ReasonKind): void {
    if (kind === 'default') {
      this.channel.cancel();
      this.model.cancel(DEFAULT_CANCEL_REASON);
    } else {
      const reason = this.cause(kind, 'cancel reason');
      this.channel.cancel(reason);
      this.model.cancel(reason);
    }
  }

  abort(index: number, kind: 'default' | 'error', renew: boolean): void {
    const controller = this.controllers[index]!;
    if (renew) this.controllers[index] = new AbortController();
    if (controller.signal.aborted) return;
    if (kind === 'default') {
      controller.abort();
      this.#names.set(controller.signal.reason, `default abort reason of signal ${index}`);
    } else {
      controller.abort(this.cause('error', `abort reason of signal ${index}`));
    }
    this.model.abort(controller.signal);
  }

  /** The synchronous state: flags, `onUndelivered` calls, `onClose` calls. */
  checkState(where: string): void {
    const { channel, model } = this;
    expect(channel.isClosedForSend, `${where}: isClosedForSend`).to.equal(model.isClosedForSend);
    expect(channel.isClosedForReceive, `${where}: isClosedForReceive`).to.equal(
      model.isClosedForReceive,
    );
    expect(channel.isEmpty, `${where}: isEmpty`).to.equal(model.isEmpty);
    expect(
      sortedNumbers(this.undelivered),
      `${where}: values given to onUndelivered`,
    ).to.deep.equal(sortedNumbers(model.undelivered));
    expect(
      this.closeCalls.map((cause) => this.#name(cause)),
      `${where}: onClose calls`,
    ).to.deep.equal(
      model.closeNotifications.map((cause) => this.#name(cause === NO_CAUSE ? undefined : cause)),
    );
  }

  /** Every operation so far: settled exactly as the model says, or pending if it is. */
  checkSettled(where: string): void {
    const actual = this.model.ops.map(
      (op) => `#${op.id} ${op.kind}: ${this.#describeObserved(op.kind, this.observed[op.id]!)}`,
    );
    const expected = this.model.ops.map(
      (op) => `#${op.id} ${op.kind}: ${this.#describeExpected(op.kind, op.outcome)}`,
    );
    const wrong = actual.filter((line, i) => line !== expected[i]);
    const message = `${where}: outcomes differ from the model:\n  got      ${wrong.join('\n           ')}\n  expected ${expected.filter((line, i) => line !== actual[i]).join('\n           ')}`;
    expect(wrong.length === 0, message).to.equal(true);
  }

  /** One operation, just observed settled by its caller. */
  checkOp(id: number, where: string): void {
    const op = this.model.ops[id]!;
    expect(
      this.#describeObserved(op.kind, this.observed[id]!),
      `${where}: outcome of #${id} ${op.kind}`,
    ).to.equal(this.#describeExpected(op.kind, op.outcome));
  }

  /**
   * Once everything has settled: each given value was received exactly once or handed to
   * `onUndelivered` exactly once, never both; values from one sender arrive in order.
   */
  checkAccounting(): void {
    expect(this.model.waiting, 'the model has no waiting operation left').to.equal(0);
    expect(
      this.observed.every((o) => o.state !== 'pending'),
      'every promise settled',
    ).to.equal(true);
    const received = this.receipts.map((r) => r.value);
    expect(
      sortedNumbers([...received, ...this.undelivered]),
      'received + undelivered = given, each exactly once',
    ).to.deep.equal(sortedNumbers(this.given));
    const lastSeq = new Map<number, number>();
    for (const { value } of [...this.receipts].sort((a, b) => a.call - b.call)) {
      const previous = lastSeq.get(senderOf(value)) ?? -1;
      expect(value % 1000, `FIFO of sender ${senderOf(value)}`).to.be.greaterThan(previous);
      lastSeq.set(senderOf(value), value % 1000);
    }
  }

  #signal(index: number | null): AbortSignal | undefined {
    return index === null ? undefined : this.controllers[index]!.signal;
  }

  #track(id: number, promise: Promise<unknown>, isReceive: boolean): void {
    const call = isReceive ? this.#receiveCalls++ : -1;
    this.observed[id] = { state: 'pending' };
    promise.then(
      (value) => {
        this.observed[id] = { state: 'fulfilled', value };
        if (typeof value === 'number') this.receipts.push({ call, value });
        else if (isReceive && isOkResult(value)) this.receipts.push({ call, value: value.value });
      },
      (error: unknown) => {
        this.observed[id] = { state: 'rejected', error };
      },
    );
  }

  #name(value: unknown): string {
    if (value === undefined) return 'undefined';
    if (typeof value === 'number') return String(value);
    if (value === DEFAULT_CANCEL_REASON) return 'the default cancel reason';
    const name = this.#names.get(value);
    if (name !== undefined) return name;
    if (value instanceof DOMException && value.name === 'AbortError') {
      if (this.#defaultCancelReason === NO_CAUSE) this.#defaultCancelReason = value;
      if (this.#defaultCancelReason === value) return 'the default cancel reason';
    }
    if (value instanceof ClosedSendError) return `ClosedSendError(${value.code})`;
    if (value instanceof ClosedReceiveError) return `ClosedReceiveError(${value.code})`;
    return `unexpected ${fc.stringify(value)}`;
  }

  #describeError(error: ExpectedError): string {
    switch (error.type) {
      case 'ClosedSendError':
        return 'ClosedSendError(ERR_CHANNEL_CLOSED_FOR_SEND)';
      case 'ClosedReceiveError':
        return 'ClosedReceiveError(ERR_CHANNEL_CLOSED_FOR_RECEIVE)';
      case 'reason':
        return this.#name(error.reason);
    }
  }

  #describeResult(result: SendResult | ReceiveResult<number>): string {
    if (result.ok) return 'value' in result ? `{ok, value: ${result.value}}` : '{ok}';
    const cause = 'cause' in result ? `, cause: ${this.#name(result.cause)}` : '';
    return `{not ok, closed: ${result.closed}${cause}}`;
  }

  #describeExpectedResult(result: ExpectedSendResult | ExpectedReceiveResult): string {
    if (result.ok) return 'value' in result ? `{ok, value: ${result.value}}` : '{ok}';
    const cause = result.cause === NO_CAUSE ? '' : `, cause: ${this.#name(result.cause)}`;
    return `{not ok, closed: ${result.closed}${cause}}`;
  }

  #describeObserved(kind: OpKind, observed: Observed): string {
    switch (observed.state) {
      case 'pending':
        return 'pending';
      case 'rejected':
        return `rejected with ${this.#name(observed.error)}`;
      case 'fulfilled':
        if (kind === 'receiveCatching' && isResult(observed.value)) {
          return `fulfilled with ${this.#describeResult(observed.value)}`;
        }
        return `fulfilled with ${this.#name(observed.value)}`;
    }
  }

  #describeExpected(kind: OpKind, expected: Expected): string {
    switch (expected.state) {
      case 'pending':
        return 'pending';
      case 'rejected':
        return `rejected with ${this.#describeError(expected.error)}`;
      case 'fulfilled': {
        const { value } = expected;
        if (kind === 'receiveCatching' && typeof value === 'object') {
          return `fulfilled with ${this.#describeExpectedResult(value)}`;
        }
        return `fulfilled with ${this.#name(value)}`;
      }
    }
  }
}

function isResult(value: unknown): value is ReceiveResult<number> {
  return typeof value === 'object' && value !== null && 'ok' in value;
}

function isOkResult(value: unknown): value is { ok: true; value: number } {
  return isResult(value) && value.ok;
}

// ---------------------------------------------------------------------------------------
// Arbitraries

const configArb: fc.Arbitrary<Config> = fc.oneof(
  ...CONFIGS.map(({ weight, config }) => ({ weight, arbitrary: fc.constant(config) })),
);
const senderArb = fc.integer({ min: 0, max: SENDERS - 1 });
const signalArb = fc.option(fc.integer({ min: 0, max: SIGNALS - 1 }), { nil: null, freq: 2 });
const causeArb = fc.constantFrom<CauseKind>('none', 'error', 'null');
const reasonArb = fc.constantFrom<ReasonKind>('default', 'error', 'null');

const sendArb = fc.record({
  t: fc.constant('send' as const),
  sender: senderArb,
  signal: signalArb,
});
const trySendArb = fc.record({ t: fc.constant('trySend' as const), sender: senderArb });
const receiveArb = fc.record({ t: fc.constant('receive' as const), signal: signalArb });
const receiveCatchingArb = fc.record({
  t: fc.constant('receiveCatching' as const),
  signal: signalArb,
});
const tryReceiveArb = fc.constant({ t: 'tryReceive' as const });
const closeArb = fc.record({ t: fc.constant('close' as const), cause: causeArb });
const cancelArb = fc.record({ t: fc.constant('cancel' as const), reason: reasonArb });
const abortArb = fc.record({
  t: fc.constant('abort' as const),
  signal: fc.integer({ min: 0, max: SIGNALS - 1 }),
  reason: fc.constantFrom('default' as const, 'error' as const),
  renew: fc.boolean(),
});

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: sendArb, weight: 8 },
  { arbitrary: trySendArb, weight: 3 },
  { arbitrary: receiveArb, weight: 6 },
  { arbitrary: receiveCatchingArb, weight: 2 },
  { arbitrary: tryReceiveArb, weight: 3 },
  { arbitrary: closeArb, weight: 1 },
  { arbitrary: cancelArb, weight: 1 },
  { arbitrary: abortArb, weight: 2 },
  {
    arbitrary: fc.record({ t: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 3 }) }),
    weight: 3,
  },
  { arbitrary: fc.constant({ t: 'flush' as const }), weight: 1 },
);

type SenderOp = Extract<Step, { t: 'send' | 'trySend' }>;
type ReceiverOp = Extract<Step, { t: 'receive' | 'receiveCatching' | 'tryReceive' }>;
type ControlOp = Extract<Step, { t: 'close' | 'cancel' | 'abort' }>;

interface Scripts {
  readonly senders: readonly (readonly SenderOp[])[];
  readonly receivers: readonly (readonly ReceiverOp[])[];
  readonly control: readonly ControlOp[];
}

const scriptsArb: fc.Arbitrary<Scripts> = fc.record({
  senders: fc
    .array(
      fc.array(fc.oneof({ arbitrary: sendArb, weight: 3 }, { arbitrary: trySendArb, weight: 1 }), {
        maxLength: 8,
      }),
      { minLength: 1, maxLength: SENDERS },
    )
    .map((scripts) => scripts.map((ops, sender) => ops.map((op) => ({ ...op, sender })))),
  receivers: fc.array(
    fc.array(
      fc.oneof(
        { arbitrary: receiveArb, weight: 3 },
        { arbitrary: receiveCatchingArb, weight: 1 },
        { arbitrary: tryReceiveArb, weight: 1 },
      ),
      { maxLength: 8 },
    ),
    { minLength: 1, maxLength: 3 },
  ),
  control: fc.array(
    fc.oneof(
      { arbitrary: abortArb, weight: 3 },
      { arbitrary: closeArb, weight: 1 },
      { arbitrary: cancelArb, weight: 1 },
    ),
    { maxLength: 3 },
  ),
});

// ---------------------------------------------------------------------------------------
// Runners

/** Runs one step of a driver-run program; returns after its microtask ticks, if any. */
async function runStep(h: Harness, step: Step, where: string): Promise<void> {
  switch (step.t) {
    case 'send':
      h.send(step.sender, step.signal);
      break;
    case 'trySend':
      h.trySend(step.sender, where);
      break;
    case 'receive':
    case 'receiveCatching':
      h.receive(step.t === 'receiveCatching', step.signal);
      break;
    case 'tryReceive':
      h.tryReceive(where);
      break;
    case 'close':
      h.close(step.cause, where);
      break;
    case 'cancel':
      h.cancel(step.reason);
      break;
    case 'abort':
      h.abort(step.signal, step.reason, step.renew);
      break;
    case 'tick':
      await drain(step.n);
      break;
    case 'flush':
      await drain();
      h.checkSettled(where);
      break;
  }
  h.checkState(where);
}

/** Settles whatever is still waiting with a last `cancel`, then checks the books. */
async function finish(h: Harness): Promise<void> {
  h.cancel('error');
  h.checkState('after the final cancel');
  await drain();
  h.checkSettled('after the final cancel');
  h.checkAccounting();
}

async function runProgram(config: Config, steps: readonly Step[]): Promise<void> {
  const h = new Harness(config);
  for (const [i, step] of steps.entries()) {
    await runStep(h, step, `step ${i} ${JSON.stringify(step)}`);
  }
  await drain();
  h.checkSettled('after the program');
  await finish(h);
}

/** Lets the scheduler release every task, until no actor has anything scheduled. */
async function quiesce(s: fc.Scheduler): Promise<void> {
  for (let round = 0; round < 1000; round++) {
    await s.waitIdle();
    await drain();
    if (s.count() === 0) return;
  }
  throw new Error('the scheduler never became idle');
}

async function runActors(config: Config, scripts: Scripts, s: fc.Scheduler): Promise<void> {
  const h = new Harness(config);
  const errors: unknown[] = [];
  let finished = 0;

  const actor = async (name: string, ops: readonly Step[]): Promise<void> => {
    for (const [k, op] of ops.entries()) {
      await s.schedule(Promise.resolve(), `${name} op ${k}`);
      const where = `${name} op ${k} ${JSON.stringify(op)}`;
      let waited: { id: number; promise: Promise<unknown> } | undefined;
      switch (op.t) {
        case 'send':
          waited = h.send(op.sender, op.signal);
          break;
        case 'receive':
        case 'receiveCatching':
          waited = h.receive(op.t === 'receiveCatching', op.signal);
          break;
        default:
          await runStep(h, op, where);
      }
      h.checkState(where);
      if (waited !== undefined) {
        await waited.promise.then(
          () => undefined,
          () => undefined,
        );
        h.checkOp(waited.id, `${where}, once settled`);
      }
    }
  };

  const actors = [
    ...scripts.senders.map((ops, i) => actor(`sender ${i}`, ops)),
    ...scripts.receivers.map((ops, i) => actor(`receiver ${i}`, ops)),
    actor('control', scripts.control),
  ].map((run) =>
    run.then(
      () => {
        finished++;
      },
      (error: unknown) => {
        errors.push(error);
      },
    ),
  );

  await quiesce(s);
  if (errors.length > 0) throw errors[0];
  h.checkSettled('when every actor waits or is done');
  await finish(h);
  await quiesce(s);
  if (errors.length > 0) throw errors[0];
  expect(finished, 'actors that ran to the end (none is stuck)').to.equal(actors.length);
  h.checkSettled('at the end');
  h.checkAccounting();
}

// ---------------------------------------------------------------------------------------

describe('Channel (model-based)', function () {
  this.timeout(120_000);

  it('agrees with the reference model on random programs of every operation', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(stepArb, { maxLength: 50, size: 'max' }), runProgram),
      { numRuns: RUNS },
    );
  });

  it('keeps concurrent sender and receiver loops exact under a random schedule', async () => {
    await fc.assert(fc.asyncProperty(configArb, scriptsArb, fc.scheduler(), runActors), {
      numRuns: RUNS,
    });
  });
});
