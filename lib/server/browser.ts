/**
 * What `sluice/server` resolves to in a browser bundle (the `browser` export condition):
 * the server needs Node's `http` and `ws`. The stub exports the same names as the real
 * entry point, so a bundler resolves every import (instead of failing with an obscure
 * `No matching export` or an error about `node:http`), and loading the bundle then fails
 * at once with a clear message; each export also throws it if reached. Typed endpoints
 * come from `sluice/websocket`, which works everywhere.
 *
 * @module
 */

const MESSAGE =
  "sluice/server runs only in Node: import 'sluice/websocket' in browser code (connect, withWebSocket, endpoint)";

function unavailable(): never {
  throw new Error(MESSAGE);
}

/** Node only: throws in a browser. */
export function serve(): never {
  return unavailable();
}

/** Node only: throws in a browser. */
export function route(): never {
  return unavailable();
}

/** Node only: throws in a browser. */
export function testConversation(): never {
  return unavailable();
}

/** Node only: throws in a browser (`endpoint` from `sluice/websocket` works there). */
export function endpoint(): never {
  return unavailable();
}

/** Node only: throws in a browser. */
export class Route {
  /** As the real `Route`'s; never read, since constructing throws. */
  readonly path: string | undefined = undefined;
  constructor() {
    unavailable();
  }
}

/** Node only: throws in a browser. */
export class ServerClosedError extends Error {
  constructor() {
    super(MESSAGE);
    unavailable();
  }
}

/** Node only: throws in a browser. */
export class ShutdownTimeoutError extends Error {
  constructor() {
    super(MESSAGE);
    unavailable();
  }
}

// Loading the module fails at once, with the message.
unavailable();
