// Fault test: 200 clients stream at once while a third of them are killed abruptly (TCP
// destroyed, no Close) at random moments. Nothing unhandled, the server's session count
// returns to 0, every message a surviving client's send resolved was received in order,
// and the heap returns near its baseline.
import { expect } from 'chai';
import fc from 'fast-check';
import { connect } from '../../lib/websocket/index.js';
import { sleep, useServers, waitFor } from './helpers.js';

const CLIENTS = 200;
const STREAM_MS = 1500;

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

describe('serve() under faults', function () {
  this.timeout(60_000);
  const { start } = useServers();

  it('200 streaming clients, a third killed at random: no loss for survivors, sessions back to 0', async () => {
    const received = new Map<string, number[]>();
    const errors: unknown[] = [];
    const server = await start(
      { onError: (error) => errors.push(error) },
      {
        '/stream': async (session) => {
          const id = session.request.query.get('id') ?? '?';
          const got: number[] = [];
          received.set(id, got);
          for await (const n of session.incoming) {
            got.push(n as number);
            // Progress reports must not end the handler when the client leaves: trySend.
            if (got.length % 10 === 0) session.outgoing.trySend(got.length);
          }
        },
      },
    );
    const baseline = heapAfterGc();
    const random = fc.sample(fc.integer({ min: 0, max: STREAM_MS - 100 }), {
      numRuns: CLIENTS,
      seed: 8,
    });
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, index) => {
        const id = String(index);
        const killed = index % 3 === 0;
        const session = await connect<number>(`${server.url}/stream?id=${id}`, {
          incomingOverflow: 'drop-oldest',
          incomingCapacity: 1,
        });
        const deadline = Date.now() + (killed ? (random[index] ?? 0) : STREAM_MS);
        let resolved = 0;
        try {
          while (Date.now() < deadline) {
            await session.outgoing.send(resolved);
            resolved++;
            if (resolved % 50 === 0) await sleep(1);
          }
        } catch {
          // A killed client's last send may reject; it was not counted.
        }
        if (killed) session.terminate();
        else await session.close();
        return { id, killed, resolved };
      }),
    );
    await waitFor(() => server.sessions === 0, 20_000, 'sessions back to 0');
    expect(errors).to.deep.equal([]);
    let survivors = 0;
    for (const { id, killed, resolved } of results) {
      const got = received.get(id) ?? [];
      if (killed) {
        // Whatever arrived, arrived in order and was sent.
        expect(got).to.deep.equal(Array.from({ length: got.length }, (_, i) => i));
        continue;
      }
      survivors++;
      expect(got.length, `client ${id}`).to.equal(resolved);
      expect(got).to.deep.equal(Array.from({ length: resolved }, (_, i) => i));
    }
    expect(survivors).to.equal(CLIENTS - Math.ceil(CLIENTS / 3));
    received.clear();
    await sleep(100);
    const growth = heapAfterGc() - baseline;
    expect(growth, `heap grew by ${growth} bytes`).to.be.below(16 * 1024 * 1024);
  });
});
