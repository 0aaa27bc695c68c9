/**
 * Contracts and channel endpoints: typed halves on both ends, the mismatch detected at
 * connect (ContractMismatchError naming the channel), ad hoc and version-1 peers unchecked.
 */
import { expect } from 'chai';
import { expectTypeOf } from 'expect-type';
import type { ReceiveChannel, SendChannel } from '../../lib/index.js';
import {
  ConnectionLostError,
  ContractMismatchError,
  channelEndpoint,
  channels,
  contract,
  toClient,
  toServer,
} from '../../lib/network/index.js';
import type {
  ChannelClientSession,
  ChannelConnectOptions,
  ChannelRouteOptions,
  ChannelServerSession,
} from '../../lib/network/index.js';
import { serve, testConversation } from '../../lib/server/index.js';
import type { Server } from '../../lib/server/index.js';
import { connect, text } from '../../lib/websocket/index.js';

interface Job {
  readonly id: number;
}
interface Result {
  readonly id: number;
  readonly ok: boolean;
}

const Jobs = contract('jobs', 1, {
  jobs: toClient<Job>({ capacity: 4 }),
  results: toServer<Result>({ capacity: 16 }),
});
const JobQueue = channelEndpoint('/jobs', Jobs);

/** A server with `routes`, every handler error collected; closed by the caller. */
async function start(
  routes: Parameters<typeof serve>[1],
): Promise<{ server: Server; errors: unknown[] }> {
  const errors: unknown[] = [];
  const server = await serve(
    { host: '127.0.0.1', port: 0, pingInterval: Infinity, onError: (error) => errors.push(error) },
    routes,
  );
  return { server, errors };
}

