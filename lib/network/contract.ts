/**
 * Contracts: a set of network channels declared once, in code both ends import — each
 * channel's name, direction, value type, the receiver's capacity and an optional schema —
 * from which the server and the client get typed halves (the server's `SendChannel<Job>`
 * of `jobs` is the client's `ReceiveChannel<Job>`). The two ends compare what they
 * declared at connect (docs/protocol.md section 8): a mismatch is a
 * `ContractMismatchError` naming the channel, never a silent wait.
 *
 * @module
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { ReceiveChannel, SendChannel } from '../channel-types.js';
import { describeValue } from '../internal/describe-value.js';

/** Who sends on a contract channel: `'toServer'` (the client sends) or `'toClient'`. */
export type ChannelDirection = 'toServer' | 'toClient';

/** Options of {@link toServer} and {@link toClient}. */
export interface ChannelDeclarationOptions<T> {
  /**
   * The receiving end's buffer, which the sender's `send` is flow-controlled by: 0
   * (rendezvous), a positive integer, or `Infinity`. As `NetworkChannelOptions.capacity`.
   * @default 0
   */
  readonly capacity?: number | undefined;
  /**
   * A Standard Schema the receiving end validates every value with (a failure closes the
   * connection with 1007), as `NetworkChannelOptions.schema`.
   * @default undefined (values are received as JSON gives them)
   */
  readonly schema?: StandardSchemaV1<unknown, T> | undefined;
}

/**
 * One channel of a contract: made by {@link toServer} or {@link toClient}; `T` is the
 * value type, carried at the type level only.
 */
export interface ChannelDeclaration<T, D extends ChannelDirection = ChannelDirection> {
  /** Who sends. */
  readonly direction: D;
  /** The receiving end's capacity. */
  readonly capacity: number;
  /** The receiving end's schema, if any. */
  readonly schema: StandardSchemaV1<unknown, T> | undefined;
  /** Type-level only (never set): the value type. */
  readonly valueType?: T;
}

/** The channels of a contract, by name. */
export type ChannelDeclarations = Readonly<Record<string, ChannelDeclaration<unknown>>>;

/** A contract: its name, version and channels. Made by {@link contract}. */
export interface Contract<C extends ChannelDeclarations = ChannelDeclarations> {
  /** Compared at connect: ends with different names do not talk. */
  readonly name: string;
  /** Compared at connect: bump it when a channel's meaning or value type changes. */
  readonly version: number;
  /** The channels, by name (the name is the channel's name on the wire). */
  readonly channels: C;
}

/** The value type of a declaration. */
export type ValueOf<D> = D extends ChannelDeclaration<infer T> ? T : never;

/**
 * The server's halves of a contract's channels: a `SendChannel` for each `toClient`
 * channel, a `ReceiveChannel` for each `toServer` one.
 */
export type ServerChannels<C extends ChannelDeclarations> = {
  readonly [K in keyof C]: C[K] extends ChannelDeclaration<infer T, 'toClient'>
    ? SendChannel<T>
    : ReceiveChannel<ValueOf<C[K]>>;
};

/**
 * The client's halves of a contract's channels: a `SendChannel` for each `toServer`
 * channel, a `ReceiveChannel` for each `toClient` one.
 */
export type ClientChannels<C extends ChannelDeclarations> = {
  readonly [K in keyof C]: C[K] extends ChannelDeclaration<infer T, 'toServer'>
    ? SendChannel<T>
    : ReceiveChannel<ValueOf<C[K]>>;
};

/** The values sent on a side's channels, by name: for `onUndelivered` per channel. */
export type Undelivered<C extends ChannelDeclarations, D extends ChannelDirection> = {
  readonly [K in keyof C as C[K] extends ChannelDeclaration<unknown, D> ? K : never]?:
    ((value: ValueOf<C[K]>) => void) | undefined;
};

function declare<T, D extends ChannelDirection>(
  direction: D,
  options: ChannelDeclarationOptions<T>,
): ChannelDeclaration<T, D> {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new TypeError(`Expected options to be an object, got ${describeValue(options)}`);
  }
  const capacity: unknown = options.capacity ?? 0;
  if (
    typeof capacity !== 'number' ||
    (capacity !== Infinity && !(Number.isSafeInteger(capacity) && capacity >= 0))
  ) {
    throw new RangeError(
      `Expected capacity to be a non-negative integer or Infinity, got ${describeValue(capacity)}`,
    );
  }
  return Object.freeze({ direction, capacity, schema: options.schema });
}

/**
 * Declares a channel the client sends on and the server receives.
 * @throws RangeError if `capacity` is not a non-negative integer or `Infinity`.
 */
export function toServer<T>(
  options: ChannelDeclarationOptions<T> = {},
): ChannelDeclaration<T, 'toServer'> {
  return declare<T, 'toServer'>('toServer', options);
}

/**
 * Declares a channel the server sends on and the client receives.
 * @throws RangeError if `capacity` is not a non-negative integer or `Infinity`.
 */
export function toClient<T>(
  options: ChannelDeclarationOptions<T> = {},
): ChannelDeclaration<T, 'toClient'> {
  return declare<T, 'toClient'>('toClient', options);
}

