/**
 * The built package (`dist/`) as the server benchmarks load it, so that their figures are
 * what users get, and the contract of their idle channel-session row.
 *
 * @module
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TopicsModule from '../../lib/index.js';
import type * as NetworkModule from '../../lib/network/index.js';
import type * as ServerModule from '../../lib/server/index.js';
import type * as WebSocketModule from '../../lib/websocket/index.js';

/** The built sluice modules, from `dist` (a directory holding the compiled `lib/`). */
export interface Sluice {
  readonly server: typeof ServerModule;
  readonly websocket: typeof WebSocketModule;
  readonly network: typeof NetworkModule;
  readonly core: typeof TopicsModule;
}

/** Imports the built modules from `dist`. */
export async function loadSluice(dist: string): Promise<Sluice> {
  const load = (file: string): Promise<unknown> =>
    import(pathToFileURL(path.join(dist, file)).href);
  return {
    server: (await load('server/index.js')) as typeof ServerModule,
    websocket: (await load('websocket/index.js')) as typeof WebSocketModule,
    network: (await load('network/index.js')) as typeof NetworkModule,
    core: (await load('index.js')) as typeof TopicsModule,
  };
}

/** The contract of the channel-session row: one channel from the client, never used. */
export function benchEndpoint(network: typeof NetworkModule) {
  return network.channelEndpoint(
    '/channels',
    network.contract('bench', 1, { results: network.toServer<string>({ capacity: 16 }) }),
  );
}
