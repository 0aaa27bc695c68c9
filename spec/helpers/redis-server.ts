/**
 * A real redis-server per test run (never the system service): `startRedis()` runs
 * `/usr/bin/redis-server` on a free 127.0.0.1 port with a temporary `--dir`, `--save ''`
 * and `--appendonly no|yes`, waits for PING, and `stop()` shuts it down and removes the
 * directory. `restart()` stops it (saving the append-only file, or not) and starts it
 * again on the same port and directory. `command()` speaks RESP over a raw socket, for
 * faults (`CLIENT KILL`, `CONFIG SET`) without a client library in the way.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** The running process (SIGSTOP/SIGCONT it for a frozen server). */
  readonly process: ChildProcess;
  /** One command; resolves with the reply's first line (`+OK`, `:3`, `-ERR …`, `$5` …). */
  command(...args: string[]): Promise<string>;
  /**
   * Stops the server and starts it again on the same port and directory. `appendonly`:
   * the append-only setting of the new run (default: as before); with it on, the old
   * run's data is fsynced at shutdown and loaded again.
   */
  restart(options?: { readonly appendonly?: boolean }): Promise<void>;
  /** Shuts it down (SIGKILL if it does not exit within 5 s) and removes the directory. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

/** Sends one RESP command to 127.0.0.1:`port`; resolves with the reply's first line. */
export function redisCommand(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis-server on ${port} did not answer ${args.join(' ')} within 5 s`));
    }, 5000);
    const done = (error: Error | null, line?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(line ?? '');
    };
    socket.on('error', (error) => {
      done(error);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(null, reply.slice(0, end));
    });
    socket.on('close', () => {
      // SHUTDOWN answers by closing.
      done(null, reply);
    });
    let request = `*${args.length}\r\n`;
    for (const arg of args) request += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    socket.write(request);
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function launch(port: number, dir: string, appendonly: boolean): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      appendonly ? 'yes' : 'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    try {
      if ((await redisCommand(port, ['PING'])) === '+PONG') return child;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on ${port} did not answer PING within 5 s`);
}

/** Starts a private redis-server; see the module doc. */
export async function startRedis(options?: {
  readonly appendonly?: boolean;
}): Promise<RedisServer> {
  let appendonly = options?.appendonly ?? false;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const port = await freePort();
  let child = await launch(port, dir, appendonly);
  const shutdown = async (save: boolean): Promise<void> => {
    if (child.signalCode === 'SIGSTOP') child.kill('SIGCONT');
    await redisCommand(port, save ? ['SHUTDOWN'] : ['SHUTDOWN', 'NOSAVE']).catch(() => '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited(child);
    clearTimeout(timer);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get process() {
      return child;
    },
    command: (...args) => redisCommand(port, args),
    restart: async (restartOptions) => {
      await shutdown(appendonly);
      appendonly = restartOptions?.appendonly ?? appendonly;
      child = await launch(port, dir, appendonly);
    },
    stop: async () => {
      await shutdown(false);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy to a redis-server whose `loseReplies()` makes replies vanish with the connection. */
export interface RedisProxy {
  readonly url: string;
  /**
   * For the connections open now: replies from Redis are no longer forwarded (the
   * commands still run), and after `ms` the client side is closed, as a connection that
   * dies after Redis executed a command and before its reply arrived.
   */
  loseReplies(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function redisProxy(port: number): Promise<RedisProxy> {
  const pairs = new Set<{
    client: import('node:net').Socket;
    upstream: import('node:net').Socket;
    mute: boolean;
  }>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    const pair = { client, upstream, mute: false };
    pairs.add(pair);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!pair.mute) client.write(chunk);
    });
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `redis://127.0.0.1:${address.port}`,
    loseReplies: async (ms) => {
      const now = [...pairs];
      for (const pair of now) pair.mute = true;
      await new Promise((resolve) => setTimeout(resolve, ms));
      for (const pair of now) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
