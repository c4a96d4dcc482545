"""The read-model cache: serialized responses per (account, view, parameters), invalidated per account.

Every write path calls `ResponseCache.invalidate` through `invalidate_accounts` in this package;
nothing else drops entries, and nothing on the hot path lists keys.
"""

from tradeguard.cache.base import (
    PLATFORM_SCOPE,
    CacheLookup,
    Peek,
    ResponseCache,
    WarmFields,
    account_scope,
    user_scope,
)
from tradeguard.cache.memory import MemoryCache
from tradeguard.cache.near import NearCache
from tradeguard.cache.read_through import ReadThrough, invalidate_accounts
from tradeguard.cache.redis import RedisCache

__all__ = [
    "PLATFORM_SCOPE",
    "CacheLookup",
    "MemoryCache",
    "NearCache",
    "Peek",
    "ReadThrough",
    "RedisCache",
    "ResponseCache",
    "WarmFields",
    "account_scope",
    "invalidate_accounts",
    "user_scope",
]
