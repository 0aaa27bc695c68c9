// Browser entry of the reconnecting client's state-machine cases (scripted in-memory
// sockets, no server): the same cases spec/websocket/reconnecting.spec.ts runs in Node.
import { defineReconnectingCases } from '../websocket/reconnecting.cases.js';

export const RECONNECTING_CASES_TITLE = 'reconnecting(), in the browser';

describe(RECONNECTING_CASES_TITLE, () => {
  defineReconnectingCases();
});
