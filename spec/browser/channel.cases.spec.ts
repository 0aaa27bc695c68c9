// The shared channel cases in Node; chromium.spec.ts runs the very same file in Chromium
// and checks that both runs have the same tests with the same outcomes.
import { defineChannelCases } from './channel.cases.js';

defineChannelCases('node');
