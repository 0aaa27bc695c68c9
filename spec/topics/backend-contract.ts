/**
 * The TopicBackend contract, one suite run over every backend (the memory one in
 * spec/topics/memory-backend.spec.ts, Redis in spec/redis/redis-backend.spec.ts). A
 * backend is reached through "nodes": for the memory backend the same instance twice, for
 * Redis two backends on one redis-server (two processes, as far as the contract knows).
 */
import { expect } from 'chai';
import { DiscontinuityError, Topic } from '../../lib/index.js';
import type { Position, Publication, TopicBackend } from '../../lib/index.js';
import { waitFor } from '../server/helpers.js';
import { drain } from './helpers.js';

export interface ContractSetup {
  /** Two nodes of one shared store. */
  readonly nodes: readonly [TopicBackend, TopicBackend];
  /** A fresh topic name for a test. */
  readonly name: () => string;
  /**
   * Resolves once listeners registered on one node will get what another node publishes
   * (at once for the memory backend; the Redis backend's start read and SUBSCRIBE travel
   * on other connections than the other node's publish).
   */
  readonly settle: () => Promise<void>;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Registers the contract's cases; `setup` is read when the cases run. */
export function backendContract(setup: () => ContractSetup): void {
  describe('TopicBackend contract', () => {
    it('a topic nothing was published to is at offset 0 of an epoch, with nothing retained', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const position = await nodes[0].position(topic);
      expect(position.offset).to.equal(0);
      expect(position.epoch).to.match(/^[0-9a-f]{16}$/);
      const history = await nodes[1].history(topic, { epoch: position.epoch, offset: 0 });
      expect(history).to.deep.equal({ publications: [], position, oldest: 1 });
    });

    it('publish assigns contiguous offsets of one epoch, whichever node publishes', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const retention = { count: 100 };
      const positions: Position[] = [];
      for (let i = 0; i < 6; i++) positions.push(await nodes[i % 2]!.publish(topic, i, retention));
      expect(positions.map((p) => p.offset)).to.deep.equal(range(1, 6));
      expect(new Set(positions.map((p) => p.epoch)).size).to.equal(1);
      expect(await nodes[1].position(topic)).to.deep.equal(positions[5]);
    });

    it('every listener on every node gets each publication once, in offset order, with its value', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const got: [number[], number[]] = [[], []];
      const values: [unknown[], unknown[]] = [[], []];
      const stops = nodes.map((node, n) =>
        node.listen(topic, (publication: Publication<unknown>) => {
          got[n]!.push(publication.position.offset);
          values[n]!.push(publication.value);
        }),
      );
      await setup().settle();
      // Concurrent publishes from both nodes.
      const published = await Promise.all(
        range(1, 40).map((i) => nodes[i % 2]!.publish(topic, { i }, { count: 100 })),
      );
      await waitFor(() => got[0].length >= 40 && got[1].length >= 40, 5000, 'every listener');
      for (const stop of stops) stop();
      expect(got[0]).to.deep.equal(range(1, 40));
      expect(got[1]).to.deep.equal(range(1, 40));
      const byOffset = new Map(published.map((p, i) => [p.offset, { i: i + 1 }]));
      expect(values[0]).to.deep.equal(range(1, 40).map((o) => byOffset.get(o)));
      expect(values[1]).to.deep.equal(values[0]);
    });

    it('retains exactly the latest `count`: history since 0 starts at the oldest kept', async () => {
      const { nodes, name } = setup();
      const topic = name();
      let last: Position | undefined;
      for (let i = 1; i <= 10; i++) last = await nodes[0].publish(topic, `v${i}`, { count: 3 });
      const { epoch } = last!;
      const history = await nodes[1].history(topic, { epoch, offset: 0 });
      expect(history.oldest).to.equal(8);
      expect(history.position).to.deep.equal({ epoch, offset: 10 });
      expect(history.publications.map((p) => [p.position.offset, p.value])).to.deep.equal([
        [8, 'v8'],
        [9, 'v9'],
        [10, 'v10'],
      ]);
    });

