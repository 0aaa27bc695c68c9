import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import fc from 'fast-check';
import type { ReceiveChannel } from '../lib/channel-types.js';
import { ClosedReceiveError } from '../lib/errors.js';
import {
  createScope,
  produce,
  scope,
  suppressedErrors,
  supervisorScope,
  type Job,
  type Scope,
} from '../lib/scope.js';
import { ticks } from './helpers/async.js';
import { aborted, gate, rejection, untilAborted } from './helpers/outcomes.js';

describe('scope()', () => {
  it('resolves with the body value only after every child has settled', async () => {
    const steps: string[] = [];
    const slow = gate();
    const result = scope(async (s) => {
      s.launch(async () => {
        await slow.promise;
        steps.push('child done');
      });
      steps.push('body done');
      return 42;
    }).then((value) => {
      steps.push('scope settled');
      return value;
    });
    await ticks(10);
    expect(steps).to.deep.equal(['body done']);
    slow.open();
    expect(await result).to.equal(42);
    expect(steps).to.deep.equal(['body done', 'child done', 'scope settled']);
  });

  it('starts a child at once, synchronously up to its first await', async () => {
    const steps: string[] = [];
    await scope((s) => {
      s.launch(async () => {
        steps.push('child start');
        await Promise.resolve();
        steps.push('child resumed');
      });
      steps.push('after launch');
    });
    expect(steps).to.deep.equal(['child start', 'after launch', 'child resumed']);
  });

  it('on the first failure aborts every child with that error and rejects with it', async () => {
    const boom = new Error('boom');
    const seen: unknown[] = [];
    const error = await rejection(
      scope(async (s) => {
        s.launch(async (signal) => {
          seen.push(await aborted(signal));
        });
        s.async(async (signal) => {
          seen.push(await aborted(signal));
          return 1;
        });
        s.launch(async () => {
          await Promise.resolve();
          throw boom;
        });
        seen.push(await aborted(s.signal));
      }),
    );
    expect(error).to.equal(boom);
    expect(seen).to.have.length(3);
    for (const reason of seen) expect(reason).to.equal(boom);
    expect(suppressedErrors(boom)).to.deep.equal([]);
  });

  it('settles only after every child has settled when it fails', async () => {
    const steps: string[] = [];
    const cleanup = gate();
    const result = scope(async (s) => {
      s.launch(async (signal) => {
        await aborted(signal);
        steps.push('cleanup started');
        await cleanup.promise;
        steps.push('cleanup done');
      });
      s.launch(() => {
        throw new Error('boom');
      });
    }).catch((error: unknown) => {
      steps.push(`rejected: ${(error as Error).message}`);
    });
    await ticks(10);
    expect(steps).to.deep.equal(['cleanup started']);
    cleanup.open();
    await result;
    expect(steps).to.deep.equal(['cleanup started', 'cleanup done', 'rejected: boom']);
  });

  it('attaches later errors as suppressed by the first and reports none as unhandled', async () => {
    const first = new Error('first');
    const second = new Error('second');
    const third = new TypeError('third');
    const error = await rejection(
      scope(async (s) => {
        s.launch(async (signal) => {
          await aborted(signal);
          throw second;
        });
        s.async(async (signal) => {
          await aborted(signal);
          throw third;
        });
        s.launch(async () => {
          throw first;
        });
      }),
    );
    expect(error).to.equal(first);
    expect(suppressedErrors(first)).to.deep.equal([second, third]);
    expect(suppressedErrors(first)[0]).to.equal(second);
  });

  it('does not count a child that rethrows its cancellation reason as a failure', async () => {
    const boom = new Error('boom');
    const error = await rejection(
      scope(async (s) => {
        s.launch(untilAborted);
        s.launch(async (signal) => {
          await aborted(signal);
          throw new DOMException('stopped', 'AbortError');
        });
        await Promise.resolve();
        throw boom;
      }),
    );
    expect(error).to.equal(boom);
    expect(suppressedErrors(boom)).to.deep.equal([]);
  });

  it('fails when the body throws, aborting the children with that error', async () => {
    const boom = new Error('body');
    let reason: unknown;
    const error = await rejection(
      scope((s) => {
        s.launch(async (signal) => {
          reason = await aborted(signal);
        });
        throw boom;
      }),
    );
    expect(error).to.equal(boom);
    expect(reason).to.equal(boom);
  });

  it('counts a child that throws synchronously as failed', async () => {
    const boom = new Error('sync');
    const error = await rejection(
      scope((s) => {
        s.launch(() => {
          throw boom;
        });
      }),
    );
    expect(error).to.equal(boom);
  });

  it('is cancelled by its signal: children see the reason and it rejects with it', async () => {
    const controller = new AbortController();
    const reason = new Error('shutdown');
    const seen: unknown[] = [];
    const result = scope(
      async (s) => {
        s.launch(async (signal) => {
          seen.push(await aborted(signal));
        });
        seen.push(await aborted(s.signal));
        return 'body finished normally';
      },
      { signal: controller.signal },
    );
    await ticks(3);
    controller.abort(reason);
    expect(await rejection(result)).to.equal(reason);
    expect(seen).to.deep.equal([reason, reason]);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('suppresses a real error thrown while cancelling by the cancellation reason', async () => {
    const controller = new AbortController();
    const reason = new Error('shutdown');
    const late = new Error('cleanup failed');
    const result = scope(
      (s) => {
        s.launch(async (signal) => {
          await aborted(signal);
          throw late;
        });
      },
      { signal: controller.signal },
    );
    controller.abort(reason);
    expect(await rejection(result)).to.equal(reason);
    expect(suppressedErrors(reason)).to.deep.equal([late]);
  });

  it('rejects at once with the reason of an already aborted signal, never running the body', async () => {
    const controller = new AbortController();
    const reason = new Error('too late');
    controller.abort(reason);
    let ran = false;
    const error = await rejection(
      scope(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    );
    expect(error).to.equal(reason);
    expect(ran).to.equal(false);
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('removes its listener from the parent signal once settled', async () => {
    const controller = new AbortController();
    await scope(
      (s) => {
        s.launch(() => undefined);
        expect(getEventListeners(controller.signal, 'abort')).to.have.length(1);
      },
      { signal: controller.signal },
    );
    expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
  });

  it('rejects with the reason given to scope.cancel(), default an AbortError', async () => {
    const reason = { why: 'enough' };
    expect(
      await rejection(
        scope((s) => {
          s.launch(untilAborted);
          s.cancel(reason);
          s.cancel(new Error('second call is ignored'));
          expect(s.isActive).to.equal(false);
        }),
      ),
    ).to.equal(reason);
    const error = await rejection(
      scope((s) => {
        s.cancel();
      }),
    );
    expect(error).to.be.instanceOf(DOMException);
    expect((error as DOMException).name).to.equal('AbortError');
  });

  it('throws typed errors for invalid arguments', () => {
    expect(() => scope(42 as never)).to.throw(
      TypeError,
      'Expected body to be a function, got 42 (number)',
    );
    expect(() => scope(() => 1, { signal: 'x' as never })).to.throw(
      TypeError,
      "Expected signal to be an AbortSignal or undefined, got 'x' (string)",
    );
    expect(() => supervisorScope(() => 1, { onError: 1 as never })).to.throw(
      TypeError,
      'Expected onError to be a function, got 1 (number)',
    );
  });

  describe('nested scopes', () => {
    it('cancelling the outer scope cancels the inner one', async () => {
      const controller = new AbortController();
      const reason = new Error('outer cancelled');
      const seen: unknown[] = [];
      const result = scope(
        (outer) => {
          outer.launch((signal) =>
            scope(
              (inner) => {
                inner.launch(async (innerSignal) => {
                  seen.push(await aborted(innerSignal));
                  throw innerSignal.reason;
                });
              },
              { signal },
            ),
          );
        },
        { signal: controller.signal },
      );
      await ticks(3);
      controller.abort(reason);
      expect(await rejection(result)).to.equal(reason);
      expect(seen).to.deep.equal([reason]);
      expect(suppressedErrors(reason)).to.deep.equal([]);
    });

    it('an inner failure propagates outward as the same object', async () => {
      const boom = new Error('inner');
      let sibling: unknown;
      const error = await rejection(
        scope((outer) => {
          outer.launch(async (signal) => {
            sibling = await aborted(signal);
          });
          outer.launch((signal) =>
            scope(
              (inner) => {
                inner.launch(() => {
                  throw boom;
                });
              },
              { signal },
            ),
          );
        }),
      );
      expect(error).to.equal(boom);
      expect(sibling).to.equal(boom);
      expect(suppressedErrors(boom)).to.deep.equal([]);
    });
  });
});

describe('Job', () => {
  it('moves from active to cancelled to completed, and job.cancel() does not fail the scope', async () => {
    const reason = new Error('not needed');
    let job!: Job;
    let seen: unknown;
    const value = await scope(async (s) => {
      job = s.launch(async (signal) => {
        seen = await aborted(signal);
        throw reason;
      });
      expect([job.isActive, job.isCancelled, job.isCompleted]).to.deep.equal([true, false, false]);
      job.cancel(reason);
      job.cancel(new Error('ignored'));
      expect([job.isActive, job.isCancelled, job.isCompleted]).to.deep.equal([false, true, false]);
      await job.join();
      expect([job.isActive, job.isCancelled, job.isCompleted]).to.deep.equal([false, true, true]);
      expect(s.isActive).to.equal(true);
      return 'ok';
    });
    expect(value).to.equal('ok');
    expect(seen).to.equal(reason);
  });

  it('cancels with an AbortError DOMException by default', async () => {
    let seen: unknown;
    await scope((s) => {
      const job = s.launch(async (signal) => {
        seen = await aborted(signal);
      });
      job.cancel();
    });
    expect(seen).to.be.instanceOf(DOMException);
    expect((seen as DOMException).name).to.equal('AbortError');
  });

  it('join() resolves (never rejects) for a failed child', async () => {
    const boom = new Error('boom');
    const steps: string[] = [];
    await rejection(
      scope(async (s) => {
        const job = s.launch(async () => {
          await Promise.resolve();
          throw boom;
        });
        await job.join();
        steps.push(`joined: cancelled=${String(job.isCancelled)}`);
      }),
    );
    expect(steps).to.deep.equal(['joined: cancelled=true']);
  });

  it('cancel() after completion changes nothing', async () => {
    await scope(async (s) => {
      const job = s.launch(() => 'done');
      await job.join();
      job.cancel();
      expect([job.isActive, job.isCancelled, job.isCompleted]).to.deep.equal([false, false, true]);
    });
  });

  it('a child launched into a cancelled scope is cancelled and never runs', async () => {
    let ran = false;
    let job!: Job;
    await rejection(
      scope((s) => {
        s.cancel();
        job = s.launch(() => {
          ran = true;
        });
      }),
    );
    expect(ran).to.equal(false);
    expect([job.isActive, job.isCancelled, job.isCompleted]).to.deep.equal([false, true, true]);
  });

  it('launching into a settled scope throws InvalidStateError', async () => {
    let escaped!: Scope;
    await scope((s) => {
      escaped = s;
    });
    expect(() => escaped.launch(() => undefined))
      .to.throw(DOMException)
      .with.property('name', 'InvalidStateError');
    expect(() => escaped.launch(1 as never)).to.throw(
      TypeError,
      'Expected block to be a function, got 1 (number)',
    );
    expect(escaped.isActive).to.equal(false);
  });
});

describe('Deferred', () => {
  it('resolves with the value of its block', async () => {
    const values = await scope(async (s) => {
      const a = s.async(async () => 1);
      const b = s.async(() => 'two');
      return [await a, await b] as const;
    });
    expect(values).to.deep.equal([1, 'two']);
  });

  it('in a scope, a failure fails the scope even when awaited and caught', async () => {
    const boom = new Error('boom');
    let caught: unknown;
    const error = await rejection(
      scope(async (s) => {
        const d = s.async(async () => {
          throw boom;
        });
        try {
          await d;
        } catch (e) {
          caught = e;
        }
        return 'recovered';
      }),
    );
    expect(caught).to.equal(boom);
    expect(error).to.equal(boom);
  });

  it('rejects with the cancellation reason, even when its block ignored it and returned', async () => {
    const reason = new Error('no longer needed');
    const result = await scope(async (s) => {
      const release = gate();
      const d = s.async(async () => {
        await release.promise;
        return 'late value';
      });
      d.cancel(reason);
      release.open();
      return rejection(d);
    });
    expect(result).to.equal(reason);
  });

  it('never becomes an unhandled rejection when nobody awaits it', async () => {
    const boom = new Error('boom');
    expect(
      await rejection(
        scope((s) => {
          void s.async(() => Promise.reject(boom));
        }),
      ),
    ).to.equal(boom);
  });

  it('can be awaited again after it settled, with the same outcome', async () => {
    await supervisorScope(async (s) => {
      const boom = new Error('boom');
      const d = s.async(async () => {
        throw boom;
      });
      await d.join();
      expect(await rejection(d)).to.equal(boom);
      expect(await rejection(d)).to.equal(boom);
      const ok = s.async(() => 7);
      await ok.join();
      expect(await ok).to.equal(7);
    });
  });
});

describe('supervisorScope()', () => {
  it('does not cancel siblings; without onError rejects with the first failure once all settle', async () => {
    const first = new Error('first');
    const second = new Error('second');
    const steps: string[] = [];
    const release = gate();
    const error = await rejection(
      supervisorScope(async (s) => {
        s.launch(() => {
          throw first;
        });
        s.launch(async () => {
          await ticks(2);
          throw second;
        });
        s.launch(async (signal) => {
          await release.promise;
          steps.push(`sibling finished, aborted=${String(signal.aborted)}`);
        });
        await ticks(10);
        steps.push(`body: scope active=${String(s.isActive)}`);
        release.open();
        return 'value is lost';
      }),
    );
    expect(error).to.equal(first);
    expect(suppressedErrors(first)).to.deep.equal([second]);
    expect(steps).to.deep.equal(['body: scope active=true', 'sibling finished, aborted=false']);
  });

  it('passes each launched child failure to onError at once and resolves with the body value', async () => {
    const boom = new Error('boom');
    const reported: [unknown, Job][] = [];
    let job!: Job;
    const value = await supervisorScope(
      async (s) => {
        job = s.launch(async () => {
          throw boom;
        });
        await job.join();
        expect(reported).to.have.length(1);
        return 'value';
      },
      {
        onError: (error, failed) => {
          reported.push([error, failed]);
        },
      },
    );
    expect(value).to.equal('value');
    expect(reported).to.have.length(1);
    expect(reported[0]![0]).to.equal(boom);
    expect(reported[0]![1]).to.equal(job);
  });

  it('treats an awaited Deferred failure as handled', async () => {
    const boom = new Error('boom');
    const value = await supervisorScope(async (s) => {
      const d = s.async<number>(async () => {
        throw boom;
      });
      try {
        return await d;
      } catch (error) {
        expect(error).to.equal(boom);
        return -1;
      }
    });
    expect(value).to.equal(-1);
  });

  it('reports a Deferred failure nobody awaited when the scope settles', async () => {
    const boom = new Error('boom');
    const reported: unknown[] = [];
    const value = await supervisorScope(
      async (s) => {
        const d = s.async(async () => {
          throw boom;
        });
        await d.join();
        expect(reported).to.deep.equal([]);
        return 'done';
      },
      { onError: (error) => reported.push(error) },
    );
    expect(value).to.equal('done');
    expect(reported).to.deep.equal([boom]);
    expect(
      await rejection(
        supervisorScope((s) => {
          void s.async(() => Promise.reject(boom));
        }),
      ),
    ).to.equal(boom);
  });

  it('fails and cancels every child when the body throws', async () => {
    const boom = new Error('body');
    let seen: unknown;
    const error = await rejection(
      supervisorScope(async (s) => {
        s.launch(async (signal) => {
          seen = await aborted(signal);
        });
        await Promise.resolve();
        throw boom;
      }),
    );
    expect(error).to.equal(boom);
    expect(seen).to.equal(boom);
  });

  it('fails when onError throws', async () => {
    const fromHandler = new Error('handler');
    let seen: unknown;
    const error = await rejection(
      supervisorScope(
        (s) => {
          s.launch(async (signal) => {
            seen = await aborted(signal);
          });
          s.launch(() => {
            throw new Error('child');
          });
        },
        {
          onError: () => {
            throw fromHandler;
          },
        },
      ),
    );
    expect(error).to.equal(fromHandler);
    expect(seen).to.equal(fromHandler);
  });
});

describe('createScope()', () => {
  it('with await using, cancels and awaits its children at block exit', async () => {
    const steps: string[] = [];
    {
      await using s = createScope();
      s.launch(async (signal) => {
        await aborted(signal);
        await ticks(3);
        steps.push('child stopped');
      });
      steps.push('block end');
    }
    steps.push('after block');
    expect(steps).to.deep.equal(['block end', 'child stopped', 'after block']);
  });

  it('disposal rejects with the first child failure and then refuses new children', async () => {
    const boom = new Error('boom');
    const s = createScope();
    let seen: unknown;
    s.launch(async (signal) => {
      seen = await aborted(signal);
    });
    s.launch(async () => {
      throw boom;
    });
    await ticks(3);
    expect(seen).to.equal(boom);
    const disposal = s[Symbol.asyncDispose]();
    expect(s[Symbol.asyncDispose]()).to.equal(disposal);
    expect(await rejection(disposal)).to.equal(boom);
    expect(() => s.launch(() => undefined))
      .to.throw(DOMException)
      .with.property('name', 'InvalidStateError');
  });

  it('a supervisor keeps siblings running and hands failures to onError', async () => {
    const boom = new Error('boom');
    const reported: unknown[] = [];
    const s = createScope({ supervisor: true, onError: (error) => reported.push(error) });
    const sibling = s.launch(untilAborted);
    s.launch(() => {
      throw boom;
    });
    await ticks(3);
    expect(reported).to.deep.equal([boom]);
    expect(sibling.isActive).to.equal(true);
    await s[Symbol.asyncDispose]();
    expect(sibling.isCompleted).to.equal(true);
  });

  it('disposing the scope of a scope() body cancels and awaits the children, then the scope rejects', async () => {
    const steps: string[] = [];
    const error = await rejection(
      scope(async (s) => {
        s.launch(async (signal) => {
          await aborted(signal);
          await ticks(2);
          steps.push('child stopped');
        });
        await s[Symbol.asyncDispose]();
        steps.push('disposed');
      }),
    );
    expect(steps).to.deep.equal(['child stopped', 'disposed']);
    expect((error as DOMException).name).to.equal('AbortError');
  });

  it('during disposal hands back cancelled children, and throws InvalidStateError once disposed', async () => {
    const s = createScope();
    const stopping = gate();
    s.launch(async (signal) => {
      await aborted(signal);
      await stopping.promise; // takes a while to stop
    });
    const disposal = s[Symbol.asyncDispose]();
    let ran = false;
    const late = s.launch(() => {
      ran = true;
    });
    const lateAsync = s.async(() => 'late');
    expect([ran, late.isCancelled, late.isCompleted]).to.deep.equal([false, true, true]);
    expect(await rejection(lateAsync))
      .to.be.instanceOf(DOMException)
      .with.property('name', 'AbortError');
    stopping.open();
    await disposal; // cancellations are not failures
    expect(() => s.launch(() => undefined))
      .to.throw(DOMException)
      .with.property('name', 'InvalidStateError');
    expect(() => s.async(() => undefined))
      .to.throw(DOMException)
      .with.property('name', 'InvalidStateError');
  });

  it('starts cancelled with an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const s = createScope({ signal: controller.signal });
    let ran = false;
    const job = s.launch(() => {
      ran = true;
    });
    expect([ran, job.isCancelled, s.isActive]).to.deep.equal([false, true, false]);
    await s[Symbol.asyncDispose]();
  });
});

describe('produce()', () => {
  it('closes the channel normally when the producer returns', async () => {
    const received = await scope(async (s) => {
      const numbers = produce<number>(s, async (out, signal) => {
        for (let i = 0; i < 5; i++) await out.send(i, { signal });
      });
      const values: number[] = [];
      for await (const n of numbers) values.push(n);
      expect(await rejection(numbers.receive())).to.be.instanceOf(ClosedReceiveError);
      return values;
    });
    expect(received).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('closes the channel with the producer error and fails the scope with it', async () => {
    const boom = new Error('boom');
    let fromChannel: unknown;
    const error = await rejection(
      scope(async (s) => {
        const numbers = produce<number>(s, async (out) => {
          await out.send(1);
          throw boom;
        });
        expect(await numbers.receive()).to.equal(1);
        fromChannel = await rejection(numbers.receive());
      }),
    );
    expect(fromChannel).to.equal(boom);
    expect(error).to.equal(boom);
  });

  it('aborts the producer signal when the consumer cancels, without failing the scope', async () => {
    const reason = new Error('consumer is done');
    const seen: unknown[] = [];
    const value = await scope(async (s) => {
      const numbers = produce<number>(s, async (out, signal) => {
        signal.addEventListener('abort', () => seen.push(signal.reason));
        for (let i = 0; ; i++) await out.send(i, { signal });
      });
      expect(await numbers.receive()).to.equal(0);
      numbers.cancel(reason);
      return 'consumer finished';
    });
    expect(value).to.equal('consumer finished');
    expect(seen).to.deep.equal([reason]);
  });

  it('cancels the producer when consume() finishes', async () => {
    const steps: string[] = [];
    let stopReason: unknown;
    let sendError: unknown;
    await scope(async (s) => {
      const numbers = produce<number>(s, async (out, signal) => {
        try {
          for (let i = 0; ; i++) await out.send(i);
        } catch (error) {
          sendError = error;
          throw error;
        } finally {
          stopReason = signal.reason;
          steps.push(`producer stopped, aborted=${String(signal.aborted)}`);
        }
      });
      const first = await numbers.consume((ch) => ch.receive());
      steps.push(`consumed ${first}`);
    });
    // Both happen before the scope settles; their relative microtask order is not part
    // of the contract.
    expect(steps).to.have.members(['producer stopped, aborted=true', 'consumed 0']);
    expect(steps).to.have.length(2);
    // consume() cancelled the channel with the default reason: the producer's waiting
    // send rejected with it, and its signal was aborted with that same object.
    expect(sendError).to.be.instanceOf(DOMException);
    expect(sendError).to.include({ name: 'AbortError' });
    expect(stopReason).to.equal(sendError);
  });

  it('when the scope is cancelled, aborts the producer and closes the channel with the reason', async () => {
    const reason = new Error('stop');
    let numbers!: ReceiveChannel<number>;
    const error = await rejection(
      scope(async (s) => {
        numbers = produce<number>(s, async (out, signal) => {
          for (;;) await out.send(1, { signal });
        });
        await ticks(2);
        s.cancel(reason);
      }),
    );
    expect(error).to.equal(reason);
    expect(await rejection(numbers.receive())).to.equal(reason);
  });

  it('in an already cancelled scope, returns a channel closed with the reason; the producer never runs', async () => {
    const reason = new Error('cancelled');
    let ran = false;
    let fromChannel: unknown;
    const error = await rejection(
      scope(async (s) => {
        s.cancel(reason);
        const numbers = produce<number>(s, async (out) => {
          ran = true;
          await out.send(1);
        });
        expect(numbers.isClosedForReceive).to.equal(true);
        expect(await numbers.receiveCatching()).to.deep.equal({
          ok: false,
          closed: true,
          cause: reason,
        });
        fromChannel = await rejection(numbers.receive());
      }),
    );
    expect(ran).to.equal(false);
    expect(fromChannel).to.equal(reason);
    expect(error).to.equal(reason);
  });

  it('in a scope a failure has aborted, for await throws that failure and the scope rejects with it', async () => {
    const failure = new Error('sibling failed');
    const received: number[] = [];
    const error = await rejection(
      scope(async (s) => {
        s.launch(() => {
          throw failure;
        });
        await ticks(2);
        expect(s.signal.reason).to.equal(failure);
        const numbers = produce<number>(s, async (out, signal) => {
          for (let i = 0; ; i++) await out.send(i, { signal });
        });
        for await (const n of numbers) received.push(n);
      }),
    );
    expect(received).to.deep.equal([]);
    expect(error).to.equal(failure);
    expect(suppressedErrors(error)).to.deep.equal([]);
  });

  it('a producer failing with undefined closes the channel with an Error (cause undefined), not normally', async () => {
    let fromChannel: unknown;
    const received: number[] = [];
    const error = await rejection(
      scope(async (s) => {
        const numbers = produce<number>(s, async (out) => {
          await out.send(1);
          throw undefined;
        });
        fromChannel = await rejection(
          (async () => {
            for await (const n of numbers) received.push(n);
          })(),
        );
      }),
    );
    expect(received).to.deep.equal([1]);
    expect(fromChannel).to.be.instanceOf(Error);
    expect((fromChannel as Error).message).to.equal(
      'The producer failed with undefined as its error',
    );
    expect(Object.hasOwn(fromChannel as Error, 'cause')).to.equal(true);
    expect((fromChannel as Error).cause).to.equal(undefined);
    expect(error).to.equal(fromChannel);
  });

  it('buffers up to capacity ahead of the consumer', async () => {
    const sent: number[] = [];
    await scope(async (s) => {
      const numbers = produce<number>(
        s,
        async (out) => {
          for (let i = 0; i < 10; i++) {
            await out.send(i);
            sent.push(i);
          }
        },
        { capacity: 3 },
      );
      await ticks(10);
      expect(sent).to.deep.equal([0, 1, 2]);
      numbers.cancel();
    });
  });

  it('rejects an invalid capacity as new Channel does', async () => {
    await scope((s) => {
      expect(() => produce(s, () => undefined, { capacity: -1 })).to.throw(RangeError);
      expect(() => produce(s, 'x' as never)).to.throw(
        TypeError,
        "Expected producer to be a function, got 'x' (string)",
      );
    });
  });
});

describe('scope() under random interleavings (property)', () => {
  type Kind = 'ok' | 'fail' | 'wait';
  const childArb = fc.record({
    kind: fc.constantFrom<Kind>('ok', 'fail', 'wait'),
    delay: fc.integer({ min: 0, max: 6 }),
  });

  it('settles after every child, with the first failure and the later ones suppressed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(childArb, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 6 }),
        async (specs, bodyDelay) => {
          // A child that waits for the abort needs someone to fail.
          const failing = specs.some((c) => c.kind === 'fail');
          const children = specs.map((c) =>
            c.kind === 'wait' && !failing ? { ...c, kind: 'ok' as const } : c,
          );
          const thrown: Error[] = [];
          let settledChildren = 0;
          let settledAtEnd = -1;
          const outcome = scope(async (s) => {
            children.forEach((c, i) => {
              s.launch(async (signal) => {
                try {
                  await ticks(c.delay);
                  if (c.kind === 'fail') {
                    const error = new Error(`child ${i}`);
                    thrown.push(error);
                    throw error;
                  }
                  if (c.kind === 'wait') await untilAborted(signal);
                } finally {
                  settledChildren++;
                }
              });
            });
            await ticks(bodyDelay);
            return 'body';
          }).finally(() => {
            settledAtEnd = settledChildren;
          });
          if (!failing) {
            expect(await outcome).to.equal('body');
          } else {
            const error = await rejection(outcome);
            expect(error).to.equal(thrown[0]);
            expect(suppressedErrors(error)).to.deep.equal(thrown.slice(1));
          }
          expect(settledAtEnd).to.equal(children.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
