import { Channel } from '../../lib/index.js';
import type {
  ChannelOptions,
  OverflowPolicy,
  ReceiveChannel,
  SendChannel,
} from '../../lib/index.js';
import { ticks } from './async.js';

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

// ------------------------------------------------------- kinds for the shared cases

/**
 * What the shared channel cases (spec/browser/channel.cases.ts) drive: the whole surface
 * of a channel. For a local kind it is one `Channel`; for a network pair, `send`-side
 * members go to one end's outgoing half and `receive`-side members to the other end's
 * incoming half (see spec/network/pair.ts).
 */
export type ChannelUnderTest<T> = SendChannel<T> & ReceiveChannel<T>;

/**
 * A kind of channel the shared cases run over, with how to wait for it and the
 * differences the cases must know about (each one read explicitly where it matters).
 */
export interface CaseKind extends Omit<ChannelKind, 'create'> {
  /** A fresh channel, ready to use (across the wire: both ends opened and announced). */
  create<T>(options?: Pick<ChannelOptions<T>, 'onUndelivered'>): Promise<ChannelUnderTest<T>>;
  /**
   * Lets what was started happen: locally `rounds` microtask ticks (10 by default, as
   * `ticks()`); across the wire until both ends are quiescent (every frame either end
   * sent has been received and handled). `rounds = 0` waits for nothing in particular.
   */
  settle(rounds?: number): Promise<void>;
  /**
   * False when a cause given to `close` reaches the receiving operations (and a reason
   * given to `cancel` reaches the sending operations) as the same object; true when it
   * arrives as a re-created `Error` with the same `name` and `message` (across the wire:
   * objects do not cross processes, only their description does).
   */
  readonly recreatesCauses: boolean;
  /**
   * True when `tryReceive` on a rendezvous channel takes the value of a sender that is
   * waiting. False across the wire: a rendezvous sender sends only what a receiver asked
   * for, and `tryReceive` asks for nothing (it must not wait), so a waiting remote sender
   * is invisible to it.
   */
  readonly tryReceiveTakesWaitingSender: boolean;
  /**
   * Milliseconds each case of this kind may take, when its operations cost network round
   * trips (10,000 rendezvous sends are 10,000 round trips); `undefined` keeps the
   * runner's default.
   */
  readonly timeout?: number | undefined;
}

/** A local kind as the shared cases see it: `settle` is `ticks`, causes stay objects. */
export function localCaseKind(local: ChannelKind): CaseKind {
  return {
    name: local.name,
    capacity: local.capacity,
    overflow: local.overflow,
    suspends: local.suspends,
    drops: local.drops,
    create: async (options) => local.create(options),
    settle: (rounds) => ticks(rounds),
    recreatesCauses: false,
    tryReceiveTakesWaitingSender: true,
  };
}

/** Every local kind, for the shared cases. */
export const localCaseKinds: readonly CaseKind[] = kinds.map(localCaseKind);
