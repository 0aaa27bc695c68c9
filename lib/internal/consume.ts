/**
 * The bodies of `consume` and `consumeEach`, shared by `Channel` and the network
 * incoming half: run a block, then cancel the channel — with the block's error if it
 * threw (rethrown), with no reason otherwise.
 *
 * @module
 */

/** Runs `block(channel)`, then cancels `channel` (with the block's error if it threw). */
export async function consumeChannel<C extends { cancel(reason?: unknown): void }, R>(
  channel: C,
  block: (channel: C) => R | PromiseLike<R>,
): Promise<R> {
  let result: R;
  try {
    result = await block(channel);
  } catch (error) {
    channel.cancel(error);
    throw error;
  }
  channel.cancel();
  return result;
}

/** `consumeChannel` with a `for await` loop that awaits `action` for each value. */
export function consumeEachOf<T>(
  channel: AsyncIterable<T> & { cancel(reason?: unknown): void },
  action: (value: T) => unknown,
): Promise<void> {
  return consumeChannel(channel, async (consumed) => {
    for await (const value of consumed) await action(value);
  });
}
