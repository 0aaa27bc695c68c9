// Interop with implementations we did not write: Debian's python3-websockets (10.x, run
// with /usr/bin/python3) as a client of sluice/server — echo, compression, subprotocols,
// headers, close codes both ways — and sluice's connect against its server with
// compression on. Skipped, loudly, when that Python or its websockets module is missing.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { route } from '../../lib/server/index.js';
import type { ServerRequest } from '../../lib/server/index.js';
import { connect, raw } from '../../lib/websocket/index.js';
import type { CloseReason } from '../../lib/websocket/index.js';
import { useServers } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const client = fileURLToPath(new URL('python-client.py', import.meta.url));

interface PythonResult {
  protocol: string | null;
  extensions: string[];
  received: { type: string; length: number; head?: string; data?: number[] }[];
  code: number;
  reason: string;
}

function runPython(args: string[]): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [client, ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out) as PythonResult);
      else reject(new Error(`python exited with ${code}: ${err}`));
    });
  });
}

describe('sluice/server interop with python3-websockets', function () {
  this.timeout(30_000);
  const { start } = useServers();

  before(function () {
    if (spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status !== 0) {
      console.warn(`    (skipped: ${PYTHON} cannot import websockets)`);
      this.skip();
    }
  });

  function echoServer(perMessageDeflate: boolean) {
    const seen: { request: ServerRequest; protocol: string; closed: Promise<CloseReason> }[] = [];
    const routes = {
      '/echo': route({
        codec: raw(),
        protocols: ['chat.v2', 'chat.v1'],
        handler: async (session) => {
          seen.push({
            request: session.request,
            protocol: session.protocol,
            closed: session.closed,
          });
          for await (const m of session.incoming) await session.outgoing.send(m);
        },
      }),
      '/bye': route({
        handler: async (session) => {
          await session.outgoing.send({ last: true });
          await session.close(4002, 'server bye');
        },
      }),
    };
    return { seen, server: start({ perMessageDeflate }, routes) };
  }

  it('echoes text as text and binary as binary; sees its headers and subprotocol', async () => {
    const { seen, server } = echoServer(false);
    const result = await runPython([
      `${(await server).url}/echo?from=py`,
      'echo',
      'chat.v1,chat.v2',
    ]);
    expect(result.protocol).to.equal('chat.v2');
    expect(result.extensions).to.deep.equal([]);
    expect(result.received).to.deep.equal([
      { type: 'text', length: 5, head: 'hello' },
      { type: 'binary', data: [1, 2, 255], length: 3 },
      { type: 'text', length: 100000, head: 'a'.repeat(20) },
    ]);
    expect(result.code).to.equal(1000);
    expect(seen[0]?.request.headers['x-python']).to.equal('yes');
    expect(seen[0]?.request.query.get('from')).to.equal('py');
    expect(seen[0]?.protocol).to.equal('chat.v2');
    expect(await seen[0]?.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
  });

  it('with perMessageDeflate on, compressed messages round-trip', async () => {
    const { server } = echoServer(true);
    const result = await runPython([`${(await server).url}/echo`, 'echo']);
    expect(result.extensions).to.deep.equal(['permessage-deflate']);
    expect(result.received.map((m) => m.length)).to.deep.equal([5, 3, 100000]);
    expect(result.code).to.equal(1000);
  });

  it('close codes both ways: the client closes with 4001, the server with 4002', async () => {
    const { seen, server } = echoServer(false);
    const url = (await server).url;
    const first = await runPython([`${url}/echo`, 'close4001']);
    expect(first.code).to.equal(4001);
    expect(await seen[0]?.closed).to.deep.equal({ code: 4001, reason: 'py bye', wasClean: true });
    const second = await runPython([`${url}/bye`, 'wait']);
    expect(second.received).to.deep.equal([{ type: 'text', length: 13, head: '{"last":true}' }]);
    expect([second.code, second.reason]).to.deep.equal([4002, 'server bye']);
  });

  it('sluice connect against a python3-websockets server (compression offered), 200 kB round trip', async () => {
    const script = `
import asyncio, sys, websockets
async def echo(ws, path):
    async for m in ws:
        await ws.send(m)
async def main():
    server = await websockets.serve(echo, "127.0.0.1", 0, ping_interval=None)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()
asyncio.run(main())
`;
    const child = spawn(PYTHON, ['-c', script]);
    try {
      const port = await new Promise<string>((resolve) =>
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())),
      );
      const session = await connect<string>(`ws://127.0.0.1:${port}/`, {
        socketOptions: { perMessageDeflate: true },
      });
      const big = 'b'.repeat(200_000);
      await session.outgoing.send(big);
      expect(await session.incoming.receive()).to.equal(big);
      expect(await session.close()).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
    }
  });
});
