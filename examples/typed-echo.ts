/**
 * A typed echo service, KVision style: one endpoint definition shared by server and
 * client fixes the message types both ways, so a handler that sends the wrong shape does
 * not compile. The client sends a random number every second (a `ticker`), the server
 * answers with the number doubled, and after a few rounds the client returns, which
 * closes the connection cleanly (1000) on both ends.
 *
 * Run it: `node --import tsx examples/typed-echo.ts`. The test suite calls `main()` with a
 * short period and a fixed "random" sequence and checks every line.
 */
import { pathToFileURL } from 'node:url';
import { Channel, ticker } from 'sluice';
import { serve } from 'sluice/server';
import { endpoint } from 'sluice/websocket';
import type { CloseReason } from 'sluice/websocket';

/** What the client sends: the round it is in and a number. */
export interface Question {
  readonly round: number;
  readonly value: number;
}

/** What the server answers: the same round and number, and the number doubled. */
export interface Answer {
  readonly round: number;
  readonly value: number;
  readonly doubled: number;
}

/**
 * The shared definition: in a real app this line lives in a module that both the server
 * and the browser import. `endpoint<ClientMsg, ServerMsg>(path)`.
 */
export const Echo = endpoint<Question, Answer>('/echo');

/** Options of {@link main}. */
export interface TypedEchoOptions {
  /** How many questions the client asks before it hangs up. @default 3 */
  readonly rounds?: number;
  /** Milliseconds between two questions. @default 1000 */
  readonly period?: number;
  /** Where the numbers come from: a function returning a number in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Where the narration goes. @default console.log */
  readonly log?: (line: string) => void;
}

/** What happened, for the test suite. */
export interface TypedEchoResult {
  /** Every answer the client received, in order. */
  readonly answers: readonly Answer[];
  /** How the connection closed, as the client saw it. */
  readonly clientClosed: CloseReason;
  /** How the connection closed, as the server saw it. */
  readonly serverClosed: CloseReason;
}

/**
 * Starts the echo server on 127.0.0.1 (a free port), runs one client for `rounds`
 * questions, and shuts the server down.
 */
export async function main(options: TypedEchoOptions = {}): Promise<TypedEchoResult> {
  const { rounds = 3, period = 1000, random = Math.random, log = console.log } = options;

  // The server half: its session's `incoming` carries Questions, `outgoing` takes
  // Answers — checked by tsc.
  // (A channel of capacity 1 doubles as a one-shot mailbox for how the server saw the end.)
  const serverClosed = new Channel<CloseReason>(1);
  const server = await serve({ port: 0 }, [
    Echo.handle(async ({ incoming, outgoing, closed }) => {
      void closed.then((reason) => serverClosed.trySend(reason));
      // The loop ends when the client closes normally; returning then closes with 1000.
      for await (const { round, value } of incoming) {
        log(`server: round ${round}: ${value} → ${value * 2}`);
        await outgoing.send({ round, value, doubled: value * 2 });
        // await outgoing.send({ round, value }); // would not compile: `doubled` is missing
      }
      log('server: the client hung up');
    }),
  ]);
  log(`server: listening on ${server.url}`);

  try {
    // The client half: `outgoing` takes Questions, `incoming` carries Answers. `connect`
    // keeps the connection open exactly as long as this function runs.
    const { answers, closed } = await Echo.connect(
      server.url,
      async ({ incoming, outgoing, closed: ended }) => {
        const received: Answer[] = [];
        const ticks = ticker(period);
        try {
          for (let round = 1; round <= rounds; round++) {
            await ticks.receive(); // one question per period
            const value = Math.floor(random() * 100);
            log(`client: round ${round}: sending ${value}`);
            await outgoing.send({ round, value });
            const answer = await incoming.receive();
            log(`client: round ${answer.round}: ${answer.value} doubled is ${answer.doubled}`);
            received.push(answer);
          }
        } finally {
          ticks.cancel(); // stops the ticker's timer
        }
        // Returning closes the connection with 1000; `connect` resolves once it has closed.
        return { answers: received, closed: ended };
      },
    );

    const client = await closed;
    const serverSide = await serverClosed.receive();
    log(`client: closed with ${client.code} (clean: ${String(client.wasClean)})`);
    log(`server: closed with ${serverSide.code} (clean: ${String(serverSide.wasClean)})`);
    return { answers, clientClosed: client, serverClosed: serverSide };
  } finally {
    await server.close();
  }
}

// Run as a program (not when the test suite imports it).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
