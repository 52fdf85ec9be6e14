"""The keys and Lua scripts of the shared cache tier (``redis_tier``).

    dscall:v1:answer:<request hash>   an answer: the JSON of ``cache_entry``, no expiry
    dscall:v1:lease:<request hash>    a lease: the JSON of ``LeaseHolder``, with a TTL (PX)

The request hash already covers the namespace and the answer source (``calls.request``), so one
Redis serves every namespace and endpoint without mixing their answers. Nothing stored names the
API key or any other secret.

Each script handles a whole batch (one loop iteration's requests, up to ``REDIS_BATCH``) in one
round trip, atomically: a take sees an answer stored an instant before, and a lease is renewed
or deleted only while it still holds the value its holder wrote (a lease that expired and was
taken by another run is theirs). Expiry is Redis's own (PX), so hosts need not agree on the
time. A batch's keys all sit in one Redis: a cluster (keys across slots) is not supported.
"""

from __future__ import annotations

ANSWER_PREFIX = "dscall:v1:answer:"
LEASE_PREFIX = "dscall:v1:lease:"

# Claims of ``TAKE``, the first element of each reply.
TOOK, ANSWERED, HELD = 0, 1, 2

# KEYS: the answer and the lease key of each request. ARGV: the TTL in ms, then for each request
# "1" to look for its answer first (else "0") and the lease value to write.
# Reply per request: {ANSWERED, answer}, {TOOK, ""} or {HELD, the holder's value}.
TAKE = """
local out = {}
for n = 1, #KEYS / 2 do
  local answer = false
  if ARGV[2 * n] == '1' then answer = redis.call('GET', KEYS[2 * n - 1]) end
  if answer then
    out[n] = {1, answer}
  elseif redis.call('SET', KEYS[2 * n], ARGV[2 * n + 1], 'NX', 'PX', ARGV[1]) then
    out[n] = {0, ''}
  else
    out[n] = {2, redis.call('GET', KEYS[2 * n]) or ''}
  end
end
return out
"""

# Take over leases whose holders are gone. KEYS: lease keys. ARGV: the TTL in ms, then for each
# lease the value seen and ours. Reply per lease: 1 taken over, 0 it changed meanwhile.
SWAP = """
local out = {}
for n = 1, #KEYS do
  if (redis.call('GET', KEYS[n]) or '') == ARGV[2 * n] then
    redis.call('SET', KEYS[n], ARGV[2 * n + 1], 'PX', ARGV[1])
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""

# KEYS: lease keys. ARGV: the TTL in ms, then our value of each. Reply per lease: 1 renewed,
# 0 lost (expired, and maybe taken by another run).
RENEW = """
local out = {}
for n = 1, #KEYS do
  if redis.call('GET', KEYS[n]) == ARGV[n + 1] then
    redis.call('PEXPIRE', KEYS[n], ARGV[1])
    out[n] = 1
  else
    out[n] = 0
  end
end
return out
"""

# Store answers and give back leases. KEYS: the answer and the lease key of each request.
# ARGV: for each, the answer to store ("" none) and our lease value to delete ("" none).
WRITE = """
for n = 1, #KEYS / 2 do
  local answer, lease = ARGV[2 * n - 1], ARGV[2 * n]
  if answer ~= '' then redis.call('SET', KEYS[2 * n - 1], answer) end
  if lease ~= '' and redis.call('GET', KEYS[2 * n]) == lease then
    redis.call('DEL', KEYS[2 * n])
  end
end
return 1
"""


def answer_key(request_hash: str) -> str:
    return ANSWER_PREFIX + request_hash


def lease_key(request_hash: str) -> str:
    return LEASE_PREFIX + request_hash


def pair_keys(request_hashes: list[str]) -> list[str]:
    """The answer and lease key of each request, interleaved (the scripts' KEYS)."""
    return [key for h in request_hashes for key in (answer_key(h), lease_key(h))]
