// The `transport` option of serve(): checked the same way everywhere; `'bun'` refused
// outside Bun; and, in the [bun-native] run (runtimes.spec.ts runs the server specs in
// Bun with transport 'bun'), what only the Bun transport has to show: reading paused by a
// full `incoming` (push-back through TCP, nothing lost) and its perMessageDeflate.
import { expect } from 'chai';
import { route, serve } from '../../lib/server/index.js';
import { underBun } from '../../lib/server/transport.js';
import { connect, text } from '../../lib/websocket/index.js';
import { deferred, rejection, sleep, useServers } from './helpers.js';
import { nextClose, rawClient } from './raw-client.js';
import { TRANSPORT, serveOn } from './transport.js';

describe('serve({ transport })', function () {
  this.timeout(30_000);
  const { start } = useServers();

  it("rejects a transport other than 'ws' and 'bun' naming both", async () => {
    const named = await rejection(serve({ transport: 'uws' as never }, {}));
    expect(named).to.be.instanceOf(RangeError);
    expect((named as Error).message).to.equal(
      "Expected transport to be 'ws', 'bun', got 'uws' (string)",
    );
    const typed = await rejection(serve({ transport: 1 as never }, {}));
    expect(typed).to.be.instanceOf(TypeError);
    expect((typed as Error).message).to.match(/^Expected transport to be 'ws', 'bun', got 1/);
  });

  if (!underBun()) {
    it("rejects transport 'bun' outside Bun with a TypeError that says to use 'ws'", async () => {
      const error = await rejection(serve({ transport: 'bun' }, { '/x': () => undefined }));
      expect(error).to.be.instanceOf(TypeError);
      expect((error as Error).message).to.equal(
        "Expected transport 'bun' to run under Bun (it uses Bun.serve), got a runtime without the Bun global; use transport 'ws'",
      );
    });
  }

  if (TRANSPORT !== 'bun') return;

  it('refuses a perMessageDeflate options object (a boolean only) with TypeError', async () => {
    const error = await rejection(serveOn({ perMessageDeflate: { threshold: 0 } }, {}));
    expect(error).to.be.instanceOf(TypeError);
    expect((error as Error).message).to.match(
      /^Expected perMessageDeflate to be a boolean with transport 'bun'/,
    );
  });

  it('perMessageDeflate: true negotiates permessage-deflate; the default does not', async () => {
    const offer = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n';
    for (const deflate of [true, undefined]) {
      const server = await start(deflate === undefined ? {} : { perMessageDeflate: deflate }, {
        '/x': () => undefined,
      });
      const raw = await rawClient(server.port, '/x', offer);
      expect(/\r\nsec-websocket-extensions: permessage-deflate/i.test(raw.response)).to.equal(
        deflate === true,
      );
      expect(await nextClose(raw)).to.deep.equal({ code: 1000, reason: '' });
      await raw.ended;
    }
  });

  it("incomingOverflow 'pause': a full incoming stops reading (the client is pushed back), then every message arrives in order", async () => {
    const COUNT = 400;
    const chunk = 'x'.repeat(64 * 1024);
    const read = deferred();
    const done = deferred();
    const got: number[] = [];
    const server = await start(
      {},
      {
        '/slow': route({
          codec: text(),
          incomingCapacity: 1,
          handler: async (session) => {
            await read.promise;
            for await (const message of session.incoming) got.push(Number(message.slice(0, 8)));
            done.resolve();
          },
        }),
      },
    );
    const client = await connect<string>(`${server.url}/slow`, { codec: text() });
    let resolved = 0;
    const sending = (async () => {
      for (let i = 0; i < COUNT; i++) {
        await client.outgoing.send(String(i).padStart(8, '0') + chunk);
        resolved++;
      }
    })();
    await sleep(500);
    // 400 × 64 KiB = 25 MiB cannot all sit in socket buffers: sends wait once the server
    // has stopped reading. Without pausing (or with a fallback to 'close') they would not.
    expect(resolved).to.be.below(COUNT);
    read.resolve();
    await sending;
    expect(await client.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    await done.promise;
    expect(got).to.deep.equal(Array.from({ length: COUNT }, (_, i) => i));
  });
});
