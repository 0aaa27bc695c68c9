// The shared channel cases (spec/browser/channel.cases.ts), unchanged, over network channel
// pairs Node↔Node: each kind is one real `ws` connection on 127.0.0.1 with a ChannelSession
// on each end, each case a fresh channel name on it. chromium.spec.ts runs the same cases
// with both ends in the page (through a relay) under the same title, and checks that both
// runs have the same tests with the same outcomes.
import { defineChannelCases } from '../browser/channel.cases.js';
import { NETWORK_CASES_TITLE, networkKinds } from './pair.js';
import { startPairServer } from './servers.js';
import type { PairServer } from './servers.js';

let server: Promise<PairServer> | undefined;
const network = networkKinds(async () => {
  server ??= startPairServer();
  return (await server).open();
});

defineChannelCases('node', {
  title: NETWORK_CASES_TITLE,
  kinds: network.kinds,
  local: false,
  after: async () => {
    await network.close();
    await (await server)?.close();
  },
});
