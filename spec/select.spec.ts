import { getEventListeners } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  Channel,
  ClosedReceiveError,
  ClosedSendError,
  onAbort,
  onTimeout,
  scope,
  select,
  selectUnbiased,
  supervisorScope,
} from '../lib/index.js';
import { gate } from './helpers/outcomes.js';
import type { ReceiveResult, SelectClause } from '../lib/index.js';
import { observe, ticks } from './helpers/async.js';
import { kinds } from './helpers/kinds.js';

// ------------------------------------------------------------------ helpers

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

const PROBE = -1;

/**
 * Asserts that nothing is registered on `channel`, which must have nothing buffered and
 * no real waiter: no parked sender (`isEmpty`), and no parked receiver — a receiver
 * would take a `trySend` that a rendezvous channel must otherwise refuse and a buffered
 * one must keep for `tryReceive`. Leaves the channel as it found it.
 */
function expectNothingRegistered(channel: Channel<number>): void {
  expect(channel.isEmpty, 'a sender is parked or a value is buffered').to.equal(true);
  const offered = channel.trySend(PROBE);
  if (channel.capacity === 0) {
    expect(offered, 'a receiver is parked').to.deep.equal({ ok: false, closed: false });
  } else {
    expect(offered.ok).to.equal(true);
    expect(channel.tryReceive(), 'a receiver is parked').to.deep.equal({ ok: true, value: PROBE });
  }
}

function undeliveredLog(): { values: number[]; onUndelivered: (value: number) => void } {
  const values: number[] = [];
  return { values, onUndelivered: (value) => values.push(value) };
}

// -------------------------------------------------------------------- specs

