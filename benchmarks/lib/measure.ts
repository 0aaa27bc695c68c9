/**
 * The child side of a benchmark: time one scenario once (after a verified warm-up), or
 * measure heap bytes per instance. Every throughput run is verified by a `Check`; a
 * run that delivers the wrong values reports an error instead of a time.
 *
 * @module
 */
import { Check } from './check.js';
import { SCENARIOS } from './protocol.js';
import type { ChildResult, MemoryId, Operations, ScenarioId } from './protocol.js';

function collectGarbage(): void {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the child with --expose-gc');
  // Twice: the first pass can leave work (weak references, finalizers) for the second.
  gc();
  gc();
}

/** Lets pending microtasks and immediates run, so every task reaches its wait. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      setImmediate(resolve);
    });
  }
}

async function runOnce(
  ops: Operations,
  scenario: ScenarioId,
  n: number,
): Promise<{ check: Check; ms: number; cpuMs: number }> {
  const { capacity, producers, consumers } = SCENARIOS[scenario];
  const check = new Check(n, producers, consumers);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  if (scenario === 'batch') {
    if (ops.batch === undefined) throw new Error('no batch path');
    await ops.batch(n, capacity, check);
  } else {
    if (ops.pipe === undefined) throw new Error('no idiomatic path');
    await ops.pipe(n, capacity, producers, consumers, check);
  }
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return { check, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Times `n` messages through `scenario`, after a warm-up with a twentieth of that. */
export async function measureThroughput(
  ops: Operations,
  scenario: ScenarioId,
  n: number,
): Promise<ChildResult> {
  const warm = await runOnce(ops, scenario, Math.max(1000, Math.floor(n / 20)));
  const warmError = warm.check.verify();
  if (warmError !== null) return { ok: false, error: `warm-up: ${warmError}` };
  collectGarbage();
  const { check, ms, cpuMs } = await runOnce(ops, scenario, n);
  const error = check.verify();
  if (error !== null) return { ok: false, error };
  return {
    ok: true,
    nsPerMessage: (ms * 1e6) / n,
    cpuNsPerMessage: (cpuMs * 1e6) / n,
    shares: check.shares(),
  };
}

/** The number a receive resolved with, bare or in an `IteratorResult`; NaN otherwise. */
function numberIn(result: unknown): number {
  if (typeof result === 'number') return result;
  if (typeof result === 'object' && result !== null && 'value' in result) {
    const value = result.value;
    if (typeof value === 'number') return value;
  }
  return NaN;
}

function heapUsed(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/**
 * Waits until the heap is back to `limit` bytes. The garbage of a released batch can
 * survive several full GCs (measured: 17 MB after 100,000 tasks, gone only on the third
 * round of immediates); a baseline taken before it goes would make the next batch look
 * smaller by that much.
 */
async function quiesce(limit: number): Promise<void> {
  for (let round = 0; round < 20 && heapUsed() > limit; round++) await settle();
}

/**
 * Heap bytes per idle channel, or per waiting receiver, over `count` instances, after a
 * verified warm-up with a tenth of them (so compiled code is not counted), each batch
 * starting only once the garbage of the previous one is gone.
 */
export async function measureMemory(
  ops: Operations,
  job: MemoryId,
  count: number,
): Promise<ChildResult> {
  const slack = 1 << 20;
  const start = heapUsed();
  const warm = await measureOnce(ops, job, Math.max(100, Math.floor(count / 10)));
  if (!warm.ok) return { ok: false, error: `warm-up: ${warm.error}` };
  await quiesce(start + slack);
  const result = await measureOnce(ops, job, count);
  await quiesce(start + slack);
  return result;
}

async function measureOnce(ops: Operations, job: MemoryId, count: number): Promise<ChildResult> {
  if (job === 'idle') {
    const make = ops.idle;
    if (make === undefined) return { ok: false, error: 'no idle channel' };
    const held = new Array<unknown>(count).fill(undefined);
    const before = heapUsed();
    for (let i = 0; i < count; i++) held[i] = make();
    const after = heapUsed();
    if (held.some((channel) => channel === undefined)) {
      return { ok: false, error: 'a channel is missing' };
    }
    return { ok: true, bytes: (after - before) / count };
  }
  if (ops.park === undefined) return { ok: false, error: 'no waiting receivers' };
  const placeholder = Promise.resolve(-1);
  const waiting = new Array<Promise<unknown>>(count).fill(placeholder);
  const parked = ops.park(count, job);
  await settle();
  const before = heapUsed();
  parked.start(waiting);
  await settle();
  const after = heapUsed();
  // The receivers must be real: none finishes before a value is sent, each gets one after.
  let early = 0;
  const finished = (): void => {
    early++;
  };
  for (const promise of waiting) void promise.then(finished, finished);
  await settle();
  if (early > 0)
    return { ok: false, error: `${early} receives finished before any value was sent` };
  parked.release();
  const values = (await Promise.all(waiting)).map(numberIn);
  const check = new Check(count);
  for (const value of values.sort((a, b) => a - b)) check.take(0, value);
  const error = check.verify();
  if (error !== null) return { ok: false, error: `after release: ${error}` };
  return { ok: true, bytes: (after - before) / count };
}
