// Shared state synced both ways (`SharedState` on the serving end, `syncState` on the
// client's), over network channels on in-memory sockets: local changes shown at once,
// conflicts resolved by server order, refusals, changes made offline, a lost connection.
import { expect } from 'chai';
import { MemorySocket } from '../../lib/server/memory-socket.js';
import { text, wrap } from '../../lib/websocket/index.js';
import { ConnectionLostError, SharedState, channels, syncState } from '../../lib/network/index.js';
import type { ChannelSession } from '../../lib/network/index.js';
import { STATE_PREFIX } from '../../lib/network/shared-state.js';
import { rejection } from '../server/helpers.js';

type Counter = Readonly<Record<string, number>>;
type Add = { readonly key: string; readonly by: number };

const add = (state: Counter, change: Add): Counter => ({
  ...state,
  [change.key]: (state[change.key] ?? 0) + change.by,
});

interface Connection {
  readonly server: ChannelSession;
  readonly client: ChannelSession;
  readonly sockets: readonly [MemorySocket, MemorySocket];
}

function connection(): Connection {
  const [left, right] = MemorySocket.pair();
  return {
    client: channels(wrap<string, string>(left, { codec: text() })),
    server: channels(wrap<string, string>(right, { codec: text() })),
    sockets: [left, right],
  };
}

describe('SharedState and syncState', () => {
  const open: Connection[] = [];
  const use = (): Connection => {
    const c = connection();
    open.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of open.splice(0)) {
      await c.client.close();
      await c.server.closed;
    }
  });

  it('shows a change at once, and the server state once ordered, on top of changes ordered before it', async () => {
    const shared = new SharedState<Counter, Add>({}, { name: 'c', apply: add });
    const c = use();
    void shared.serve(c.server);
    const store = syncState<Counter, Add>('c', { initial: {}, apply: add });
    void store.follow(c.client);
    await store.until(() => store.position?.offset === 1);
    const mine = store.update({ key: 'a', by: 1 });
    expect(store.value).to.deep.equal({ a: 1 });
    expect(store.pending).to.equal(1);
    // The server orders a change of its own before ours arrives.
    const theirs = await shared.update({ key: 'a', by: 10 });
    expect(theirs.offset).to.equal(2);
    const position = await mine;
    expect(position).to.deep.equal({ epoch: theirs.epoch, offset: 3 });
    expect(store.value).to.deep.equal({ a: 11 });
    expect(store.pending).to.equal(0);
    expect(shared.value).to.deep.equal({ a: 11 });
  });

  it("passes the connection's origin to the reducer, and withdraws a change it refuses", async () => {
    const origins: (string | undefined)[] = [];
    const shared = new SharedState<Counter, Add>(
      { a: 0 },
      {
        name: 'c',
        apply: (state, change, origin) => {
          origins.push(origin);
          if (change.by < 0) throw new RangeError(`Expected a positive step, got ${change.by}`);
          return add(state, change);
        },
      },
    );
    const c = use();
    void shared.serve(c.server, { origin: 'ann' });
    const store = syncState<Counter, Add>('c', { initial: {}, apply: add });
    void store.follow(c.client);
    const refused = store.update({ key: 'a', by: -1 });
    expect(store.value).to.deep.equal({ a: -1 });
    const error = await rejection(refused);
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal('Expected a positive step, got -1');
    expect(store.value).to.deep.equal({ a: 0 });
    expect(store.pending).to.equal(0);
    expect(origins).to.deep.equal(['ann']);
  });

  it('keeps changes made while not following, shown, and sends them on the next follow', async () => {
    const shared = new SharedState<Counter, Add>({}, { name: 'c', apply: add });
    const store = syncState<Counter, Add>('c', { initial: { a: 5 }, apply: add });
    const offline = store.update({ key: 'a', by: 2 });
    expect(store.value).to.deep.equal({ a: 7 });
    const c = use();
    void shared.serve(c.server);
    void store.follow(c.client);
    expect((await offline).offset).to.equal(2);
    expect(store.value).to.deep.equal({ a: 2 });
    expect(shared.value).to.deep.equal({ a: 2 });
  });

  it('withdraws a change sent on a connection lost before the answer, and follows again on the next', async () => {
    const shared = new SharedState<Counter, Add>({}, { name: 'c', apply: add });
    const first = use();
    void shared.serve(first.server);
    const store = syncState<Counter, Add>('c', { initial: {}, apply: add });
    const following = store.follow(first.client);
    await store.until(() => store.position !== undefined);
    const lost = store.update({ key: 'a', by: 1 });
    first.sockets[0].terminate(); // before the batched change left
    expect(await rejection(lost)).to.be.instanceOf(ConnectionLostError);
    await following;
    expect(store.value).to.deep.equal({});
    await shared.update({ key: 'b', by: 1 });
    const second = use();
    void shared.serve(second.server);
    void store.follow(second.client);
    expect(await store.until((value) => value.b === 1)).to.deep.equal({ b: 1 });
  });

  it('lets a watcher see the latest value, conflated, until close()', async () => {
    const shared = new SharedState<Counter, Add>({}, { name: 'c', apply: add });
    const c = use();
    void shared.serve(c.server);
    const store = syncState<Counter, Add>('c', { initial: {}, apply: add });
    const following = store.follow(c.client);
    const watcher = store.watch();
    expect(await watcher.receive()).to.deep.equal({});
    for (let i = 0; i < 5; i++) void store.update({ key: 'a', by: 1 });
    await store.until(() => store.pending === 0);
    store.close();
    const seen: Counter[] = [];
    for await (const value of watcher) seen.push(value);
    expect(seen).to.deep.equal([{ a: 5 }]);
    expect(await rejection(store.update({ key: 'a', by: 1 }))).to.include({
      message: "Synced state 'c' was closed",
    });
    await c.client.close();
    await following;
  });

  it('closes the connection with 4400 when a client sends something that is not a change', async () => {
    const shared = new SharedState<Counter, Add>({}, { name: 'c', apply: add });
    const c = use();
    void shared.serve(c.server);
    const raw = c.client.channel<unknown, unknown>(STATE_PREFIX + 'c', { capacity: 4 });
    await raw.outgoing.send({ change: 1 });
    expect(await c.client.closed).to.deep.include({
      code: 4400,
      reason: 'Expected a change { id: number, change }, got object',
    });
  });

  it('rejects invalid arguments with "Expected …, got …"', async () => {
    expect(() => new SharedState({}, { name: '', apply: add })).to.throw(
      TypeError,
      "Expected name to be a state name of 1 to 256 characters, got ''",
    );
    expect(() => syncState('c', { initial: {}, apply: 3 as never })).to.throw(
      TypeError,
      'Expected apply to be a function, got 3',
    );
    const c = use();
    const store = syncState<Counter, Add>('c', { initial: {}, apply: add });
    void store.follow(c.client);
    expect(await rejection(store.follow(c.client))).to.be.instanceOf(RangeError);
  });
});
