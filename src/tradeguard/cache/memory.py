"""The embedded cache: one process, a bounded dict of scopes."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Iterable

from tradeguard.cache.base import CacheLookup, Peek, WarmFields, refresh_due_at

_NO_EPOCH = "0"


class MemoryCache:
    backend = "memory"

    def __init__(self, *, ttl_seconds: float, max_entries: int, clock=time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._epochs: dict[str, str] = {}
        self._scopes: OrderedDict[str, dict[str, tuple[float, float, bytes]]] = OrderedDict()
        self._entries = 0
        self._epoch_counter = itertools.count(1)

    def peek(self, scope: str, field: str) -> Peek | None:
        entry = self._scopes.get(scope, {}).get(field)
        if entry is None:
            return None
        stored_at, refresh_at, value = entry
        now = self._clock()
        if now - stored_at > self._ttl:
            return None
        self._scopes.move_to_end(scope)
        return Peek(value, stored_at, refresh_due=now > refresh_at)

    async def get(self, scope: str, field: str) -> CacheLookup:
        epoch = self._epochs.get(scope, _NO_EPOCH)
        peeked = self.peek(scope, field)
        if peeked is None:
            return CacheLookup(None, epoch)
        return CacheLookup(peeked.value, epoch, peeked.built_at)

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> bool:
        if lookup.epoch is None or self._epochs.get(scope, _NO_EPOCH) != lookup.epoch:
            return False
        fields = self._scopes.setdefault(scope, {})
        self._scopes.move_to_end(scope)
        if field not in fields:
            self._entries += 1
        now = self._clock()
        fields[field] = (now, refresh_due_at(now, self._ttl), value)
        while self._entries > self._max_entries and self._scopes:
            _, evicted = self._scopes.popitem(last=False)
            self._entries -= len(evicted)
        return True

    async def invalidate(self, scopes: Iterable[str]) -> WarmFields:
        warm: WarmFields = {}
        for scope in scopes:
            self._epochs[scope] = str(next(self._epoch_counter))
            evicted = self._scopes.pop(scope, None)
            if evicted:
                self._entries -= len(evicted)
                warm[scope] = list(evicted)
        return warm

    async def healthy(self) -> bool:
        return True