describe('select', () => {
  describe('when a clause is ready', () => {
    it('takes the first ready clause in order and leaves the others untouched', async () => {
      const a = new Channel<number>(1);
      const b = new Channel<number>(1);
      const c = new Channel<number>(1);
      b.trySend(2);
      c.trySend(3);
      for (let i = 0; i < 20; i++) {
        const result = await select([
          a.onReceive((v) => `a${v}`),
          b.onReceive((v) => `b${v}`),
          c.onReceive((v) => `c${v}`),
        ]);
        expect(result).to.equal('b2');
        b.trySend(2);
      }
      expect(c.tryReceive()).to.deep.equal({ ok: true, value: 3 });
      expect(b.tryReceive()).to.deep.equal({ ok: true, value: 2 });
    });

    it('resolves with the clause value when a clause has no handler', async () => {
      const ch = new Channel<number>(Infinity);
      ch.trySend(7);
      ch.trySend(8);
      expect(await select([ch.onReceive()])).to.equal(7);
      expect(await select([ch.onReceiveCatching()])).to.deep.equal({ ok: true, value: 8 });
      expect(await select([ch.onSend(9)])).to.equal(undefined);
      expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 9 });
      expect(await select([ch.onReceive(), onTimeout(0)])).to.equal(undefined);
    });

    it('takes the value synchronously and runs the handler in a later microtask', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const steps: string[] = [];
      const result = select([
        ch.onReceive((v) => {
          steps.push(`handler ${v}`);
          return v * 2;
        }),
      ]);
      steps.push('select returned');
      expect(ch.isEmpty).to.equal(true);
      expect(await result).to.equal(2);
      expect(steps).to.deep.equal(['select returned', 'handler 1']);
    });

    it('awaits a handler that returns a promise', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      expect(await select([ch.onReceive(async (v) => v + 1)])).to.equal(2);
    });

    it('prefers a ready clause to onTimeout(0) even when the timeout is listed first', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(5);
      expect(await select([onTimeout(0, () => 'default'), ch.onReceive((v) => v)])).to.equal(5);
    });

    it('lets a clause be reused by later selects', async () => {
      const ch = new Channel<number>(Infinity);
      const clause = ch.onReceive((v) => v * 10);
      ch.trySend(1);
      ch.trySend(2);
      expect([await select([clause]), await select([clause])]).to.deep.equal([10, 20]);
    });
  });

  for (const kind of kinds) {
    describe(`when it waits (${kind.name} channels)`, () => {
      it('completes with a value that arrives later and withdraws the other clauses', async () => {
        const a = kind.create<number>();
        const b = kind.create<number>();
        const result = observe(select([a.onReceive((v) => `a${v}`), b.onReceive((v) => `b${v}`)]));
        await ticks();
        expect(result.state().status).to.equal('pending');
        expect(b.trySend(4)).to.deep.equal({ ok: true });
        expectNothingRegistered(a);
        await ticks();
        expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'b4' });
        expect(b.isEmpty).to.equal(true);
      });

      it('runs the handler after the operation that completed the clause has returned', async () => {
        const ch = kind.create<number>();
        const steps: string[] = [];
        const result = select([ch.onReceive((v) => steps.push(`handler ${v}`))]);
        expect(ch.trySend(1)).to.deep.equal({ ok: true });
        steps.push('trySend returned');
        await result;
        expect(steps).to.deep.equal(['trySend returned', 'handler 1']);
      });

      it('lets exactly one of two selects take a value, first come first served', async () => {
        const ch = kind.create<number>();
        const first = observe(select([ch.onReceive((v) => `first ${v}`)]));
        const second = observe(select([ch.onReceive((v) => `second ${v}`)]));
        ch.trySend(1);
        await ticks();
        expect(first.state()).to.deep.equal({ status: 'fulfilled', value: 'first 1' });
        expect(second.state().status).to.equal('pending');
        ch.trySend(2);
        await ticks();
        expect(second.state()).to.deep.equal({ status: 'fulfilled', value: 'second 2' });
        expectNothingRegistered(ch);
      });

      it('lets exactly one of a receive and a select take a value, in arrival order', async () => {
        const ch = kind.create<number>();
        const other = kind.create<number>();
        const received = observe(ch.receive());
        const selected = observe(select([ch.onReceive(), other.onReceive()]));
        ch.trySend(1);
        await ticks();
        expect(received.state()).to.deep.equal({ status: 'fulfilled', value: 1 });
        expect(selected.state().status).to.equal('pending');
        ch.trySend(2);
        await ticks();
        expect(selected.state()).to.deep.equal({ status: 'fulfilled', value: 2 });
        expectNothingRegistered(ch);
        expectNothingRegistered(other);
      });

      it('lets a losing onSend deliver nothing and not call onUndelivered', async () => {
        const log = undeliveredLog();
        const a = kind.create<number>({ onUndelivered: log.onUndelivered });
        const b = kind.create<number>({ onUndelivered: log.onUndelivered });
        if (!kind.suspends) {
          // Never full (unlimited, or a drop policy): onSend is ready at once, first wins.
          expect(await select([a.onSend(1, () => 'a'), b.onSend(2, () => 'b')])).to.equal('a');
          expect([a.tryReceive(), b.tryReceive()]).to.deep.equal([
            { ok: true, value: 1 },
            { ok: false, closed: false },
          ]);
          expect(log.values).to.deep.equal([]);
          return;
        }
        // Fill the buffers so that both sends must wait.
        const fill = kind.capacity;
        for (let i = 0; i < fill; i++) {
          a.trySend(100 + i);
          b.trySend(200 + i);
        }
        const result = observe(select([a.onSend(1, () => 'a'), b.onSend(2, () => 'b')]));
        await ticks();
        expect(result.state().status).to.equal('pending');
        const taken: number[] = [];
        for (let i = 0; i <= fill; i++) taken.push(await b.receive());
        expect(taken.at(-1)).to.equal(2);
        await ticks();
        expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'b' });
        for (let i = 0; i < fill; i++)
          expect(a.tryReceive()).to.deep.equal({ ok: true, value: 100 + i });
        expectNothingRegistered(a);
        expectNothingRegistered(b);
        expect(log.values).to.deep.equal([]);
      });
    });
  }

  describe('with shared clauses and arrays', () => {
    it('lets one clause object wait in two selects at once, each taking its own value', async () => {
      const ch = new Channel<number>();
      const clause = ch.onReceive((v) => v * 10);
      const first = observe(select([clause]));
      const second = observe(select([clause]));
      ch.trySend(1);
      ch.trySend(2);
      await ticks();
      expect([first.state(), second.state()]).to.deep.equal([
        { status: 'fulfilled', value: 10 },
        { status: 'fulfilled', value: 20 },
      ]);
      expectNothingRegistered(ch);
    });

    it('withdraws the other clause on the same channel when one of them completes', async () => {
      const ch = new Channel<number>();
      const result = select([ch.onReceive((v) => `value ${v}`), ch.onReceiveCatching(() => 'r')]);
      expect(ch.trySend(1)).to.deep.equal({ ok: true });
      expectNothingRegistered(ch);
      expect(await result).to.equal('value 1');
      const closing = select([ch.onReceiveCatching(() => 'closed'), ch.onReceive(() => 'value')]);
      ch.close();
      expect(await closing).to.equal('closed');
    });

    it('is not disturbed when the caller changes its array while the select waits', async () => {
      const a = new Channel<number>();
      const b = new Channel<number>();
      const clauses = [a.onReceive((v) => `a${v}`), b.onReceive((v) => `b${v}`)];
      const result = select(clauses);
      clauses.length = 0;
      clauses.push(b.onReceive(() => 'replaced'));
      b.trySend(1);
      expectNothingRegistered(a);
      expectNothingRegistered(b);
      expect(await result).to.equal('b1');
    });
  });

  describe('on a rendezvous channel', () => {
    // Each select also waits on a channel of its own that nobody uses, so that both are
    // real multi-clause selects with a registration to withdraw.
    it('lets a select onSend meet a select onReceive that comes later', async () => {
      const ch = new Channel<number>();
      const idleA = new Channel<number>();
      const idleB = new Channel<number>();
      const sender = observe(select([ch.onSend(1, () => 'sent'), idleA.onReceive(() => 'idle')]));
      await ticks();
      expect(sender.state().status).to.equal('pending');
      const receiver = select([idleB.onSend(9, () => 'idle'), ch.onReceive((v) => `got ${v}`)]);
      expectNothingRegistered(ch);
      expectNothingRegistered(idleA);
      expectNothingRegistered(idleB);
      expect(await receiver).to.equal('got 1');
      await ticks();
      expect(sender.state()).to.deep.equal({ status: 'fulfilled', value: 'sent' });
    });

    it('lets a select onReceive meet a select onSend that comes later', async () => {
      const ch = new Channel<number>();
      const idleA = new Channel<number>();
      const idleB = new Channel<number>();
      const receiver = observe(
        select([idleA.onSend(9, () => 'idle'), ch.onReceive((v) => `got ${v}`)]),
      );
      await ticks();
      expect(receiver.state().status).to.equal('pending');
      const sender = select([ch.onSend(1, () => 'sent'), idleB.onReceive(() => 'idle')]);
      expectNothingRegistered(ch);
      expectNothingRegistered(idleA);
      expectNothingRegistered(idleB);
      expect(await sender).to.equal('sent');
      await ticks();
      expect(receiver.state()).to.deep.equal({ status: 'fulfilled', value: 'got 1' });
    });

    it('completes two selects that cross over two channels, each with one clause', async () => {
      const x = new Channel<number>();
      const y = new Channel<number>();
      const first = select([
        x.onSend(1, () => 'first sent on x'),
        y.onReceive((v) => `first got ${v}`),
      ]);
      // The second select tries y.onSend first: it meets first's parked onReceive on y.
      const second = select([
        y.onSend(2, () => 'second sent on y'),
        x.onReceive((v) => `second got ${v}`),
      ]);
      expect(await Promise.all([first, second])).to.deep.equal(['first got 2', 'second sent on y']);
      expectNothingRegistered(x);
      expectNothingRegistered(y);
    });

    it('pairs many select senders with many select receivers, each value once', async () => {
      const ch = new Channel<number>();
      const idle = new Channel<number>();
      const sends = Array.from({ length: 50 }, (_, i) =>
        select([idle.onReceive(() => -1), ch.onSend(i, () => i)]),
      );
      const receives = Array.from({ length: 50 }, () => select([ch.onReceive(), idle.onSend(-1)]));
      expect(await Promise.all(sends)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
      expect(await Promise.all(receives)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
      expectNothingRegistered(ch);
      expectNothingRegistered(idle);
    });
  });

  describe('when a channel is closed', () => {
    it('rejects onReceive on a closed, drained channel as receive does', async () => {
      const ch = new Channel<number>();
      ch.close();
      const error = await rejection(select([ch.onReceive()]));
      expect(error).to.be.instanceOf(ClosedReceiveError);
      expect(error).to.include({
        name: 'ClosedReceiveError',
        code: 'ERR_CHANNEL_CLOSED_FOR_RECEIVE',
      });
    });

    it('rejects onReceive with the close cause itself', async () => {
      const ch = new Channel<number>();
      const cause = new Error('upstream failed');
      ch.close(cause);
      expect(await rejection(select([ch.onReceive()]))).to.equal(cause);
    });

    it('still receives the values buffered before the close', async () => {
      const ch = new Channel<number>(2);
      ch.trySend(1);
      ch.close();
      expect(await select([ch.onReceive()])).to.equal(1);
      expect(await rejection(select([ch.onReceive()]))).to.be.instanceOf(ClosedReceiveError);
    });

    it('counts a closed channel as ready, so an earlier closed clause wins', async () => {
      const closed = new Channel<number>();
      closed.close();
      const full = new Channel<number>(1);
      full.trySend(1);
      expect(await rejection(select([closed.onReceive(), full.onReceive()]))).to.be.instanceOf(
        ClosedReceiveError,
      );
      expect(full.tryReceive()).to.deep.equal({ ok: true, value: 1 });
    });

    it('completes onReceiveCatching with the closed result', async () => {
      const ch = new Channel<number>();
      const cause = new Error('done');
      ch.close(cause);
      const result = await select([ch.onReceiveCatching((r) => r)]);
      expect(result).to.deep.equal({ ok: false, closed: true, cause });
      expect(!result.ok && result.cause).to.equal(cause);
      const plain = new Channel<number>();
      plain.close();
      expect(await select([plain.onReceiveCatching()])).to.deep.equal({ ok: false, closed: true });
    });

    it('rejects onSend as send does and hands its value to onUndelivered', async () => {
      const log = undeliveredLog();
      const ch = new Channel<number>(1, { onUndelivered: log.onUndelivered });
      ch.close();
      const error = await rejection(select([ch.onSend(1)]));
      expect(error).to.be.instanceOf(ClosedSendError);
      expect(error).to.include({ name: 'ClosedSendError', code: 'ERR_CHANNEL_CLOSED_FOR_SEND' });
      expect(log.values).to.deep.equal([1]);
      const cause = new Error('no more');
      const other = new Channel<number>(1, { onUndelivered: log.onUndelivered });
      other.close(cause);
      expect(await rejection(select([other.onSend(2)]))).to.equal(cause);
      expect(log.values).to.deep.equal([1, 2]);
    });

    it('rejects a waiting onReceive on close and withdraws the other clauses', async () => {
      const ch = new Channel<number>();
      const other = new Channel<number>();
      const result = select([other.onReceive(), ch.onReceive()]);
      ch.close();
      expectNothingRegistered(other);
      expect(await rejection(result)).to.be.instanceOf(ClosedReceiveError);
    });

    it('completes a waiting onReceiveCatching with the closed result on close', async () => {
      const ch = new Channel<number>();
      const other = new Channel<number>();
      const result = select([other.onReceive(), ch.onReceiveCatching()]);
      ch.close();
      expectNothingRegistered(other);
      expect(await result).to.deep.equal({ ok: false, closed: true });
    });

    it('leaves a waiting onSend waiting on close, and delivers it later (as send)', async () => {
      const ch = new Channel<number>();
      const result = observe(select([ch.onSend(1, () => 'sent')]));
      ch.close();
      await ticks();
      expect(result.state().status).to.equal('pending');
      expect(await ch.receive()).to.equal(1);
      await ticks();
      expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'sent' });
      expect(ch.isClosedForReceive).to.equal(true);
    });

    it('rejects a waiting onSend on cancel and hands only its value to onUndelivered', async () => {
      const log = undeliveredLog();
      const a = new Channel<number>(0, { onUndelivered: log.onUndelivered });
      const b = new Channel<number>(0, { onUndelivered: log.onUndelivered });
      const result = select([a.onSend(1), b.onSend(2)]);
      const reason = new Error('cancelled');
      a.cancel(reason);
      expectNothingRegistered(b);
      expect(await rejection(result)).to.equal(reason);
      expect(log.values).to.deep.equal([1]);
    });

    it('rejects a waiting onReceive on cancel with the reason', async () => {
      const ch = new Channel<number>();
      const result = select([ch.onReceive()]);
      const reason = new Error('stop');
      ch.cancel(reason);
      expect(await rejection(result)).to.equal(reason);
    });

    it('completes a waiting onReceiveCatching on cancel with the closed result', async () => {
      const ch = new Channel<number>();
      const result = select([ch.onReceiveCatching()]);
      const reason = new Error('stop');
      ch.cancel(reason);
      expect(await result).to.deep.equal({ ok: false, closed: true, cause: reason });
    });
  });

  describe('when a handler throws', () => {
    it('rejects with the error after the value was taken', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const error = new Error('handler failed');
      const result = select([
        ch.onReceive(() => {
          throw error;
        }),
      ]);
      expect(ch.isEmpty).to.equal(true);
      expect(await rejection(result)).to.equal(error);
    });

    it('rejects with the error after a waited-for value was taken', async () => {
      const ch = new Channel<number>();
      const error = new Error('handler failed');
      const result = select([ch.onReceive(() => Promise.reject(error))]);
      expect(ch.trySend(1)).to.deep.equal({ ok: true });
      expect(await rejection(result)).to.equal(error);
      expectNothingRegistered(ch);
    });

    it('rejects with the error after the onSend value was delivered', async () => {
      const ch = new Channel<number>();
      const error = new Error('handler failed');
      const result = select([
        ch.onSend(1, () => {
          throw error;
        }),
      ]);
      expect(await ch.receive()).to.equal(1);
      expect(await rejection(result)).to.equal(error);
    });
  });

  describe('onTimeout', () => {
    let clock: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] });
    });
    afterEach(() => {
      clock.uninstall();
    });

    it('completes after ms when no other clause became ready, withdrawing the others', async () => {
      const ch = new Channel<number>();
      const result = observe(select([ch.onReceive(() => 'value'), onTimeout(100, () => 'idle')]));
      expect(clock.countTimers()).to.equal(1);
      clock.tick(99);
      await ticks();
      expect(result.state().status).to.equal('pending');
      clock.tick(1);
      await ticks();
      expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'idle' });
      expectNothingRegistered(ch);
      expect(clock.countTimers()).to.equal(0);
    });

    it('clears its timer as soon as another clause wins', async () => {
      const ch = new Channel<number>();
      const result = select([ch.onReceive(), onTimeout(100, () => 'idle')]);
      expect(clock.countTimers()).to.equal(1);
      ch.trySend(3);
      expect(clock.countTimers()).to.equal(0);
      expect(await result).to.equal(3);
    });

    it('uses one timer for the shortest timeout; the first wins among equals', async () => {
      const result = select([
        onTimeout(50, () => 'late'),
        onTimeout(20, () => 'first of equals'),
        onTimeout(20, () => 'second of equals'),
      ]);
      expect(clock.countTimers()).to.equal(1);
      clock.tick(20);
      expect(await result).to.equal('first of equals');
      expect(clock.countTimers()).to.equal(0);
    });

    it('onTimeout(0) completes at once, without a timer, when nothing is ready', async () => {
      const ch = new Channel<number>();
      const result = select([ch.onReceive(() => 'value'), onTimeout(0, () => 'default')]);
      expect(clock.countTimers()).to.equal(0);
      expectNothingRegistered(ch);
      expect(await result).to.equal('default');
    });

    it('onTimeout(Infinity) sets no timer and never completes', async () => {
      const ch = new Channel<number>();
      const result = observe(select([ch.onReceive(), onTimeout(Infinity, () => 'never')]));
      expect(clock.countTimers()).to.equal(0);
      await ticks();
      expect(result.state().status).to.equal('pending');
      ch.trySend(1);
      await ticks();
      expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 1 });
    });

    it('starts its timer when the select runs, so a clause can be reused', async () => {
      const timeout = onTimeout(10, () => 'idle');
      clock.tick(1000);
      const result = observe(select([timeout]));
      clock.tick(9);
      await ticks();
      expect(result.state().status).to.equal('pending');
      clock.tick(1);
      await ticks();
      expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'idle' });
    });

    it('honours a delay beyond the 2^31 - 1 ms that setTimeout takes', async () => {
      const result = observe(select([onTimeout(2 ** 31 + 5, () => 'late')]));
      clock.tick(2 ** 31 - 1);
      await ticks();
      expect(result.state().status).to.equal('pending');
      clock.tick(5);
      await ticks();
      expect(result.state().status).to.equal('pending');
      clock.tick(1);
      await ticks();
      expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'late' });
    });

    it('rejects a negative or NaN delay with a RangeError', () => {
      for (const [ms, shown] of [
        [-1, '-1'],
        [-Infinity, '-Infinity'],
        [Number.NaN, 'NaN'],
      ] as const) {
        expect(() => onTimeout(ms)).to.throw(
          RangeError,
          `Expected ms to be a non-negative number of milliseconds or Infinity, got ${shown}`,
        );
      }
    });

    it('rejects a delay that is not a number with a TypeError', () => {
      expect(() => onTimeout('5' as unknown as number)).to.throw(
        TypeError,
        "Expected ms to be a non-negative number of milliseconds or Infinity, got '5' (string)",
      );
    });
  });

  describe('with a signal', () => {
    it('rejects at once with the reason of an already aborted signal, taking nothing', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const reason = new Error('aborted');
      const error = await rejection(
        select([ch.onReceive()], { signal: AbortSignal.abort(reason) }),
      );
      expect(error).to.equal(reason);
      expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 1 });
    });

    it('rejects with the reason when aborted while waiting and withdraws every clause', async () => {
      const log = undeliveredLog();
      const a = new Channel<number>(0, { onUndelivered: log.onUndelivered });
      const b = new Channel<number>(0, { onUndelivered: log.onUndelivered });
      const controller = new AbortController();
      const result = select([a.onReceive(), b.onSend(2)], { signal: controller.signal });
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
      const reason = new Error('stop');
      controller.abort(reason);
      expectNothingRegistered(a);
      expectNothingRegistered(b);
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
      expect(await rejection(result)).to.equal(reason);
      expect(log.values).to.deep.equal([]);
    });

    it('removes its abort listener when a clause wins, and a later abort changes nothing', async () => {
      const ch = new Channel<number>();
      const controller = new AbortController();
      const result = select([ch.onReceive()], { signal: controller.signal });
      ch.trySend(1);
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
      controller.abort();
      expect(await result).to.equal(1);
    });

    it('removes its abort listener when a ready clause wins at once or the timeout fires', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const controller = new AbortController();
      expect(await select([ch.onReceive()], { signal: controller.signal })).to.equal(1);
      expect(await select([ch.onReceive(), onTimeout(0)], { signal: controller.signal })).to.equal(
        undefined,
      );
      expect(await select([ch.onReceive(), onTimeout(1)], { signal: controller.signal })).to.equal(
        undefined,
      );
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
    });
  });

  describe('invalid use', () => {
    it('rejects an empty clause list with a RangeError', async () => {
      const result = select([]);
      const error = await rejection(result);
      expect(error).to.be.instanceOf(RangeError);
      expect(error).to.have.property(
        'message',
        'Expected at least one select clause, got an empty array',
      );
    });

    it('rejects something that is not an array of clauses with a TypeError', async () => {
      expect(await rejection(select('clauses' as never))).to.be.instanceOf(TypeError);
      const error = await rejection(select([new Channel<number>().onReceive(), {}] as never));
      expect(error).to.be.instanceOf(TypeError);
      expect(error)
        .to.have.property('message')
        .that.matches(/^Expected clauses\[1\] to be a select clause .*, got object$/);
    });

    it('rejects onSend and a receive clause of one channel in one select, touching nothing', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const other = new Channel<number>();
      for (const receive of [ch.onReceive(), ch.onReceiveCatching()]) {
        const error = await rejection(select([other.onReceive(), ch.onSend(2), receive]));
        expect(error).to.be.instanceOf(TypeError);
        expect(error)
          .to.have.property('message')
          .that.matches(
            /^Expected onSend and onReceive\/onReceiveCatching of one select to use different channels, got the same channel in clauses\[1\] \(onSend\) and clauses\[2\] \(onReceive(Catching)?\)$/,
          );
      }
      expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 1 });
      expectNothingRegistered(other);
    });

    it('throws a TypeError for a handler that is not a function', () => {
      const ch = new Channel<number>();
      expect(() => ch.onReceive(5 as never)).to.throw(
        TypeError,
        'Expected handler to be a function, got 5 (number)',
      );
      expect(() => ch.onReceiveCatching({} as never)).to.throw(TypeError, 'got object');
      expect(() => ch.onSend(1, null as never)).to.throw(TypeError, 'got null');
      expect(() => onTimeout(1, 'x' as never)).to.throw(TypeError, "got 'x' (string)");
    });

    it('rejects a signal that is not an AbortSignal with a TypeError', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const error = await rejection(select([ch.onReceive()], { signal: {} as AbortSignal }));
      expect(error).to.be.instanceOf(TypeError);
      expect(error).to.have.property(
        'message',
        'Expected signal to be an AbortSignal or undefined, got object',
      );
      expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 1 });
    });
  });

  describe('types', () => {
    it('resolves with the union of the clause results', async () => {
      const numbers = new Channel<number>(1);
      const strings = new Channel<string>(1);
      const out = new Channel<boolean>();
      numbers.trySend(1);
      const result: number | ReceiveResult<string> | 'sent' = await select([
        numbers.onReceive(),
        strings.onReceive((s) => s.length),
        strings.onReceiveCatching(),
        out.onSend(true, () => 'sent' as const),
      ]);
      expect(result).to.equal(1);
      const clauses: SelectClause<number>[] = [numbers.onReceive()];
      numbers.trySend(3);
      const fromArray: number = await select(clauses);
      expect(fromArray).to.equal(3);
    });

    it('keeps clause types apart at compile time', () => {
      const numbers = new Channel<number>();
      // @ts-expect-error -- a Channel<number> cannot send a string
      expect(() => numbers.onSend('x')).to.not.throw();
      // @ts-expect-error -- a clause of a string result is not a clause of a number result
      const clause: SelectClause<number> = numbers.onReceive((v) => String(v));
      expect(clause).to.be.an('object');
    });
  });
});

