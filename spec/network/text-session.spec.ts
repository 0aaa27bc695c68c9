// channels() and the codec trap: a session made with neither the raw() nor the text()
// codec does not compile, and the compiler's message says what to do.
import { expect } from 'chai';
import { route } from '../../lib/server/index.js';
import type { ServerSession } from '../../lib/server/index.js';
import { connect, raw, text } from '../../lib/websocket/index.js';
import { channels } from '../../lib/network/index.js';
import type { Session } from '../../lib/websocket/index.js';

describe('channels() types', () => {
  it('accepts raw() and text() sessions only, naming the fix otherwise', () => {
    // Compile-time only; the function never runs.
    const checks = async (
      jsonSession: ServerSession<unknown, unknown>,
      textSession: ServerSession<string, string>,
      literal: Session<'ping', string>,
      bytesOnly: Session<Uint8Array, Uint8Array>,
    ): Promise<unknown[]> => [
      // @ts-expect-error a json() session: "channels() needs a session made with the raw() codec …"
      channels(jsonSession),
      // @ts-expect-error a binary() session cannot send the text frames
      channels(bytesOnly),
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
      channels(await connect('ws://127.0.0.1:1', { codec: raw() })),
      route({ codec: raw(), handler: (session) => channels(session).closed }),
      route({ codec: text(), handler: (session) => channels(session).closed }),
    ];
    expect(checks).to.be.a('function');
  });
});
