import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import fc from 'fast-check';
import { Mutex, MutexNotLockedError, PermitNotHeldError, Semaphore } from '../lib/index.js';
import type { MutexLock, SemaphorePermit } from '../lib/index.js';
import { ticks } from './helpers/async.js';
import { gate, rejection } from './helpers/outcomes.js';

function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('Mutex', () => {
  describe('#lock() and #unlock()', () => {
    it('locks a free mutex at once and unlocks it', async () => {
      const mutex = new Mutex();
      expect(mutex.isLocked).to.equal(false);
      const lock = await mutex.lock();
      expect(mutex.isLocked).to.equal(true);
      expect(lock.isHeld).to.equal(true);
      lock.unlock();
      expect(mutex.isLocked).to.equal(false);
      expect(lock.isHeld).to.equal(false);
    });

    it('serves waiters first-come first-served, handing the mutex over directly', async () => {
      const mutex = new Mutex();
      const first = await mutex.lock();
      const order: string[] = [];
      const waiting = ['a', 'b', 'c'].map((name) =>
        mutex.lock().then((lock) => {
          order.push(name);
          return lock;
        }),
      );
      first.unlock();
      // Handed to 'a' in the same step: a tryLock now cannot barge in.
      expect(mutex.isLocked).to.equal(true);
      expect(mutex.tryLock()).to.equal(undefined);
      for (const pending of waiting) (await pending).unlock();
      expect(order).to.deep.equal(['a', 'b', 'c']);
      expect(mutex.isLocked).to.equal(false);
    });

    it('tryLock takes a free mutex and returns undefined when it is held', () => {
      const mutex = new Mutex();
      const lock = mutex.tryLock();
      expect(lock?.isHeld).to.equal(true);
      expect(mutex.tryLock()).to.equal(undefined);
      mutex.unlock();
      expect(lock?.isHeld).to.equal(false);
    });

    it('an aborted waiter rejects with signal.reason, never gets the mutex, and the next one does', async () => {
      const mutex = new Mutex();
      const held = await mutex.lock();
      const controller = new AbortController();
      const aborted = mutex.lock({ signal: controller.signal });
      const next = mutex.lock();
      const reason = new Error('gave up');
      controller.abort(reason);
      expect(abortListeners(controller.signal)).to.equal(0);
      expect(await rejection(aborted)).to.equal(reason);
      held.unlock();
      const lock = await next;
      expect(lock.isHeld).to.equal(true);
      lock.unlock();
      expect(mutex.isLocked).to.equal(false);
    });

    it('an already aborted signal rejects at once even when the mutex is free', async () => {
      const mutex = new Mutex();
      const reason = new Error('already');
      expect(await rejection(mutex.lock({ signal: AbortSignal.abort(reason) }))).to.equal(reason);
      expect(mutex.isLocked).to.equal(false);
    });

    it('an abort after the hand-over changes nothing: the waiter holds the mutex', async () => {
      const mutex = new Mutex();
      const held = await mutex.lock();
      const controller = new AbortController();
      const waiting = mutex.lock({ signal: controller.signal });
      held.unlock();
      controller.abort();
      const lock = await waiting;
      expect(lock.isHeld).to.equal(true);
      expect(abortListeners(controller.signal)).to.equal(0);
      lock.unlock();
    });

    it('unlocking an unlocked mutex throws MutexNotLockedError', () => {
      const mutex = new Mutex();
      let error: unknown;
      try {
        mutex.unlock();
      } catch (thrown) {
        error = thrown;
      }
      expect(error).to.be.instanceOf(MutexNotLockedError);
      expect(error).to.include({
        name: 'MutexNotLockedError',
        code: 'ERR_MUTEX_NOT_LOCKED',
        message: 'Expected the mutex to be locked, got it unlocked',
      });
    });

    it('a hold unlocked twice throws MutexNotLockedError and frees nobody else', async () => {
      const mutex = new Mutex();
      const first = await mutex.lock();
      first.unlock();
      const second = await mutex.lock();
      expect(() => {
        first.unlock();
      }).to.throw(MutexNotLockedError, 'Expected this lock to be held, got one already unlocked');
      expect(second.isHeld).to.equal(true);
      expect(mutex.isLocked).to.equal(true);
      mutex.unlock();
      expect(second.isHeld).to.equal(false);
      expect(() => {
        second.unlock();
      }).to.throw(MutexNotLockedError);
    });

    it('rejects a signal that is not an AbortSignal with a TypeError', async () => {
      const error = await rejection(new Mutex().lock({ signal: {} as AbortSignal }));
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.equal(
        'Expected signal to be an AbortSignal or undefined, got object',
      );
    });
  });

  describe('await using', () => {
    it('unlocks a held lock at the end of the block, and tolerates an early unlock', async () => {
      const mutex = new Mutex();
      {
        await using lock = await mutex.lock();
        expect(lock.isHeld).to.equal(true);
      }
      expect(mutex.isLocked).to.equal(false);
      {
        using lock = mutex.tryLock();
        expect(mutex.isLocked).to.equal(true);
        lock?.unlock();
        expect(mutex.isLocked).to.equal(false);
      }
      expect(mutex.isLocked).to.equal(false);
      {
        using lock = mutex.tryLock();
        using none = mutex.tryLock();
        expect([lock?.isHeld, none]).to.deep.equal([true, undefined]);
      }
      expect(mutex.isLocked).to.equal(false);
    });
  });

  describe('#withLock()', () => {
    it('runs blocks one at a time, in call order, and resolves with their results', async () => {
      const mutex = new Mutex();
      let inside = 0;
      let most = 0;
      const steps: number[] = [];
      const results = await Promise.all(
        [1, 2, 3, 4].map((n) =>
          mutex.withLock(async () => {
            inside++;
            most = Math.max(most, inside);
            await ticks(2);
            steps.push(n);
            inside--;
            return n * 10;
          }),
        ),
      );
      expect(results).to.deep.equal([10, 20, 30, 40]);
      expect(steps).to.deep.equal([1, 2, 3, 4]);
      expect(most).to.equal(1);
      expect(mutex.isLocked).to.equal(false);
    });

    it('unlocks when the block throws and rejects with the same error', async () => {
      const mutex = new Mutex();
      const boom = new Error('boom');
      expect(
        await rejection(
          mutex.withLock(() => {
            throw boom;
          }),
        ),
      ).to.equal(boom);
      expect(mutex.isLocked).to.equal(false);
    });

    it('aborted while waiting: rejects with the reason and never runs the block', async () => {
      const mutex = new Mutex();
      const held = await mutex.lock();
      const controller = new AbortController();
      let ran = false;
      const waiting = mutex.withLock(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      );
      controller.abort('stop');
      expect(await rejection(waiting)).to.equal('stop');
      held.unlock();
      await ticks(2);
      expect(ran).to.equal(false);
      expect(mutex.isLocked).to.equal(false);
    });

    it('rejects a block that is not a function with a TypeError', async () => {
      const error = await rejection(new Mutex().withLock(42 as unknown as () => void));
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.equal('Expected block to be a function, got 42 (number)');
    });
  });
});