describe('select on events: onAbort, job.onJoin, deferred.onAwait', () => {
  function abortListeners(signal: AbortSignal): number {
    return getEventListeners(signal, 'abort').length;
  }

  describe('onAbort(signal)', () => {
    it('completes with the reason when the signal aborts, withdrawing the channel clauses', async () => {
      const ch = new Channel<number>();
      const controller = new AbortController();
      const result = select([ch.onReceive((v) => `value ${v}`), onAbort(controller.signal)]);
      expect(abortListeners(controller.signal)).to.equal(1);
      const reason = new Error('done');
      controller.abort(reason);
      expect(await result).to.equal(reason);
      expectNothingRegistered(ch);
      expect(abortListeners(controller.signal)).to.equal(0);
    });

    it('passes the reason to its handler', async () => {
      const controller = new AbortController();
      const result = select([onAbort(controller.signal, (reason) => ['stopped', reason])]);
      controller.abort('why');
      expect(await result).to.deep.equal(['stopped', 'why']);
    });

    it('is ready at once for an aborted signal: first in order wins, a later ready channel keeps its value', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      const signal = AbortSignal.abort('gone');
      expect(await select([onAbort(signal), ch.onReceive()])).to.equal('gone');
      expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 1 });
      ch.trySend(2);
      expect(await select([ch.onReceive(), onAbort(signal)])).to.equal(2);
    });

    it('losing, removes its listener; 1,000 selects on one long-lived signal leave none', async () => {
      const ch = new Channel<number>();
      const controller = new AbortController();
      for (let i = 0; i < 1_000; i++) {
        const result = select([ch.onReceive(), onAbort(controller.signal, () => -1)]);
        ch.trySend(i);
        expect(await result).to.equal(i);
      }
      expect(abortListeners(controller.signal)).to.equal(0);
      controller.abort();
      expectNothingRegistered(ch);
    });

    it("the select's own signal wins over an onAbort clause on the same signal", async () => {
      const controller = new AbortController();
      const waiting = select([onAbort(controller.signal, () => 'clause')], {
        signal: controller.signal,
      });
      const reason = new Error('option');
      controller.abort(reason);
      expect(await rejection(waiting)).to.equal(reason);
      expect(abortListeners(controller.signal)).to.equal(0);
      const again = select([onAbort(controller.signal, () => 'clause')], {
        signal: controller.signal,
      });
      expect(await rejection(again)).to.equal(reason);
    });

    it('loses to onTimeout and to the select signal without a trace', async () => {
      const controller = new AbortController();
      expect(await select([onAbort(controller.signal), onTimeout(1, () => 'late')])).to.equal(
        'late',
      );
      const other = new AbortController();
      const pending = select([onAbort(controller.signal)], { signal: other.signal });
      other.abort('other');
      expect(await rejection(pending)).to.equal('other');
      expect(abortListeners(controller.signal)).to.equal(0);
      expect(abortListeners(other.signal)).to.equal(0);
    });

    it('rejects what is not an AbortSignal with a TypeError naming what is allowed', () => {
      expect(() => onAbort('stop' as unknown as AbortSignal)).to.throw(
        TypeError,
        "Expected signal to be an AbortSignal or undefined, got 'stop'",
      );
      expect(() => onAbort(undefined as unknown as AbortSignal)).to.throw(
        TypeError,
        'Expected signal to be an AbortSignal, got undefined',
      );
      expect(() => onAbort(new AbortController().signal, 5 as unknown as () => void)).to.throw(
        TypeError,
        'Expected handler to be a function, got 5',
      );
    });
  });

  describe('job.onJoin()', () => {
    it('completes when the job settles, however it ends, and withdraws the other clauses', async () => {
      const ch = new Channel<number>();
      await scope(async (s) => {
        const finish = gate();
        const job = s.launch(() => finish.promise);
        const result = select([ch.onReceive(), job.onJoin(() => 'joined')]);
        await ticks(2);
        finish.open();
        expect(await result).to.equal('joined');
        expectNothingRegistered(ch);
        const cancelled = s.launch(
          (signal) =>
            new Promise((_, reject) => {
              signal.addEventListener('abort', () => reject(signal.reason));
            }),
        );
        const joined = select([cancelled.onJoin()]);
        cancelled.cancel();
        expect(await joined).to.equal(undefined);
      });
    });

    it('is ready at once for a settled job (first in order wins)', async () => {
      const ch = new Channel<number>(1);
      ch.trySend(1);
      await scope(async (s) => {
        const job = s.launch(() => undefined);
        await job.join();
        expect(await select([job.onJoin(() => 'joined'), ch.onReceive()])).to.equal('joined');
        expect(await select([ch.onReceive(), job.onJoin(() => 'joined')])).to.equal(1);
      });
    });

    it('losing 20,000 times to a channel keeps nothing registered on a running job', async () => {
      const ch = new Channel<number>();
      await scope(async (s) => {
        const finish = gate();
        const job = s.launch(() => finish.promise);
        globalThis.gc?.();
        const before = process.memoryUsage().heapUsed;
        for (let i = 0; i < 20_000; i++) {
          const result = select([ch.onReceive(), job.onJoin(() => -1)]);
          ch.trySend(i);
          expect(await result).to.equal(i);
        }
        globalThis.gc?.();
        expect(process.memoryUsage().heapUsed - before).to.be.below(1_500_000);
        finish.open();
      });
    });
  });

  describe('deferred.onAwait()', () => {
    it('completes with the value, or rejects the select with the error as await would', async () => {
      await supervisorScope(
        async (s) => {
          const value = gate<string>();
          const a = s.async(() => value.promise);
          const result = select([a.onAwait((v) => `got ${v}`), onTimeout(10_000)]);
          value.open('a');
          expect(await result).to.equal('got a');
          const boom = new Error('boom');
          const failing = s.async(async () => {
            await ticks(1);
            throw boom;
          });
          expect(await rejection(select([failing.onAwait()]))).to.equal(boom);
          const done = s.async(() => 5);
          await done.join();
          expect(await select([done.onAwait()])).to.equal(5);
        },
        {
          onError: () => {
            throw new Error('a failure seen by onAwait is handled, not reported');
          },
        },
      );
    });

    it('losing does not count as awaiting: the failure still reaches onError', async () => {
      const errors: unknown[] = [];
      const boom = new Error('boom');
      await supervisorScope(
        async (s) => {
          const fail = gate();
          const failing = s.async(async () => {
            await fail.promise;
            throw boom;
          });
          expect(await select([failing.onAwait(), onTimeout(0, () => 'default')])).to.equal(
            'default',
          );
          fail.open();
          await failing.join();
        },
        { onError: (error) => errors.push(error) },
      );
      expect(errors).to.deep.equal([boom]);
    });
  });

  it('exactly one of a channel, a job and a signal completes, whatever the timing (property)', async () => {
    const outcomes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 4 }),
        fc.nat({ max: 4 }),
        fc.nat({ max: 4 }),
        fc.boolean(),
        async (sendAt, finishAt, abortAt, unbiased) => {
          const ch = new Channel<number>();
          const controller = new AbortController();
          await scope(async (s) => {
            const finish = gate();
            const job = s.launch(() => finish.promise);
            const clauses = [
              ch.onReceive((v) => `value ${v}`),
              job.onJoin(() => 'joined'),
              onAbort(controller.signal, () => 'aborted'),
            ];
            const result = unbiased ? selectUnbiased(clauses) : select(clauses);
            let sent: { state: () => { status: string } } | null = null;
            for (let tick = 0; tick <= 4; tick++) {
              if (tick === sendAt) sent = observe(ch.send(7));
              if (tick === abortAt) controller.abort();
              if (tick === finishAt) finish.open();
              await ticks(1);
            }
            const won = await result;
            await ticks(3);
            expect(['value 7', 'joined', 'aborted']).to.include(won);
            expect(sent?.state().status).to.equal(won === 'value 7' ? 'fulfilled' : 'pending');
            // Nothing was taken unless the channel clause won: the sender still waits.
            if (won !== 'value 7') expect(ch.tryReceive()).to.deep.equal({ ok: true, value: 7 });
            outcomes.add(won);
            expect(abortListeners(controller.signal)).to.equal(0);
          });
        },
      ),
      { numRuns: 60, seed: 4242 },
    );
    expect([...outcomes].sort()).to.deep.equal(['aborted', 'joined', 'value 7']);
  });
});

