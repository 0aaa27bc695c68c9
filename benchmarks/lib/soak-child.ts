/**
 * The soak's handle on its server process (`soak-server.ts`): starts it, sends commands,
 * waits for answers with a deadline, and watches it. A child whose ticks stop for
 * {@link HANG_MS} is declared hung and killed; one whose rss passes {@link RSS_LIMIT}, or
 * that dies of V8's heap limit, is declared out of memory. Every wait here is bounded, so
 * an attack that breaks the server still ends with a row in the table.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { SoakServerConfig } from './soak-server.js';

/**
 * No tick for this long: the server's event loop is stuck, and the server is killed. (A
 * shorter stall on a loaded machine shows in the delay histogram once ticks resume.)
 */
export const HANG_MS = 15_000;
/** The server's resident memory beyond this: killed as out of memory (the machine is shared). */
export const RSS_LIMIT = 3 * 1024 ** 3;
/** V8's old-space limit for the server, in MiB: a runaway heap ends as a V8 OOM. */
const OLD_SPACE_MB = 2048;

const SERVER = fileURLToPath(new URL('./soak-server.ts', import.meta.url));

export type Outcome = 'ok' | 'hung' | 'OOM' | 'crashed';

export interface Message {
  readonly type: string;
  readonly [key: string]: unknown;
}

export class SoakChild {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #waiters: { type: string; resolve: (message: Message | undefined) => void }[] = [];
  #lastTick = Date.now();
  #sessions = 0;
  #rss = 0;
  #peakRss = 0;
  #peakHeapExternal = 0;
  #outcome: Outcome = 'ok';
  #stderr = '';
  #stopping = false;
  #exit = '';
  readonly #exited: Promise<void>;
  readonly #watchdog: ReturnType<typeof setInterval>;
  port = 0;

  private constructor(config: SoakServerConfig) {
    this.#child = spawn(
      process.execPath,
      [
        '--expose-gc',
        `--max-old-space-size=${OLD_SPACE_MB}`,
        // e.g. SOAK_SERVER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the server
        ...(process.env.SOAK_SERVER_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
        '--import',
        'tsx',
        SERVER,
        JSON.stringify(config),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.#child.stdin.on('error', () => undefined);
    this.#child.on('error', (error) => {
      this.#stderr += `spawn failed: ${String(error)}\n`;
    });
    const log = process.env.SOAK_SERVER_LOG;
    this.#child.stderr.on('data', (chunk: Buffer) => {
      if (log !== undefined) appendFileSync(log, chunk);
      if (this.#stderr.length < 100_000) this.#stderr += chunk.toString();
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        if (log !== undefined) appendFileSync(log, `${line}\n`);
        return;
      }
      if (message.type === 'tick') {
        this.#lastTick = Date.now();
        this.#sessions = Number(message.sessions);
        this.#rss = Number(message.rss);
        this.#peakRss = Math.max(this.#peakRss, this.#rss);
        this.#peakHeapExternal = Math.max(
          this.#peakHeapExternal,
          Number(message.heap) + Number(message.external),
        );
        return;
      }
      const index = this.#waiters.findIndex((waiter) => waiter.type === message.type);
      if (index >= 0) this.#waiters.splice(index, 1)[0]?.resolve(message);
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('close', (code, signal) => {
        this.#exit = String(code ?? signal);
        clearInterval(this.#watchdog);
        if (this.#outcome === 'ok' && !this.#stopping) {
          this.#outcome = /heap out of memory|Allocation failed/.test(this.#stderr)
            ? 'OOM'
            : 'crashed';
          if (this.#outcome === 'crashed') {
            process.stderr.write(
              `  server exited (${String(code ?? signal)}): ${this.#stderr.slice(-2000)}\n`,
            );
          }
        }
        for (const waiter of this.#waiters.splice(0)) waiter.resolve(undefined);
        resolve();
      });
    });
    this.#watchdog = setInterval(() => {
      if (this.#outcome !== 'ok') return;
      if (Date.now() - this.#lastTick > HANG_MS) this.#kill('hung');
      else if (this.#rss > RSS_LIMIT) this.#kill('OOM');
    }, 250);
  }

  static async start(config: SoakServerConfig): Promise<SoakChild> {
    const child = new SoakChild(config);
    const ready = await child.#wait('ready', 60_000);
    if (ready === undefined) {
      await child.stop();
      throw new Error(
        `the soak server did not start within 60 s (exit: ${child.#exit || 'none'}): ${child.#stderr}`,
      );
    }
    child.port = Number(ready.port);
    child.#lastTick = Date.now();
    return child;
  }

  /** `'ok'` while the server runs normally; else why it was stopped. */
  get outcome(): Outcome {
    return this.#outcome;
  }

  /** The peaks seen in ticks since {@link SoakChild.resetPeaks}: all a hung server leaves. */
  get peaks(): { readonly rss: number; readonly heapExternal: number } {
    return { rss: this.#peakRss, heapExternal: this.#peakHeapExternal };
  }

  resetPeaks(): void {
    this.#peakRss = 0;
    this.#peakHeapExternal = 0;
  }

  /** `server.sessions` as of the last tick. */
  get sessions(): number {
    return this.#sessions;
  }

  get alive(): boolean {
    return this.#outcome === 'ok' && this.#child.exitCode === null;
  }

  #kill(outcome: Outcome): void {
    this.#outcome = outcome;
    this.#child.kill('SIGKILL');
  }

  #wait(type: string, ms: number): Promise<Message | undefined> {
    if (!this.alive) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = {
        type,
        resolve: (message: Message | undefined) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        resolve(undefined);
      }, ms);
      this.#waiters.push(waiter);
    });
  }

  /** Sends `command` and waits up to `ms` for the answer of type `type`. */
  request(command: string, type: string, ms: number): Promise<Message | undefined> {
    const answer = this.#wait(type, ms);
    if (this.alive) this.#child.stdin.write(`${command}\n`);
    return answer;
  }

  /** Ends the server: stdin closed (it closes and exits), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#watchdog);
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
