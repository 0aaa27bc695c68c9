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
    const baseline = process.getActiveResourcesInfo();

    before(async function () {
      if (Constructor === undefined) this.skip();
      peer = await startPeerServer();
    });

    after(async () => {
      await peer?.close();
      // Nothing the cases opened may outlive them: no socket, no server (closing ones get
      // up to 5 s to finish: on a loaded CI machine a server closed by the last case was
      // once still listed after 1 s).
      const sockets = (): string[] =>
        process
          .getActiveResourcesInfo()
          .filter((kind) => kind === 'TCPSocketWrap' || kind === 'TCPServerWrap');
      const expected = baseline.filter(
        (kind) => kind === 'TCPSocketWrap' || kind === 'TCPServerWrap',
      );
      for (let i = 0; i < 250 && sockets().length > expected.length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(sockets(), 'sockets left open').to.deep.equal(expected);
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
