import { expect } from 'chai';
import { expectTypeOf } from 'expect-type';
import { z } from 'zod';
import { DecodeError } from '../../lib/errors.js';
import type { ReceiveChannel } from '../../lib/index.js';
import { Route, endpoint, testConversation } from '../../lib/server/index.js';
import type { ServerSession } from '../../lib/server/index.js';
import { text } from '../../lib/websocket/index.js';
import type { ClientSession } from '../../lib/websocket/index.js';
import { rejection, useServers } from './helpers.js';

// Shared code: defined once, imported by server and client.
const Chat = endpoint<{ text: string }, { from: string; text: string }>('/chat');
const Validated = endpoint('/sum', {
  schemas: { client: z.object({ add: z.number() }), server: z.object({ total: z.number() }) },
});

describe('endpoint()', function () {
  this.timeout(20_000);
  const { start } = useServers();

  it('serves with handle() and talks with connect(), typed on both ends', async () => {
    const server = await start({}, [
      Chat.handle(async ({ incoming, outgoing, request }) => {
        for await (const { text: said } of incoming) {
          await outgoing.send({ from: request.path, text: said.toUpperCase() });
        }
      }),
    ]);
    const reply = await Chat.connect(
      `${server.url}/`,
      async ({ incoming: input, outgoing: output }) => {
        await output.send({ text: 'hi' });
        return input.receive();
      },
    );
    expect(reply).to.deep.equal({ from: '/chat', text: 'HI' });
  });

  it('reconnecting(): a typed reconnecting client at the endpoint, with the attempt on the session', async () => {
    const server = await start({}, [
      Chat.handle(async (session) => {
        const { text: said } = await session.incoming.receive();
        await session.outgoing.send({ from: 'server', text: said });
        await session.close(4000, 'come again');
      }),
    ]);
    const seen: [number, string][] = [];
    const client = Chat.reconnecting(
      server.url,
      async ({ incoming, outgoing, attempt, connection, closed }) => {
        expectTypeOf(incoming).toEqualTypeOf<ReceiveChannel<{ from: string; text: string }>>();
        await outgoing.send({ text: `hi ${String(connection)}` });
        seen.push([attempt, (await incoming.receive()).text]);
        if (connection === 2) await client.stop();
        else await closed;
      },
      { minDelay: 1, maxDelay: 1, jitter: 0 },
    );
    await client.done;
    expect(seen).to.deep.equal([
      [1, 'hi 1'],
      [2, 'hi 2'], // the first connection lived less than minUptime: the count goes on
    ]);
  });

  it("connect: the client's session signal aborts with options.signal's reason while the handler runs", async () => {
    const server = await start({}, [
      Chat.handle(async ({ incoming }) => {
        while ((await incoming.receiveCatching()).ok);
      }),
    ]);
    const controller = new AbortController();
    const stop = new Error('enough');
    const seen: unknown[] = [];
    const error = await rejection(
      Chat.connect(
        server.url,
        async ({ signal }) => {
          seen.push(signal.aborted);
          controller.abort(stop);
          seen.push(signal.aborted, signal.reason);
        },
        { signal: controller.signal },
      ),
    );
    expect(error).to.equal(stop);
    expect(seen).to.deep.equal([false, true, stop]);
  });

  it('validates each side with its schema: a bad client message is a DecodeError and 1007', async () => {
    const seen: unknown[] = [];
    const route = Validated.handle(async ({ incoming: input, outgoing: output }) => {
      let total = 0;
      try {
        for await (const { add } of input) await output.send({ total: (total += add) });
      } catch (error) {
        seen.push(error);
        throw error;
      }
    });
    const totals = await testConversation(route, async ({ incoming: input, outgoing: output }) => {
      await output.send({ add: 2 });
      await output.send({ add: 3 });
      return [(await input.receive()).total, (await input.receive()).total];
    });
    expect(totals).to.deep.equal([2, 5]);
    const closed = await testConversation(route, async (session) => {
      await session.outgoing.send({ add: 'x' } as never);
      return session.closed;
    });
    expect(closed).to.deep.equal({ code: 1007, reason: 'Invalid payload', wasClean: true });
    expect(seen[0]).to.be.instanceOf(DecodeError);
  });

  it('custom codecs; handle() makes a Route that knows its path', () => {
    const Lines = endpoint<string, string>('/lines', {
      codecs: { server: text(), client: text() },
    });
    const route = Lines.handle(() => undefined);
    expect(route).to.be.instanceOf(Route);
    expect(route.path).to.equal('/lines');
    expect(Lines.serverCodec).to.equal(text());
  });

  it('rejects bad arguments with TypeError/RangeError', async () => {
    expect(() => endpoint('chat')).to.throw(RangeError, /^Expected path to start with '\/'/);
    expect(() => endpoint(1 as never)).to.throw(TypeError, /^Expected path to be a string/);
    expect(() =>
      endpoint('/x', { schemas: {}, codecs: { server: text(), client: text() } }),
    ).to.throw(TypeError, /either schemas or codecs/);
    expect(() => Chat.handle(5 as never)).to.throw(TypeError, /^Expected handler/);
    expect(await rejection(Chat.connect(5 as never, () => undefined))).to.be.instanceOf(TypeError);
  });

  it('types: a mismatch between the two ends does not compile', () => {
    // Server half: one argument, the session: incoming carries ClientMsg, outgoing takes ServerMsg.
    expectTypeOf<Parameters<typeof Chat.handle>[0]>().parameters.toEqualTypeOf<
      [ServerSession<{ text: string }, { from: string; text: string }>]
    >();
    // Client half: one argument, the session: outgoing takes ClientMsg, incoming carries ServerMsg.
    expectTypeOf<Parameters<typeof Chat.connect<void>>[1]>().parameters.toEqualTypeOf<
      [ClientSession<{ from: string; text: string }, { text: string }>]
    >();
    // Schemas infer the types.
    expectTypeOf<ReturnType<typeof Validated.serverCodec.decode>>().toEqualTypeOf<
      { add: number } | Promise<{ add: number }>
    >();
    // The checks below are compile-time only; the functions never run.
    const typeErrors = (): void => {
      Chat.handle(async ({ outgoing: output }) => {
        // @ts-expect-error the server must send { from, text }, not { text }
        await output.send({ text: 'x' });
      });
      Chat.handle(async ({ incoming }) => {
        const message = await incoming.receive();
        // @ts-expect-error the client sends no `from`
        expectTypeOf(message.from).toBeString();
      });
      // The positional forms of 0.1 are gone: one object, by name.
      // @ts-expect-error handle((input, output, session) => …) no longer compiles
      Chat.handle(async (input: unknown, output: unknown, session: unknown) => [
        input,
        output,
        session,
      ]);
      // @ts-expect-error connect((output, input) => …) no longer compiles
      void Chat.connect('ws://x', async (output: unknown, input: unknown) => [output, input]);
      void Chat.connect('ws://x', async ({ incoming: input, outgoing: output }) => {
        // @ts-expect-error the client must send { text }
        await output.send({ from: 'a', txt: 'b' });
        expectTypeOf(await input.receive()).toEqualTypeOf<{ from: string; text: string }>();
      });
    };
    expect(typeErrors).to.be.a('function');
  });
});
