/**
 * The sending end of a network channel: the `outgoing` half the user holds, and the
 * credit logic that lets values leave only when the peer has room for them.
 *
 * ## Algorithm
 * Every value waits in `staging`, a local rendezvous {@link Channel}, until it may leave.
 * The *pump* — one reusable receive waiter — is parked on `staging` exactly while the
 * peer's allowance is not used up. So a `send` (or `trySend`, or a `select` running an
 * `onSend` clause) finds the pump waiting when it may leave: the channel hands the value
 * over synchronously, the pump writes its frame to the session in the same step, and the
 * send resolves — one synchronous step, so order and exactly-once are those of the local
 * channel. When the allowance is used up the pump is not parked and sends wait in
 * `staging` like sends to a full channel (first-come first-served, abortable); each
 * `ack`/`pull` from the peer raises the allowance and the pump drains the waiting sends
 * with `tryReceive` before parking again.
 *
 * Allowance: a peer with capacity n lets `n + taken` values be sent in all (`taken`
 * arrives in `ack` frames); an unlimited peer any number; a rendezvous peer as many as
 * its `pull` frames granted, and there a plain `send` resolves only when the `ack`
 * covering its value arrives (it waits *in flight*; an abort then asks the peer to
 * `withdraw` the value). This end's own bound, `maxInFlight`, caps the values that left
 * and are not yet acknowledged (`sent − taken − withdrawn`), whatever the peer announced:
 * the peer's allowance can only lower it. Values that left but are not yet acknowledged
 * are retained (when there is an `onUndelivered` to report them to, or a rendezvous send
 * to settle), so the retained copies are bounded by `maxInFlight`.
 *
 * Back-pressure: while the session does not take messages ({@link Link.congested}: its
 * buffer is at the high-water mark) the pump is not parked, so sends wait in `staging`
 * exactly as for a used-up allowance; the session resumes every outbound end when the
 * batch it was waiting for has been taken. A send that did not wait resolves through
 * {@link Link.sentDirectly}, which yields a macrotask every so often.
 *
 * @module
 */
import { Channel, channelInternals } from '../channel.js';
import type { SendChannel, SendResult, WaitOptions } from '../channel-types.js';
import { callReporting } from '../internal/report.js';
import type { SelectClause } from '../internal/clauses.js';
import { RECEIVE, SEND, Waiter } from '../internal/waiter.js';
import { decodeCause, encodeCauseJson } from './causes.js';
import type { Link } from './link.js';
import { encodeValue } from './wire.js';
import type { Encoded } from './wire.js';

/** Open for sending (the user may have closed `staging`, but the close frame is not out). */
const ACTIVE = 0;
/** The close frame was written. */
const CLOSE_SENT = 1;
/** The peer confirmed the close: every value sent is in its (closed) buffer. */
const CLOSE_CONFIRMED = 2;
/** Cancelled by the peer, or the connection ended: nothing more goes out. */
const DONE = 3;

/** An entry that is not a waiting plain send (or no longer one). */
const SETTLED = 0;
/** A plain send parked in `staging` whose promise is ours to settle. */
const PARKED = 1;
/** A rendezvous plain send whose value left: it resolves on the covering `ack`. */
const IN_FLIGHT = 2;
/** An in-flight send that was aborted: `withdraw` was sent, the peer decides. */
const WITHDRAWING = 3;

function noop(): void {
  // the pump settles parked sends itself
}

/** A value on its way: its encoding and, for a plain send we settle ourselves, how. */
export class Entry<Out> {
  readonly value: Out;
  readonly data: Encoded;
  /** 1-based number of the value among those sent (set when it leaves). */
  seq = 0;
  state: number = SETTLED;
  resolve: () => void = noop;
  reject: (error: unknown) => void = noop;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;
  abortReason: unknown = undefined;
  waiter: Waiter<Entry<Out>> | null = null;

  constructor(value: Out, data: Encoded) {
    this.value = value;
    this.data = data;
  }

  /** Detaches the abort listener. */
  unwatch(): void {
    if (this.onAbort !== null) {
      (this.signal as AbortSignal).removeEventListener('abort', this.onAbort);
      this.onAbort = null;
      this.signal = null;
    }
  }
}

/** The waiter of a parked plain send that we settle ourselves (rendezvous or not yet known). */
class ParkedSend<Out> extends Waiter<Entry<Out>> {
  readonly entry: Entry<Out>;
  constructor(entry: Entry<Out>) {
    super(SEND, entry);
    this.entry = entry;
    // Taken by the pump's tryReceive: `#transmit` settles the entry.
    this.resolve = noop;
    this.reject = rejectParked;
  }
}

