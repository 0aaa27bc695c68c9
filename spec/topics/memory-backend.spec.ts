// The shared TopicBackend contract on the memory backend (one instance serves as both nodes).
import { MemoryBackend } from '../../lib/index.js';
import { backendContract } from './backend-contract.js';

describe('MemoryBackend', () => {
  const backend = new MemoryBackend();
  let count = 0;
  backendContract(() => ({
    nodes: [backend, backend],
    name: () => `t${++count}`,
    settle: () => Promise.resolve(),
  }));
});
