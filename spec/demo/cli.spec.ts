/**
 * `npm start` and `npm run start:bot` as a user runs them: real processes, stopped the
 * way a terminal (Ctrl+C: SIGINT to the process group) or a process manager (SIGTERM)
 * stops them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { connect } from '../../lib/websocket/index.js';
import type { Session } from '../../lib/websocket/index.js';
import { Chat } from '../../demo/protocol.js';
import type { ClientMsg, ServerMsg } from '../../demo/protocol.js';
import { startDemo } from '../../demo/server.js';
import type { Demo } from '../../demo/server.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  /** Resolves with the first match of `pattern` in stdout (rejects if the process ends first). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Everything the process wrote so far. */
  readonly output: () => { stdout: string; stderr: string };
  /** Settles once the process has exited and its output is closed. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `command` in its own process group (as a terminal runs a job), in the repository. */
function run(command: string, args: readonly string[], env: Record<string, string>): Running {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const watcher of watchers) watcher();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      resolve({ code, signal });
      for (const watcher of watchers) watcher();
    });
  });
  return {
    child,
    output: () => ({ stdout, stderr }),
    closed,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(stdout);
          if (match !== null) {
            watchers.delete(check);
            resolve(match);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            watchers.delete(check);
            reject(new Error(`${command} ended before printing ${pattern}:\n${stdout}\n${stderr}`));
          }
        };
        watchers.add(check);
        check();
      }),
  };
}

async function collect(session: Session<ServerMsg, ClientMsg>): Promise<ServerMsg[]> {
  const rest: ServerMsg[] = [];
  for await (const message of session.incoming) rest.push(message);
  return rest;
}

describe('demo command line', function () {
  this.timeout(60_000);
  const processes: Running[] = [];
  const sessions: Session<ServerMsg, ClientMsg>[] = [];
  const demos: Demo[] = [];

  function start(command: string, args: readonly string[], env: Record<string, string> = {}) {
    const running = run(command, args, env);
    processes.push(running);
    return running;
  }

  async function join(wsUrl: string, name: string): Promise<Session<ServerMsg, ClientMsg>> {
    const session = await connect<ServerMsg, ClientMsg>(`${wsUrl}${Chat.path}`, {
      codec: Chat.clientCodec,
    });
    sessions.push(session);
    await session.outgoing.send({ type: 'join', name });
    return session;
  }

  afterEach(async () => {
    for (const session of sessions.splice(0)) await session.close();
    for (const running of processes.splice(0)) {
      const { child } = running;
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(-child.pid, 'SIGKILL');
      }
      await running.closed;
    }
    for (const demo of demos.splice(0)) await demo.close();
  });

  it('npm start prints the URL, runs the bot, and on Ctrl+C closes every client with 1001', async () => {
    const npm = start('npm', ['start', '--silent'], { PORT: '0' });
    const [, url = ''] = await npm.waitFor(/^sluice chat demo: (http:\/\/127\.0\.0\.1:\d+\/)$/m);
    const page = await fetch(url);
    expect(page.status).to.equal(200);
    const ada = await join(url.replace(/^http/, 'ws').replace(/\/$/, ''), 'ada');
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'welcome',
      name: 'ada',
      members: ['bot', 'ada'],
    });
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'message',
      from: 'bot',
      text: 'Welcome, ada! Say "@bot help" to see what I can do.',
    });
    process.kill(-npm.child.pid!, 'SIGINT'); // what Ctrl+C in a terminal does
    const rest = await collect(ada);
    expect(rest.map((m) => [m.type, 'name' in m ? m.name : undefined])).to.deep.equal([
      ['left', 'bot'],
    ]);
    expect(await ada.closed).to.deep.equal({ code: 1001, reason: 'Going away', wasClean: true });
    await npm.closed;
    const lines = npm.output().stdout.trimEnd().split('\n');
    expect(lines.at(-1)).to.match(/^\d\d:\d\d:\d\d stopped$/);
    expect(lines.some((line) => line.endsWith('SIGINT: closing connections (1001 Going away)…'))).to
      .be.true;
  });

  it('SIGTERM to the server process shuts it down cleanly: 1001 to clients, exit code 0', async () => {
    const server = start(process.execPath, ['--import', 'tsx', 'demo/start.ts'], {
      PORT: '0',
      DEMO_BOT: '0',
    });
    const [, wsUrl = ''] = await server.waitFor(
      /^sluice chat demo: http(:\/\/127\.0\.0\.1:\d+)\/$/m,
    );
    const ada = await join(`ws${wsUrl}`, 'ada');
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
    });
    server.child.kill('SIGTERM');
    expect(await ada.closed).to.deep.equal({ code: 1001, reason: 'Going away', wasClean: true });
    expect(await server.closed).to.deep.equal({ code: 0, signal: null });
    expect(server.output().stderr).to.equal('');
  });

  it('npm start on a port in use says so and exits with 1', async () => {
    const demo = await startDemo({ port: 0, bot: false });
    demos.push(demo);
    const server = start(process.execPath, ['--import', 'tsx', 'demo/start.ts'], {
      PORT: String(demo.port),
    });
    expect(await server.closed).to.deep.equal({ code: 1, signal: null });
    expect(server.output().stderr).to.equal(
      `Port ${demo.port} is in use: try PORT=8081 npm start, or PORT=0 for any free port.\n`,
    );
  });

  it('npm run start:bot joins a running demo, answers, and leaves on Ctrl+C', async () => {
    const demo = await startDemo({ port: 0, bot: false });
    demos.push(demo);
    const ada = await join(demo.wsUrl, 'ada');
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'welcome',
      name: 'ada',
      members: ['ada'],
    });
    // The URL as `npm start` prints it; the bot's default name is bot2.
    const bot = start('npm', ['run', 'start:bot', '--silent', '--', demo.url]);
    expect(await ada.incoming.receive()).to.deep.include({ type: 'joined', name: 'bot2' });
    await ada.outgoing.send({ type: 'say', text: 'hi @bot2 ping' });
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'message',
      from: 'ada',
      text: 'hi @bot2 ping',
    });
    expect(await ada.incoming.receive()).to.deep.include({
      type: 'message',
      from: 'bot2',
      text: 'pong, ada',
    });
    await bot.waitFor(/joined as bot2; here: ada, bot2$/m);
    process.kill(-bot.child.pid!, 'SIGINT');
    expect(await ada.incoming.receive()).to.deep.include({ type: 'left', name: 'bot2' });
    await bot.closed;
    expect(bot.output().stdout.trimEnd().split('\n').at(-1)).to.match(/^\d\d:\d\d:\d\d stopped$/);
  });
});
