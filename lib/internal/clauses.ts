/**
 * Select clauses as values: what `channel.onReceive()`, `onReceiveCatching()`, `onSend()`
 * and `onTimeout()` return. A clause only describes an operation (which channel, which
 * value, which handler); it registers nothing until a `select` runs it, so one clause
 * may be reused by many selects. Kept apart from `select.ts` so that `channel.ts` can
 * build clauses without an import cycle.
 *
 * @module
 */
import type { Channel } from '../channel.js';
import { assertFunction } from './describe-value.js';
import { CATCHING, RECEIVE, SEND } from './waiter.js';

/** The operation of a clause; the channel ones equal the waiter kinds they park. */
export type ClauseKind =
  typeof RECEIVE | typeof CATCHING | typeof SEND | typeof TIMEOUT | typeof EVENT;
/** `onTimeout(ms)`: no channel, completes when the time is up. */
export const TIMEOUT = 4;
/**
 * `job.onJoin()`, `deferred.onAwait()`, `onAbort(signal)`: no channel; the clause's
 * `value` is an {@link EventSource} that tells when it is ready and with what outcome.
 */
export const EVENT = 5;

/** How an event clause ends: with a value (`ok`) or by rejecting the select. */
export interface EventOutcome {
  readonly ok: boolean;
  readonly value: unknown;
}

/**
 * Something a select can wait for besides a channel. Both members are synchronous and
 * run no user code, so that a select decides in one step (see select.ts).
 */
export interface EventSource {
  /** The outcome if the event has happened, else `null`. */
  ready(): EventOutcome | null;
  /**
   * Calls `onReady` once, synchronously, when the event happens (it has not yet).
   * Returns a function that removes the registration (a no-op once it has fired).
   */
  listen(onReady: (outcome: EventOutcome) => void): () => void;
}

/**
 * One alternative of a `select`: made by `channel.onReceive()`,
 * `channel.onReceiveCatching()`, `channel.onSend()` or `onTimeout()`, never constructed
 * directly (the package exports this as a type only). `R` is what `select` resolves
 * with when this clause is chosen.
 *
 * A clause is an inert description: it takes or sends nothing by itself, and the same
 * clause may be passed to any number of selects, one after another or at once.
 *
 * @typeParam R - the result of the clause: its handler's (awaited) result, or without a
 *   handler the received value (`onReceive`), the `ReceiveResult` (`onReceiveCatching`)
 *   or `undefined` (`onSend`, `onTimeout`).
 */
// A type only, so that the public type is nominal (its private members keep look-alike
// objects out) while a clause at run time is one plain `Clause` object.
export declare class SelectClause<out R> {
  private constructor();
  /** Never present at run time: it only carries `R` for type inference. */
  private readonly result: R;
}

/** A clause at run time, as `select` reads it. */
export class Clause {
  readonly kind: ClauseKind;
  /** `null` for `onTimeout`. */
  readonly channel: Channel<unknown> | null;
  /**
   * The value of `onSend`; the delay in milliseconds of `onTimeout`; the
   * {@link EventSource} of an event clause.
   */
  readonly value: unknown;
  /** Called with the clause's own result: a value, a `ReceiveResult` or `undefined`. */
  readonly handler: ((input: unknown) => unknown) | undefined;

  constructor(
    kind: ClauseKind,
    channel: Channel<unknown> | null,
    value: unknown,
    handler: ((input: unknown) => unknown) | undefined,
  ) {
    this.kind = kind;
    this.channel = channel;
    this.value = value;
    this.handler = handler;
  }
}

/**
 * Builds a clause; the `R` of the result is the caller's promise about its handler.
 *
 * @throws TypeError if `handler` is neither a function nor `undefined`.
 */
export function newClause<R>(
  kind: ClauseKind,
  channel: Channel<unknown> | null,
  value: unknown,
  handler: unknown,
): SelectClause<R> {
  if (handler !== undefined) assertFunction('handler', handler);
  const clause = new Clause(
    kind,
    channel,
    value,
    handler as ((input: unknown) => unknown) | undefined,
  );
  return clause as unknown as SelectClause<R>;
}
