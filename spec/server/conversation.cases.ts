// The server conformance cases: the same handler/client pairs run over a real connection
// (serve + connect on 127.0.0.1) and over testConversation's in-memory one, with the
// same expected outcomes — close codes, ordering, codecs, backpressure.
import { expect } from 'chai';
import { ClosedSendError, DecodeError, WebSocketCloseError } from '../../lib/errors.js';
import { route } from '../../lib/server/index.js';
import type { ConversationClient, Route, ServerHandler } from '../../lib/server/index.js';
import { raw, text } from '../../lib/websocket/index.js';
import type { CloseReason, SessionOptions } from '../../lib/websocket/index.js';
import { deferred, rejection, settlesWithin, sleep } from './helpers.js';

/** Runs `handler` against `client` (client's types) and resolves with the client's result. */
export type Runner = <In, Out, R>(
  handler: ServerHandler<Out, In> | Route<Out, In>,
  client: ConversationClient<In, Out, R>,
  options?: {
    client?: SessionOptions<In, Out>;
    onError?: (error: unknown) => void;
  },
) => Promise<R>;

export function defineConversationCases(run: Runner): void {
  it('echoes in order and ends with the clean close of the side that returned', async () => {
    const serverClosed = deferred<CloseReason>();
    const result = await run<number, number, number[]>(
      async (session) => {
        void session.closed.then(serverClosed.resolve);
        for await (const n of session.incoming) await session.outgoing.send(n * 2);
      },
      async ({ incoming, outgoing }) => {
        const got: number[] = [];
        for (let i = 0; i < 100; i++) void outgoing.send(i);
        for (let i = 0; i < 100; i++) got.push(await incoming.receive());
        return got;
      },
    );
    expect(result).to.deep.equal(Array.from({ length: 100 }, (_, i) => i * 2));
    expect(await serverClosed.promise).to.deep.equal({ code: 1000, reason: '', wasClean: true });
  });

  it("the client's session is one object: its signal is live while open and aborts with the close", async () => {
    const result = await run<string, string, { before: boolean; got: string; reason: unknown }>(
      async (session) => {
        await session.outgoing.send('bye');
        await session.close(4001, 'done');
      },
      async ({ incoming, signal, protocol }) => {
        expect(protocol).to.equal('');
        const before = signal.aborted;
        const got = await incoming.receive();
        const reason: unknown = signal.aborted
          ? signal.reason
          : await new Promise((resolve) => {
              signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
            });
        return { before, got, reason };
      },
    );
    expect(result.before).to.equal(false);
    expect(result.got).to.equal('bye');
    expect(result.reason).to.be.instanceOf(WebSocketCloseError);
    expect(result.reason).to.include({ closeCode: 4001, reason: 'done', wasClean: true });
  });

  it("the client's session methods act on the connection: flush, then await using closes with 1000", async () => {
    const serverGot = deferred<string[]>();
    const closed = await run<string, string, CloseReason>(
      route({
        codec: text(),
        handler: async (session) => {
          const got: string[] = [];
          for await (const m of session.incoming) got.push(m);
          serverGot.resolve(got);
        },
      }),
      async (session) => {
        await session.outgoing.send('a');
        await session.flush();
        await session[Symbol.asyncDispose]();
        return session.closed;
      },
      { client: { codec: text() } },
    );
    expect(closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
    expect(await serverGot.promise).to.deep.equal(['a']);
  });

  it('handler return: every message it sent arrives, then incoming ends normally with 1000', async () => {
    const result = await run<number, never, { got: number[]; closed: CloseReason }>(
      async (session) => {
        for (let i = 0; i < 500; i++) void session.outgoing.send(i);
        await session.outgoing.send(500);
      },
      async (session) => {
        const got: number[] = [];
        for await (const n of session.incoming) got.push(n);
        return { got, closed: await session.closed };
      },
    );
    expect(result.got).to.deep.equal(Array.from({ length: 501 }, (_, i) => i));
    expect(result.closed).to.deep.equal({ code: 1000, reason: '', wasClean: true });
  });

  it('handler throw: the client sees 1011 "Internal error"; onError gets the error once', async () => {
    const failure = new Error('detail not for clients');
    const errors: unknown[] = [];
    const seen = await run<string, never, unknown>(
      async (session) => {
        await session.outgoing.send('first');
        throw failure;
      },
      async ({ incoming }) => {
        expect(await incoming.receive()).to.equal('first');
        return rejection(incoming.receive());
      },
      { onError: (error) => errors.push(error) },
    );
    expect(seen).to.be.instanceOf(WebSocketCloseError);
    expect(seen).to.include({ closeCode: 1011, reason: 'Internal error', wasClean: true });
    expect(errors).to.deep.equal([failure]);
  });

  it('session.close(4001, reason) from the server: the client incoming fails with that code', async () => {
    const seen = await run<never, never, unknown>(
      async (session) => {
        expect(await session.close(4001, 'bye')).to.deep.equal({
          code: 4001,
          reason: 'bye',
          wasClean: true,
        });
      },
      ({ incoming }) => rejection(incoming.receive()),
    );
    expect(seen).to.include({ closeCode: 4001, reason: 'bye', wasClean: true });
  });

  it('keeps text as text and binary as binary, empty messages included', async () => {
    const got = await run<string | Uint8Array, string | Uint8Array, (string | number[])[]>(
      route({
        codec: raw(),
        handler: async (session) => {
          for await (const m of session.incoming) await session.outgoing.send(m);
        },
      }),
      async ({ incoming, outgoing }) => {
        const sent = ['', 'a', new Uint8Array(0), new Uint8Array([1, 255])];
        for (const m of sent) await outgoing.send(m);
        const out: (string | number[])[] = [];
        for (let i = 0; i < sent.length; i++) {
          const m = await incoming.receive();
          out.push(typeof m === 'string' ? m : [...m]);
        }
        return out;
      },
      { client: { codec: raw() } },
    );
    expect(got).to.deep.equal(['', 'a', [], [1, 255]]);
  });

  it('a frame the route cannot decode: the handler sees DecodeError, the client 1007 (not reported)', async () => {
    const errors: unknown[] = [];
    const handlerSaw = deferred<unknown>();
    const closed = await run<string, string, CloseReason>(
      async (session) => {
        try {
          await session.incoming.receive();
        } catch (error) {
          handlerSaw.resolve(error);
          throw error;
        }
      },
      async (session) => {
        await session.outgoing.send('not json');
        return session.closed;
      },
      { client: { codec: text() }, onError: (error) => errors.push(error) },
    );
    expect(await handlerSaw.promise).to.be.instanceOf(DecodeError);
    expect(closed).to.deep.equal({ code: 1007, reason: 'Invalid payload', wasClean: true });
    expect(errors).to.deep.equal([]);
  });

  it('backpressure in: a handler that does not read pauses the client, nothing is lost', async () => {
    const got = await run<number, number, number>(
      route<number>({
        incomingCapacity: 4,
        handler: async (session) => {
          await sleep(100); // not reading while the client floods
          let sum = 0;
          for (let i = 0; i < 2000; i++) sum += await session.incoming.receive();
          await session.outgoing.send(sum);
        },
      }),
      async ({ incoming, outgoing }) => {
        for (let i = 0; i < 2000; i++) void outgoing.send(i);
        return incoming.receive();
      },
    );
    expect(got).to.equal((1999 * 2000) / 2);
  });

  it('backpressure out: send waits at the high-water mark while the client does not read', async () => {
    const blocked = deferred();
    const result = await run<string, string, { last: string; count: number }>(
      route({
        codec: text(),
        highWaterMark: 16 * 1024,
        handler: async (session) => {
          const chunk = 'z'.repeat(16 * 1024);
          let sent = 0;
          // Far more than loopback TCP buffers hold: some send must wait.
          while (sent < 4000) {
            const send = session.outgoing.send(chunk);
            sent++;
            const quick = await settlesWithin(send, 300);
            if (!quick) {
              blocked.resolve();
              await send;
              break;
            }
          }
          await session.outgoing.send(`sent ${sent}`);
        },
      }),
      async ({ incoming }) => {
        // incomingCapacity 1: the client's socket pauses almost at once; it reads only
        // once the server's send has waited (or the server gave up after 4000 chunks).
        await settlesWithin(blocked.promise, 15_000);
        let count = 0;
        let last = '';
        for await (const m of incoming) {
          count++;
          last = m;
        }
        return { last, count };
      },
      { client: { codec: text(), incomingCapacity: 1 } },
    );
    expect(result.last, JSON.stringify(result)).to.match(/^sent \d+$/);
    const sent = Number(result.last.slice(5));
    expect(sent, `a send waited before 4000 chunks: ${JSON.stringify(result)}`).to.be.lessThan(
      4000,
    );
    expect(result.count).to.equal(sent + 1);
  });

  it('a client that drops: the handler signal aborts, incoming fails with 1006, sends reject', async () => {
    const outcome = deferred<{ receive: unknown; send: unknown; aborted: boolean }>();
    await run<never, never, undefined>(
      async (session) => {
        const receive = await rejection(session.incoming.receive());
        await new Promise((resolve) => setTimeout(resolve, 10));
        outcome.resolve({
          receive,
          send: await rejection(session.outgoing.send(undefined as never)),
          aborted: session.signal.aborted,
        });
      },
      (session) => {
        session.terminate();
        return undefined;
      },
    );
    const { receive, send, aborted } = await outcome.promise;
    expect(receive).to.be.instanceOf(WebSocketCloseError);
    expect(receive).to.include({ closeCode: 1006, wasClean: false });
    expect(send).to.be.instanceOf(ClosedSendError);
    expect(aborted).to.equal(true);
  });
}
