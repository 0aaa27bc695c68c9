/**
 * `afterMacrotask(callback)`: runs a callback once the current macrotask (and its
 * microtasks) has finished, after due timers and pending I/O or events had their turn,
 * without the 4 ms clamp of nested browser timers nor the 1 ms of Node's `setTimeout(0)`.
 * Outgoing sessions use it to yield during long runs of direct writes; channel sessions
 * to send the frames written during one macrotask as one WebSocket message.
 *
 * `setImmediate` where it exists (Node, Bun: cheap, never clamped, never keeps a process
 * alive by itself); else one `MessageChannel` (browsers, Deno) that posts itself one
 * message per batch of callbacks, which all run on that message, in order, its port
 * unreferenced where the runtime allows it; else `setTimeout(0)`.
 *
 * @module
 */

/** What `afterMacrotask` needs from the host; all optional. */
interface Host {
  readonly setImmediate?: (callback: () => void) => unknown;
  readonly MessageChannel?: typeof MessageChannel;
}

function makeScheduler(host: Host): (callback: () => void) => void {
  const { setImmediate, MessageChannel } = host;
  if (typeof setImmediate === 'function') {
    return (callback) => {
      setImmediate(callback);
    };
  }
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
      // A port with a listener may keep a process alive; this one must not.
      (channel.port1 as MessagePort & { unref?: () => void }).unref?.();
      port = channel.port2;
    }
    pending.push(callback);
    if (pending.length === 1) port.postMessage(undefined);
  };
}

/**
 * Calls `callback` in a later macrotask (see the module note). Callbacks must not throw
 * (one that throws would skip those registered after it on the `MessageChannel` path);
 * the callers here never do.
 */
export const afterMacrotask: (callback: () => void) => void = makeScheduler(globalThis);
