"""Redis-backed state for cluster mode (coredis, native on Trio): the presence and
call books, and the shared-state interfaces (rate limits, frame budgets,
revocation log, cache)."""

from sandcat.store.redis.books import open_redis_books, redis_books
from sandcat.store.redis.budgets import RedisBudgets
from sandcat.store.redis.cache import RedisCache
from sandcat.store.redis.client import RedisState, open_redis_client, open_redis_state
from sandcat.store.redis.limits import RedisLimiters, RedisLockout, RedisRateLimiter
from sandcat.store.redis.revocations import RedisRevocations

__all__ = [
    "RedisBudgets",
    "RedisCache",
    "RedisLimiters",
    "RedisLockout",
    "RedisRateLimiter",
    "RedisRevocations",
    "RedisState",
    "open_redis_books",
    "open_redis_client",
    "open_redis_state",
    "redis_books",
]
