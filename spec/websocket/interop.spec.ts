// Interop with a WebSocket implementation we did not write: Debian's python3-websockets
// (run with /usr/bin/python3, see python-peer.py) as the server, sluice with `ws` as the
// client. Skipped, loudly, when that Python or its websockets module is missing.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WebSocketCloseError, connect, raw } from '../../lib/websocket/index.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('python-peer.py', import.meta.url));

interface PythonClose {
  path: string;
  code: number | null;
  reason: string;
  received: ({ type: 'text'; data: string } | { type: 'binary'; data: number[] })[];
}

function hasWebsockets(): boolean {
  return spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;
}

describe('WebSocket interop with python3-websockets', function () {
  this.timeout(20_000);
  let child: ChildProcessWithoutNullStreams | undefined;
  let url = '';
  let limitedUrl = '';
  const closes: PythonClose[] = [];
  const waiting: (() => void)[] = [];

  /** The next connection the Python side reports as finished. */
  async function nextClose(): Promise<PythonClose> {
    while (closes.length === 0) await new Promise<void>((resolve) => waiting.push(resolve));
    return closes.shift() as PythonClose;
  }

  before(async function () {
    if (!hasWebsockets()) {
      console.warn(`    (skipped: ${PYTHON} cannot import websockets)`);
      this.skip();
    }
    const started = spawn(PYTHON, [script]);
    child = started;
    started.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    const lines = createInterface({ input: started.stdout });
    await new Promise<void>((resolve, reject) => {
      started.once('error', reject);
      lines.on('line', (line) => {
        const port = /^PORT (\d+) (\d+)$/.exec(line);
        if (port !== null) {
          url = `ws://127.0.0.1:${port[1]}`;
          limitedUrl = `ws://127.0.0.1:${port[2]}`;
          resolve();
          return;
        }
        closes.push(JSON.parse(line) as PythonClose);
        for (const wake of waiting.splice(0)) wake();
      });
    });
  });

  after(async () => {
    if (child === undefined) return;
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.stdin.end();
    await exited;
  });

  it('echoes text as text and binary as binary, empty messages included', async () => {
    const session = await connect(`${url}/echo`, { codec: raw() });
    const sent = ['', 'héllo', new Uint8Array(0), new Uint8Array([0, 1, 254, 255])];
    for (const message of sent) await session.outgoing.send(message);
    const received = [];
    for (let i = 0; i < sent.length; i++) received.push(await session.incoming.receive());
    expect(received[0]).to.equal('');
    expect(received[1]).to.equal('héllo');
    expect([...(received[2] as Uint8Array)]).to.deep.equal([]);
    expect([...(received[3] as Uint8Array)]).to.deep.equal([0, 1, 254, 255]);
    expect(received[2]).to.be.instanceOf(Uint8Array);
    expect(await session.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    const close = await nextClose();
    expect(close.received.map((m) => m.type)).to.deep.equal(['text', 'text', 'binary', 'binary']);
    expect(close.code).to.equal(1000);
  });

  it('sends our close code and reason to Python', async () => {
    const session = await connect(`${url}/echo`);
    await session.outgoing.send({ n: 1 });
    expect(await session.incoming.receive()).to.deep.equal({ n: 1 });
    expect(await session.close(4001, 'bye from node')).to.deep.equal({
      code: 4001,
      reason: 'bye from node',
      wasClean: true,
    });
    const close = await nextClose();
    expect(close).to.deep.include({ code: 4001, reason: 'bye from node' });
    expect(close.received).to.deep.equal([{ type: 'text', data: '{"n":1}' }]);
  });

  it("receives Python's close code and reason, ending incoming with WebSocketCloseError", async () => {
    const session = await connect(`${url}/close?code=4002&reason=bye%20from%20python`);
    const error: unknown = await session.incoming.receive().catch((e: unknown) => e);
    expect(error).to.be.instanceOf(WebSocketCloseError);
    expect(error).to.include({ closeCode: 4002, reason: 'bye from python', wasClean: true });
    expect(await session.closed).to.deep.equal({
      code: 4002,
      reason: 'bye from python',
      wasClean: true,
    });
    expect(await nextClose()).to.deep.include({ code: 4002, reason: 'bye from python' });
  });

  it('ends with 1009 when a message exceeds the peer size limit', async () => {
    const session = await connect(`${limitedUrl}/echo`, { codec: raw() });
    await session.outgoing.send('x'.repeat(2000));
    const error: unknown = await session.incoming.receive().catch((e: unknown) => e);
    expect(error).to.be.instanceOf(WebSocketCloseError);
    expect(error).to.include({ closeCode: 1009, wasClean: true });
    expect((await session.closed).code).to.equal(1009);
    // Python fails the connection: it sends Close(1009) and drops TCP without waiting for
    // our reply, so from its side no Close frame arrived (1006).
    expect((await nextClose()).code).to.equal(1006);
  });
});
