"""Scope epochs shared by every process of one host through a memory-mapped file.

A process's own copy of a cached response is only good while nobody has written to its scope.
Asking Redis on every read costs a round trip; a word in shared memory costs a few hundred
nanoseconds. Every write stores a fresh random value in its scopes' slots, after the shared
cache was invalidated and before the write is acknowledged, so a copy stamped with the old value
is never served after that acknowledgement by any process on the host.

Scopes hash into a fixed number of slots: two scopes sharing a slot only cost each other extra
misses. A torn read of a slot during a write yields a value that matches no stamp: a miss too.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import struct
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

SLOTS = 1 << 20
_SLOT = struct.Struct("=Q")
_HEADER_BYTES = 64
_FILE_BYTES = _HEADER_BYTES + SLOTS * _SLOT.size


def epochs_path(cache_identity: str, directory: Path | None = None) -> Path:
    """One file per shared cache, so processes sharing a cache on this host share its epochs."""
    base = directory or (Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir()))
    digest = hashlib.sha256(cache_identity.encode()).hexdigest()[:16]
    return base / f"tradeguard-epochs-{digest}"


class SharedEpochs:
    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _FILE_BYTES:
                # Sparse: untouched slots cost no memory, and they read as zero.
                os.ftruncate(fd, _FILE_BYTES)
            self._map = mmap.mmap(fd, _FILE_BYTES)
        finally:
            os.close(fd)
        self._ensure_host_token()
        self._random = random.Random(os.urandom(16))

    def _ensure_host_token(self) -> None:
        if _SLOT.unpack_from(self._map, 0)[0] == 0:
            # Two processes racing here both write a token; the last write wins for everyone.
            _SLOT.pack_into(self._map, 0, int.from_bytes(os.urandom(8), "little") | 1)

    @property
    def host_token(self) -> int:
        """Tells this host's processes apart from other hosts' on the shared invalidation channel."""
        return _SLOT.unpack_from(self._map, 0)[0]

    def current(self, scope: str) -> int:
        return _SLOT.unpack_from(self._map, _offset(scope))[0]

    def bump(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            _SLOT.pack_into(self._map, _offset(scope), self._random.getrandbits(64))

    def close(self) -> None:
        self._map.close()


def _offset(scope: str) -> int:
    return _HEADER_BYTES + (zlib.crc32(scope.encode()) % SLOTS) * _SLOT.size
