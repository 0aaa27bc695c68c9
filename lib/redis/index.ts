/**
 * `sluice/redis`: the Redis backend for topics, so that `Topic`s of one name in several
 * processes are one topic (Node, Bun, Deno). The Redis client is the user's node-redis
 * (`redis` v6, an optional peer dependency); nothing here imports it.
 *
 * @module
 */
export { RedisBackend, redisBackend } from './redis-backend.js';
export type { RedisBackendOptions, RedisClient } from './redis-backend.js';
