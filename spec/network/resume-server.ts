/**
 * The Node side of the resume fault scenario (Node only): a sluice server on 127.0.0.1
 * serving {@link scenarioServer}'s route with a fast heartbeat (so that a black hole is
 * detected within a few hundred ms), and a {@link CuttingProxy} in front of it. The
 * client side connects to `proxy.url`.
 */
import { serve } from '../../lib/server/index.js';
import { startCuttingProxy } from '../helpers/cutting-proxy.js';
import type { CuttingProxy } from '../helpers/cutting-proxy.js';
import { scenarioServer } from './resume-scenario.js';
import type { ScenarioConfig, ScenarioServer } from './resume-scenario.js';

/** Heartbeat of the scenario's server: a ping every 100 ms, 200 ms for its pong. */
export const HEARTBEAT = { pingInterval: 100, pongTimeout: 200 } as const;

/** A scenario server behind a cutting proxy. */
export interface ScenarioRig {
  readonly scenario: ScenarioServer;
  readonly proxy: CuttingProxy;
  /** The server's own URL (not through the proxy). */
  readonly directUrl: string;
  /** Closes the proxy, then the server (every connection). */
  close(): Promise<void>;
}

/** Starts a scenario server and a cutting proxy in front of it (seeded with `seed`). */
export async function startScenarioRig(
  config: ScenarioConfig,
  seed?: number,
): Promise<ScenarioRig> {
  const scenario = scenarioServer(config);
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
    [scenario.route],
  );
  const port = Number(new URL(server.url).port);
  const proxy = await startCuttingProxy({ targetPort: port, seed });
  return {
    scenario,
    proxy,
    directUrl: server.url,
    close: async () => {
      await proxy.close();
      await server.close({ timeout: 1000 });
    },
  };
}
