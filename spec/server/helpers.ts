// Shared by the server specs: servers closed after each test, a leak check for sockets,
// servers and timers, and small waiting helpers.
import { expect } from 'chai';
import type { Routes, ServeOptions, Server } from '../../lib/server/index.js';
import { serveOn } from './transport.js';

export async function rejection(promise: PromiseLike<unknown>): Promise<unknown> {
  return Promise.resolve(promise).then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** `true` if `promise` settles within `ms`, else `false`; the timer never outlives it. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 10 ms, for at most `ms`. */
export async function waitFor(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A deferred for handshakes between a handler and a test. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
} {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const KINDS = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate']);

function resources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((kind) => KINDS.has(kind))
    .sort();
}

/**
 * Registers hooks: `start(options, routes)` serves and closes the server after the test;
 * after the suite, no socket, server or timer beyond those open before it may remain.
 */
export function useServers(): {
  start: (options: ServeOptions, routes: Routes) => Promise<Server>;
} {
  let baseline: string[] = [];
  const servers: Server[] = [];
  before(() => {
    baseline = resources();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 2000 })));
  });
  // Other suites in the same process may close their own resources meanwhile: only
  // more of a kind than before counts as a leak.
  const leaks = (): string[] => {
    const left = [...baseline];
    return resources().filter((kind) => {
      const index = left.indexOf(kind);
      if (index < 0) return true;
      left.splice(index, 1);
      return false;
    });
  };
  after(async () => {
    for (let i = 0; i < 100 && leaks().length > 0; i++) await sleep(20);
    expect(leaks(), 'sockets, servers or timers left open').to.deep.equal([]);
  });
  return {
    start: async (options, routes) => {
      const server = await serveOn(options, routes);
      servers.push(server);
      return server;
    },
  };
}
