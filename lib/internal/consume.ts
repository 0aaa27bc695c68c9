/**
 * The bodies of `consume` and `consumeEach`, shared by `Channel` and the network
 * incoming half: run a block, then cancel the channel — with the block's error if it
 * threw (rethrown), with the signal's reason if the signal aborted, with no reason
 * otherwise.
 *
 * @module
 */
import { assertSignal } from './describe-value.js';

interface Cancellable {
  cancel(reason?: unknown): void;
}

/**
 * Runs `block(channel)`, then cancels `channel` (with the block's error if it threw).
 * With a `signal`: an abort cancels the channel with `signal.reason` at once (so the
 * block's waiting receives reject with it), and the call rejects with the reason once
 * the block has settled, unless the block threw an error of its own.
 */
export async function consumeChannel<C extends Cancellable, R>(
  channel: C,
  block: (channel: C) => R | PromiseLike<R>,
  signal?: AbortSignal,
): Promise<R> {
  assertSignal(signal);
  if (signal?.aborted === true) {
    channel.cancel(signal.reason);
    throw signal.reason;
  }
  let onAbort: (() => void) | null = null;
  if (signal !== undefined) {
    onAbort = () => {
      channel.cancel(signal.reason);
    };
    signal.addEventListener('abort', onAbort);
  }
  let result: R;
  try {
    result = await block(channel);
  } catch (error) {
    channel.cancel(error);
    throw error;
  } finally {
    if (onAbort !== null) signal?.removeEventListener('abort', onAbort);
  }
  if (isAborted(signal)) throw signal.reason;
  channel.cancel();
  return result;
}

/** A fresh read (TypeScript would keep the narrowing of an earlier check). */
function isAborted(signal: AbortSignal | undefined): signal is AbortSignal {
  return signal?.aborted === true;
}

/**
 * `consumeChannel` with an `iterate({ signal })` loop that awaits `action` for each
 * value.
 */
export function consumeEachOf<T>(
  channel: Cancellable & {
    iterate(options?: { signal?: AbortSignal | undefined }): AsyncIterable<T>;
  },
  action: (value: T) => unknown,
  signal?: AbortSignal,
): Promise<void> {
  return consumeChannel(
    channel,
    async (consumed) => {
      for await (const value of consumed.iterate({ signal })) await action(value);
    },
    signal,
  );
}
