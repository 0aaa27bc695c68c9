import { getEventListeners, setMaxListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { TimeoutError } from '../lib/errors.js';
import { scope, suppressedErrors } from '../lib/scope.js';
import { delay, ticker, withTimeout, withTimeoutOrUndefined } from '../lib/time.js';
import { observe } from './helpers/async.js';
import { aborted, rejection } from './helpers/outcomes.js';

type Clock = ReturnType<typeof FakeTimers.install>;

/** Whether a promise observed with `observe` has settled yet. */
const settled = (observed: ReturnType<typeof observe>): boolean =>
  observed.state().status !== 'pending';

function useFakeClock(): { clock: Clock } {
  const holder = {} as { clock: Clock };
  beforeEach(() => {
    holder.clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    holder.clock.uninstall();
  });
  return holder;
}

describe('delay()', () => {
  const fake = useFakeClock();

  it('resolves after the given time and leaves no timer', async () => {
    const done = observe(delay(100));
    await fake.clock.tickAsync(99);
    expect(settled(done)).to.equal(false);
    await fake.clock.tickAsync(1);
    expect(settled(done)).to.equal(true);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('rejects with the signal reason when aborted, clearing its timer and listener', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const waiting = delay(1_000, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
    controller.abort(reason);
    expect(await rejection(waiting)).to.equal(reason);
    expect(fake.clock.countTimers()).to.equal(0);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('removes its abort listener when the time is up', async () => {
    const controller = new AbortController();
    const waiting = delay(10, { signal: controller.signal });
    await fake.clock.tickAsync(10);
    await waiting;
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('rejects at once with an already aborted signal and starts no timer', async () => {
    const controller = new AbortController();
    controller.abort('why');
    expect(await rejection(delay(10, { signal: controller.signal }))).to.equal('why');
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('waits without a timer for Infinity, until aborted', async () => {
    const controller = new AbortController();
    const waiting = delay(Infinity, { signal: controller.signal });
    expect(fake.clock.countTimers()).to.equal(0);
    controller.abort('done');
    expect(await rejection(waiting)).to.equal('done');
  });

  it('waits the full time beyond the 2^31 - 1 ms host timer limit', async () => {
    const long = 2 ** 31 + 1_000;
    const done = observe(delay(long));
    await fake.clock.tickAsync(2 ** 31 - 1);
    expect(settled(done)).to.equal(false);
    await fake.clock.tickAsync(1_000);
    expect(settled(done)).to.equal(false);
    await fake.clock.tickAsync(1);
    expect(settled(done)).to.equal(true);
  });

  it('throws typed errors for invalid arguments', () => {
    expect(() => delay(-1)).to.throw(
      RangeError,
      'Expected ms to be a non-negative number of milliseconds or Infinity, got -1',
    );
    expect(() => delay(NaN)).to.throw(RangeError, 'got NaN');
    expect(() => delay('5' as never)).to.throw(TypeError, "got '5' (string)");
    expect(() => delay(1, { signal: {} as never })).to.throw(
      TypeError,
      'Expected signal to be an AbortSignal or undefined, got object',
    );
  });
});

describe('withTimeout()', () => {
  const fake = useFakeClock();

  it('resolves with the block value and clears its timer when the block finishes first', async () => {
    let blockSignal!: AbortSignal;
    const value = await withTimeout(100, async (signal) => {
      blockSignal = signal;
      return 'fast';
    });
    expect(value).to.equal('fast');
    expect(blockSignal.aborted).to.equal(false);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('aborts the block with a TimeoutError at the deadline and rejects with it once the block settled', async () => {
    const steps: string[] = [];
    let reason: unknown;
    const result = observe(
      withTimeout(100, async (signal) => {
        reason = await aborted(signal);
        steps.push('block saw abort');
        await delay(50);
        steps.push('block cleaned up');
        throw signal.reason;
      }),
    );
    await fake.clock.tickAsync(100);
    expect(steps).to.deep.equal(['block saw abort']);
    expect(settled(result)).to.equal(false);
    await fake.clock.tickAsync(50);
    await fake.clock.tickAsync(0);
    const state = result.state();
    expect(state.status).to.equal('rejected');
    const error = state.status === 'rejected' ? state.reason : undefined;
    expect(steps).to.deep.equal(['block saw abort', 'block cleaned up']);
    expect(error).to.equal(reason);
    expect(error).to.be.instanceOf(TimeoutError);
    expect(error).to.include({
      name: 'TimeoutError',
      code: 'ERR_TIMEOUT',
      message: 'Timed out after 100 ms',
    });
    expect(suppressedErrors(error)).to.deep.equal([]);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('rejects with the TimeoutError even if the block returns a value after the deadline', async () => {
    const result = rejection(withTimeout(10, () => delay(20).then(() => 'late')));
    await fake.clock.tickAsync(20);
    expect(await result).to.be.instanceOf(TimeoutError);
  });

  it('suppresses a different error thrown by the block after the deadline', async () => {
    const late = new Error('cleanup failed');
    const result = rejection(
      withTimeout(10, async (signal) => {
        await delay(Infinity, { signal }).catch(() => undefined);
        throw late;
      }),
    );
    await fake.clock.tickAsync(10);
    const error = await result;
    expect(error).to.be.instanceOf(TimeoutError);
    expect(suppressedErrors(error)).to.deep.equal([late]);
  });

  it('rejects with the block error before the deadline and clears the timer', async () => {
    const boom = new Error('boom');
    expect(
      await rejection(
        withTimeout(100, () => {
          throw boom;
        }),
      ),
    ).to.equal(boom);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('passes the abort of its own signal option on to the block, and rejects with that reason', async () => {
    const controller = new AbortController();
    const reason = new Error('outer');
    let seen: unknown;
    const result = withTimeout(
      1_000,
      async (signal) => {
        await delay(Infinity, { signal }).catch((error: unknown) => {
          seen = error;
        });
        return 'ignored';
      },
      { signal: controller.signal },
    );
    controller.abort(reason);
    expect(await rejection(result)).to.equal(reason);
    expect(seen).to.equal(reason);
    expect(fake.clock.countTimers()).to.equal(0);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('never runs the block with an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort('early');
    let ran = false;
    const error = await rejection(
      withTimeout(
        10,
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    );
    expect([error, ran]).to.deep.equal(['early', false]);
  });

  it('times out at the next timer turn with 0 ms', async () => {
    const result = rejection(withTimeout(0, (signal) => delay(Infinity, { signal })));
    await fake.clock.tickAsync(0);
    expect(await result).to.be.instanceOf(TimeoutError);
  });

  it('throws typed errors for invalid arguments', () => {
    expect(() => withTimeout(-5, () => 1)).to.throw(RangeError, 'got -5');
    expect(() => withTimeout(5, null as never)).to.throw(
      TypeError,
      'Expected block to be a function, got null',
    );
  });
});

describe('withTimeoutOrUndefined()', () => {
  const fake = useFakeClock();

  it('resolves with undefined at the deadline, and with the value before it', async () => {
    const late = withTimeoutOrUndefined(10, (signal) => delay(Infinity, { signal }));
    await fake.clock.tickAsync(10);
    expect(await late).to.equal(undefined);
    expect(await withTimeoutOrUndefined(10, () => 5)).to.equal(5);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('still rejects with the reason of its signal option', async () => {
    const controller = new AbortController();
    const result = withTimeoutOrUndefined(10, (signal) => delay(Infinity, { signal }), {
      signal: controller.signal,
    });
    controller.abort('outer');
    expect(await rejection(result)).to.equal('outer');
  });
});

describe('ticker()', () => {
  const fake = useFakeClock();

  it('ticks once per period with the period number', async () => {
    const controller = new AbortController();
    const ticks = ticker(100, { signal: controller.signal });
    const start = performance.now();
    const received: [number, number][] = [];
    const consumer = (async () => {
      for await (const tick of ticks) received.push([tick, performance.now() - start]);
    })();
    await fake.clock.tickAsync(350);
    controller.abort();
    await consumer;
    expect(received).to.deep.equal([
      [1, 100],
      [2, 200],
      [3, 300],
    ]);
    expect(ticks.isClosedForReceive).to.equal(true);
    expect(fake.clock.countTimers()).to.equal(0);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('waits initialDelay before the first tick', async () => {
    const ticks = ticker(100, { initialDelay: 10 });
    const first = observe(ticks.receive());
    await fake.clock.tickAsync(9);
    expect(settled(first)).to.equal(false);
    await fake.clock.tickAsync(1);
    expect(first.state()).to.deep.equal({ status: 'fulfilled', value: 1 });
    ticks.cancel();
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('gives a slow consumer one late tick, then skips to the next period boundary (no burst)', async () => {
    const ticks = ticker(100);
    await fake.clock.tickAsync(100);
    expect(await ticks.receive()).to.equal(1);
    // The consumer is busy for 350 ms: tick 2 (due at 200) waits in the rendezvous.
    await fake.clock.tickAsync(350); // now 450
    expect(await ticks.receive()).to.equal(2); // the one late tick, at 450
    const next = observe(ticks.receive());
    await fake.clock.tickAsync(49); // 499: ticks 3 and 4 were skipped, 5 is due at 500
    expect(settled(next)).to.equal(false);
    await fake.clock.tickAsync(1);
    expect(next.state()).to.deep.equal({ status: 'fulfilled', value: 5 });
    const after = observe(ticks.receive());
    await fake.clock.tickAsync(99);
    expect(settled(after)).to.equal(false);
    await fake.clock.tickAsync(1);
    expect(after.state()).to.deep.equal({ status: 'fulfilled', value: 6 });
    ticks.cancel();
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('stops when the consumer cancels the channel', async () => {
    const ticks = ticker(10);
    await fake.clock.tickAsync(10);
    expect(await ticks.consume((channel) => channel.receive())).to.equal(1);
    expect(fake.clock.countTimers()).to.equal(0);
    await fake.clock.tickAsync(100);
    expect(ticks.isClosedForReceive).to.equal(true);
  });

  it('does not deliver a tick that was waiting when the signal aborted', async () => {
    const controller = new AbortController();
    const ticks = ticker(10, { signal: controller.signal });
    await fake.clock.tickAsync(25);
    controller.abort();
    expect(await ticks.receiveCatching()).to.deep.equal({ ok: false, closed: true });
  });

  it('returns a closed channel for an already aborted signal', () => {
    const controller = new AbortController();
    controller.abort();
    const ticks = ticker(10, { signal: controller.signal });
    expect(ticks.isClosedForReceive).to.equal(true);
    expect(fake.clock.countTimers()).to.equal(0);
  });

  it('throws typed errors for invalid arguments', () => {
    expect(() => ticker(0)).to.throw(RangeError, 'Expected period to be a positive number, got 0');
    expect(() => ticker(Infinity)).to.throw(
      RangeError,
      'Expected period to be a non-negative finite number of milliseconds, got Infinity',
    );
    expect(() => ticker(10, { initialDelay: -1 })).to.throw(RangeError, 'initialDelay');
  });
});

describe('timers and scopes together', () => {
  it('leave no timer, listener or handle behind after 10,000 scopes with timeouts', async function () {
    this.timeout(60_000);
    // Let mocha's own timer for this test register first; ignore transient file reads.
    await new Promise((resolve) => setImmediate(resolve));
    const resources = (): string[] =>
      process
        .getActiveResourcesInfo()
        .filter((name) => name !== 'FSReqCallback')
        .sort();
    const before = resources();
    const parent = new AbortController();
    setMaxListeners(20_000, parent.signal);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10_000 }, (_, i) =>
        scope(
          async (s) => {
            const idle = s.launch((signal) => delay(60_000, { signal }));
            const timesOut = i % 2 === 0;
            await s.async((signal) =>
              withTimeout(
                timesOut ? 1 : 60_000,
                (inner) => delay(timesOut ? 60_000 : 1, { signal: inner }),
                { signal },
              ),
            );
            idle.cancel();
            return i;
          },
          { signal: parent.signal },
        ),
      ),
    );
    for (const [i, outcome] of outcomes.entries()) {
      if (i % 2 === 0) {
        expect(outcome.status).to.equal('rejected');
        expect((outcome as PromiseRejectedResult).reason).to.be.instanceOf(TimeoutError);
      } else {
        expect(outcome).to.deep.equal({ status: 'fulfilled', value: i });
      }
    }
    expect(getEventListeners(parent.signal, 'abort')).to.have.length(0);
    expect(resources()).to.deep.equal(before);
  });
});