describe('Semaphore', () => {
  it('validates permits: "Expected …, got …" with TypeError or RangeError', () => {
    expect(() => new Semaphore('2' as unknown as number)).to.throw(
      TypeError,
      "Expected permits to be a positive integer, got '2'",
    );
    for (const bad of [0, -1, 1.5, NaN, Infinity]) {
      expect(() => new Semaphore(bad)).to.throw(
        RangeError,
        `Expected permits to be a positive integer, got ${String(bad)}`,
      );
    }
  });

  it('lets at most `permits` holders in, and the next waiter in when one releases', async () => {
    const semaphore = new Semaphore(2);
    expect(semaphore.permits).to.equal(2);
    const a = await semaphore.acquire();
    const b = semaphore.tryAcquire();
    expect(semaphore.availablePermits).to.equal(0);
    expect(semaphore.tryAcquire()).to.equal(undefined);
    const c = semaphore.acquire();
    a.release();
    expect(semaphore.availablePermits).to.equal(0);
    const permit = await c;
    b?.release();
    permit.release();
    expect(semaphore.availablePermits).to.equal(2);
  });

  it('release() frees the oldest permit held, whose handle then counts as released', async () => {
    const semaphore = new Semaphore(2);
    const first = await semaphore.acquire();
    const second = await semaphore.acquire();
    semaphore.release();
    expect([first.isHeld, second.isHeld]).to.deep.equal([false, true]);
    expect(() => {
      first.release();
    }).to.throw(PermitNotHeldError, 'Expected this permit to be held, got one already released');
    second.release();
    let error: unknown;
    try {
      semaphore.release();
    } catch (thrown) {
      error = thrown;
    }
    expect(error).to.be.instanceOf(PermitNotHeldError);
    expect(error).to.include({
      name: 'PermitNotHeldError',
      code: 'ERR_SEMAPHORE_PERMIT_NOT_HELD',
      message: 'Expected a permit to be held, got none (all 2 are available)',
    });
    expect(semaphore.availablePermits).to.equal(2);
  });

  it('withPermit runs at most `permits` blocks at once and releases on throw', async () => {
    const semaphore = new Semaphore(3);
    let inside = 0;
    let most = 0;
    const boom = new Error('boom');
    const outcomes = await Promise.allSettled(
      [...Array(10).keys()].map((n) =>
        semaphore.withPermit(async () => {
          inside++;
          most = Math.max(most, inside);
          await ticks(1 + (n % 3));
          inside--;
          if (n === 4) throw boom;
          return n;
        }),
      ),
    );
    expect(most).to.equal(3);
    expect(outcomes[4]).to.deep.equal({ status: 'rejected', reason: boom });
    expect(outcomes[9]).to.deep.equal({ status: 'fulfilled', value: 9 });
    expect(semaphore.availablePermits).to.equal(3);
  });

  it('await using releases an acquired permit at the end of the block', async () => {
    const semaphore = new Semaphore(1);
    {
      await using permit = await semaphore.acquire();
      expect(permit.isHeld).to.equal(true);
      expect(semaphore.availablePermits).to.equal(0);
    }
    expect(semaphore.availablePermits).to.equal(1);
  });

  it('an aborted waiter behind a released permit does not lose it: the next waiter gets it', async () => {
    const semaphore = new Semaphore(1);
    const held = await semaphore.acquire();
    const controller = new AbortController();
    const aborted = semaphore.acquire({ signal: controller.signal });
    const next = semaphore.acquire();
    controller.abort('no');
    held.release();
    expect(await rejection(aborted)).to.equal('no');
    const permit = await next;
    permit.release();
    expect(semaphore.availablePermits).to.equal(1);
  });

  it('withPermit with an already aborted signal rejects and runs nothing', async () => {
    const semaphore = new Semaphore(1);
    const block = gate();
    const error = await rejection(
      semaphore.withPermit(() => block.promise, { signal: AbortSignal.abort('early') }),
    );
    expect(error).to.equal('early');
    expect(semaphore.availablePermits).to.equal(1);
    expect(await rejection(semaphore.withPermit(null as unknown as () => void))).to.be.instanceOf(
      TypeError,
    );
  });

  describe('property: bound, FIFO, no permit lost when waiters abort', () => {
    type Op =
      | { readonly op: 'acquire'; readonly abortable: boolean }
      | { readonly op: 'try' }
      | { readonly op: 'release'; readonly pick: number }
      | { readonly op: 'kotlinRelease' }
      | { readonly op: 'abort'; readonly pick: number }
      | { readonly op: 'tick'; readonly n: number };

    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({ op: fc.constant('acquire' as const), abortable: fc.boolean() }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('try' as const) }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('kotlinRelease' as const) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('tick' as const),
          n: fc.integer({ min: 1, max: 3 }),
        }),
      },
    );

    async function run(permits: number, program: readonly Op[]): Promise<void> {
      const semaphore = new Semaphore(permits);
      const holders: SemaphorePermit[] = [];
      const granted: number[] = [];
      const rejected: number[] = [];
      const abortedIds = new Set<number>();
      const controllers: { id: number; controller: AbortController }[] = [];
      let requests = 0;
      const checkBound = (): void => {
        const live = holders.filter((permit) => permit.isHeld).length;
        expect(live).to.be.at.most(permits);
        expect(live + semaphore.availablePermits).to.be.at.most(permits);
      };
      for (const step of program) {
        switch (step.op) {
          case 'acquire': {
            const id = requests++;
            const controller = step.abortable ? new AbortController() : undefined;
            if (controller !== undefined) controllers.push({ id, controller });
            semaphore.acquire({ signal: controller?.signal }).then(
              (permit) => {
                holders.push(permit);
                granted.push(id);
                checkBound();
              },
              (reason: unknown) => {
                expect(reason).to.equal(`abort ${id}`);
                rejected.push(id);
              },
            );
            break;
          }
          case 'try': {
            const permit = semaphore.tryAcquire();
            if (permit !== undefined) holders.push(permit);
            checkBound();
            break;
          }
          case 'release': {
            const live = holders.filter((permit) => permit.isHeld);
            live[step.pick % Math.max(live.length, 1)]?.release();
            break;
          }
          case 'kotlinRelease':
            if (holders.some((permit) => permit.isHeld)) semaphore.release();
            break;
          case 'abort': {
            const entry = controllers[step.pick % Math.max(controllers.length, 1)];
            if (entry !== undefined && !entry.controller.signal.aborted) {
              abortedIds.add(entry.id);
              entry.controller.abort(`abort ${entry.id}`);
            }
            break;
          }
          case 'tick':
            await ticks(step.n);
            break;
        }
        checkBound();
      }
      // Let every waiter through: release what is held until nothing waits.
      for (let round = 0; round < requests + 5; round++) {
        await ticks(2);
        for (const permit of holders) if (permit.isHeld) permit.release();
      }
      await ticks(2);
      expect(semaphore.availablePermits, 'no permit lost').to.equal(permits);
      expect([...granted, ...rejected].sort((a, b) => a - b)).to.deep.equal(
        [...Array(requests).keys()],
        'every acquire settled once',
      );
      for (const id of rejected) expect(abortedIds.has(id)).to.equal(true);
      expect(granted, 'FIFO').to.deep.equal([...granted].sort((a, b) => a - b));
      for (const { controller } of controllers)
        expect(abortListeners(controller.signal)).to.equal(0);
    }

    it('holds for random acquire, tryAcquire, release, abort and ticks (seeded)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 3 }),
          fc.array(op, { minLength: 5, maxLength: 60 }),
          run,
        ),
        { seed: 20_261_207, numRuns: 150 },
      );
    });
  });
});

describe('Mutex and Semaphore types', () => {
  it('hand out disposable holds', () => {
    const lock: MutexLock | undefined = new Mutex().tryLock();
    const permit: SemaphorePermit | undefined = new Semaphore(1).tryAcquire();
    expect(typeof lock?.[Symbol.dispose]).to.equal('function');
    expect(typeof permit?.[Symbol.dispose]).to.equal('function');
  });
});