/** `staging` was cancelled while the send was parked; `staging` reports the value. */
function rejectParked(this: ParkedSend<unknown>, error: unknown): void {
  const entry = this.entry;
  entry.state = SETTLED;
  entry.waiter = null;
  entry.unwatch();
  entry.reject(error);
}

/**
 * The pump: the receive waiter parked on `staging` while values may leave. Its resolve
 * and reject are functions shared by every pump (channels call them as methods), not two
 * closures per outbound end.
 */
class Pump<Out> extends Waiter<Entry<Out>> {
  readonly outbound: Outbound<Out>;
  constructor(outbound: Outbound<Out>) {
    super(RECEIVE, undefined);
    this.outbound = outbound;
    this.resolve = pumpTook as (result: unknown) => void;
  }

  /** `staging` closed (or was cancelled) while the pump waited. */
  override reject(): void {
    this.outbound.pumpEnded();
  }
}

/** `staging` handed the pump a value. */
function pumpTook<Out>(this: Pump<Out>, entry: Entry<Out>): void {
  this.outbound.pumpTook(entry);
}

const PLACEHOLDER = new Entry<never>(undefined as never, undefined);
const SEND_OK: SendResult = Object.freeze({ ok: true as const });

export class Outbound<Out> {
  readonly name: string;
  readonly #link: Link;
  /**
   * Where values wait (see the module's algorithm), made at the first use that needs
   * it: an end that only ever sends directly, or never sends, has none. Until then the
   * pump is parked only in name (`#pumpParked`): it is enqueued when `staging` is made.
   */
  #staging: Channel<Entry<Out>> | undefined;
  readonly facade: NetworkOutgoing<Out>;
  #onUndelivered: ((value: Out) => void) | undefined;
  /** The id the peer gave its incoming end for this name; -1 until its `open`. */
  #peerId = -1;
  #capacity = 0;
  /** How many values the peer lets this end have sent in all. */
  #peerLimit = 0;
  /** How many values may have been sent in all: the peer's limit, capped by `maxInFlight`. */
  #limit = 0;
  /** The most values in flight (left and not acknowledged) this end allows. */
  #maxInFlight = Infinity;
  #sent = 0;
  #taken = 0;
  #withdrawn = 0;
  /** Values that left and are not yet acknowledged, oldest first, from `#head`. */
  #retained: (Entry<Out> | undefined)[] = [];
  #head = 0;
  #state = ACTIVE;
  #closeCause: unknown = undefined;
  /** Made with `staging`. */
  #pump: Pump<Out> | undefined;
  #pumpParked = false;
  /** This end opened the name (`attach`), not only the peer. */
  attached = false;

  constructor(link: Link, name: string) {
    this.name = name;
    this.#link = link;
    this.facade = new NetworkOutgoing<Out>(this);
  }

