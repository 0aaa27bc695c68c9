// Which transport the server specs run `serve` on: 'ws' (Node, and the [bun]/[deno] runs),
// or 'bun' when runtimes.spec.ts runs them a second time in Bun with `transport: 'bun'` in
// the test environment ([bun-native]). Specs call `serveOn` instead of `serve`, and assert
// the documented differences of the Bun transport where `TRANSPORT === 'bun'`.
import { serve } from '../../lib/server/index.js';
import type { Routes, ServeOptions, Server } from '../../lib/server/index.js';

function transport(): 'ws' | 'bun' {
  const wanted = globalThis.__SLUICE_TEST_ENV__?.['transport'];
  if (wanted === undefined || wanted === 'ws') return 'ws';
  if (wanted === 'bun') return 'bun';
  throw new TypeError(`Expected env.transport to be 'ws' or 'bun', got ${JSON.stringify(wanted)}`);
}

/** The transport of this run. */
export const TRANSPORT: 'ws' | 'bun' = transport();

/** `serve` on this run's transport (an explicit `transport` in `options` wins). */
export function serveOn(options: ServeOptions, routes: Routes): Promise<Server> {
  return serve(TRANSPORT === 'ws' ? options : { transport: TRANSPORT, ...options }, routes);
}
