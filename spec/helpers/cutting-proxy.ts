/**
 * A TCP proxy for fault tests (Node only): it listens on 127.0.0.1 (a free port), opens
 * one upstream connection per client connection, forwards bytes both ways, and cuts the
 * connections it carries on command ({@link CuttingProxy.cut}) or at random intervals
 * ({@link CuttingProxy.startCutting}, driven by a seeded PRNG so that a failing run can be
 * replayed with the printed seed). Three ways to cut:
 * - `'close'`: a clean TCP close, `end()` on both sides (each peer reads a FIN; a
 *   WebSocket sees the connection drop without a Close frame: 1006);
 * - `'reset'`: `resetAndDestroy()` on both sides (each peer gets an RST: `ECONNRESET`);
 * - `'blackhole'`: forwarding stops both ways and both sockets stay open; what either
 *   peer sends is read and discarded, so only a heartbeat or an idle timeout tells them.
 *   Each side is closed when its own peer closes it (or by {@link CuttingProxy.close}).
 *
 * Everything it opened (server, sockets, timer) is closed by `close()`.
 *
 * @module
 */
import { createServer, connect as netConnect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** How a connection is cut. */
export type CutMode = 'close' | 'reset' | 'blackhole';

/** Every cut mode, in a fixed order. */
export const CUT_MODES: readonly CutMode[] = Object.freeze(['close', 'reset', 'blackhole']);

/** Options of {@link CuttingProxy.startCutting}. */
export interface CuttingOptions {
  /** Shortest wait between two cuts, in ms. @default 50 */
  readonly minMs?: number | undefined;
  /** Longest wait between two cuts, in ms. @default 500 */
  readonly maxMs?: number | undefined;
  /** The modes picked from at random (uniformly). @default every mode */
  readonly modes?: readonly CutMode[] | undefined;
}

/** Options of {@link startCuttingProxy}. */
export interface CuttingProxyOptions {
  /** The port on 127.0.0.1 that connections are forwarded to. */
  readonly targetPort: number;
  /**
   * The PRNG's seed (a 32-bit unsigned integer): the same seed gives the same waits and
   * modes. @default `SLUICE_CUT_SEED` from the environment, else a random one
   */
  readonly seed?: number | undefined;
}

/** How many connections were cut, by mode. */
export type CutCounts = Readonly<Record<CutMode, number>>;

/**
 * Mulberry32: a small, fast 32-bit PRNG, good enough to pick waits and modes; returns a
 * function giving floats in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The first `count` steps of the random cutting that `seed` drives: how long to wait
 * before each cut, and its mode (what {@link CuttingProxy.startCutting} does, for tests).
 */
export function cutPlan(
  seed: number,
  count: number,
  options: CuttingOptions = {},
): { readonly waitMs: number; readonly mode: CutMode }[] {
  const { minMs, maxMs, modes } = checkCutting(options);
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => nextStep(random, minMs, maxMs, modes));
}

function nextStep(
  random: () => number,
  minMs: number,
  maxMs: number,
  modes: readonly CutMode[],
): { readonly waitMs: number; readonly mode: CutMode } {
  const waitMs = minMs + Math.floor(random() * (maxMs - minMs + 1));
  const mode = modes[Math.floor(random() * modes.length)] ?? 'close';
  return { waitMs, mode };
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

function checkCutting(options: CuttingOptions): {
  minMs: number;
  maxMs: number;
  modes: readonly CutMode[];
} {
  const minMs = options.minMs ?? 50;
  const maxMs = options.maxMs ?? 500;
  const modes = options.modes ?? CUT_MODES;
  if (!Number.isSafeInteger(minMs) || minMs < 1) {
    throw new RangeError(`Expected minMs to be a positive integer, got ${describe(minMs)}`);
  }
  if (!Number.isSafeInteger(maxMs) || maxMs < minMs) {
    throw new RangeError(
      `Expected maxMs to be an integer ≥ minMs (${minMs}), got ${describe(maxMs)}`,
    );
  }
  if (!Array.isArray(modes) || modes.length === 0) {
    throw new TypeError(
      `Expected modes to be a non-empty array of cut modes, got ${describe(modes)}`,
    );
  }
  for (const mode of modes as readonly unknown[]) {
    if (!CUT_MODES.includes(mode as CutMode)) {
      throw new TypeError(
        `Expected each mode to be 'close', 'reset' or 'blackhole', got ${describe(mode)}`,
      );
    }
  }
  return { minMs, maxMs, modes };
}

/** One client connection and its upstream connection. */
interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  state: 'forwarding' | 'cut';
}

/**
 * Forwards `from` to `to` while the link is forwarding (with backpressure); once it is
 * cut, reads and discards. A FIN is passed on while forwarding, and so is a socket's end.
 */
function forward(link: Link, from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (link.state !== 'forwarding') return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => {
    if (link.state === 'forwarding') to.end();
    else from.end();
  });
  from.on('close', () => {
    if (link.state === 'forwarding') to.destroy();
  });
  // ECONNRESET, EPIPE: the close that follows does the rest.
  from.on('error', () => undefined);
}

