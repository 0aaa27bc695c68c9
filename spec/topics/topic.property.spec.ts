/**
 * Properties of topics, 1000 runs each:
 * - under `'suspend'`, every subscriber (any capacity, its own random pace) receives
 *   exactly the published sequence, with positions 1…n;
 * - under the drop policies and `'close'`, for every subscriber, what it received plus
 *   the gaps it was told about is the published sequence, in order, with no duplicate,
 *   and it received exactly what a plain queue model with that policy keeps;
 * - `since` at a random position (retained, evicted, ahead, another epoch) resumes
 *   exactly after it, or fails or continues as `onDiscontinuity` says;
 * - a `'suspend'` subscriber whose publishers it cannot hold back (another `Topic` on the
 *   same backend) never holds more than its capacity, and receives exactly the published
 *   sequence, or a prefix of it and then a `DiscontinuityError` naming the rest that is
 *   no longer retained.
 *
 * @module
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  DiscontinuityError,
  MemoryBackend,
  SubscriberOverflowError,
  Topic,
} from '../../lib/index.js';
import type { Subscription, TopicEvent, TopicOverflow } from '../../lib/index.js';
import { ticks } from '../helpers/async.js';
import { drain } from './helpers.js';

const RUNS = 1000;

/**
 * Checks that `events` account for offsets 1…`end` exactly once, in order: each
 * publication at the next offset with the value published there, each gap starting at
 * the next offset. Returns the offsets received.
 */
function expectPartition(
  events: readonly TopicEvent<number>[],
  values: readonly number[],
  end: number,
  epoch: string,
): number[] {
  let next = 1;
  const received: number[] = [];
  for (const event of events) {
    if (event.type === 'publication') {
      expect(event.position).to.deep.equal({ epoch, offset: next });
      expect(event.value).to.equal(values[next - 1]);
      received.push(next);
      next++;
    } else {
      expect(event.from).to.deep.equal({ epoch, offset: next });
      expect(event.to.epoch).to.equal(epoch);
      expect(event.to.offset).to.be.at.least(next);
      expect(event.count).to.equal(event.to.offset - event.from.offset + 1);
      next = event.to.offset + 1;
    }
  }
  expect(next - 1).to.equal(end);
  return received;
}

