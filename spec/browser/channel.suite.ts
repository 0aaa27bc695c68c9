// Browser entry of the shared channel cases (imported by the runner; see chromium.spec.ts).
import { defineChannelCases } from './channel.cases.js';
import { injectedEnv } from './env.js';

defineChannelCases(injectedEnv().platform);
