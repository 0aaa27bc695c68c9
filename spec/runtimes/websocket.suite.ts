// Runtime entry of the WebSocket conformance cases (run-in-runtime.ts): the runtime's own
// global WebSocket, then `ws` through isomorphic-ws as the runtime resolves it (Bun
// replaces `ws` with its own implementation), both against the peer server that
// runtimes.spec.ts started in Node (its URL comes in through the env).
import WebSocket from 'isomorphic-ws';
import { injectedEnv, envString } from '../browser/env.js';
import { defineConformance } from '../websocket/conformance.cases.js';
import type { ConformancePlatform } from '../websocket/conformance.cases.js';

const env = injectedEnv();
const peerUrl = envString(env, 'peerUrl');
if (env.platform !== 'bun' && env.platform !== 'deno') {
  throw new TypeError(`Expected the platform 'bun' or 'deno', got ${JSON.stringify(env.platform)}`);
}
const platforms: [ConformancePlatform, typeof globalThis.WebSocket][] = [
  [env.platform, globalThis.WebSocket],
  [`${env.platform}-ws`, WebSocket as unknown as typeof globalThis.WebSocket],
];
for (const [platform, Constructor] of platforms) {
  describe(`WebSocket conformance (${platform})`, () => {
    defineConformance({ platform, peerUrl: () => peerUrl, WebSocket: Constructor });
  });
}
