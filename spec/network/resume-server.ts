/**
 * The Node side of the resume fault scenario (Node only): a sluice server on 127.0.0.1
 * serving {@link scenarioServer}'s route with a fast heartbeat (so that a black hole is
 * detected within a few hundred ms), and a {@link CuttingProxy} in front of it. The
 * client side connects to `proxy.url`.
 */
import { route, serve } from '../../lib/server/index.js';
import { text } from '../../lib/websocket/index.js';
import { startCuttingProxy } from '../helpers/cutting-proxy.js';
import type { CuttingOptions, CuttingProxy } from '../helpers/cutting-proxy.js';
import { ResumeEndpoint, describeCounts, judge, scenarioServer } from './resume-scenario.js';
import type { CutCounts } from '../helpers/cutting-proxy.js';
import type { ScenarioConfig, ScenarioServer, SideReport } from './resume-scenario.js';

/** The path of the report exchange (served directly, not through the proxy). */
export const REPORT_PATH = '/resume-report';

/** What the report exchange answers: the server's report and the proxy's counts. */
export interface ServerAnswer {
  /** The server's report, or null when its side did not finish in time. */
  readonly server: SideReport | null;
  readonly cuts: CutCounts;
  readonly totalCuts: number;
  readonly seed: number;
}

/**
 * Heartbeat of the scenario's server: a ping every 250 ms, 1 s for its pong (a loaded
 * machine delays a browser's pong past 200 ms; a connection dropped before its resume
 * token arrived cannot resume).
 */
export const HEARTBEAT = { pingInterval: 250, pongTimeout: 1_000 } as const;

/** A scenario server behind a cutting proxy. */
export interface ScenarioRig {
  readonly scenario: ScenarioServer;
  readonly proxy: CuttingProxy;
  /** The server's own URL (not through the proxy). */
  readonly directUrl: string;
  /** The client's report, once a client sent it on {@link REPORT_PATH}. */
  readonly clientReport: Promise<SideReport>;
  /**
   * Starts the proxy's random cutting once the server has received a first value: the
   * client's handler runs only once its session is ready, after the server's resume token
   * arrived. A cut before that ends the session by design (it cannot resume:
   * docs/protocol.md section 12); the scenario tests resumes. (Waiting a fixed 300 ms
   * after the first connection was not enough: on a loaded machine a Chromium page had
   * not finished its handshake by then, 1 run in 30.)
   */
  startCutting(options?: CuttingOptions): void;
  /** Stops the proxy, then the server (every connection). */
  close(): Promise<void>;
}

/** Starts a scenario server and a cutting proxy in front of it (seeded with `seed`). */
export async function startScenarioRig(
  config: ScenarioConfig,
  seed?: number,
): Promise<ScenarioRig> {
  const scenario = scenarioServer(config);
  // Started once the server listens (it needs the port).
  const holder: { proxy?: CuttingProxy } = {};
  let receivedReport: (report: SideReport) => void = () => undefined;
  const clientReport = new Promise<SideReport>((resolve) => (receivedReport = resolve));
  // For a client elsewhere (the Chromium page): it sends its report as JSON, and gets
  // back the server's (once the server's side has finished, within the deadline) with
  // the proxy's counts, which it stops. The Node side prints the verdict too.
  const reports = route<string, string>({
    codec: text(),
    handler: async ({ incoming, outgoing }) => {
      const client = JSON.parse(await incoming.receive()) as SideReport;
      receivedReport(client);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), config.deadlineMs);
      });
      const server = await Promise.race([scenario.report, late]);
      clearTimeout(timer);
      const { proxy } = holder;
      proxy?.stopCutting();
      const cuts = proxy?.cuts ?? { close: 0, reset: 0, blackhole: 0 };
      const totalCuts = proxy?.totalCuts ?? 0;
      const verdict = judge(client, server ?? scenario.current, config);
      process.stderr.write(
        `  [resume fault, Node side] seed ${proxy?.seed}: ${totalCuts} cuts (${JSON.stringify(cuts)}), ${describeCounts(verdict.counts)}; ${verdict.problems.length} problem(s)${[...verdict.problems, ...verdict.endings].map((line) => `\n    ${line}`).join('')}\n`,
      );
      const answer: ServerAnswer = { server, cuts, totalCuts, seed: proxy?.seed ?? 0 };
      await outgoing.send(JSON.stringify(answer));
      await incoming.receiveCatching();
    },
  });
  const server = await serve(
    {
      ...HEARTBEAT,
      closeTimeout: 500,
      onError: (error) => {
        scenario.current.errors.push(
          `onError: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        );
      },
    },
    { [ResumeEndpoint.path]: scenario.route, [REPORT_PATH]: reports },
  );
  const port = Number(new URL(server.url).port);
  const started = await startCuttingProxy({ targetPort: port, seed });
  holder.proxy = started;
  let watch: ReturnType<typeof setInterval> | undefined;
  const cancelStart = (): void => {
    clearInterval(watch);
  };
  const flowing = (): boolean =>
    Object.values(scenario.current.receives).some((tally) => tally.count > 0);
  return {
    scenario,
    proxy: started,
    directUrl: server.url,
    clientReport,
    startCutting: (options) => {
      cancelStart();
      watch = setInterval(() => {
        if (!flowing()) return;
        clearInterval(watch);
        started.startCutting(options);
      }, 5);
    },
    close: async () => {
      cancelStart();
      await started.close();
      await server.close({ timeout: 1000 });
    },
  };
}
