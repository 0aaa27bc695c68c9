// channels() and the codec trap: a session that does not use the text() codec does not
// compile, and the compiler's message says what to do.
import { expect } from 'chai';
import { route } from '../../lib/server/index.js';
import type { ServerSession } from '../../lib/server/index.js';
import { connect, text } from '../../lib/websocket/index.js';
import { channels } from '../../lib/network/index.js';
import type { Session } from '../../lib/websocket/index.js';

describe('channels() types', () => {
  it('accepts text sessions only, naming the fix otherwise', () => {
    // Compile-time only; the function never runs.
    const checks = async (
      jsonSession: ServerSession<unknown, unknown>,
      textSession: ServerSession<string, string>,
      literal: Session<'ping', string>,
    ): Promise<unknown[]> => [
      // @ts-expect-error a json() session: "channels() needs a session made with the text() codec: …"
      channels(jsonSession),
      // @ts-expect-error connect(url) defaults to json()
      channels(await connect('ws://127.0.0.1:1')),
      route({
        handler: (session) => {
          // @ts-expect-error a route without a codec is json()
          channels(session);
        },
      }),
      channels(textSession),
      channels(literal),
      channels(await connect('ws://127.0.0.1:1', { codec: text() })),
      route({ codec: text(), handler: (session) => channels(session).closed }),
    ];
    expect(checks).to.be.a('function');
  });
});