describe('contract() and channelEndpoint()', () => {
  describe('typed halves', () => {
    it('gives the server a SendChannel of what the client receives, with the same type', () => {
      expectTypeOf<ChannelServerSession<typeof Jobs.channels>['channels']['jobs']>().toEqualTypeOf<
        SendChannel<Job>
      >();
      expectTypeOf<ChannelClientSession<typeof Jobs.channels>['channels']['jobs']>().toEqualTypeOf<
        ReceiveChannel<Job>
      >();
      expectTypeOf<
        ChannelServerSession<typeof Jobs.channels>['channels']['results']
      >().toEqualTypeOf<ReceiveChannel<Result>>();
      expectTypeOf<
        ChannelClientSession<typeof Jobs.channels>['channels']['results']
      >().toEqualTypeOf<SendChannel<Result>>();
      // The codec is the library's: there is no option to get it wrong.
      type ConnectKeys = keyof NonNullable<ChannelConnectOptions<typeof Jobs.channels>['connect']>;
      type RouteKeys = keyof NonNullable<ChannelRouteOptions<typeof Jobs.channels>['session']>;
      expectTypeOf<'codec' extends ConnectKeys | RouteKeys ? true : false>().toEqualTypeOf<false>();
    });

    it('carries values both ways over testConversation, each end holding its half', async () => {
      const results: Result[] = [];
      const received = await testConversation(
        JobQueue.handle(async ({ channels: { jobs, results: incoming } }) => {
          for (const id of [1, 2, 3]) await jobs.send({ id });
          jobs.close();
          for await (const result of incoming) results.push(result);
        }),
        JobQueue.client(async ({ channels: { jobs, results: outgoing } }) => {
          const ids: number[] = [];
          for await (const job of jobs) {
            ids.push(job.id);
            await outgoing.send({ id: job.id, ok: job.id !== 2 });
          }
          outgoing.close();
          return ids;
        }),
      );
      expect(received).to.deep.equal([1, 2, 3]);
      expect(results).to.deep.equal([
        { id: 1, ok: true },
        { id: 2, ok: false },
        { id: 3, ok: true },
      ]);
    });

    it('connects a real client and server, and reports undelivered values per channel', async () => {
      const { server, errors } = await start([
        JobQueue.handle(
          async ({ channels: { jobs } }) => {
            for (const id of [1, 2, 3, 4, 5, 6]) await jobs.send({ id });
          },
          { undelivered: { jobs: () => undefined } },
        ),
      ]);
      try {
        const first = await JobQueue.connect(server.url, async ({ channels: { jobs } }) => {
          return (await jobs.receive()).id;
        });
        expect(first).to.equal(1);
        expect(errors.filter((e) => !(e instanceof ConnectionLostError))).to.deep.equal([]);
      } finally {
        await server.close();
      }
    });
  });

  describe('bad arguments', () => {
    it('say what was expected and what was given', () => {
      expect(() => toServer({ capacity: -1 })).to.throw(
        RangeError,
        'Expected capacity to be a non-negative integer or Infinity, got -1',
      );
      expect(() => toClient(null as never)).to.throw(
        TypeError,
        'Expected options to be an object, got null',
      );
      expect(() => contract('', 1, {})).to.throw(
        TypeError,
        "Expected name to be a non-empty string, got ''",
      );
      expect(() => contract('x', 0, {})).to.throw(
        TypeError,
        'Expected version to be a positive integer, got 0',
      );
      expect(() => contract('x', 1, null as never)).to.throw(
        TypeError,
        'Expected channels to be an object, got null',
      );
      expect(() => contract('x', 1, { a: { capacity: 1 } as never })).to.throw(
        TypeError,
        "Expected channel 'a' to be declared with toServer() or toClient(), got",
      );
      expect(() => channelEndpoint('jobs', Jobs)).to.throw(
        RangeError,
        "Expected path to start with '/' and have no query or fragment, got 'jobs'",
      );
      expect(() => channelEndpoint('/jobs', {} as never)).to.throw(
        TypeError,
        'Expected a contract (made by contract()), got',
      );
      expect(() => JobQueue.handle(42 as never)).to.throw(
        TypeError,
        'Expected handler to be a function, got 42',
      );
      expect(() => JobQueue.reconnecting(42 as never, () => undefined)).to.throw(
        TypeError,
        'Expected baseUrl to be a string or a URL, got 42',
      );
      expect(() => JobQueue.client(async () => undefined, null as never)).to.throw(
        TypeError,
        'Expected options to be an object, got null',
      );
    });

    it('rejects connect() with a bad baseUrl instead of throwing', async () => {
      const error: unknown = await JobQueue.connect(42 as never, () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.equal(
        'Expected baseUrl to be a string or a URL, got 42 (number)',
      );
    });
  });

  describe('a mismatch at connect', () => {
    const cases: [string, ReturnType<typeof contract>, string | undefined, RegExp][] = [
      [
        'a channel only the server has',
        contract('jobs', 1, { jobs: toClient<Job>({ capacity: 4 }) }),
        'results',
        /'results'/,
      ],
      [
        'a channel whose direction differs',
        contract('jobs', 1, { jobs: toServer<Job>(), results: toServer<Result>() }),
        'jobs',
        /channel 'jobs'.*both ends declaring to receive from it|channel 'jobs'.*both ends declaring to send on it/,
      ],
      [
        'another version',
        contract('jobs', 2, { jobs: toClient<Job>(), results: toServer<Result>() }),
        undefined,
        /'jobs' version 1, got 'jobs' version 2|'jobs' version 2, got 'jobs' version 1/,
      ],
      [
        'a channel only the client has',
        contract('jobs', 1, {
          jobs: toClient<Job>(),
          results: toServer<Result>(),
          extra: toServer<string>(),
        }),
        'extra',
        /'extra'/,
      ],
    ];
    for (const [title, clientContract, channel, message] of cases) {
      it(`fails both ends with a ContractMismatchError for ${title}, and the handlers never run`, async () => {
        let ran = false;
        const { server, errors } = await start([
          JobQueue.handle(() => {
            ran = true;
          }),
        ]);
        try {
          const client = channelEndpoint('/jobs', clientContract);
          const error: unknown = await client
            .connect(server.url, () => {
              ran = true;
            })
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(error).to.be.instanceOf(ContractMismatchError);
          const mismatch = error as ContractMismatchError;
          expect(mismatch.code).to.equal('ERR_SLUICE_CONTRACT_MISMATCH');
          expect(mismatch.channel).to.equal(channel);
          expect(mismatch.message).to.match(message);
          expect(ran).to.equal(false);
        } finally {
          await server.close();
        }
        expect(errors).to.have.length(1);
        expect(errors[0]).to.be.instanceOf(ContractMismatchError);
        expect((errors[0] as ContractMismatchError).channel).to.equal(channel);
      });
    }

    it('ends a reconnecting client with the mismatch (1008 is not retried)', async () => {
      const { server } = await start([JobQueue.handle(() => undefined)]);
      try {
        const other = channelEndpoint('/jobs', contract('jobs', 3, { jobs: toClient<Job>() }));
        let ran = false;
        const client = other.reconnecting(
          server.url,
          () => {
            ran = true;
          },
          { reconnect: { minDelay: 10, maxDelay: 10 } },
        );
        const error: unknown = await client.done.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(ContractMismatchError);
        expect(ran).to.equal(false);
        expect(client.state.type === 'closed' && client.state.attempt).to.equal(1);
        expect(client.state.type === 'closed' && client.state.reason.code).to.equal(1008);
      } finally {
        await server.close();
      }
    });
  });

  describe('peers without a contract', () => {
    it('does not check an ad hoc peer: its channels by name work against the contract', async () => {
      const { server } = await start([
        JobQueue.handle(async ({ channels: { jobs, results } }) => {
          await jobs.send({ id: 7 });
          // Returning says goodbye: the client's unread values would be dropped (and
          // reported here), so wait for its answer.
          await results.receive();
        }),
      ]);
      try {
        const session = await connect(`${server.url}/jobs`, { codec: text() });
        const network = channels(session);
        const jobs = network.channel<Job>('jobs', { capacity: 1 });
        const results = network.channel<Result>('results');
        await network.ready;
        expect(await jobs.incoming.receive()).to.deep.equal({ id: 7 });
        await results.outgoing.send({ id: 7, ok: true });
        await network.closed;
      } finally {
        await server.close();
      }
    });

    it('surfaces a name the peer never opens through onUnopened, and not one it opens', async () => {
      const unopened: string[] = [];
      const sent: string[] = [];
      const peer = await connectRawPeer(sent);
      const network = channels(peer.session, {
        onUnopened: (name) => unopened.push(name),
        openTimeout: 30,
      });
      network.channel<number>('result');
      network.channel<number>('jobs');
      peer.deliver('["sluice",2]\n["contract"]\n["open",0,"jobs",0]');
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(unopened).to.deep.equal(['result']);
      peer.end();
      await network.closed;
    });

    it('rejects a bad onUnopened, openTimeout or side', () => {
      const session = {
        incoming: {},
        outgoing: {},
        close: () => undefined,
        closed: Promise.resolve(),
      };
      const as = (options: object) => () =>
        channels(session as never, options as Parameters<typeof channels>[1]);
      expect(as({ onUnopened: 1 })).to.throw(
        TypeError,
        'Expected onUnopened to be a function or undefined, got 1',
      );
      expect(as({ openTimeout: -1 })).to.throw(
        RangeError,
        /^Expected openTimeout to be a number of milliseconds/,
      );
      expect(as({ side: 'both' })).to.throw(
        TypeError,
        /^Expected side to be 'server', 'client' or undefined/,
      );
    });

    it('speaks version 1 to a version-1 peer: no contract frame, ready at its hello', async () => {
      const sent: string[] = [];
      const session = await connectRawPeer(sent);
      const network = channels(session.session, { contract: Jobs, side: 'client' });
      session.deliver('["sluice",1]');
      await network.ready;
      expect(sent).to.deep.equal(['["sluice",2]']);
      session.end();
      await network.closed;
    });

    it('sends its contract after a version-2 hello, and an empty one when it has none', async () => {
      const withContract: string[] = [];
      const a = await connectRawPeer(withContract);
      const one = channels(a.session, { contract: Jobs, side: 'client' });
      a.deliver('["sluice",2]\n["contract"]');
      await one.ready;
      const without: string[] = [];
      const b = await connectRawPeer(without);
      const two = channels(b.session);
      b.deliver('["sluice",2]\n["contract"]');
      await two.ready;
      for (let turn = 0; turn < 100 && withContract.length + without.length < 4; turn++) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(withContract).to.deep.equal([
        '["sluice",2]',
        '["contract","jobs",1,[["jobs","r"],["results","s"]]]',
      ]);
      expect(without).to.deep.equal(['["sluice",2]', '["contract"]']);
      a.end();
      b.end();
      await Promise.all([one.closed, two.closed]);
    });
  });
});

/** A text session whose peer is the test: what it sends is collected, `deliver` feeds it. */
async function connectRawPeer(sent: string[]): Promise<{
  session: import('../../lib/websocket/index.js').Session<string, string>;
  deliver: (message: string) => void;
  end: () => void;
}> {
  const { Channel } = await import('../../lib/index.js');
  const incoming = new Channel<string>(Infinity);
  let resolveClosed: (reason: { code: number; reason: string; wasClean: boolean }) => void = () =>
    undefined;
  const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) => {
    resolveClosed = resolve;
  });
  const outgoing = new Channel<string>(Infinity);
  void (async () => {
    for await (const message of outgoing) sent.push(...message.split('\n'));
  })();
  const end = (): void => {
    incoming.close();
    outgoing.close();
    resolveClosed({ code: 1000, reason: '', wasClean: true });
  };
  const session = {
    incoming,
    outgoing,
    closed,
    close: () => {
      end();
      return closed;
    },
  } as unknown as import('../../lib/websocket/index.js').Session<string, string>;
  return { session, deliver: (message) => void incoming.trySend(message), end };
}
