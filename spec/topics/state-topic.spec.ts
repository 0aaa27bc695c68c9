import { expect } from 'chai';
import { ClosedReceiveError, MemoryBackend, StateTopic } from '../../lib/index.js';
import { ticks } from '../helpers/async.js';
import { rejection } from '../helpers/outcomes.js';
import { drain, takeNow } from './helpers.js';

describe('StateTopic', () => {
  it('publishes the initial value at once: value, latest and position agree', async () => {
    const state = new StateTopic<string>('idle');
    expect(state.value).to.equal('idle');
    expect(state.latest?.offset).to.equal(1);
    expect(await state.position()).to.deep.equal(state.latest);
    state.close();
  });

  it('gives a new subscriber the current value first, with its position, then later ones', async () => {
    const state = new StateTopic<string>('a');
    await state.publish('b');
    const sub = state.subscribe();
    expect(takeNow(sub)).to.deep.equal(['2=b']);
    await state.publish('c');
    expect(state.value).to.equal('c');
    expect(takeNow(sub)).to.deep.equal(['3=c']);
    state.close();
  });

  it('is conflated by default: a slow subscriber skips to the latest value and is told what it skipped', async () => {
    const state = new StateTopic<number>(0);
    const sub = state.subscribe();
    expect(sub.capacity).to.equal(1);
    expect(sub.overflow).to.equal('drop-oldest');
    for (let i = 1; i <= 5; i++) await state.publish(i);
    expect(takeNow(sub)).to.deep.equal(['gap 1-5', '6=5']);
    state.close();
  });

  it('takes any capacity and policy; since works as for a Topic (no current value first)', async () => {
    const state = new StateTopic<number>(0);
    const first = await state.publish(1);
    await state.publish(2);
    const all = state.subscribe({ capacity: 8, overflow: 'suspend' });
    const since = state.subscribe({ since: first, capacity: 8 });
    await state.publish(3);
    await ticks();
    expect(takeNow(all)).to.deep.equal(['3=2', '4=3']);
    expect(takeNow(since)).to.deep.equal(['3=2', '4=3']);
    state.close();
  });

  it('after close, a subscriber ends without a value and publish rejects; close twice is false', async () => {
    const backend = new MemoryBackend();
    const state = new StateTopic<string>('x', { backend, name: 'presence' });
    const sub = state.subscribe();
    expect(state.close()).to.equal(true);
    expect(state.close()).to.equal(false);
    expect((await drain(sub)).events).to.have.length(1);
    const late = state.subscribe();
    expect(await rejection(late.receive())).to.be.instanceOf(ClosedReceiveError);
    // The state no longer follows the backend once closed.
    const other = new StateTopic<string>('y', { backend, name: 'presence' });
    expect(state.value).to.equal('x');
    expect(other.value).to.equal('y');
    other.close();
  });
});
