"""The Lua scripts that make each Redis rate-limit decision one atomic step."""

# Mirrors bucket.refill / bucket.has_token operation for operation: Redis Lua numbers are
# IEEE doubles like Python floats, and every float crosses the boundary as "%.17g" (which
# round-trips exactly), so both backends compute bit-identical balances.
#
# KEYS[1]  bucket hash {tokens, updated_at}
# KEYS[2]  the day's counter (its name carries the UTC date, so a new day starts at 0)
# ARGV     now, capacity, per_day, spend (1|0), epsilon, daily_ttl_ms, idle_margin_ms
# Defines  tokens, used, minute_ok, day_ok (as they stand now) and spend_one()
_BUDGET = """
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local epsilon = tonumber(ARGV[5])
local rate = capacity / 60

local tokens = capacity
local updated_at = now
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
if state[1] and state[2] then
  updated_at = tonumber(state[2])
  local elapsed = math.max(0, now - updated_at)
  tokens = math.min(capacity, tonumber(state[1]) + elapsed * rate)
  updated_at = math.max(updated_at, now)
end

local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local minute_ok = tokens + epsilon >= 1
local day_ok = used < per_day

local function spend_one()
  tokens = math.max(0, tokens - 1)
  used = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('HSET', KEYS[1],
    'tokens', string.format('%.17g', tokens),
    'updated_at', string.format('%.17g', updated_at))
  -- Once refilled, a bucket is the same as no bucket: let Redis drop it.
  local full_in_ms = math.ceil((capacity - tokens) / rate * 1000)
  redis.call('PEXPIRE', KEYS[1], string.format('%d', full_in_ms + tonumber(ARGV[7])))
end
"""

# A sorted set of lease ids scored by expiry time. Defines has_free_slot() and take_slot().
_SLOTS = """
local function has_free_slot(slots, at, max_concurrent)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', at)
  return redis.call('ZCARD', slots) < tonumber(max_concurrent)
end

local function take_slot(slots, at, lease_id, expires_at, idle_margin_ms)
  redis.call('ZADD', slots, expires_at, lease_id)
  local last = redis.call('ZRANGE', slots, -1, -1, 'WITHSCORES')
  local live_ms = math.ceil((tonumber(last[2]) - tonumber(at)) * 1000)
  redis.call('PEXPIRE', slots, string.format('%d', live_ms + tonumber(idle_margin_ms)))
end
"""

# KEYS, ARGV as _BUDGET
# Returns  {minute_ok (1|0), day_ok (1|0), tokens after as "%.17g", daily used after}
DECIDE = (
    _BUDGET
    + """
if ARGV[4] == '1' and minute_ok and day_ok then
  spend_one()
end

return {minute_ok and 1 or 0, day_ok and 1 or 0, string.format('%.17g', tokens), used}
"""
)

# KEYS[1]  sorted set of lease ids scored by expiry time
# ARGV     now, max_concurrent, lease_id, expires_at, idle_margin_ms
# Returns  1 if the lease was granted, 0 at the cap
ACQUIRE_SLOT = (
    _SLOTS
    + """
if not has_free_slot(KEYS[1], ARGV[1], ARGV[2]) then
  return 0
end
take_slot(KEYS[1], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
return 1
"""
)

# A slot and a unit of budget together, or neither.
# KEYS     as _BUDGET, then KEYS[3] the slots' sorted set
# ARGV     as _BUDGET (spend ignored), then max_concurrent, lease_id, expires_at
# Returns  {at_cap (1|0), minute_ok (1|0), day_ok (1|0), tokens after, daily used after};
#          admitted (lease taken, unit spent) exactly when at_cap is 0 and both are 1
ADMIT = (
    _BUDGET
    + _SLOTS
    + """
local at_cap = not has_free_slot(KEYS[3], ARGV[1], ARGV[8])
if not at_cap and minute_ok and day_ok then
  spend_one()
  take_slot(KEYS[3], ARGV[1], ARGV[9], ARGV[10], ARGV[7])
end

return {at_cap and 1 or 0, minute_ok and 1 or 0, day_ok and 1 or 0,
        string.format('%.17g', tokens), used}
"""
)

# ADMIT over several budgets (an account's and its key's): every one must have a free slot,
# a token and daily quota, then each is spent and holds the lease; otherwise nothing is.
# KEYS     per budget i (from 1): KEYS[3i-2] bucket, KEYS[3i-1] day counter, KEYS[3i] slots
# ARGV     now, epsilon, daily_ttl_ms, idle_margin_ms, lease_id, expires_at,
#          then per budget i: ARGV[4+3i] capacity, ARGV[5+3i] per_day, ARGV[6+3i] max_concurrent,
#          then last the cost: the units each budget must have and spends (1, or a batch's size)
# Returns  {admitted (1|0), then per budget: at_cap, minute_ok, day_ok, tokens after, used after}
ADMIT_ALL = """
local now = tonumber(ARGV[1])
local epsilon = tonumber(ARGV[2])
local cost = tonumber(ARGV[#ARGV])
local budgets = {}
local admitted = true

for i = 1, #KEYS / 3 do
  local b = {bucket = KEYS[3 * i - 2], day = KEYS[3 * i - 1], slots = KEYS[3 * i]}
  b.capacity = tonumber(ARGV[4 + 3 * i])
  b.rate = b.capacity / 60
  b.tokens = b.capacity
  b.updated_at = now
  local state = redis.call('HMGET', b.bucket, 'tokens', 'updated_at')
  if state[1] and state[2] then
    b.updated_at = tonumber(state[2])
    local elapsed = math.max(0, now - b.updated_at)
    b.tokens = math.min(b.capacity, tonumber(state[1]) + elapsed * b.rate)
    b.updated_at = math.max(b.updated_at, now)
  end
  b.used = tonumber(redis.call('GET', b.day) or '0')
  redis.call('ZREMRANGEBYSCORE', b.slots, '-inf', ARGV[1])
  b.at_cap = redis.call('ZCARD', b.slots) >= tonumber(ARGV[6 + 3 * i])
  b.minute_ok = b.tokens - (cost - 1) + epsilon >= 1
  b.day_ok = b.used + cost <= tonumber(ARGV[5 + 3 * i])
  if b.at_cap or not b.minute_ok or not b.day_ok then
    admitted = false
  end
  budgets[i] = b
end

local reply = {admitted and 1 or 0}
for i, b in ipairs(budgets) do
  if admitted then
    b.tokens = math.max(0, b.tokens - cost)
    b.used = redis.call('INCRBY', b.day, cost)
    redis.call('PEXPIRE', b.day, ARGV[3])
    redis.call('HSET', b.bucket,
      'tokens', string.format('%.17g', b.tokens),
      'updated_at', string.format('%.17g', b.updated_at))
    local full_in_ms = math.ceil((b.capacity - b.tokens) / b.rate * 1000)
    redis.call('PEXPIRE', b.bucket, string.format('%d', full_in_ms + tonumber(ARGV[4])))
    redis.call('ZADD', b.slots, ARGV[6], ARGV[5])
    local last = redis.call('ZRANGE', b.slots, -1, -1, 'WITHSCORES')
    local live_ms = math.ceil((tonumber(last[2]) - now) * 1000)
    redis.call('PEXPIRE', b.slots, string.format('%d', live_ms + tonumber(ARGV[4])))
  end
  table.insert(reply, b.at_cap and 1 or 0)
  table.insert(reply, b.minute_ok and 1 or 0)
  table.insert(reply, b.day_ok and 1 or 0)
  table.insert(reply, string.format('%.17g', b.tokens))
  table.insert(reply, b.used)
end
return reply
"""
