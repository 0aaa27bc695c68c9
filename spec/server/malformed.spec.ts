// Malformed traffic from a hand-written client (node:net): each bad connection is closed
// with the code RFC 6455 calls for, and only that one — a healthy session streaming in
// parallel loses nothing.
import { expect } from 'chai';
import { connect } from '../../lib/websocket/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { useServers, waitFor } from './helpers.js';
import { nextClose, rawClient, rawHttp } from './raw-client.js';

describe('serve() under malformed traffic', function () {
  this.timeout(30_000);
  const { start } = useServers();

  it('closes each bad connection with its code while a parallel session streams without loss', async () => {
    const errors: unknown[] = [];
    const server = await start(
      { onError: (error) => errors.push(error) },
      {
        '/echo': async (session) => {
          for await (const message of session.incoming) await session.outgoing.send(message);
        },
      },
    );
    const healthy: Session<number> = await connect<number>(`${server.url}/echo`);
    const state = { stop: false };
    const streamed = (async () => {
      let next = 0;
      const received: number[] = [];
      while (!state.stop) {
        await healthy.outgoing.send(next++);
        received.push(await healthy.incoming.receive());
      }
      return received;
    })();

    const cases: [string, (client: Awaited<ReturnType<typeof rawClient>>) => void, number][] = [
      [
        'invalid UTF-8 in a text frame',
        (c) => c.sendFrame(1, new Uint8Array([0x68, 0xff, 0xfe])),
        1007,
      ],
      ['an unmasked client frame', (c) => c.sendFrame(1, Buffer.from('hi'), { mask: false }), 1002],
      ['a frame over 1 MiB', (c) => c.sendFrame(2, new Uint8Array(1024 * 1024 + 1)), 1009],
      ['a reserved opcode (3)', (c) => c.sendFrame(3, Buffer.from('x')), 1002],
      [
        'a reserved bit without an extension',
        (c) => c.sendFrame(1, Buffer.from('x'), { rsv: 4 }),
        1002,
      ],
    ];
    for (const [what, send, code] of cases) {
      const client = await rawClient(server.port, '/echo');
      send(client);
      expect((await nextClose(client)).code, what).to.equal(code);
      await client.ended;
    }
    const handshake = await rawHttp(
      server.port,
      'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(handshake).to.match(/^HTTP\/1\.1 400 /);
    const garbage = await rawHttp(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).to.match(/^HTTP\/1\.1 400 |^$/);

    await waitFor(() => server.sessions === 1, 10_000, 'only the healthy session left');
    state.stop = true;
    const received = await streamed;
    expect(received.length).to.be.greaterThan(0);
    expect(received).to.deep.equal(Array.from({ length: received.length }, (_, i) => i));
    expect(await healthy.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    expect(errors).to.deep.equal([]);
  });
});
