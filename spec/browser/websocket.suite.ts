// Browser entry of the WebSocket conformance cases: the browser's own WebSocket against the
// peer server that chromium.spec.ts started in Node (its URL comes in through the env).
import { defineConformance } from '../websocket/conformance.cases.js';
import { envString, injectedEnv } from './env.js';

const peerUrl = envString(injectedEnv(), 'peerUrl');

defineConformance({
  platform: 'chromium',
  peerUrl: () => peerUrl,
  WebSocket: globalThis.WebSocket,
});
