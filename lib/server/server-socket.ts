/**
 * The `ws` socket class of a sluice server (`ws`'s `WebSocket` option): a `WebSocket` that
 * hands its `'message'`, `'close'` and `'error'` events to its session, and its pongs to
 * the server's heartbeat, from `emit`, instead of through listeners. An idle connection
 * then holds no listener closures and no table of events beyond what `ws` itself makes,
 * and a message takes one call instead of EventEmitter's dispatch.
 *
 * Listeners added to the socket still run, after the session's own handling, with the
 * same arguments `ws` emits. An `'error'` nobody listens to is not thrown: the session has
 * seen it, or the session is over and nobody is left to tell (a dropped socket may still
 * report one).
 *
 * @module
 */
import { WebSocket } from 'ws';
import { SINK, socketSink } from '../websocket/session.js';
import type { SinkSocket } from '../websocket/session.js';

/** The class of a server's sockets (one per server: it knows the server's heartbeat). */
export type ServerSocketClass = typeof WebSocket &
  (new (...args: never[]) => WebSocket & SinkSocket);

/**
 * A `WebSocket` subclass whose pongs go to `onPong` (the server's heartbeat; `undefined`
 * without one) and whose other events go to the session stored in its {@link SINK}.
 */
export function serverSocketClass(
  onPong: ((socket: WebSocket, data: Uint8Array) => void) | undefined,
): ServerSocketClass {
  class ServerSocket extends WebSocket implements SinkSocket {
    [SINK]: SinkSocket[typeof SINK] = null;

    // `ws` emits at most two arguments; the arity is kept for listeners.
    override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
      const session = this[SINK];
      switch (event) {
        case 'message':
          if (session !== null) socketSink.message(session, a, b === true);
          break;
        case 'close':
          if (session !== null) socketSink.close(session, a as number, b as Uint8Array);
          break;
        case 'error':
          if (session !== null) socketSink.error(session, a);
          if (this.listenerCount('error') === 0) return true;
          break;
        case 'pong':
          if (onPong !== undefined) onPong(this, a as Uint8Array);
          break;
      }
      const count = arguments.length;
      return count >= 3
        ? super.emit(event, a, b)
        : count === 2
          ? super.emit(event, a)
          : super.emit(event);
    }
  }
  return ServerSocket;
}