describe('Topic (properties)', () => {
  it(`under 'suspend', every subscriber receives exactly the published sequence (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            capacity: fc.constantFrom(0, 1, 2, 4, Infinity),
            pace: fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.integer(), { maxLength: 25 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 6 }),
        async (subscribers, values, pace) => {
          const topic = new Topic<number>();
          const consumers = subscribers.map(async ({ capacity, pace: own }) => {
            const subscription = topic.subscribe({ capacity });
            const events: TopicEvent<number>[] = [];
            for (let i = 0; ; i++) {
              const result = await subscription.receiveCatching();
              if (!result.ok) return events;
              events.push(result.value);
              await ticks(own[i % own.length]);
            }
          });
          let epoch = '';
          for (let i = 0; i < values.length; i++) {
            const position = await topic.publish(values[i]!);
            expect(position.offset).to.equal(i + 1);
            epoch = position.epoch;
            await ticks(pace[i % pace.length]);
          }
          topic.close();
          for (const events of await Promise.all(consumers)) {
            expect(events.every((event) => event.type === 'publication')).to.equal(true);
            expectPartition(events, values, values.length, epoch);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  type Step =
    | { readonly t: 'publish'; readonly value: number }
    | { readonly t: 'take'; readonly sub: number; readonly n: number }
    | { readonly t: 'park'; readonly sub: number };

  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({ t: fc.constant('publish' as const), value: fc.integer() }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('take' as const),
        sub: fc.nat(2),
        n: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('park' as const), sub: fc.nat(2) }) },
  );

  /** What a subscriber keeps, as a plain queue with the policy: the offsets it receives. */
  class Model {
    readonly buffer: number[] = [];
    readonly received: number[] = [];
    parked = 0;
    closedAt: number | null = null;
    constructor(
      readonly capacity: number,
      readonly overflow: TopicOverflow,
    ) {}

    offer(offset: number): void {
      if (this.closedAt !== null) return;
      if (this.parked > 0) {
        this.parked--;
        this.received.push(offset);
        return;
      }
      if (this.buffer.length >= this.capacity) {
        if (this.overflow === 'drop-latest') return;
        if (this.overflow === 'close') {
          this.closedAt = this.buffer.at(-1)!;
          return;
        }
        this.buffer.shift();
      }
      this.buffer.push(offset);
    }

    /** A receive that found the buffer empty waits; a later offer is handed to it. */
    take(): void {
      const head = this.buffer.shift();
      if (head !== undefined) this.received.push(head);
    }
  }

  it(`under the drop policies and 'close', received plus reported gaps is the published sequence (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            capacity: fc.integer({ min: 1, max: 4 }),
            overflow: fc.constantFrom<TopicOverflow>('drop-oldest', 'drop-latest', 'close'),
          }),
          { minLength: 3, maxLength: 3 },
        ),
        fc.array(step, { maxLength: 40 }),
        async (kinds, steps) => {
          const topic = new Topic<number>();
          const subs = kinds.map((kind) => ({
            subscription: topic.subscribe(kind),
            model: new Model(kind.capacity, kind.overflow),
            events: [] as TopicEvent<number>[],
            parked: 0,
          }));
          const values: number[] = [];
          let epoch = '';
          for (const s of steps) {
            if (s.t === 'publish') {
              values.push(s.value);
              epoch = (await topic.publish(s.value)).epoch;
              for (const sub of subs) sub.model.offer(values.length);
            } else {
              const sub = subs[s.sub]!;
              if (s.t === 'take') {
                // Only when nothing is parked, so that events are recorded in order.
                if (sub.parked > 0) continue;
                for (let i = 0; i < s.n; i++) {
                  const result = sub.subscription.tryReceive();
                  if (!result.ok) break;
                  sub.events.push(result.value);
                  if (result.value.type === 'publication') sub.model.take();
                }
              } else {
                const wasEmpty = sub.subscription.isEmpty;
                const before = sub.events.length;
                sub.parked++;
                void sub.subscription.receiveCatching().then((result) => {
                  sub.parked--;
                  if (result.ok) sub.events.push(result.value);
                });
                if (wasEmpty) sub.model.parked++;
                else {
                  // It took an event at once (or found the end): the model takes a
                  // publication if it was one.
                  await ticks(3);
                  const taken = sub.events.length > before ? sub.events.at(-1) : undefined;
                  if (taken?.type === 'publication') sub.model.take();
                  continue;
                }
              }
            }
            await ticks(3);
          }
          topic.close();
          for (const sub of subs) {
            await ticks(3);
            const { events, error } = await drain(sub.subscription);
            const all = [...sub.events, ...events];
            const model = sub.model;
            if (model.closedAt !== null) {
              expect(error).to.be.instanceOf(SubscriberOverflowError);
              const overflow = error as SubscriberOverflowError;
              expect(overflow.position).to.deep.equal({ epoch, offset: model.closedAt });
              expect(expectPartition(all, values, model.closedAt, epoch)).to.deep.equal([
                ...model.received,
                ...model.buffer,
              ]);
            } else {
              expect(error).to.equal(undefined);
              expect(expectPartition(all, values, values.length, epoch)).to.deep.equal([
                ...model.received,
                ...model.buffer,
              ]);
            }
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`since a random position resumes exactly after it, or says what is missing (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 14 }),
        fc.boolean(),
        fc.constantFrom<'error' | 'oldest'>('error', 'oldest'),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom<TopicOverflow>('suspend', 'drop-oldest', 'drop-latest', 'close'),
        async (count, n, k, sameEpoch, onDiscontinuity, live, overflow) => {
          const topic = new Topic<number>({ retention: { count } });
          const values = Array.from({ length: n + live }, (_, i) => (i + 1) * 7);
          for (let i = 0; i < n; i++) await topic.publish(values[i]!);
          const { epoch } = await topic.position();
          const since = { epoch: sameEpoch ? epoch : 'another', offset: k };
          const subscription: Subscription<number> = topic.subscribe({
            since,
            onDiscontinuity,
            capacity: 64,
            overflow,
          });
          // Published while the history is being read.
          for (let i = n; i < n + live; i++) void topic.publish(values[i]!);
          await ticks(5);
          topic.close();
          const { events, error } = await drain(subscription);
          const oldest = count === 0 ? n + 1 : Math.max(1, n - count + 1);
          const valid = sameEpoch && k <= n;
          const all = n + live;
          if (valid && k + 1 >= oldest) {
            expect(error).to.equal(undefined);
            expect(events.map((e) => e.type === 'publication' && e.position.offset)).to.deep.equal(
              Array.from({ length: all - k }, (_, i) => k + 1 + i),
            );
            // What came before `since` counts as a gap the subscriber chose.
            const before: TopicEvent<number>[] =
              k === 0
                ? []
                : [{ type: 'gap', from: { epoch, offset: 1 }, to: { epoch, offset: k }, count: k }];
            expectPartition([...before, ...events], values, all, epoch);
          } else if (onDiscontinuity === 'error') {
            expect(events).to.deep.equal([]);
            expect(error).to.be.instanceOf(DiscontinuityError);
            const discontinuity = error as DiscontinuityError;
            expect(discontinuity.since).to.equal(since);
            expect(discontinuity.oldest).to.equal(oldest);
            expect(discontinuity.count).to.equal(valid ? oldest - k - 1 : undefined);
          } else {
            expect(error).to.equal(undefined);
            const [first, ...rest] = events;
            expect(first?.type).to.equal('gap');
            if (first?.type !== 'gap') return;
            if (valid) {
              expect(first.from.offset).to.equal(k + 1);
              expect(first.previous).to.equal(undefined);
            } else {
              expect(first.from.offset).to.equal(1);
              expect(first.previous).to.equal(since);
            }
            expect(first.to).to.deep.equal({ epoch, offset: oldest - 1 });
            const head = { ...first, from: { epoch, offset: 1 }, count: oldest - 1 };
            expectPartition(head.count > 0 ? [head, ...rest] : rest, values, all, epoch);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it(`'suspend' with publishers on another Topic of the backend: bounded, and exactly the sequence or an exact discontinuity (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 40 }),
        // Each step: publish that many from the other topic, or take everything it holds
        // (or one, waiting, when it holds nothing); then let that many microtasks run.
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 6 }), fc.nat(3)), {
          maxLength: 40,
        }),
        async (capacity, retention, steps) => {
          const backend = new MemoryBackend();
          const other = new Topic<number>({ backend, name: 't', retention: { count: retention } });
          const own = new Topic<number>({ backend, name: 't', retention: { count: retention } });
          const sub = own.subscribe({ capacity, overflow: 'suspend' });
          const received: number[] = [];
          let published = 0;
          const got = (event: TopicEvent<number>): void => {
            if (event.type !== 'publication') throw new Error('a gap under suspend');
            expect(event.position.offset).to.equal(received.length + 1);
            expect(event.value).to.equal(event.position.offset * 3);
            received.push(event.position.offset);
          };
          let waiting: Promise<unknown> | undefined;
          for (const [publish, n, wait] of steps) {
            if (publish) {
              for (let i = 0; i < n; i++) await other.publish(++published * 3);
            } else if (waiting === undefined) {
              // How many it holds at once never exceeds its capacity.
              let held = 0;
              for (let r = sub.tryReceive(); r.ok; r = sub.tryReceive()) {
                got(r.value);
                held++;
              }
              expect(held).to.be.at.most(capacity);
              if (held === 0 && !sub.isClosedForReceive) {
                waiting = sub.receive().then(
                  (event) => {
                    got(event);
                    waiting = undefined;
                  },
                  () => undefined,
                );
              }
            }
            await ticks(wait);
          }
          own.close();
          other.close();
          await waiting;
          const rest = await drain(sub);
          for (const event of rest.events) got(event);
          if (rest.error === undefined) {
            // Everything published, once, in order.
            expect(received.length).to.equal(published);
          } else {
            expect(rest.error).to.be.instanceOf(DiscontinuityError);
            const discontinuity = rest.error as DiscontinuityError;
            expect(discontinuity.since.offset).to.equal(received.length);
            expect(discontinuity.position.offset).to.be.at.most(published);
            expect(discontinuity.oldest).to.be.above(received.length + 1);
            expect(discontinuity.count).to.equal(discontinuity.oldest - received.length - 1);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