    it('history since a retained position gives exactly what follows; since another epoch or ahead, all retained', async () => {
      const { nodes, name } = setup();
      const topic = name();
      let last: Position | undefined;
      for (let i = 1; i <= 6; i++) last = await nodes[0].publish(topic, i, { count: 4 });
      const { epoch } = last!;
      const offsets = async (since: Position): Promise<number[]> =>
        (await nodes[1].history(topic, since)).publications.map((p) => p.position.offset);
      expect(await offsets({ epoch, offset: 4 })).to.deep.equal([5, 6]);
      expect(await offsets({ epoch, offset: 6 })).to.deep.equal([]);
      expect(await offsets({ epoch: 'another', offset: 4 })).to.deep.equal([3, 4, 5, 6]);
      expect(await offsets({ epoch, offset: 99 })).to.deep.equal([3, 4, 5, 6]);
    });

    it('history with a limit gives the oldest `limit` after since, with the same position and oldest', async () => {
      const { nodes, name } = setup();
      const topic = name();
      let last: Position | undefined;
      for (let i = 1; i <= 8; i++) last = await nodes[0].publish(topic, i * 10, { count: 6 });
      const { epoch } = last!;
      const read = async (since: Position, limit: number) => {
        const history = await nodes[1].history(topic, since, limit);
        return {
          got: history.publications.map((p) => [p.position.offset, p.value]),
          position: history.position,
          oldest: history.oldest,
        };
      };
      const tail = { position: { epoch, offset: 8 }, oldest: 3 };
      expect(await read({ epoch, offset: 4 }, 2)).to.deep.equal({
        got: [
          [5, 50],
          [6, 60],
        ],
        ...tail,
      });
      expect(await read({ epoch, offset: 0 }, 1)).to.deep.equal({ got: [[3, 30]], ...tail });
      expect(await read({ epoch, offset: 6 }, 5)).to.deep.equal({
        got: [
          [7, 70],
          [8, 80],
        ],
        ...tail,
      });
      expect(await read({ epoch, offset: 8 }, 3)).to.deep.equal({ got: [], ...tail });
    });

    it('count 0 keeps nothing: oldest is the next offset', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const { epoch } = await nodes[0].publish(topic, 'a', { count: 0 });
      await nodes[0].publish(topic, 'b', { count: 0 });
      const history = await nodes[1].history(topic, { epoch, offset: 0 });
      expect(history).to.deep.equal({
        publications: [],
        position: { epoch, offset: 2 },
        oldest: 3,
      });
    });

    it('maxAge drops what is older than it at the next read', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const { epoch } = await nodes[0].publish(topic, 'old', { count: 10, maxAge: 100 });
      await new Promise((resolve) => setTimeout(resolve, 250));
      await nodes[0].publish(topic, 'new', { count: 10, maxAge: 100 });
      const history = await nodes[1].history(topic, { epoch, offset: 0 });
      expect(history.oldest).to.equal(2);
      expect(history.publications.map((p) => p.value)).to.deep.equal(['new']);
    });

    it('a Topic on each node: a subscriber on one gets what the other publishes, and `since` resumes exactly', async () => {
      const { nodes, name } = setup();
      const topic = name();
      const a = new Topic<number>({ backend: nodes[0], name: topic, retention: { count: 5 } });
      const b = new Topic<number>({ backend: nodes[1], name: topic, retention: { count: 5 } });
      const live = b.subscribe({ capacity: Infinity });
      await setup().settle();
      let last: Position | undefined;
      for (let i = 1; i <= 8; i++) last = await a.publish(i);
      const { epoch } = last!;
      const resumed = b.subscribe({ since: { epoch, offset: 5 }, capacity: Infinity });
      const gone = b.subscribe({ since: { epoch, offset: 1 }, capacity: Infinity });
      await setup().settle();
      a.close();
      b.close();
      expect(
        (await drain(live)).events.map((e) => e.type === 'publication' && e.value),
      ).to.deep.equal(range(1, 8));
      expect(
        (await drain(resumed)).events.map((e) => e.type === 'publication' && e.value),
      ).to.deep.equal([6, 7, 8]);
      const { events, error } = await drain(gone);
      expect(events).to.deep.equal([]);
      expect(error).to.be.instanceOf(DiscontinuityError);
      expect((error as DiscontinuityError).message).to.equal(
        `Cannot resume after ${epoch}:1: offsets 2 to 3 are no longer retained (2 values)`,
      );
    });
  });
}
