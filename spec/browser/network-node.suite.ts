// Browser entry: network channels between the page and a Node-side ChannelSession (the
// '/updown' route of spec/network/servers.ts, started by chromium.spec.ts): flow control
// of a browser sender by a Node receiver, order, and close causes re-created in both
// directions.
import { expect } from 'chai';
import { raw, text, wrap } from '../../lib/websocket/index.js';
import { channels } from '../../lib/network/index.js';
import type { ChannelSession, NetworkChannel } from '../../lib/network/index.js';
import { observe } from '../helpers/async.js';
import { rejection } from '../helpers/outcomes.js';
import { NETWORK_NODE_TITLE, UP_CAPACITY } from '../network/pair.js';
import { envString, injectedEnv } from './env.js';

const baseUrl = envString(injectedEnv(), 'upDownUrl');
const upDownUrl = `${baseUrl}/updown`;

interface Ends {
  readonly net: ChannelSession;
  readonly control: { send(value: string): Promise<void>; receive(): Promise<string> };
  readonly up: NetworkChannel<never, string>;
  readonly down: NetworkChannel<string, never>;
}

function open(): Ends {
  const net = channels(wrap<string, string>(new WebSocket(upDownUrl), { codec: text() }));
  const control = net.channel<string>('control', { capacity: Infinity });
  return {
    net,
    control: {
      send: (value) => control.outgoing.send(value),
      receive: () => control.incoming.receive(),
    },
    up: net.channel<never, string>('up'),
    down: net.channel<string, never>('down', { capacity: 2 }),
  };
}

describe(NETWORK_NODE_TITLE, () => {
  let ends: Ends | undefined;

  afterEach(async () => {
    await ends?.net.close();
    ends = undefined;
  });

  it(`lets ${UP_CAPACITY} sends to a Node receiver of capacity ${UP_CAPACITY} resolve, holds the next until Node takes one, and keeps the order`, async () => {
    ends = open();
    const { control, up, down } = ends;
    const first = Array.from({ length: UP_CAPACITY }, (_, i) => up.outgoing.send(`v${i + 1}`));
    const fifth = up.outgoing.send(`v${UP_CAPACITY + 1}`);
    const fifthState = observe(fifth);
    await Promise.all(first);
    // A round trip on another channel of the same connection: Node has answered it, so it
    // would have granted more room by now if it had taken a value. It has not (no 'go').
    await control.send('ping');
    expect(await control.receive()).to.equal('pong');
    expect(fifthState.state().status).to.equal('pending');
    await control.send('go');
    await fifth;
    const echoed: string[] = [];
    const consumer = (async () => {
      for await (const value of down.incoming) echoed.push(value);
    })();
    for (let i = UP_CAPACITY + 2; i <= 8; i++) await up.outgoing.send(`v${i}`);
    up.outgoing.close();
    await consumer;
    expect(echoed).to.deep.equal(Array.from({ length: 8 }, (_, i) => `echo v${i + 1}`));
  });

  it('re-creates a close cause from the browser in Node, and one from Node in the browser, after the values sent before it', async () => {
    ends = open();
    const { control, up, down } = ends;
    await control.send('go');
    await up.outgoing.send('a');
    await up.outgoing.send('b');
    const cause = new TypeError('page is done');
    expect(up.outgoing.close(cause)).to.equal(true);
    expect(await down.incoming.receive()).to.equal('echo a');
    expect(await down.incoming.receive()).to.equal('echo b');
    const report: unknown = JSON.parse(await control.receive());
    expect(report).to.deep.equal({
      className: 'TypeError',
      name: 'TypeError',
      message: 'page is done',
      isError: true,
    });
    const error = await rejection(down.incoming.receive());
    expect(error).to.be.instanceOf(RangeError);
    expect(error).to.include({ name: 'RangeError', message: 'node closed down' });
    expect(await rejection(up.outgoing.send('late'))).to.equal(cause);
  });

  it('carries Uint8Array values as bytes both ways (binary messages, protocol version 3)', async () => {
    const net = channels(wrap(new WebSocket(`${baseUrl}/bytes`), { codec: raw() }));
    try {
      const bytes = net.channel<Uint8Array>('bytes', { capacity: 4 });
      const sent = [
        new Uint8Array(0),
        Uint8Array.of(0x0a),
        Uint8Array.from({ length: 1024 }, (_, i) => (i * 37) & 0xff),
        Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 101 + 7) & 0xff),
      ];
      for (const value of sent) await bytes.outgoing.send(value);
      bytes.outgoing.close();
      const back: Uint8Array[] = [];
      for await (const value of bytes.incoming) back.push(value);
      expect(back.map((value) => value.constructor.name)).to.deep.equal(
        sent.map(() => 'Uint8Array'),
      );
      expect(back.map((value) => [...value])).to.deep.equal(
        sent.map((value) => [...value.map((byte) => byte ^ 0xff)]),
      );
    } finally {
      await net.close();
    }
  });
});
