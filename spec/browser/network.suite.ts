// Browser entry of the shared channel cases over network channel pairs whose two ends are
// both in the page: two browser WebSockets joined by the relay chromium.spec.ts started in
// Node (its URL comes in through the env), so every frame crosses Chromium's WebSocket,
// Node's `ws` and Chromium's WebSocket again. Same title and cases as
// spec/network/conformance.spec.ts (Node↔Node): the runner compares the outcomes.
import { NETWORK_CASES_TITLE, networkKinds } from '../network/pair.js';
import { defineChannelCases } from './channel.cases.js';
import { envString, injectedEnv } from './env.js';

const env = injectedEnv();
const relayUrl = envString(env, 'relayUrl');
let pairs = 0;
const network = networkKinds(async () => {
  pairs += 1;
  const url = `${relayUrl}/?pair=${pairs}`;
  return [new WebSocket(url), new WebSocket(url)];
});

defineChannelCases(env.platform, {
  title: NETWORK_CASES_TITLE,
  kinds: network.kinds,
  local: false,
  after: () => network.close(),
});
