import { expect } from 'chai';
import { Heartbeat, HeartbeatEntry } from '../../lib/server/heartbeat.js';
import type { PingableSocket } from '../../lib/server/heartbeat.js';

/** A socket that never answers pings; its state is set by the test. */
class Socket implements PingableSocket {
  readyState = 1;
  pings = 0;
  ping(): void {
    this.pings++;
  }
  on(): this {
    return this;
  }
  off(): this {
    return this;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('Heartbeat', () => {
  it('drops a socket still closing (not closed) a whole interval after a ping found it closing', async () => {
    // A peer's FIN while the server's writes are stuck leaves `ws` closing for good, and a
    // closing socket is not pinged: it used to be rescheduled for ever.
    const socket = new Socket();
    const entry = new HeartbeatEntry<Socket>(socket);
    const timeouts: string[] = [];
    const heartbeat = new Heartbeat<Socket, HeartbeatEntry<Socket>>(
      { interval: 40, timeout: 10_000 },
      () => entry,
      (_entry, message) => timeouts.push(message),
    );
    socket.readyState = 2; // closing before the first ping
    heartbeat.add(entry);
    try {
      await sleep(60); // one ping due: found closing
      expect([socket.pings, timeouts]).to.deep.equal([0, []]);
      await sleep(60); // the next: still closing
      expect(timeouts).to.deep.equal([
        'Closing timeout: the connection was still closing after 40 ms',
      ]);
    } finally {
      heartbeat.delete(entry);
    }
  });
});