describe('selectUnbiased', () => {
  it('picks uniformly among the ready clauses and never a clause that is not ready', async () => {
    const ready = [
      new Channel<number>(Infinity),
      new Channel<number>(Infinity),
      new Channel<number>(Infinity),
    ];
    const empty = new Channel<number>();
    const trials = 3000;
    const counts = [0, 0, 0];
    for (const ch of ready) for (let i = 0; i < trials; i++) ch.trySend(i);
    for (let i = 0; i < trials; i++) {
      const index = await selectUnbiased([
        empty.onReceive(() => -1),
        ready[0]!.onReceive(() => 0),
        onTimeout(0, () => -2),
        ready[1]!.onReceive(() => 1),
        ready[2]!.onReceive(() => 2),
      ]);
      expect(index).to.be.oneOf([0, 1, 2]);
      counts[index]! += 1;
    }
    // Expected 1000 each, standard deviation about 26: these bounds are beyond 5 sigma.
    for (const count of counts) expect(count).to.be.within(860, 1140);
    expect(counts[0]! + counts[1]! + counts[2]!).to.equal(trials);
    expectNothingRegistered(empty);
  });

  it('waits like select when nothing is ready, then takes the clause that becomes ready', async () => {
    const a = new Channel<number>();
    const b = new Channel<number>();
    const result = observe(
      selectUnbiased([a.onReceive((v) => `a${v}`), b.onReceive((v) => `b${v}`)]),
    );
    await ticks();
    expect(result.state().status).to.equal('pending');
    b.trySend(1);
    await ticks();
    expect(result.state()).to.deep.equal({ status: 'fulfilled', value: 'b1' });
    expectNothingRegistered(a);
    expectNothingRegistered(b);
  });

  it('chooses onTimeout(0) only when no channel clause is ready', async () => {
    const a = new Channel<number>();
    expect(await selectUnbiased([onTimeout(0, () => 'default'), a.onReceive()])).to.equal(
      'default',
    );
    expectNothingRegistered(a);
  });

  it('validates its clauses as select does', async () => {
    expect(await rejection(selectUnbiased([]))).to.be.instanceOf(RangeError);
  });
});

