/**
 * `afterMacrotask(callback)`: runs a callback once the current macrotask (and its
 * microtasks) has finished, without the 4 ms clamp of nested browser timers nor the 1 ms
 * of Node's `setTimeout(0)`. The channel session uses it to send the frames written during
 * one macrotask as one WebSocket message.
 *
 * It posts a message to itself on one `MessageChannel` (browsers, Node, Deno, Bun), whose
 * port is unreferenced where the runtime allows it (Node), so that a pending callback never
 * keeps a process alive by itself; callbacks registered before the message is delivered
 * all run on that one message, in order. Without `MessageChannel` it falls back to
 * `setTimeout(0)`.
 *
 * @module
 */

/** What `afterMacrotask` needs from the host; all optional. */
interface Host {
  readonly MessageChannel?: typeof MessageChannel;
}

function makeScheduler(host: Host): (callback: () => void) => void {
  const { MessageChannel } = host;
  if (typeof MessageChannel !== 'function') {
    return (callback) => {
      setTimeout(callback, 0);
    };
  }
  let port: MessagePort | undefined;
  let pending: (() => void)[] = [];
  const run = (): void => {
    const batch = pending;
    pending = [];
    for (const callback of batch) callback();
  };
  return (callback) => {
    if (port === undefined) {
      const channel = new MessageChannel();
      channel.port1.onmessage = run;
      // Node: a port with a listener keeps the process alive; this one must not.
      (channel.port1 as MessagePort & { unref?: () => void }).unref?.();
      port = channel.port2;
    }
    pending.push(callback);
    if (pending.length === 1) port.postMessage(undefined);
  };
}

/**
 * Calls `callback` in a later macrotask (see the module note). Callbacks must not throw
 * (one that throws would skip those registered after it); the callers here never do.
 */
export const afterMacrotask: (callback: () => void) => void = makeScheduler(globalThis);
