/**
 * `sluice/network`: network channels — many named, credit-flow-controlled channels over
 * one WebSocket session between two sluice ends — and contracts that declare them once
 * for both ends, with channel endpoints that the server turns into a route and the client
 * into a connection. Browser-safe; serving needs `sluice/server`. Re-exports only.
 *
 * @module sluice/network
 */
export { channels } from './channels.js';
export type {
  ChannelSession,
  ChannelSessionOptions,
  NetworkChannel,
  NetworkChannelOptions,
  TextSessionFix,
  TextSessionHint,
} from './channels.js';
export { contract, toClient, toServer } from './contract.js';
export type {
  ChannelDeclaration,
  ChannelDeclarationOptions,
  ChannelDeclarations,
  ChannelDirection,
  ClientChannels,
  Contract,
  ServerChannels,
  Undelivered,
  ValueOf,
} from './contract.js';
export { channelEndpoint } from './endpoint.js';
export type {
  ChannelClientSession,
  ChannelConnectOptions,
  ChannelEndpoint,
  ChannelHandlerSession,
  ChannelReconnectingOptions,
  ChannelReconnectingSession,
  ChannelRouteOptions,
  ChannelServerSession,
  ChannelSideOptions,
  ClientResumeOptions,
  EndpointNetworkOptions,
  ResumeOptions,
} from './endpoint.js';
export { RemoteTopic, remoteTopic, serveTopics } from './topics.js';
export type { RemoteTopicOptions, ServeTopicsOptions, TopicSource } from './topics.js';
export { SharedState, SyncedState, syncState } from './shared-state.js';
export type { Reducer, SharedStateOptions, SyncStateOptions } from './shared-state.js';
export {
  ConnectionLostError,
  ContractMismatchError,
  ProtocolError,
  RemoteError,
  SessionExpiredError,
} from '../errors.js';
