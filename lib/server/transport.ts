/**
 * The `transport` option of `serve`: which server carries the connections. Checked here,
 * without loading any transport, so that a wrong choice fails the same way everywhere.
 *
 * @module
 */
import { checkChoice, describeValue } from '../websocket/validate.js';

/**
 * Which WebSocket server `serve` runs on.
 * - `'ws'`: the `ws` package on a `node:http` server; Node, Bun and Deno.
 * - `'bun'`: Bun's native server (`Bun.serve`); only under Bun.
 */
export type Transport = 'ws' | 'bun';

const TRANSPORTS: readonly Transport[] = ['ws', 'bun'];

/** Whether this process runs under Bun (it has the `Bun` global). */
export function underBun(): boolean {
  const bun: unknown = Reflect.get(globalThis, 'Bun');
  return typeof bun === 'object' && bun !== null;
}

/**
 * Checks `transport` and the options that depend on it; `get` reads an option.
 * @throws TypeError for an unknown transport, `'bun'` outside Bun, or an option that
 *   transport cannot honour.
 */
export function checkTransport(get: (key: string) => unknown): void {
  const transport = get('transport');
  checkChoice('transport', transport, TRANSPORTS);
  if (transport !== 'bun') return;
  if (!underBun()) {
    throw new TypeError(
      "Expected transport 'bun' to run under Bun (it uses Bun.serve), got a runtime without the Bun global; use transport 'ws'",
    );
  }
  if (get('server') !== undefined) {
    throw new TypeError(
      "Expected either server (an http.Server) or transport 'bun' (Bun.serve listens itself), got both",
    );
  }
  if (get('handshakeTimeout') !== undefined) {
    throw new TypeError(
      "Expected either handshakeTimeout or transport 'bun' (Bun.serve cuts an incomplete request itself, after about 10 s), got both",
    );
  }
  const deflate = get('perMessageDeflate');
  if (deflate !== undefined && typeof deflate !== 'boolean') {
    throw new TypeError(
      `Expected perMessageDeflate to be a boolean with transport 'bun' (ws's options object does not apply), got ${describeValue(deflate)}`,
    );
  }
}
