"""The embedded cache: one process, a bounded dict of scopes."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Iterable

from tradeguard.cache.base import CacheLookup

_NO_EPOCH = "0"


class MemoryCache:
    backend = "memory"

    def __init__(self, *, ttl_seconds: float, max_entries: int, clock=time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._epochs: dict[str, str] = {}
        self._scopes: OrderedDict[str, dict[str, tuple[float, bytes]]] = OrderedDict()
        self._entries = 0
        self._epoch_counter = itertools.count(1)

    async def get(self, scope: str, field: str) -> CacheLookup:
        epoch = self._epochs.get(scope, _NO_EPOCH)
        entry = self._scopes.get(scope, {}).get(field)
        if entry is None or self._clock() - entry[0] > self._ttl:
            return CacheLookup(None, epoch)
        self._scopes.move_to_end(scope)
        return CacheLookup(entry[1], epoch)

    async def put(self, scope: str, field: str, value: bytes, lookup: CacheLookup) -> None:
        if lookup.epoch is None or self._epochs.get(scope, _NO_EPOCH) != lookup.epoch:
            return
        fields = self._scopes.setdefault(scope, {})
        self._scopes.move_to_end(scope)
        if field not in fields:
            self._entries += 1
        fields[field] = (self._clock(), value)
        while self._entries > self._max_entries and self._scopes:
            _, evicted = self._scopes.popitem(last=False)
            self._entries -= len(evicted)

    async def invalidate(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            self._epochs[scope] = str(next(self._epoch_counter))
            evicted = self._scopes.pop(scope, None)
            if evicted:
                self._entries -= len(evicted)

    async def healthy(self) -> bool:
        return True
