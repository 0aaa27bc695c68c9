/**
 * The two Lua scripts of the Redis backend: `PUBLISH_SCRIPT` (one atomic call per publish:
 * epoch, offset, stream, pub/sub, idempotency record) and `READ_SCRIPT` (one atomic read
 * of a topic's epoch, position, oldest retained offset and a batch of its history). Both
 * create the epoch on first use; see docs/redis.md for the keys and the reasoning.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/**
 * KEYS: meta hash, stream, producer hash. ARGV: candidate epoch, payload, count, maxAge
 * (-1: none), channel, sequence ('' for none), dedupe window, dedupe TTL (ms).
 * Returns { epoch, offset, duplicate (0 or 1) }.
 */
export const PUBLISH_SCRIPT = `
local meta, stream, producer = KEYS[1], KEYS[2], KEYS[3]
local seq = tonumber(ARGV[6])
local max = 0
if seq then
  local done = redis.call('HGET', producer, ARGV[6])
  if done then
    local e, o = string.match(done, '^(%S+) (%d+)$')
    return { e, tonumber(o), 1 }
  end
  max = tonumber(redis.call('HGET', producer, 'max') or '0')
  if seq <= max - tonumber(ARGV[7]) then
    return redis.error_reply('SLUICE_UNKNOWN sequence ' .. ARGV[6] .. ' is older than the dedupe window')
  end
end
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', meta, 'offset', 1)
redis.call('HSET', meta, 'count', ARGV[3], 'maxAge', ARGV[4])
if tonumber(ARGV[3]) > 0 then
  local t = redis.call('TIME')
  local ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], offset .. '-0', 't', ms, 'd', ARGV[2])
else
  redis.call('DEL', stream)
end
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. offset .. ' ' .. ARGV[2])
if seq then
  redis.call('HSET', producer, ARGV[6], epoch .. ' ' .. offset)
  if seq > max then redis.call('HSET', producer, 'max', ARGV[6]) end
  redis.call('HDEL', producer, tostring(seq - tonumber(ARGV[7])))
  redis.call('PEXPIRE', producer, ARGV[8])
end
return { epoch, offset, 0 }
`;

/**
 * KEYS: meta hash, stream. ARGV: candidate epoch, since epoch, first offset wanted, batch
 * limit, and the position this reader has delivered (epoch, offset; '' for none): if the
 * topic is in that epoch but behind that offset, Redis lost a tail, and a new epoch
 * replaces the old one so that no offset is ever reused.
 * Returns { epoch, head offset, oldest retained offset, offset1, data1, offset2, … }.
 */
export const READ_SCRIPT = `
local meta, stream = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch and epoch == ARGV[5] then
  if tonumber(redis.call('HGET', meta, 'offset') or '0') < tonumber(ARGV[6]) then
    epoch = false
  end
end
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
end
local head = tonumber(redis.call('HGET', meta, 'offset'))
local count = tonumber(redis.call('HGET', meta, 'count') or '-1')
local maxAge = tonumber(redis.call('HGET', meta, 'maxAge') or '-1')
local oldest = head + 1
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
if first then oldest = tonumber(string.match(first[1], '^(%d+)')) end
if count >= 0 and head - count + 1 > oldest then oldest = head - count + 1 end
if maxAge >= 0 and oldest <= head then
  local t = redis.call('TIME')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - maxAge
  local lo, hi = oldest, head + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('XRANGE', stream, mid, mid)[1]
    local at = -1
    if entry then
      local fields = entry[2]
      for i = 1, #fields, 2 do
        if fields[i] == 't' then at = tonumber(fields[i + 1]) end
      end
    end
    if at >= cutoff then hi = mid else lo = mid + 1 end
  end
  oldest = lo
end
local from = tonumber(ARGV[3])
if epoch ~= ARGV[2] or from > head + 1 then from = oldest end
if from < oldest then from = oldest end
local reply = { epoch, head, oldest }
local limit = tonumber(ARGV[4])
if from <= head and limit > 0 then
  local entries = redis.call('XRANGE', stream, from, '+', 'COUNT', limit)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then
        reply[#reply + 1] = tonumber(string.match(entry[1], '^(%d+)'))
        reply[#reply + 1] = fields[i + 1]
      end
    end
  end
end
return reply
`;

/** A script's SHA-1, as `EVALSHA` wants it. */
export function sha1(source: string): string {
  return createHash('sha1').update(source).digest('hex');
}