/**
 * Declares a contract: the network channels of one kind of connection, shared by the
 * server and the client code.
 *
 * - **At connect** each end sends what it declared (names, directions, the contract's
 *   name and version) after the hello; the other end compares: a name only one side has,
 *   a direction that differs, or another contract name or version fails the connection
 *   with a `ContractMismatchError` naming the channel (close code 1008). A peer without a
 *   contract (ad hoc `channels()`) or of protocol version 1 is not checked.
 * - Capacity and schema are the receiving end's: they do not need to agree.
 * - Differs from KVision's service interfaces (checked by the compiler only, since both
 *   ends are built together): two ends built from different commits are caught at run time.
 *
 * @throws TypeError if `name` is not a string, `version` not a positive integer or
 *   `channels` not an object of declarations.
 * @example
 * ```ts
 * export const Jobs = contract('jobs', 1, {
 *   jobs: toClient<{ id: number }>({ capacity: 4 }),
 *   results: toServer<{ id: number; ok: boolean }>({ capacity: 16 }),
 * });
 * ```
 */
export function contract<C extends ChannelDeclarations>(
  name: string,
  version: number,
  channels: C,
): Contract<C> {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`Expected name to be a non-empty string, got ${describeValue(name)}`);
  }
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new TypeError(`Expected version to be a positive integer, got ${describeValue(version)}`);
  }
  if (typeof channels !== 'object' || (channels as unknown) === null) {
    throw new TypeError(`Expected channels to be an object, got ${describeValue(channels)}`);
  }
  for (const [key, declaration] of Object.entries(channels)) {
    const direction: unknown = (declaration as Partial<ChannelDeclaration<unknown>>).direction;
    if (direction !== 'toServer' && direction !== 'toClient') {
      throw new TypeError(
        `Expected channel '${key}' to be declared with toServer() or toClient(), got ${describeValue(declaration)}`,
      );
    }
  }
  return Object.freeze({ name, version, channels: Object.freeze({ ...channels }) });
}

/**
 * What one end says about its contract in the `contract` frame: the contract's name and
 * version and, per channel name, whether this end sends (`'s'`) or receives (`'r'`).
 * Internal.
 */
export interface ContractView {
  readonly name: string;
  readonly version: number;
  readonly sends: ReadonlyMap<string, boolean>;
}

/**
 * The views of each frozen contract (what `contract()` makes), by side: made once, not
 * per session (a view is read only).
 */
const views = new WeakMap<Contract, { server?: ContractView; client?: ContractView }>();

/** A contract seen from one side; internal. */
export function viewOf(declared: Contract, side: 'server' | 'client'): ContractView {
  const frozen = Object.isFrozen(declared) && Object.isFrozen(declared.channels);
  let cached = frozen ? views.get(declared) : undefined;
  const known = cached?.[side];
  if (known !== undefined) return known;
  const sends = new Map<string, boolean>();
  for (const [key, declaration] of Object.entries(declared.channels)) {
    sends.set(key, (declaration.direction === 'toClient') === (side === 'server'));
  }
  const view = { name: declared.name, version: declared.version, sends };
  if (frozen) {
    if (cached === undefined) views.set(declared, (cached = {}));
    cached[side] = view;
  }
  return view;
}

/** The `contract` frame's body for a view: `[name, version, [[channel, 's'|'r'], …]]`. */
export function encodeView(view: ContractView): string {
  const channels = [...view.sends].map(([key, sends]) => [key, sends ? 's' : 'r']);
  return JSON.stringify([view.name, view.version, channels]);
}

/**
 * Compares this end's view with the peer's (parsed from its frame); the first
 * difference as `[message, channel]`, or `undefined` when they agree. Internal.
 */
export function compareViews(
  own: ContractView,
  peer: ContractView,
): [message: string, channel: string | undefined] | undefined {
  if (own.name !== peer.name || own.version !== peer.version) {
    return [
      `Expected the peer's contract to be '${own.name}' version ${String(own.version)}, got '${peer.name}' version ${String(peer.version)}`,
      undefined,
    ];
  }
  for (const [key, sends] of own.sends) {
    const theirs = peer.sends.get(key);
    if (theirs === undefined) {
      return [
        `Expected the peer's contract '${own.name}' to have channel '${key}', got none of that name`,
        key,
      ];
    }
    if (theirs === sends) {
      const both = sends ? 'send on' : 'receive from';
      return [
        `Expected the peer to ${sends ? 'receive from' : 'send on'} channel '${key}' of contract '${own.name}', got both ends declaring to ${both} it`,
        key,
      ];
    }
  }
  for (const key of peer.sends.keys()) {
    if (!own.sends.has(key)) {
      return [
        `Expected the peer's contract '${own.name}' to have only this end's channels, got '${key}' too`,
        key,
      ];
    }
  }
  return undefined;
}

/** Parses a peer's `contract` frame elements; `undefined` if malformed. Internal. */
export function parseView(
  name: unknown,
  version: unknown,
  list: unknown,
): ContractView | undefined {
  if (typeof name !== 'string' || !Number.isSafeInteger(version) || !Array.isArray(list)) {
    return undefined;
  }
  const sends = new Map<string, boolean>();
  for (const item of list as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2) return undefined;
    const [key, role] = item as unknown[];
    if (typeof key !== 'string' || (role !== 's' && role !== 'r') || sends.has(key)) {
      return undefined;
    }
    sends.set(key, role === 's');
  }
  return { name, version: version as number, sends };
}