/** A running cutting proxy; see the module doc. */
export interface CuttingProxy {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** `ws://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** The PRNG's seed: print it when a test fails, pass it back to replay the run. */
  readonly seed: number;
  /** Client connections accepted so far. */
  readonly accepted: number;
  /** Connections being forwarded now (not cut, not closed). */
  readonly live: number;
  /** Connections cut so far, by mode (a cut of N live connections counts N). */
  readonly cuts: CutCounts;
  /** The sum of {@link CuttingProxy.cuts}. */
  readonly totalCuts: number;
  /**
   * Cuts every live connection now, with `mode` (default: one picked by the PRNG);
   * returns how many were cut (0 when none was live: nothing is counted then).
   */
  cut(mode?: CutMode): number;
  /**
   * Cuts at random from now on: waits `minMs`–`maxMs` (uniform, from the PRNG), cuts the
   * live connections with a mode picked from `modes`, and again, until `stopCutting()`
   * or `close()`. A wait with no live connection at its end cuts nothing. Calling it
   * while cutting restarts the schedule with the new options.
   * @throws RangeError/TypeError for invalid options.
   */
  startCutting(options?: CuttingOptions): void;
  /** Stops the random cutting (connections stay as they are). */
  stopCutting(): void;
  /** Stops cutting, destroys every socket and closes the server; resolves when done. */
  close(): Promise<void>;
}

function seedFromEnvironment(): number | undefined {
  const text = process.env['SLUICE_CUT_SEED'];
  if (text === undefined || text === '') return undefined;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(
      `Expected SLUICE_CUT_SEED to be an integer from 0 to 4294967295, got '${text}'`,
    );
  }
  return seed;
}

/**
 * Starts a {@link CuttingProxy} on 127.0.0.1 (any free port) in front of
 * `127.0.0.1:targetPort`.
 * @throws RangeError for an invalid port or seed.
 */
export async function startCuttingProxy(options: CuttingProxyOptions): Promise<CuttingProxy> {
  const { targetPort } = options;
  if (!Number.isSafeInteger(targetPort) || targetPort < 1 || targetPort > 65535) {
    throw new RangeError(
      `Expected targetPort to be an integer from 1 to 65535, got ${describe(targetPort)}`,
    );
  }
  const seed = options.seed ?? seedFromEnvironment() ?? Math.floor(Math.random() * 0x100000000);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(
      `Expected seed to be an integer from 0 to 4294967295, got ${describe(seed)}`,
    );
  }
  const random = seededRandom(seed);
  const links = new Set<Link>();
  const sockets = new Set<Socket>();
  const cuts: Record<CutMode, number> = { close: 0, reset: 0, blackhole: 0 };
  let accepted = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    if (closed) {
      client.destroy();
      return;
    }
    accepted += 1;
    track(client);
    const upstream = netConnect({ port: targetPort, host: '127.0.0.1' });
    track(upstream);
    const link: Link = { client, upstream, state: 'forwarding' };
    links.add(link);
    const forget = (): void => {
      if (client.destroyed && upstream.destroyed) links.delete(link);
    };
    client.on('close', forget);
    upstream.on('close', forget);
    forward(link, client, upstream);
    forward(link, upstream, client);
    client.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const cutLink = (link: Link, mode: CutMode): void => {
    link.state = 'cut';
    for (const socket of [link.client, link.upstream]) {
      if (mode === 'close') socket.end();
      else if (mode === 'reset') socket.resetAndDestroy();
      // 'blackhole': keep reading (and discarding) so that the peer's writes go somewhere.
      else socket.resume();
    }
  };

  const cut = (mode?: CutMode): number => {
    const chosen = mode ?? nextStep(random, 1, 1, CUT_MODES).mode;
    if (!CUT_MODES.includes(chosen)) {
      throw new TypeError(
        `Expected mode to be 'close', 'reset' or 'blackhole', got ${describe(chosen)}`,
      );
    }
    let count = 0;
    for (const link of links) {
      if (link.state !== 'forwarding' || link.client.destroyed || link.upstream.destroyed) continue;
      cutLink(link, chosen);
      count += 1;
    }
    cuts[chosen] += count;
    return count;
  };

  const stopCutting = (): void => {
    clearTimeout(timer);
    timer = undefined;
  };

  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    seed,
    get accepted() {
      return accepted;
    },
    get live() {
      let count = 0;
      for (const link of links) if (link.state === 'forwarding') count += 1;
      return count;
    },
    get cuts() {
      return { ...cuts };
    },
    get totalCuts() {
      return cuts.close + cuts.reset + cuts.blackhole;
    },
    cut,
    startCutting(cutting: CuttingOptions = {}) {
      const { minMs, maxMs, modes } = checkCutting(cutting);
      stopCutting();
      if (closed) return;
      const schedule = (): void => {
        const step = nextStep(random, minMs, maxMs, modes);
        timer = setTimeout(() => {
          cut(step.mode);
          schedule();
        }, step.waitMs);
      };
      schedule();
    },
    stopCutting,
    async close() {
      closed = true;
      stopCutting();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const socketsClosed = [...sockets].map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.closed) resolve();
            else socket.once('close', () => resolve());
          }),
      );
      for (const socket of sockets) socket.destroy();
      await Promise.all([serverClosed, ...socketsClosed]);
    },
  };
}
