/**
 * `sluice/websocket`: any WebSocket as a pair of typed channels, identically in browsers
 * and Node. Re-exports only.
 *
 * @module sluice/websocket
 */
export { binary, json, raw, text } from './codec.js';
export type { Codec, Frame } from './codec.js';
export { connect, withWebSocket } from './connect.js';
export type { ConnectOptions, WebSocketHandler } from './connect.js';
export type { ClientSession } from './client-session.js';
export { wrap } from './session.js';
export type { IncomingOverflow, Session, SessionOptions } from './session.js';
export { CLOSED, CLOSING, CONNECTING, OPEN } from './socket.js';
export type {
  CloseEventLike,
  ErrorEventLike,
  MessageEventLike,
  WebSocketConstructor,
  WebSocketLike,
} from './socket.js';
export {
  ConnectError,
  DecodeError,
  EncodeError,
  HandshakeError,
  IncomingOverflowError,
  WebSocketCloseError,
} from '../errors.js';
export type { CloseReason, SchemaIssue, WebSocketErrorCode } from '../errors.js';
export { defaultShouldReconnect, reconnecting } from './reconnecting.js';
export type {
  ClosedState,
  ConnectingState,
  ConnectionClose,
  ConnectionState,
  OpenState,
  ReconnectingClient,
  ReconnectingHandler,
  ReconnectingOptions,
  ReconnectingSession,
} from './reconnecting.js';
export { ReconnectAttemptsError } from '../errors.js';
export { endpoint } from './endpoint.js';
export type {
  Endpoint,
  EndpointClient,
  EndpointConnectOptions,
  EndpointHandler,
  EndpointOptions,
  EndpointRouteOptions,
} from './endpoint.js';
export { Route, route } from './route.js';
export type { RouteOptions, ServerHandler, ServerRequest, ServerSession } from './route.js';