  /** Where values wait; made on first use (with the pump parked if it is in name). */
  get staging(): Channel<Entry<Out>> {
    let staging = this.#staging;
    if (staging === undefined) {
      staging = this.#staging = new Channel<Entry<Out>>(0, {
        onUndelivered: (entry) => {
          this.#undelivered(entry.value);
        },
      });
      this.#pump = new Pump(this);
      if (this.#pumpParked) channelInternals.enqueue(staging, this.#pump);
    }
    return staging;
  }

  /** Whether `close` was called (or the end was cancelled): as `staging`'s. */
  get isClosedForSend(): boolean {
    return this.#staging?.isClosedForSend ?? false;
  }

  /** The pump took `entry` from `staging` (see {@link Pump}). */
  pumpTook(entry: Entry<Out>): void {
    this.#pumpParked = false;
    this.#transmit(entry);
    this.#drain();
  }

  /** `staging` closed (or was cancelled) while the pump waited. */
  pumpEnded(): void {
    this.#pumpParked = false;
    this.#drain();
  }

  /** Whether the peer has opened its end. */
  get peerOpened(): boolean {
    return this.#peerId >= 0;
  }

  /**
   * The user opened this name: values to report go to `onUndelivered`, and at most
   * `maxInFlight` values are in flight at a time.
   */
  attach(onUndelivered: ((value: Out) => void) | undefined, maxInFlight: number): void {
    this.attached = true;
    this.#onUndelivered = onUndelivered;
    this.#maxInFlight = maxInFlight;
    this.#updateLimit();
  }

  // ------------------------------------------------------------- the peer's frames

  open(peerId: number, capacity: number): void {
    this.#peerId = peerId;
    this.#capacity = capacity;
    this.#peerLimit = capacity;
    this.#updateLimit();
    this.#drain();
  }

  /** `["ack", id, taken]`; `false` if it breaks the protocol. */
  ack(taken: number): boolean {
    if (this.#state === DONE) return false; // nothing follows a cancel
    if (taken < this.#taken || taken > this.#sent - this.#withdrawn) return false;
    if (taken === this.#taken) return true;
    this.#release(taken - this.#taken);
    this.#taken = taken;
    const capacity = this.#capacity;
    if (capacity !== 0) this.#peerLimit = capacity + taken;
    this.#updateLimit();
    this.#drain();
    return true;
  }

  /** `["pull", id, limit]`; `false` if it breaks the protocol. */
  pull(limit: number): boolean {
    if (this.#capacity !== 0 || limit < this.#peerLimit) return false;
    if (this.#state === DONE) return false;
    this.#peerLimit = limit;
    this.#updateLimit();
    this.#drain();
    return true;
  }

  /** `["closed", id]`; `false` if no close was sent. */
  closed(): boolean {
    if (this.#state === CLOSE_SENT) {
      this.#state = CLOSE_CONFIRMED;
      return true;
    }
    return this.#state === DONE;
  }

  /** `["withdrawn", id, seq]`; `false` if `seq` was not being withdrawn. */
  withdrawn(seq: number): boolean {
    const retained = this.#retained;
    for (let index = this.#head; index < retained.length; index++) {
      const entry = retained[index] as Entry<Out>;
      if (entry.seq !== seq) continue;
      if (entry.state !== WITHDRAWING) return false;
      retained.splice(index, 1);
      this.#withdrawn++;
      entry.state = SETTLED;
      entry.reject(entry.abortReason);
      this.#undelivered(entry.value);
      // One fewer in flight.
      this.#updateLimit();
      this.#drain();
      return true;
    }
    return false;
  }

  /** `["cancel", id, taken, reason]`; `false` if it breaks the protocol. */
  cancel(taken: number, reason: unknown): boolean {
    if (this.#state === DONE) return false;
    if (taken < this.#taken || taken > this.#sent - this.#withdrawn) return false;
    const decoded = decodeCause(reason);
    if (decoded === undefined) return false;
    this.#release(taken - this.#taken);
    this.#taken = taken;
    this.#finish(decoded.cause, true);
    return true;
  }

  /** The connection ended with `error`. */
  lost(error: unknown): void {
    if (this.#state === DONE) return;
    // A buffered peer that confirmed the close keeps every value receivable.
    const report = !(this.#state === CLOSE_CONFIRMED && this.#capacity !== 0);
    this.#finish(error, report);
  }

  /** The session takes messages again (see {@link Link.congested}): send what may leave. */
  resume(): void {
    this.#drain();
  }

  /**
   * The session can no longer send frames, does not take them now, or the allowance is
   * used up: stop taking values (sends wait in `staging`).
   */
  stopWriting(): void {
    if (this.#pumpParked) {
      this.#pumpParked = false;
      const staging = this.#staging;
      if (staging !== undefined) channelInternals.dequeue(staging, this.#pump as Pump<Out>);
    }
  }

  // ------------------------------------------------------------- the user's calls

  send(value: Out, options?: WaitOptions): Promise<void> {
    const signal = options?.signal;
    if (this.isClosedForSend || signal?.aborted === true) {
      // Rejects as a channel does, and hands the value to onUndelivered.
      return this.staging.send(new Entry(value, undefined), options);
    }
    let data: Encoded;
    try {
      data = this.#encode(value);
    } catch (error) {
      this.#undelivered(value);
      return Promise.reject(error);
    }
    if (this.#capacity !== 0 && this.#pumpParked) {
      // The direct route: allowance left and nobody waiting (else the pump would not be
      // parked), so the value leaves now, as `staging` would hand it to the pump.
      this.#transmitDirect(value, data);
      return this.#link.sentDirectly();
    }
    const entry = new Entry(value, data);
    // A buffered peer: the send resolves when the value leaves, as `staging`'s own send.
    if (this.#peerId >= 0 && this.#capacity !== 0) return this.staging.send(entry, options);
    return this.#sendAndSettle(entry, signal);
  }

  trySend(value: Out): SendResult {
    if (this.isClosedForSend) return this.staging.trySend(PLACEHOLDER);
    const data = this.#encode(value);
    if (this.#pumpParked) {
      this.#transmitDirect(value, data);
      return SEND_OK;
    }
    return this.staging.trySend(new Entry(value, data));
  }

  onSend(value: Out, handler?: () => unknown): SelectClause<unknown> {
    const entry = this.staging.isClosedForSend
      ? new Entry(value, undefined)
      : new Entry(value, this.#encode(value));
    return handler === undefined ? this.staging.onSend(entry) : this.staging.onSend(entry, handler);
  }

  close(cause?: unknown): boolean {
    if (this.staging.isClosedForSend) return false;
    this.#closeCause = cause;
    this.staging.close(cause);
    this.#drain();
    return true;
  }

  // ------------------------------------------------------------------- internals

  /**
   * A plain send to a rendezvous peer (or one not yet open): it settles when the value is
   * acknowledged, so the promise is ours, not `staging`'s.
   */
  #sendAndSettle(entry: Entry<Out>, signal: AbortSignal | undefined): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    entry.state = PARKED;
    if (!this.staging.trySend(entry).ok) {
      // The pump is not waiting (no allowance), so no receiver waits: park as a sender.
      const waiter = new ParkedSend(entry);
      entry.waiter = waiter;
      channelInternals.enqueue(this.staging, waiter);
    }
    if (signal !== undefined && (entry.state === PARKED || entry.state === IN_FLIGHT)) {
      const onAbort = (): void => {
        this.#abort(entry);
      };
      entry.signal = signal;
      entry.onAbort = onAbort;
      signal.addEventListener('abort', onAbort);
    }
    return promise;
  }

  #abort(entry: Entry<Out>): void {
    const reason = (entry.signal as AbortSignal).reason as unknown;
    entry.unwatch();
    if (entry.state === PARKED) {
      channelInternals.dequeue(this.staging, entry.waiter as Waiter<Entry<Out>>);
      entry.waiter = null;
      entry.state = SETTLED;
      entry.reject(reason);
      this.#undelivered(entry.value);
    } else if (entry.state === IN_FLIGHT) {
      entry.state = WITHDRAWING;
      entry.abortReason = reason;
      this.#link.write(`["withdraw",${this.#peerId},${entry.seq}]`);
    }
  }

  /** Sends what the allowance lets go, then parks the pump or sends the close. */
  #drain(): void {
    if (this.#state !== ACTIVE || this.#peerId < 0 || !this.#link.writable) return;
    // No `staging` yet: no value waits and no close was asked for.
    const staging = this.#staging;
    const link = this.#link;
    while (staging !== undefined && this.#sent < this.#limit && !link.congested) {
      const result = staging.tryReceive();
      if (!result.ok) break;
      this.#transmit(result.value);
    }
    if (staging?.isClosedForReceive === true) {
      this.#sendClose();
    } else if (this.#sent < this.#limit && !this.#pumpParked && !link.congested) {
      // The loop found no waiting sender, so parking a receiver keeps the invariant
      // (in name only while there is no `staging`: see the `staging` getter).
      this.#pumpParked = true;
      if (staging !== undefined) channelInternals.enqueue(staging, this.#pump as Pump<Out>);
    }
  }

  /** The peer's limit, capped by this end's `maxInFlight` (values left and not acknowledged). */
  #updateLimit(): void {
    this.#limit = Math.min(this.#peerLimit, this.#taken + this.#withdrawn + this.#maxInFlight);
    if (this.#sent >= this.#limit) this.stopWriting();
  }

  /** Sends a value the pump would take at once, without the hop through `staging`. */
  #transmitDirect(value: Out, data: Encoded): void {
    if (this.#capacity === 0 || this.#onUndelivered !== undefined) {
      this.#transmit(new Entry(value, data));
    } else {
      this.#sent++;
      this.#writeValue(data);
    }
    if (this.#sent >= this.#limit) this.stopWriting();
  }

  /**
   * Encodes `value` (wire.ts); bytes on a connection that cannot carry them (a lower
   * protocol version) throw an `EncodeError` instead of travelling in another form.
   */
  #encode(value: Out): Encoded {
    const data = encodeValue(value);
    if (data instanceof Uint8Array && this.#link.bytes === false) {
      throw this.#link.bytesRefused(value);
    }
    return data;
  }

  /** Writes one value's frame: a `v` frame, or a binary message for bytes. */
  #writeValue(data: Encoded): void {
    const id = this.#peerId;
    if (data instanceof Uint8Array) this.#link.writeBytes(id, data);
    else this.#link.write(data === undefined ? `["v",${id}]` : `["v",${id},${data}]`);
  }

  #transmit(entry: Entry<Out>): void {
    if (entry.data instanceof Uint8Array && this.#link.bytes === false) {
      // Staged before the peer's hello said it speaks a version without bytes: refused.
      if (entry.state === PARKED) {
        entry.state = SETTLED;
        entry.waiter = null;
        entry.unwatch();
        entry.reject(this.#link.bytesRefused(entry.value));
      }
      this.#undelivered(entry.value);
      return;
    }
    const seq = ++this.#sent;
    this.#writeValue(entry.data);
    const rendezvous = this.#capacity === 0;
    if (entry.state === PARKED) {
      entry.waiter = null;
      if (rendezvous) {
        entry.state = IN_FLIGHT;
      } else {
        entry.state = SETTLED;
        entry.unwatch();
        entry.resolve();
      }
    }
    if (rendezvous || this.#onUndelivered !== undefined) {
      if (entry.seq !== 0) {
        // The same clause's entry sent again by another select: keep them apart.
        entry = new Entry(entry.value, entry.data);
      }
      entry.seq = seq;
      this.#retained.push(entry);
    }
  }

  /** The peer took `count` more values: forget them, settle rendezvous sends. */
  #release(count: number): void {
    const retained = this.#retained;
    for (let i = 0; i < count && this.#head < retained.length; i++) {
      const entry = retained[this.#head] as Entry<Out>;
      retained[this.#head++] = undefined;
      if (entry.state === IN_FLIGHT || entry.state === WITHDRAWING) {
        entry.state = SETTLED;
        entry.unwatch();
        entry.resolve();
      }
    }
    if (this.#head === retained.length) {
      retained.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > retained.length) {
      retained.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #sendClose(): void {
    this.#state = CLOSE_SENT;
    const id = this.#peerId;
    const cause = this.#closeCause;
    this.#link.write(
      cause === undefined
        ? `["close",${id}]`
        : `["close",${id},${encodeCauseJson(cause, this.#link.sendStacks)}]`,
    );
  }

  /** Ends this direction: retained values (reported when `report`), then waiting sends. */
  #finish(error: unknown, report: boolean): void {
    this.#state = DONE;
    this.stopWriting();
    const retained = this.#retained.slice(this.#head);
    this.#retained = [];
    this.#head = 0;
    for (const entry of retained) {
      if (entry === undefined) continue;
      const state = entry.state;
      entry.state = SETTLED;
      entry.unwatch();
      if (state === IN_FLIGHT) entry.reject(error);
      else if (state === WITHDRAWING) entry.reject(entry.abortReason);
      if (report || state !== SETTLED) this.#undelivered(entry.value);
    }
    // Waiting sends reject with `error`, their values go to onUndelivered.
    this.staging.cancel(error);
  }

  #undelivered(value: Out): void {
    const onUndelivered = this.#onUndelivered;
    if (onUndelivered !== undefined) callReporting(onUndelivered, value);
  }
}

/**
 * The `outgoing` half of a network channel: a {@link SendChannel} whose values go to the
 * peer's `incoming` of the same name, flow-controlled by the peer's capacity.
 */
export class NetworkOutgoing<Out> implements SendChannel<Out> {
  readonly #outbound: Outbound<Out>;

  constructor(outbound: Outbound<Out>) {
    this.#outbound = outbound;
  }

  send(value: Out, options?: WaitOptions): Promise<void> {
    return this.#outbound.send(value, options);
  }

  trySend(value: Out): SendResult {
    return this.#outbound.trySend(value);
  }

  close(cause?: unknown): boolean {
    return this.#outbound.close(cause);
  }

  get isClosedForSend(): boolean {
    return this.#outbound.isClosedForSend;
  }

  onClose(handler: (cause: unknown) => void): () => void {
    return this.#outbound.staging.onClose(handler);
  }

  onSend(value: Out): SelectClause<undefined>;
  onSend<R>(value: Out, handler: () => R | PromiseLike<R>): SelectClause<R>;
  onSend<R>(value: Out, handler?: () => R | PromiseLike<R>): SelectClause<R | undefined> {
    return this.#outbound.onSend(value, handler) as SelectClause<R | undefined>;
  }
}
