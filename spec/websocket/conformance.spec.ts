// Runs the shared WebSocket conformance cases in Node twice: with `ws` (through
// isomorphic-ws, the default of `connect`) and with Node's own WHATWG WebSocket
// (--experimental-websocket, see .mocharc.json). Chromium runs the same cases from
// spec/browser/.
import { expect } from 'chai';
import WebSocket from 'isomorphic-ws';
import type { WebSocketConstructor } from '../../lib/websocket/index.js';
import { defineConformance } from './conformance.cases.js';
import type { ConformancePlatform } from './conformance.cases.js';
import { startPeerServer } from './peer-server.js';
import type { PeerServer } from './peer-server.js';

const constructors: [ConformancePlatform, WebSocketConstructor | undefined][] = [
  ['node-ws', WebSocket],
  ['node-native', globalThis.WebSocket],
];

for (const [platform, Constructor] of constructors) {
  describe(`WebSocket conformance (${platform})`, () => {
    let peer: PeerServer | undefined;
    let baseline: string[] = [];

    before(async function () {
      if (Constructor === undefined) this.skip();
      baseline = process.getActiveResourcesInfo();
      peer = await startPeerServer();
    });

    after(async () => {
      await peer?.close(); // the only server these cases use: closed, or this rejects
      // Nothing the cases opened may outlive them: no client socket (closing ones get a
      // few event-loop turns to finish). Servers are not counted here: the cases start
      // none besides the peer, and a server still closing from another spec file (seen
      // under CI=true after the runtime runs) is that file's to answer for.
      const sockets = (): string[] =>
        process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap');
      // Sockets open before the cases began (another file's, closing) may have gone since.
      const before = baseline.filter((kind) => kind === 'TCPSocketWrap').length;
      for (let i = 0; i < 50 && sockets().length > before; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(sockets().length, 'sockets left open').to.be.at.most(before);
    });

    defineConformance({
      platform,
      peerUrl: () => {
        if (peer === undefined) throw new Error('peer server not started');
        return peer.url;
      },
      WebSocket: Constructor ?? WebSocket,
    });
  });
}
