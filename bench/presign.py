"""Signed snapshot requests built before a measured phase, so the load loop only writes bytes.

On the 2-core machine every microsecond the load generator spends is taken from the server:
building a snapshot body (Decimal prices, orjson) and signing it (HMAC, nonce, timestamp) costs
far more than writing it. The server accepts an `X-Timestamp` up to five minutes old
(`tradeguard.ingest.signature.MAX_CLOCK_SKEW_SECONDS`) and a `taken_at` in the past, so a phase's
requests can all be signed before it starts, each with its own nonce and, per account, a
`taken_at` later than the one before.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable, Sequence

from bench.client import host_header
from bench.snapshots import SnapshotSigner
from tradeguard.bridges.client import SNAPSHOTS_PATH

REQUEST_LINE = f"POST {SNAPSHOTS_PATH} HTTP/1.1\r\n".encode()


def signed_message(signer: SnapshotSigner, body: bytes, host: bytes) -> bytes:
    """One complete HTTP/1.1 request: request line, `host` header line, signed headers, body."""
    head = [REQUEST_LINE, host]
    for name, value in signer.headers(body).items():
        head.append(f"{name}: {value}\r\n".encode())
    head.append(b"Content-Length: %d\r\n\r\n" % len(body))
    return b"".join(head) + body


def round_robin(
    signers: Sequence[SnapshotSigner],
    count: int,
    *,
    host: str,
    port: int,
    make: Callable[[SnapshotSigner], bytes] = SnapshotSigner.body,
) -> list[bytes]:
    """`count` requests taking the accounts in turn (account 0, 1, …, then 0 again), in send order."""
    line = host_header(host, port)
    return [
        signed_message(signers[index % len(signers)], make(signers[index % len(signers)]), line)
        for index in range(count)
    ]


def per_sender(
    signers: Sequence[SnapshotSigner], senders: int, per_sender_count: int, *, host: str, port: int
) -> list[list[bytes]]:
    """For a closed loop: sender k owns accounts k, k + senders, …, and gets their requests in turn.

    No two senders share an account, so no two in-flight snapshots wait on the same row lock,
    and each account's requests go out in the order their `taken_at` was stamped.
    """
    senders = max(1, min(senders, len(signers)))
    return [
        round_robin(signers[index::senders], per_sender_count, host=host, port=port)
        for index in range(senders)
    ]


MEMORY_BUDGET = 400 * 1024 * 1024
"""Bytes of signed requests held at once: 2.7 KB each with 10 positions, 9.7 KB with 50."""


def budget(sample: SnapshotSigner, wanted: int, *, host: str, port: int, memory: int = MEMORY_BUDGET) -> int:
    """How many of `wanted` requests fit in `memory`, judged by the size of one like them.

    The sample request is built by a copy of the signer, so the signer's own sequence of
    `taken_at` (and of prices) is not disturbed.
    """
    probe = copy.deepcopy(sample)
    size = len(signed_message(probe, probe.body(), host_header(host, port)))
    return max(1, min(wanted, memory // size))


def settle() -> None:
    """Before a measured phase: collect now, and keep what exists (the signed requests, the seed)
    out of later collections, so the load loop does not spend its time walking them."""
    gc.collect()
    gc.freeze()
