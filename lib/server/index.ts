/**
 * `sluice/server`: a WebSocket server whose connections are sluice sessions — routes,
 * authorization, heartbeat, graceful shutdown, typed endpoints and an in-memory test
 * harness. Node, Bun and Deno (on `ws`). Re-exports only.
 *
 * @module sluice/server
 */
export { serve } from './serve.js';
export type { Acceptance, CloseOptions, Refusal, ServeOptions, Server } from './serve.js';
export type { Transport } from './transport.js';
export { Route, route } from '../websocket/route.js';
export type { RouteOptions, ServerHandler } from '../websocket/route.js';
export type { Routes } from './routing.js';
export type { ServerRequest, ServerSession } from './server-session.js';
export { testConversation } from './test-harness.js';
export type { ConversationClient, ConversationOptions } from './test-harness.js';
export { endpoint } from '../websocket/endpoint.js';
export type {
  Endpoint,
  EndpointClient,
  EndpointConnectOptions,
  EndpointHandler,
  EndpointOptions,
  EndpointRouteOptions,
} from '../websocket/endpoint.js';
export { ServerClosedError, ShutdownTimeoutError } from '../errors.js';
export type { ServerErrorCode } from '../errors.js';