describe('select under concurrency (property)', () => {
  type SendMode = 'send' | 'select' | 'selectUnbiased' | 'poll' | 'abort';
  type ReceiveMode = 'receive' | 'select' | 'selectUnbiased' | 'poll';
  interface SendOp {
    readonly mode: SendMode;
    readonly targets: readonly number[];
    readonly withTimer: boolean;
    readonly jitter: number;
  }
  interface Receiver {
    readonly targets: readonly number[];
    readonly modes: readonly ReceiveMode[];
    readonly jitter: readonly number[];
  }

  const STOP = 'stop' as const;
  const NOTHING = 'nothing' as const;

  function activeTimers(): number {
    return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  }

  function targets(channels: number): fc.Arbitrary<number[]> {
    return fc.uniqueArray(fc.nat({ max: channels - 1 }), { minLength: 1, maxLength: channels });
  }

  const scenario = fc
    .array(fc.constantFrom(0, 1, 3, Infinity), { minLength: 1, maxLength: 4 })
    .chain((capacities) =>
      fc.record({
        capacities: fc.constant(capacities),
        senders: fc.array(
          fc.array(
            fc.record({
              mode: fc.constantFrom<SendMode>('send', 'select', 'selectUnbiased', 'poll', 'abort'),
              targets: targets(capacities.length),
              withTimer: fc.boolean(),
              jitter: fc.nat({ max: 3 }),
            }),
            { minLength: 1, maxLength: 6 },
          ),
          { minLength: 1, maxLength: 4 },
        ),
        receivers: fc.array(
          fc.record({
            targets: targets(capacities.length),
            modes: fc.array(
              fc.constantFrom<ReceiveMode>('receive', 'select', 'selectUnbiased', 'poll'),
              { minLength: 1, maxLength: 4 },
            ),
            jitter: fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 4 }),
          }),
          { minLength: 0, maxLength: 3 },
        ),
      }),
    );

  async function runSender(
    channels: readonly Channel<number>[],
    ops: readonly SendOp[],
    firstValue: number,
  ): Promise<void> {
    for (const [k, op] of ops.entries()) {
      const value = firstValue + k;
      await ticks(op.jitter);
      const clauses = op.targets.map((t) => channels[t]!.onSend(value, () => t));
      const fallback = channels[op.targets[0]!]!;
      switch (op.mode) {
        case 'send':
          await fallback.send(value);
          break;
        case 'select':
        case 'selectUnbiased': {
          const run = op.mode === 'select' ? select : selectUnbiased;
          const timer = op.withTimer ? [onTimeout(60_000, () => -1)] : [];
          const target = await run([...clauses, ...timer]);
          expect(op.targets).to.include(target);
          break;
        }
        case 'poll': {
          const target = await select([...clauses, onTimeout(0, () => NOTHING)]);
          if (target === NOTHING) await fallback.send(value);
          else expect(op.targets).to.include(target);
          break;
        }
        case 'abort': {
          const controller = new AbortController();
          const reason = new Error('abort');
          void ticks(op.jitter).then(() => {
            controller.abort(reason);
          });
          try {
            const target = await select(clauses, { signal: controller.signal });
            expect(op.targets).to.include(target);
          } catch (error) {
            expect(error).to.equal(reason);
            await fallback.send(value);
          }
          break;
        }
      }
    }
  }

  async function runReceiver(
    channels: readonly Channel<number>[],
    receiver: Receiver,
    stop: Channel<never>,
    stopSignal: AbortSignal,
    received: number[],
    onValue: () => void,
  ): Promise<void> {
    for (let round = 0; ; round++) {
      if (round > 20_000) throw new Error('receiver loop did not end');
      await ticks(receiver.jitter[round % receiver.jitter.length]);
      const mode = receiver.modes[round % receiver.modes.length]!;
      let value: number | typeof STOP | typeof NOTHING;
      if (mode === 'receive') {
        const channel = channels[receiver.targets[round % receiver.targets.length]!]!;
        try {
          value = await channel.receive({ signal: stopSignal });
        } catch (error) {
          expect(stopSignal.aborted).to.equal(true);
          expect(error).to.equal(stopSignal.reason);
          return;
        }
      } else {
        const run = mode === 'selectUnbiased' ? selectUnbiased : select;
        const clauses = [
          ...receiver.targets.map((t) => channels[t]!.onReceive()),
          stop.onReceiveCatching(() => STOP),
          ...(mode === 'poll' ? [onTimeout(0, () => NOTHING)] : []),
        ];
        value = await run(clauses);
      }
      if (value === STOP) return;
      if (value !== NOTHING) {
        received.push(value);
        onValue();
      }
    }
  }

  it('receives every value exactly once and leaves nothing registered', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ capacities, senders, receivers }) => {
        const timersBefore = activeTimers();
        const undelivered: number[] = [];
        const channels = capacities.map(
          (capacity) =>
            new Channel<number>(capacity, { onUndelivered: (v) => undelivered.push(v) }),
        );
        // One receiver always watches every channel, so that no value can be stranded.
        const everyone: Receiver = {
          targets: channels.map((_, i) => i),
          modes: ['select', 'selectUnbiased', 'poll'],
          jitter: [0, 1],
        };
        const allReceivers = [everyone, ...receivers];
        const total = senders.reduce((n, ops) => n + ops.length, 0);
        const stop = new Channel<never>();
        const stopController = new AbortController();
        const received: number[] = [];
        const onValue = (): void => {
          if (received.length === total) {
            stop.close();
            stopController.abort(new Error('all received'));
          }
        };
        let next = 0;
        const sending = senders.map((ops) => {
          const first = next;
          next += ops.length;
          return runSender(channels, ops, first);
        });
        const receiving = allReceivers.map((r) =>
          runReceiver(channels, r, stop, stopController.signal, received, onValue),
        );
        await Promise.all([...sending, ...receiving]);

        expect([...received].sort((x, y) => x - y)).to.deep.equal(
          Array.from({ length: total }, (_, i) => i),
        );
        expect(undelivered).to.deep.equal([]);
        for (const channel of channels) expectNothingRegistered(channel);
        expect(getEventListeners(stopController.signal, 'abort')).to.have.length(0);
        expect(activeTimers()).to.equal(timersBefore);
      }),
      { numRuns: 150 },
    );
  });
});
