/**
 * A Node-side topic server for the Chromium suite (spec/browser/topics-node.suite.ts):
 * the '/topics' route serves topics made on demand by name (`serveTopics`, 'suspend'
 * allowed, a server buffer of 2 by default), and its 'control' channel takes
 * `{ topic, subscribers, count }`: once the topic has that many subscribers, it publishes
 * 1..count, closes the topic and answers 'published'. 127.0.0.1, any free port.
 */
import { Topic } from '../../lib/index.js';
import { route, serve } from '../../lib/server/index.js';
import { text } from '../../lib/websocket/index.js';
import { ConnectionLostError, channels, serveTopics } from '../../lib/network/index.js';
import type { Listening } from './servers.js';

interface Command {
  readonly topic: string;
  readonly subscribers: number;
  readonly count: number;
}

export async function startTopicServer(): Promise<Listening> {
  const topics = new Map<string, Topic<unknown>>();
  const topicNamed = (name: string): Topic<unknown> => {
    let topic = topics.get(name);
    if (topic === undefined) {
      topic = new Topic<unknown>({ retention: { count: 1000 } });
      topics.set(name, topic);
    }
    return topic;
  };
  const server = await serve(
    { pingInterval: Infinity },
    {
      '/topics': route<string, string>({
        codec: text(),
        handler: async (session) => {
          const net = channels(session);
          const served = serveTopics(net, topicNamed, { allowSuspend: true, capacity: 2 });
          const control = net.channel<Command, string>('control', { capacity: 4 });
          try {
            for await (const { topic, subscribers, count } of control.incoming) {
              const target = topicNamed(topic);
              for (let i = 0; i < 500 && target.subscriberCount < subscribers; i++) {
                await new Promise((resolve) => setTimeout(resolve, 10));
              }
              for (let i = 1; i <= count; i++) await target.publish(i);
              target.close();
              await control.outgoing.send('published');
            }
          } catch (error) {
            if (!(error instanceof ConnectionLostError)) throw error;
          }
          await served;
        },
      }),
    },
  );
  return { url: server.url, close: () => server.close() };
}
