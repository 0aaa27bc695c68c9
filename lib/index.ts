/**
 * sluice: Kotlin/Go-style channels for TypeScript. This entry point runs in browsers and
 * Node alike and re-exports the public API only.
 *
 * @module sluice
 */
export { Channel } from './channel.js';
export type {
  ChannelOptions,
  OverflowPolicy,
  ReceiveChannel,
  ReceiveIterator,
  ReceiveResult,
  SendChannel,
  SendResult,
  WaitOptions,
} from './channel-types.js';
export {
  ClosedReceiveError,
  ClosedSendError,
  DiscontinuityError,
  MutexNotLockedError,
  PermitNotHeldError,
  SubscriberOverflowError,
  TimeoutError,
} from './errors.js';
export type { SluiceErrorCode, TopicErrorCode } from './errors.js';
export { onAbort, onTimeout, select, selectUnbiased } from './select.js';
export type { SelectClause, SelectOptions, SelectResult } from './select.js';
export { createScope, produce, scope, suppressedErrors, supervisorScope } from './scope.js';
export type {
  CreateScopeOptions,
  Deferred,
  Job,
  ProduceOptions,
  Scope,
  ScopeOptions,
  SupervisorScopeOptions,
} from './scope.js';
export { delay, ticker, withTimeout, withTimeoutOrUndefined } from './time.js';
export type { TickerOptions } from './time.js';
export { fromReadableStream, toReadableStream, toWritableStream } from './streams.js';
export type { FromReadableStreamOptions } from './streams.js';
export { Mutex, Semaphore } from './sync.js';
export type { MutexLock, SemaphorePermit } from './sync.js';
export { Topic } from './topics/topic.js';
export type { SubscribeOptions, TopicOptions } from './topics/topic.js';
export { StateTopic } from './topics/state-topic.js';
export { Subscription } from './topics/subscription.js';
export type { OnDiscontinuity, TopicOverflow } from './topics/subscription.js';
export { MemoryBackend } from './topics/memory-backend.js';
export type {
  DiscontinuityListener,
  History,
  PublicationListener,
  Retention,
  TopicBackend,
} from './topics/backend.js';
export type { Gap, Position, Publication, TopicEvent } from './topics/position.js';
