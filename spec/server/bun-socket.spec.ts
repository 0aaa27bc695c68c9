// BunSocket (the Bun transport's adapter) against a recording stand-in for Bun's
// ServerWebSocket, so that it runs in Node too; the real thing runs in [bun-native]
// (runtimes.spec.ts), where every server spec goes through it.
import { expect } from 'chai';
import { BunSocket } from '../../lib/server/bun-socket.js';
import type { BunServerWebSocket } from '../../lib/server/bun-socket.js';
import { wrap } from '../../lib/websocket/index.js';
import type { CloseEventLike, MessageEventLike } from '../../lib/websocket/index.js';

/** Records every call; `send` answers what `sendResult` says (Bun: bytes, -1 or 0). */
class FakeBunWebSocket implements BunServerWebSocket<string> {
  readonly data = 'upgrade data';
  readonly remoteAddress = '127.0.0.1';
  binaryType = 'nodebuffer';
  buffered = 0;
  sendResult: number | undefined;
  readonly calls: string[] = [];

  send(data: string | Uint8Array<ArrayBuffer>): number {
    const size = typeof data === 'string' ? data.length : data.byteLength;
    this.calls.push(`send ${typeof data === 'string' ? JSON.stringify(data) : `[${size}]`}`);
    return this.sendResult ?? size;
  }
  close(code?: number, reason?: string): void {
    this.calls.push(`close ${code} ${reason}`);
  }
  terminate(): void {
    this.calls.push('terminate');
  }
  ping(data?: Uint8Array): number {
    this.calls.push(`ping [${[...(data ?? [])].join(',')}]`);
    return 1;
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  getBufferedAmount(): number {
    return this.buffered;
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('BunSocket', () => {
  it('is open with the selected protocol, asks Bun for ArrayBuffers, reports Bun’s buffered amount', () => {
    const ws = new FakeBunWebSocket();
    const socket = new BunSocket(ws, 'chat.v2');
    expect(socket.readyState).to.equal(1);
    expect(socket.protocol).to.equal('chat.v2');
    expect(ws.binaryType).to.equal('arraybuffer');
    ws.buffered = 4096;
    expect(socket.bufferedAmount).to.equal(4096);
  });

  it('send: a non-empty message Bun dropped (0) terminates the connection; an empty one does not', () => {
    const ws = new FakeBunWebSocket();
    const socket = new BunSocket(ws, '');
    ws.sendResult = 0;
    socket.send('');
    socket.send(new Uint8Array(0));
    expect(ws.calls).to.deep.equal(['send ""', 'send [0]']);
    socket.send('lost');
    expect(ws.calls.slice(2)).to.deep.equal(['send "lost"', 'terminate']);
    expect(socket.readyState).to.equal(2);
    socket.send('after');
    expect(ws.calls).to.have.length(4);
  });

  it('close: CLOSING at once, Bun’s close called once; pause, resume and ping only while it applies', () => {
    const ws = new FakeBunWebSocket();
    const socket = new BunSocket(ws, '');
    socket.ping(new Uint8Array([1, 2]));
    socket.pause();
    socket.resume();
    socket.close(1001, 'Going away');
    socket.close(1000, 'again');
    socket.ping(new Uint8Array([3]));
    socket.send('x');
    expect(socket.readyState).to.equal(2);
    expect(ws.calls).to.deep.equal(['ping [1,2]', 'pause', 'resume', 'close 1001 Going away']);
  });

  it('dispatches the end in a microtask after Bun reports it, once, with wasClean false only for 1006', async () => {
    for (const [code, reason, wasClean] of [
      [1000, 'bye', true],
      [1006, 'Received invalid UTF-8', false],
    ] as const) {
      const ws = new FakeBunWebSocket();
      const socket = new BunSocket(ws, '');
      const events: CloseEventLike[] = [];
      socket.addEventListener('close', (event) => events.push(event));
      socket.closed(code, reason);
      socket.closed(1000, 'twice');
      expect(events).to.deep.equal([]);
      expect(socket.readyState).to.equal(2);
      await Promise.resolve();
      expect(events).to.deep.equal([{ code, reason, wasClean }]);
      expect(socket.readyState).to.equal(3);
      expect(socket.bufferedAmount).to.equal(0);
      socket.pause();
      socket.terminate();
      expect(ws.calls).to.deep.equal([]);
    }
  });

  it('delivers messages and control frames to the listeners present, as Uint8Array payloads with the socket as this', () => {
    const ws = new FakeBunWebSocket();
    const socket = new BunSocket(ws, '');
    const seen: unknown[] = [];
    const onMessage = (event: MessageEventLike): void => void seen.push(event.data);
    function onPong(this: unknown, data: Uint8Array): void {
      seen.push(['pong', this === socket, data instanceof Uint8Array, [...data]]);
    }
    const onPing = (data: Uint8Array): void => void seen.push(['ping', [...data]]);
    socket.addEventListener('message', onMessage);
    socket.addEventListener('open', () => seen.push('open never fires'));
    socket.addEventListener('error', () => seen.push('error never fires'));
    socket.on('pong', onPong).on('ping', onPing);
    socket.message('text');
    socket.control('pong', new Uint8Array([7, 8]).buffer);
    socket.control('ping', new Uint8Array([9]));
    socket.removeEventListener('message', onMessage);
    socket.removeEventListener('close', () => undefined);
    socket.removeEventListener('open', () => undefined);
    socket.off('pong', onPong).off('ping', onPing);
    socket.message('unheard');
    socket.control('pong', new Uint8Array([1]));
    socket.control('ping', new Uint8Array([1]));
    expect(seen).to.deep.equal(['text', ['pong', true, true, [7, 8]], ['ping', [9]]]);
    socket.addEventListener('message', onMessage);
    socket.closed(1000, '');
    socket.message('after the end');
    socket.control('pong', new Uint8Array([2]));
    expect(seen).to.have.length(3);
  });

  it('carries a session: messages in, frames out, Close with the code, closed as Bun reports it', async () => {
    const ws = new FakeBunWebSocket();
    const socket = new BunSocket(ws, '');
    const session = wrap<{ n: number }>(socket);
    socket.message('{"n":1}');
    expect(await session.incoming.receive()).to.deep.equal({ n: 1 });
    await session.outgoing.send({ n: 2 });
    const closed = session.close(4001, 'done');
    await tick();
    expect(ws.calls).to.deep.equal(['send "{\\"n\\":2}"', 'close 4001 done']);
    socket.closed(4001, 'done');
    expect(await closed).to.deep.equal({ code: 4001, reason: 'done', wasClean: true });
  });
});
