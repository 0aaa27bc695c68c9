/**
 * The ping/pong heartbeat: every `interval` the server pings the client with a fresh
 * payload and expects a pong carrying the same payload within `timeout` (RFC 6455 §5.5.3:
 * a pong echoes the ping's application data). A client that stays silent is reported
 * through `onTimeout`, which fails the connection. Unsolicited or stale pongs are ignored.
 *
 * One timer per connection at any time: the ping timer, or the pong deadline.
 *
 * @module
 */

/** The part of a server-side `ws` socket the heartbeat uses. */
export interface PingableSocket {
  readonly readyState: number;
  ping(data: Uint8Array): void;
  on(event: 'pong', listener: (data: Uint8Array) => void): unknown;
  off(event: 'pong', listener: (data: Uint8Array) => void): unknown;
}

/** Timing of {@link startHeartbeat}, in milliseconds. */
export interface HeartbeatTiming {
  readonly interval: number;
  readonly timeout: number;
}

const OPEN = 1;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Starts pinging `socket`; returns the function that stops (idempotent). `onTimeout`
 * runs at most once, with a message for the close reason, after which nothing more runs.
 */
export function startHeartbeat(
  socket: PingableSocket,
  timing: HeartbeatTiming,
  onTimeout: (message: string) => void,
): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expected: Uint8Array | undefined;
  let count = 0;
  let stopped = false;

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    socket.off('pong', onPong);
  };
  const schedulePing = (): void => {
    timer = setTimeout(ping, timing.interval);
  };
  function ping(): void {
    timer = undefined;
    if (stopped) return;
    if (socket.readyState !== OPEN) {
      schedulePing();
      return;
    }
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setFloat64(0, ++count);
    expected = payload;
    socket.ping(payload);
    timer = setTimeout(() => {
      timer = undefined;
      if (stopped) return;
      stop();
      onTimeout(`Heartbeat timeout: no pong within ${timing.timeout} ms`);
    }, timing.timeout);
  }
  function onPong(data: Uint8Array): void {
    if (stopped || expected === undefined || !sameBytes(data, expected)) return;
    expected = undefined;
    if (timer !== undefined) clearTimeout(timer);
    schedulePing();
  }

  socket.on('pong', onPong);
  schedulePing();
  return stop;
}
