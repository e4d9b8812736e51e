"""Redis-backed books for cluster mode: presence and calls (coredis, native on Trio)."""

from sandcat.store.redis.books import open_redis_books

__all__ = ["open_redis_books"]
