import { createServer, connect as netConnect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { expect } from 'chai';
import { CUT_MODES, cutPlan, seededRandom, startCuttingProxy } from '../helpers/cutting-proxy.js';
import type { CuttingProxy } from '../helpers/cutting-proxy.js';
import { rejection } from '../helpers/outcomes.js';

/** A target server on 127.0.0.1 that keeps its sockets and what each received. */
interface Target {
  readonly port: number;
  /** Server-side sockets, in accept order, with the bytes each received so far. */
  readonly accepted: { socket: Socket; received: string; events: string[] }[];
  /** Resolves with the next accepted connection. */
  next(): Promise<{ socket: Socket; received: string; events: string[] }>;
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const accepted: Target['accepted'] = [];
  const waiting: ((entry: Target['accepted'][number]) => void)[] = [];
  let served = 0;
  const server: Server = createServer((socket) => {
    const entry = { socket, received: '', events: [] as string[] };
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => (entry.received += data));
    socket.on('end', () => entry.events.push('end'));
    socket.on('error', (error: NodeJS.ErrnoException) => entry.events.push(`error ${error.code}`));
    socket.on('close', () => entry.events.push('close'));
    accepted.push(entry);
    waiting.shift()?.(entry);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    next: () => {
      const ready = accepted[served];
      if (ready !== undefined) {
        served += 1;
        return Promise.resolve(ready);
      }
      return new Promise((resolve) =>
        waiting.push((entry) => {
          served += 1;
          resolve(entry);
        }),
      );
    },
    close: async () => {
      for (const { socket } of accepted) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client socket through the proxy, recording what it receives and its events. */
interface Client {
  readonly socket: Socket;
  readonly events: string[];
  received(): string;
  closed: Promise<void>;
}

async function dial(port: number): Promise<Client> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  socket.setEncoding('utf8');
  const events: string[] = [];
  let received = '';
  socket.on('data', (data: string) => (received += data));
  socket.on('end', () => events.push('end'));
  socket.on('error', (error: NodeJS.ErrnoException) => events.push(`error ${error.code}`));
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      events.push('close');
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, events, received: () => received, closed };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 5 ms for up to `ms`; returns whether it became true. */
async function eventually(condition: () => boolean, ms = 2000): Promise<boolean> {
  for (let waited = 0; !condition() && waited < ms; waited += 5) await sleep(5);
  return condition();
}

describe('cutting proxy (spec/helpers/cutting-proxy.ts)', () => {
  let target: Target;
  let proxy: CuttingProxy;
  const clients: Client[] = [];

  beforeEach(async () => {
    target = await startTarget();
    proxy = await startCuttingProxy({ targetPort: target.port, seed: 42 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await proxy.close();
    await target.close();
  });

  async function connected(): Promise<[Client, Target['accepted'][number]]> {
    const upstream = target.next();
    const client = await dial(proxy.port);
    clients.push(client);
    return [client, await upstream];
  }

  it('listens on 127.0.0.1 and forwards bytes both ways, in order', async () => {
    expect(proxy.url).to.equal(`ws://127.0.0.1:${proxy.port}`);
    const [client, server] = await connected();
    client.socket.write('hello ');
    client.socket.write('proxy');
    server.socket.write('and back');
    expect(await eventually(() => server.received === 'hello proxy')).to.equal(true);
    expect(await eventually(() => client.received() === 'and back')).to.equal(true);
    expect(proxy.accepted).to.equal(1);
    expect(proxy.live).to.equal(1);
    expect(proxy.cuts).to.deep.equal({ close: 0, reset: 0, blackhole: 0 });
  });

  it("cut('close') ends both sides cleanly (a FIN each, no error) and counts one close", async () => {
    const [client, server] = await connected();
    expect(proxy.cut('close')).to.equal(1);
    await client.closed;
    expect(await eventually(() => server.events.includes('close'))).to.equal(true);
    expect(client.events).to.deep.equal(['end', 'close']);
    expect(server.events).to.deep.equal(['end', 'close']);
    expect(proxy.cuts).to.deep.equal({ close: 1, reset: 0, blackhole: 0 });
    expect(proxy.totalCuts).to.equal(1);
    expect(proxy.live).to.equal(0);
  });

  it("cut('reset') resets both sides (ECONNRESET) and counts one reset", async () => {
    const [client, server] = await connected();
    expect(proxy.cut('reset')).to.equal(1);
    await client.closed;
    expect(await eventually(() => server.events.includes('close'))).to.equal(true);
    expect(client.events).to.deep.equal(['error ECONNRESET', 'close']);
    expect(server.events).to.deep.equal(['error ECONNRESET', 'close']);
    expect(proxy.cuts).to.deep.equal({ close: 0, reset: 1, blackhole: 0 });
  });

  it("cut('blackhole') stops forwarding both ways and keeps both sockets open", async () => {
    const [client, server] = await connected();
    client.socket.write('before');
    expect(await eventually(() => server.received === 'before')).to.equal(true);
    expect(proxy.cut('blackhole')).to.equal(1);
    client.socket.write('lost up');
    server.socket.write('lost down');
    await sleep(100);
    expect(server.received).to.equal('before');
    expect(client.received()).to.equal('');
    expect(client.events).to.deep.equal([]);
    expect(server.events).to.deep.equal([]);
    expect(client.socket.destroyed).to.equal(false);
    expect(proxy.cuts).to.deep.equal({ close: 0, reset: 0, blackhole: 1 });
    expect(proxy.live).to.equal(0);
    // Only the peer's own close reaches its side: the other side stays open.
    client.socket.end();
    await client.closed;
    await sleep(50);
    expect(server.events).to.deep.equal([]);
    // close() destroys what is left.
    await proxy.close();
    expect(await eventually(() => server.events.includes('close'))).to.equal(true);
  });

  it('passes a peer’s own close on while forwarding', async () => {
    const [client, server] = await connected();
    client.socket.end();
    expect(await eventually(() => server.events.includes('end'))).to.equal(true);
    await client.closed;
    expect(proxy.totalCuts).to.equal(0);
  });

  it('cuts every live connection and counts each, and counts nothing with none live', async () => {
    await connected();
    await connected();
    expect(proxy.live).to.equal(2);
    expect(proxy.cut('reset')).to.equal(2);
    expect(proxy.cut('close')).to.equal(0);
    expect(proxy.cuts).to.deep.equal({ close: 0, reset: 2, blackhole: 0 });
  });

  it('cuts with a mode from the PRNG when none is given', async () => {
    await connected();
    expect(proxy.cut()).to.equal(1);
    expect(proxy.totalCuts).to.equal(1);
  });

  it('startCutting cuts new connections again and again until stopCutting', async () => {
    proxy.startCutting({ minMs: 5, maxMs: 10, modes: ['close', 'reset'] });
    for (let i = 0; i < 4; i++) {
      const [client] = await connected();
      await client.closed;
    }
    proxy.stopCutting();
    const cutsSoFar = proxy.totalCuts;
    expect(cutsSoFar).to.equal(4);
    expect(proxy.cuts.blackhole).to.equal(0);
    const [client, server] = await connected();
    await sleep(40);
    client.socket.write('still here');
    expect(await eventually(() => server.received === 'still here')).to.equal(true);
    expect(proxy.totalCuts).to.equal(cutsSoFar);
  });

  it('close() closes the server and every socket it opened, the sockets of a black hole included', async () => {
    const tcp = (): number =>
      process.getActiveResourcesInfo().filter((kind) => kind.startsWith('TCP')).length;
    const before = tcp(); // the target's server and the proxy's, among others
    const [client, server] = await connected();
    expect(tcp()).to.equal(before + 4); // the client, the proxy's two sockets, the target's
    proxy.cut('blackhole');
    proxy.startCutting();
    await proxy.close();
    await client.closed;
    expect(await eventually(() => server.events.includes('close'))).to.equal(true);
    await sleep(10);
    expect(tcp()).to.equal(before - 1); // the proxy's server too
    const refused = await rejection(dial(proxy.port));
    expect(refused).to.have.property('code', 'ECONNREFUSED');
    // afterEach closes it again: a second close() resolves too.
  });

  it('rejects bad arguments naming what is expected', async () => {
    expect(() => proxy.startCutting({ minMs: 0 })).to.throw(
      RangeError,
      'Expected minMs to be a positive integer, got 0',
    );
    expect(() => proxy.startCutting({ minMs: 10, maxMs: 5 })).to.throw(
      RangeError,
      'Expected maxMs to be an integer ≥ minMs (10), got 5',
    );
    expect(() => proxy.startCutting({ modes: [] })).to.throw(
      TypeError,
      'Expected modes to be a non-empty array of cut modes, got ',
    );
    expect(() => proxy.startCutting({ modes: ['drop' as 'close'] })).to.throw(
      TypeError,
      "Expected each mode to be 'close', 'reset' or 'blackhole', got 'drop'",
    );
    expect(() => proxy.cut('drop' as 'close')).to.throw(
      TypeError,
      "Expected mode to be 'close', 'reset' or 'blackhole', got 'drop'",
    );
    const error = await rejection(startCuttingProxy({ targetPort: 0 }));
    expect(error).to.be.instanceOf(RangeError);
    expect(error).to.have.property(
      'message',
      'Expected targetPort to be an integer from 1 to 65535, got 0',
    );
    const badSeed = await rejection(startCuttingProxy({ targetPort: 80, seed: -1 }));
    expect(badSeed).to.be.instanceOf(RangeError);
    expect(badSeed).to.have.property(
      'message',
      'Expected seed to be an integer from 0 to 4294967295, got -1',
    );
  });

  describe('cutPlan()', () => {
    it('gives the same waits and modes for the same seed, within the bounds, every mode used', () => {
      const plan = cutPlan(7, 300);
      expect(cutPlan(7, 300)).to.deep.equal(plan);
      expect(cutPlan(8, 300)).not.to.deep.equal(plan);
      for (const { waitMs } of plan) {
        expect(waitMs).to.be.within(50, 500);
        expect(Number.isInteger(waitMs)).to.equal(true);
      }
      const modes = new Set(plan.map((step) => step.mode));
      expect([...modes].sort()).to.deep.equal([...CUT_MODES].sort());
      expect(Math.min(...plan.map((step) => step.waitMs))).to.be.below(80);
      expect(Math.max(...plan.map((step) => step.waitMs))).to.be.above(470);
    });

    it('follows the PRNG that startCutting uses', () => {
      const random = seededRandom(99);
      const [first] = cutPlan(99, 1, { minMs: 10, maxMs: 20, modes: ['reset'] });
      expect(first).to.deep.equal({
        waitMs: 10 + Math.floor(random() * 11),
        mode: 'reset',
      });
    });
  });
});
