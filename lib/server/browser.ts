/**
 * What `sluice/server` resolves to in a browser bundle (the `browser` export condition):
 * the server needs Node's `http` and `ws`, so importing it there fails at once with a
 * clear message instead of an obscure bundler error about `node:http`. Typed endpoints
 * come from `sluice/websocket`, which works everywhere.
 *
 * @module
 */
throw new Error(
  "sluice/server runs only in Node: import 'sluice/websocket' in browser code (connect, withWebSocket, endpoint)",
);
