import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import * as jobQueue from '../examples/job-queue.js';
import * as peopleUpdates from '../examples/people-updates.js';
import * as sharedState from '../examples/shared-state.js';
import * as typedEcho from '../examples/typed-echo.js';
import * as webStreams from '../examples/web-streams.js';
import * as workerPool from '../examples/worker-pool.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `examples/<name>` in a fresh Node process, as the README tells users to. */
function runExample(name: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', `examples/${name}`],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`examples/${name} failed: ${stderr}`, { cause: error }));
        else resolve({ stdout, stderr });
      },
    );
  });
}

/** A `log` option that collects the lines. */
function collector(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

const LEAK_KINDS = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout']);

function resources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((kind) => LEAK_KINDS.has(kind))
    .sort();
}

/**
 * After each in-process example, no socket, server or timer beyond those open before it
 * may remain (closing sockets get a few event-loop turns to finish).
 */
function expectNoLeaks(): void {
  let baseline: string[] = [];
  // Both hooks are async so that both counts include mocha's own timer for the hook.
  beforeEach(async () => {
    await Promise.resolve();
    baseline = resources();
  });
  afterEach(async () => {
    const extra = (): string[] => {
      const left = [...baseline];
      return resources().filter((kind) => {
        const index = left.indexOf(kind);
        if (index === -1) return true;
        left.splice(index, 1);
        return false;
      });
    };
    for (let i = 0; i < 50 && extra().length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(extra(), 'left open by the example').to.deep.equal([]);
  });
}

/** Every example file and the test that runs it; checked against examples/ below. */
const covered = new Set<string>();

function example(file: string, body: () => void): void {
  covered.add(file);
  describe(file, body);
}

describe('examples', function () {
  this.timeout(30_000);

  example('tour.ts', () => {
    it('is the README tour verbatim, so the tour compiles as written', () => {
      const readme = readFileSync(`${root}README.md`, 'utf8');
      const section = readme.slice(readme.indexOf('## A 30-second tour'));
      const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
      const tour = readFileSync(`${root}examples/tour.ts`, 'utf8');
      expect(block).to.be.a('string');
      expect(block).to.equal(tour.slice(tour.indexOf('import {')));
    });

    it('prints what the README says it does', async () => {
      const { stdout, stderr } = await runExample('tour.ts');
      expect(stderr).to.equal('');
      expect(stdout.trimEnd().split('\n')).to.deep.equal([
        'channel: a, b, c',
        'select: fast: fast wins; slow still empty: true',
        'scope: sum 10',
        'timeout: undefined',
        'streams: streams too',
        'websocket: HELLO; closed 1000',
      ]);
    });
  });

  example('typed-echo.ts', () => {
    expectNoLeaks();

    it('answers each number doubled, in order, then both ends see a clean 1000', async () => {
      const numbers = [0.06, 0.2, 0.925];
      const { lines, log } = collector();
      const result = await typedEcho.main({
        rounds: 3,
        period: 10,
        random: () => numbers.shift() ?? 0,
        log,
      });
      expect(result.answers).to.deep.equal([
        { round: 1, value: 6, doubled: 12 },
        { round: 2, value: 20, doubled: 40 },
        { round: 3, value: 92, doubled: 184 },
      ]);
      const clean = { code: 1000, reason: '', wasClean: true };
      expect(result.clientClosed).to.deep.equal(clean);
      expect(result.serverClosed).to.deep.equal(clean);
      expect(lines[0]).to.match(/^server: listening on ws:\/\/127\.0\.0\.1:\d+$/);
      expect(lines.slice(1)).to.deep.equal([
        'client: round 1: sending 6',
        'server: round 1: 6 → 12',
        'client: round 1: 6 doubled is 12',
        'client: round 2: sending 20',
        'server: round 2: 20 → 40',
        'client: round 2: 20 doubled is 40',
        'client: round 3: sending 92',
        'server: round 3: 92 → 184',
        'client: round 3: 92 doubled is 184',
        'server: the client hung up',
        'client: closed with 1000 (clean: true)',
        'server: closed with 1000 (clean: true)',
      ]);
    });

    it('asks one question per period (a ticker), not faster', async () => {
      const started = performance.now();
      const result = await typedEcho.main({ rounds: 3, period: 40, log: () => undefined });
      expect(result.answers.map((answer) => answer.round)).to.deep.equal([1, 2, 3]);
      for (const answer of result.answers) expect(answer.doubled).to.equal(answer.value * 2);
      // Three ticks of 40 ms: the third comes no earlier than 120 ms after the start.
      expect(performance.now() - started).to.be.at.least(115);
    });
  });

  example('people-updates.ts', () => {
    expectNoLeaks();

    it('sends only the kinds the current filter wants, switching exactly where confirmed', async () => {
      const { lines, log } = collector();
      const result = await peopleUpdates.main({ log });
      expect(result.received).to.deep.equal([
        { type: 'filter', filter: 'saves' },
        { type: 'saved', person: { id: 1, name: 'Ada' } },
        { type: 'saved', person: { id: 2, name: 'Bob' } },
        { type: 'filter', filter: 'deletes' },
        { type: 'deleted', id: 2 },
        { type: 'filter', filter: 'both' },
        { type: 'saved', person: { id: 4, name: 'Dee' } },
        { type: 'deleted', id: 3 },
      ]);
      expect(result.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
      expect(result.subscribersLeft).to.equal(0);
      // Each side's narration is in a fixed order (the two sides interleave freely).
      expect(lines.filter((line) => line.startsWith('server:'))).to.deep.equal([
        'server: filter set to saves',
        'server: skipped deleted 1 (filter: saves)',
        'server: filter set to deletes',
        'server: skipped saved Cy (3) (filter: deletes)',
        'server: filter set to both',
      ]);
      expect(lines.filter((line) => !line.startsWith('server:'))).to.deep.equal([
        'client: filter is now saves',
        'people: save Ada',
        'people: save Bob',
        'people: delete 1',
        'client: saved Ada (1)',
        'client: saved Bob (2)',
        'client: filter is now deletes',
        'people: save Cy',
        'people: delete 2',
        'client: deleted 2',
        'client: filter is now both',
        'people: save Dee',
        'people: delete 3',
        'client: saved Dee (4)',
        'client: deleted 3',
        'client: closed with 1000',
      ]);
    });

    it('People: a subscriber that falls behind is closed with an error, others go on', async () => {
      const people = new peopleUpdates.People(2);
      const slow = people.subscribe();
      const fast = people.subscribe();
      people.save({ id: 1, name: 'Ada' });
      people.save({ id: 2, name: 'Bob' });
      await fast.receive();
      await fast.receive();
      people.delete(1); // slow's buffer is full
      expect(people.subscribers).to.equal(1);
      expect(await fast.receive()).to.deep.equal({ type: 'deleted', id: 1 });
      expect(await slow.receive()).to.deep.equal({
        type: 'saved',
        person: { id: 1, name: 'Ada' },
      });
      await slow.receive();
      const error = await slow.receive().then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.equal('Subscriber fell 2 updates behind');
      fast.cancel();
      expect(people.subscribers).to.equal(0);
    });
  });

  example('shared-state.ts', () => {
    expectNoLeaks();

    it('a change reaches the other client; a conflict ends the same everywhere, by server order', async () => {
      const { lines, log } = collector();
      const result = await sharedState.main({ log });
      const { history } = result;

      // The rename travelled first; then the three concurrent changes, in some server
      // order that keeps each client's own changes in the order it made them.
      expect(history).to.have.length(4);
      expect(history[0]).to.deep.equal({
        version: 2,
        by: 'ann',
        change: { field: 'title', value: 'Groceries' },
      });
      expect(history.map((entry) => entry.version)).to.deep.equal([2, 3, 4, 5]);
      const rest = history.slice(1).map((entry) => `${entry.by} ${entry.change.field}`);
      expect([...rest].sort()).to.deep.equal(['ann owner', 'bob note', 'bob owner']);
      expect(rest.indexOf('bob owner')).to.be.below(rest.indexOf('bob note'));

      // The rule: the owner change the server applied last wins, on every copy.
      const lastOwner = history.filter((entry) => entry.change.field === 'owner').at(-1);
      const expected = { title: 'Groceries', owner: lastOwner?.change.value, note: 'milk' };
      expect(result.server).to.deep.equal({ state: expected, version: 5 });
      expect(result.ann).to.deep.equal({ value: expected, version: 5, pending: 0 });
      expect(result.bob).to.deep.equal({ value: expected, version: 5, pending: 0 });

      // Before the server answered, each showed its own claim.
      expect(result.optimistic).to.deep.equal({
        ann: { title: 'Groceries', owner: 'ann', note: '' },
        bob: { title: 'Groceries', owner: 'bob', note: 'milk' },
      });
      const clean = { code: 1000, reason: '', wasClean: true };
      expect(result.closed).to.deep.equal([clean, clean]);
      expect(result.clientsLeft).to.equal(0);

      const final = `title=Groceries owner=${String(lastOwner?.change.value)} note=milk`;
      expect(lines.slice(0, 5)).to.deep.equal([
        'ann sees title=Shopping owner=nobody note=-',
        'bob sees title=Shopping owner=nobody note=-',
        'bob sees title=Groceries owner=nobody note=- (version 2)',
        'ann shows title=Groceries owner=ann note=- (not confirmed yet)',
        'bob shows title=Groceries owner=bob note=milk (not confirmed yet)',
      ]);
      expect(lines[5]).to.match(/^server order: 2:ann title=Groceries, 3:/);
      expect(lines.slice(6)).to.deep.equal([`ann sees ${final}`, `bob sees ${final}`]);
    });
  });

  example('worker-pool.ts', () => {
    expectNoLeaks();

    it('runs every job once, times out the one that hangs, lists outcomes by id', async () => {
      const { lines, log } = collector();
      const { first, second } = await workerPool.main({
        unit: 2,
        timeout: 200,
        idleReport: 50,
        log,
      });
      const withoutWorker = first.outcomes.map((outcome) =>
        outcome.ok
          ? { id: outcome.id, ok: true, value: outcome.value }
          : { id: outcome.id, ok: false, error: outcome.error },
      );
      expect(withoutWorker).to.deep.equal([
        { id: 1, ok: true, value: 1 },
        { id: 2, ok: true, value: 4 },
        { id: 3, ok: true, value: 9 },
        { id: 4, ok: false, error: 'Timed out after 200 ms' },
        { id: 5, ok: true, value: 25 },
        { id: 6, ok: true, value: 36 },
        { id: 7, ok: true, value: 49 },
        { id: 8, ok: true, value: 64 },
      ]);
      for (const outcome of first.outcomes) expect(outcome.worker).to.be.oneOf([1, 2, 3]);
      expect(first.cancelled).to.deep.equal([]);
      expect(first.handedOut).to.equal(8);
      // While job 4 hangs (200 ms; the others finish within a few ms), the collector's
      // onTimeout clause (50 ms) reports it, and only it.
      const idle = lines.filter((line) => line.startsWith('pool:'));
      expect(idle).to.have.length.of.at.least(1);
      for (const line of idle) {
        expect(line).to.equal('pool: nothing finished for 50 ms; running: 4');
      }
      const run1 = lines.indexOf('run 1 outcomes:');
      expect(lines.slice(run1, run1 + 9)).to.deep.equal([
        'run 1 outcomes:',
        '  job 1: 1',
        '  job 2: 4',
        '  job 3: 9',
        '  job 4: Timed out after 200 ms',
        '  job 5: 25',
        '  job 6: 36',
        '  job 7: 49',
        '  job 8: 64',
      ]);
      expect(lines).to.include('producer: stopped after handing out 8 jobs');

      // Run 2: exactly five results, then everything still running is cancelled.
      expect(second.outcomes).to.have.length(5);
      for (const outcome of second.outcomes) {
        expect(outcome).to.include({ ok: true, value: outcome.id * outcome.id });
      }
      const collected = second.outcomes.map((outcome) => outcome.id);
      // Every job handed out was either collected or cancelled, none both; at most one
      // per worker was cancelled, and the producer stopped at once.
      expect([...collected, ...second.cancelled].sort((a, b) => a - b)).to.deep.equal(
        Array.from({ length: second.handedOut }, (_, index) => index + 1),
      );
      expect(second.cancelled.length).to.be.at.most(3);
      expect(second.handedOut).to.be.within(5, 8);
      expect(lines).to.include(`producer: stopped after handing out ${second.handedOut} jobs`);
      for (const id of second.cancelled) {
        expect(lines.some((line) => new RegExp(`^worker [123]: job ${id} cancelled$`).test(line)))
          .to.be.true;
      }
    });

    it('a job that fails (not a timeout) fails the pool with that very error', async () => {
      const boom = new Error('boom');
      const error = await workerPool
        .runPool(
          workerPool.TASKS,
          async (task) => {
            if (task.id === 2) throw boom;
            return task.id;
          },
          { workers: 2, timeout: 1000, idleReport: 1000, log: () => undefined },
        )
        .then(
          () => undefined,
          (reason: unknown) => reason,
        );
      expect(error).to.equal(boom);
    });
  });

  example('web-streams.ts', () => {
    expectNoLeaks();

    it('delivers in order, reads ahead only as far as its buffers, cancels back to the source', async () => {
      const { lines, log } = collector();
      const result = await webStreams.main({ take: 6, pace: 5, log });
      expect(result.received).to.deep.equal([
        '1: LINE 1',
        '2: LINE 2',
        '3: LINE 3',
        '4: LINE 4',
        '5: LINE 5',
        '6: LINE 6',
      ]);
      // Back-pressure: the source is endless, yet it made only a bounded number of
      // lines ahead of the consumer, at every step and in all.
      result.pulledAt.forEach((pulled, index) => {
        expect(pulled - (index + 1)).to.be.within(0, webStreams.MAX_IN_FLIGHT);
      });
      expect(result.pulled).to.be.within(6, 6 + webStreams.MAX_IN_FLIGHT);
      // The consumer's reason reached the source and pipeTo unchanged (the same object).
      expect(result.stopReason).to.be.instanceOf(DOMException);
      expect(result.sourceCancelReason).to.equal(result.stopReason);
      expect(result.pipeError).to.equal(result.stopReason);
      expect(lines.at(-2)).to.equal(`source: cancelled after making ${result.pulled} lines`);
      expect(lines.at(-1)).to.equal('pipeTo ended with: AbortError: The consumer has enough');
    });
  });

  example('job-queue.ts', () => {
    expectNoLeaks();

    it("completes every job but the cancelled one exactly once, the crashed worker's jobs requeued, and drains with 1001", async () => {
      const { lines, log } = collector();
      const run = await jobQueue.main({ jobs: 12, cancel: 5, log });
      expect([...run.completed].sort((a, b) => a - b)).to.deep.equal([
        1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12,
      ]);
      expect(new Set(run.completed).size).to.equal(run.completed.length);
      expect(run.crash).to.be.instanceOf(Error);
      const crashed = Number(/working on job (\d+)/.exec((run.crash as Error).message)?.[1]);
      // The job it was working on came back (no result), and so did its buffered ones
      // (through onUndelivered), each once.
      expect(run.requeued).to.include(crashed);
      expect(new Set(run.requeued).size).to.equal(run.requeued.length);
      expect(run.requeued).to.not.include(5);
      expect(run.drainCode).to.equal(1001);
      expect(lines).to.include('producer: cancelled job 5');
      expect(lines.at(-1)).to.equal('w1: the server went away (1001), it would come back later');
    });
  });

  it('runs each example as a program: `node --import tsx examples/<name>` exits 0', async function () {
    this.timeout(120_000);
    const lastLines: Record<string, string> = {
      'typed-echo.ts': 'server: closed with 1000 (clean: true)',
      'job-queue.ts': 'completed: ',
      'people-updates.ts': 'client: closed with 1000',
      'shared-state.ts': 'bob sees title=Groceries',
      'worker-pool.ts': '  cancelled: ',
      'web-streams.ts': 'pipeTo ended with: AbortError: The consumer has enough',
    };
    const runs = await Promise.all(
      Object.keys(lastLines).map(async (name) => ({ name, ...(await runExample(name)) })),
    );
    for (const { name, stdout, stderr } of runs) {
      expect(stderr, name).to.equal('');
      expect(stdout.trimEnd().split('\n').at(-1), name).to.satisfy((line: string) =>
        line.startsWith(lastLines[name] ?? '?'),
      );
    }
    expect(Object.keys(lastLines).concat('tour.ts').sort()).to.deep.equal([...covered].sort());
  });

  it('covers every file in examples/ (none can rot unnoticed)', () => {
    const files = readdirSync(new URL('../examples/', import.meta.url)).filter((file) =>
      file.endsWith('.ts'),
    );
    expect(files.sort()).to.deep.equal([...covered].sort());
  });
});
