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
