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
  readonly setImmediate?: (callback: (arg: unknown) => void, arg: unknown) => unknown;
  readonly MessageChannel?: typeof MessageChannel;
}

/** `afterMacrotask`'s signature: a callback, and an argument to call it with. */
interface Scheduler {
  (callback: () => void): void;
  <T>(callback: (arg: T) => void, arg: T): void;
}

function makeScheduler(host: Host): Scheduler {
  const { setImmediate, MessageChannel } = host;
  if (typeof setImmediate === 'function') {
    return (callback: (arg: unknown) => void, arg?: unknown) => {
      setImmediate(callback, arg);
    };
  }
  if (typeof MessageChannel !== 'function') {
    return (callback: (arg: unknown) => void, arg?: unknown) => {
      setTimeout(callback, 0, arg);
    };
  }
  let port: MessagePort | undefined;
  // Callbacks and their arguments, alternating.
  let pending: unknown[] = [];
  const run = (): void => {
    const batch = pending;
    pending = [];
    for (let i = 0; i < batch.length; i += 2) {
      (batch[i] as (arg: unknown) => void)(batch[i + 1]);
    }
  };
  return (callback: (arg: unknown) => void, arg?: unknown) => {
    if (port === undefined) {
      const channel = new MessageChannel();
      channel.port1.onmessage = run;
      // A port with a listener may keep a process alive; this one must not.
      (channel.port1 as MessagePort & { unref?: () => void }).unref?.();
      port = channel.port2;
    }
    pending.push(callback, arg);
    if (pending.length === 2) port.postMessage(undefined);
  };
}

/**
 * Calls `callback` in a later macrotask (see the module note), with `arg` if given: a
 * caller that schedules per object passes the object to one shared function instead of
 * holding a closure per object. Callbacks must not throw (one that throws would skip
 * those registered after it on the `MessageChannel` path); the callers here never do.
 */
export const afterMacrotask: Scheduler = makeScheduler(globalThis);
