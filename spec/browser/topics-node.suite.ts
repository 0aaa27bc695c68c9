// Browser entry: topics served by Node (spec/network/topic-server.ts, started by
// chromium.spec.ts), followed from the page over network channels: on one topic, a slow
// subscriber on 'drop-oldest' (its own connection) is told of every gap, and a fast one
// on 'suspend' (another connection) receives every value.
import { expect } from 'chai';
import type { TopicEvent } from '../../lib/index.js';
import { text, wrap } from '../../lib/websocket/index.js';
import { channels, remoteTopic } from '../../lib/network/index.js';
import type { ChannelSession } from '../../lib/network/index.js';
import { TOPICS_NODE_TITLE } from '../network/pair.js';
import { envString, injectedEnv } from './env.js';

const topicsUrl = `${envString(injectedEnv(), 'topicsUrl')}/topics`;

function open(): ChannelSession {
  return channels(wrap<string, string>(new WebSocket(topicsUrl), { codec: text() }));
}

/** Every offset accounted for once, in order, by publications and gaps. */
function accounted(events: readonly TopicEvent<number>[]): number[] {
  const offsets: number[] = [];
  for (const event of events) {
    if (event.type === 'publication') offsets.push(event.position.offset);
    else for (let o = event.from.offset; o <= event.to.offset; o++) offsets.push(o);
  }
  return offsets;
}

const COUNT = 200;
const all = Array.from({ length: COUNT }, (_, i) => i + 1);

describe(TOPICS_NODE_TITLE, () => {
  const opened: ChannelSession[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((net) => net.close()));
  });

  it("reports a slow 'drop-oldest' subscriber's gaps, and loses nothing for a fast 'suspend' one on the same topic", async () => {
    const slowNet = open();
    const fastNet = open();
    opened.push(slowNet, fastNet);
    const slow = remoteTopic<number>('ticks', { capacity: 2, overflow: 'drop-oldest' });
    const fast = remoteTopic<number>('ticks', { capacity: 4, overflow: 'suspend' });
    const followSlow = slow.follow(slowNet);
    const followFast = fast.follow(fastNet);
    const control = fastNet.channel<string, { topic: string; subscribers: number; count: number }>(
      'control',
    );
    const fastEvents: TopicEvent<number>[] = [];
    const fastReading = (async () => {
      for await (const event of fast) fastEvents.push(event);
    })();
    await control.outgoing.send({ topic: 'ticks', subscribers: 2, count: COUNT });
    expect(await control.incoming.receive()).to.equal('published');
    await fastReading;
    await followFast;
    expect(fastEvents.map((e) => (e.type === 'publication' ? e.value : 'gap'))).to.deep.equal(all);
    // The slow one reads only now: the server dropped for it meanwhile, and said so.
    const slowEvents: TopicEvent<number>[] = [];
    for await (const event of slow) slowEvents.push(event);
    await followSlow;
    expect(accounted(slowEvents)).to.deep.equal(all);
    expect(slowEvents.some((e) => e.type === 'gap')).to.equal(true);
    expect(slowEvents.at(-1)).to.deep.include({ type: 'publication', value: COUNT });
  });
});
