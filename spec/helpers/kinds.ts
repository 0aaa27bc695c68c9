import { Channel } from '../../lib/index.js';
import type { ChannelOptions, OverflowPolicy } from '../../lib/index.js';

/** One row of the table of channel kinds that shared suites run over. */
export interface ChannelKind {
  readonly name: string;
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  /** True when `send` can wait (the buffer is bounded and the policy is 'suspend'). */
  readonly suspends: boolean;
  /** True when a value can be dropped by the overflow policy. */
  readonly drops: boolean;
  create<T>(options?: Pick<ChannelOptions<T>, 'onUndelivered'>): Channel<T>;
}

function kind(name: string, capacity: number, overflow: OverflowPolicy = 'suspend'): ChannelKind {
  return {
    name,
    capacity,
    overflow,
    suspends: overflow === 'suspend' && capacity !== Infinity,
    drops: overflow !== 'suspend' && capacity !== Infinity,
    create: <T>(options?: Pick<ChannelOptions<T>, 'onUndelivered'>) =>
      new Channel<T>(capacity, { overflow, onUndelivered: options?.onUndelivered }),
  };
}

export const kinds: readonly ChannelKind[] = [
  kind('rendezvous', 0),
  kind('buffered(1)', 1),
  kind('buffered(16)', 16),
  kind('unlimited', Infinity),
  kind('conflated (1, drop-oldest)', 1, 'drop-oldest'),
  kind('buffered(3, drop-oldest)', 3, 'drop-oldest'),
  kind('buffered(3, drop-latest)', 3, 'drop-latest'),
];
