"""Scope epochs shared by every process of one host through a memory-mapped file.

A process's own copy of a cached response is only good while nobody has written to its scope.
Asking Redis on every read costs a round trip; a word in shared memory costs a few hundred
nanoseconds. Every write stores a fresh random value in its scopes' slots, after the shared
cache was invalidated and before the write is acknowledged, so a copy stamped with the old value
is never served after that acknowledgement by any process on the host.

Scopes hash into a fixed number of slots: two scopes sharing a slot only cost each other extra
misses. A torn read of a slot during a write yields a value that matches no stamp: a miss too.

The header also says whether an invalidation made on this host never reached Redis (`redis.py`
says what the host's processes do then); that word is only changed under a lock on the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import random
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

SLOTS = 1 << 20
_SLOT = struct.Struct("=Q")
_HEADER_BYTES = 64
_HOST_TOKEN_AT = 0
_UNDELIVERED_AT = 8
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
        except BaseException:
            os.close(fd)
            raise
        # Kept open for the lock: each opening is its own lock holder, even within one process.
        self._fd = fd
        self._ensure_host_token()
        self._random = random.Random(os.urandom(16))

    def _ensure_host_token(self) -> None:
        if _SLOT.unpack_from(self._map, _HOST_TOKEN_AT)[0] == 0:
            # Two processes racing here both write a token; the last write wins for everyone.
            _SLOT.pack_into(self._map, _HOST_TOKEN_AT, int.from_bytes(os.urandom(8), "little") | 1)

    @property
    def host_token(self) -> int:
        """Tells this host's processes apart from other hosts' on the shared invalidation channel."""
        return _SLOT.unpack_from(self._map, _HOST_TOKEN_AT)[0]

    def undelivered(self) -> int:
        """Non-zero while an invalidation made on this host may be missing from Redis; 0 otherwise."""
        return _SLOT.unpack_from(self._map, _UNDELIVERED_AT)[0]

    def mark_undelivered(self) -> None:
        """An invalidation did not reach Redis: a fresh mark, which no settling already under way clears."""
        with self._locked():
            _SLOT.pack_into(self._map, _UNDELIVERED_AT, self._random.getrandbits(64) | 1)

    def settle(self, mark: int) -> bool:
        """Clear the mark read as `mark`, unless another invalidation failed since; True once clear."""
        with self._locked():
            if self.undelivered() == mark:
                _SLOT.pack_into(self._map, _UNDELIVERED_AT, 0)
            return self.undelivered() == 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def current(self, scope: str) -> int:
        return _SLOT.unpack_from(self._map, _offset(scope))[0]

    def bump(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            _SLOT.pack_into(self._map, _offset(scope), self._random.getrandbits(64))

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _offset(scope: str) -> int:
    return _HEADER_BYTES + (zlib.crc32(scope.encode()) % SLOTS) * _SLOT.size
