"""The device signature of the bridge protocol, shared by the server and the bridge client.

X-Signature = lowercase hex HMAC-SHA256(key = the secret's UTF-8 bytes,
message = METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n SHA256_HEX(BODY)), where PATH carries its
?query when there is one and BODY is the exact bytes sent (empty for a GET).
"""

from __future__ import annotations

import hashlib
import hmac

MAX_CLOCK_SKEW_SECONDS = 300
HEADER_DEVICE = "X-Device-Id"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"


def canonical_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    body_digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, body_digest)).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = canonical_message(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def timestamp_problem(timestamp: str, now_unix: float) -> str | None:
    """What is wrong with an X-Timestamp header, or None: whole unix seconds within the window."""
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 20:
        example = int(now_unix)
        return f"{HEADER_TIMESTAMP} must be whole unix seconds (digits only, e.g. {example}), not {timestamp[:40]!r}"
    skew = int(timestamp) - now_unix
    if abs(skew) <= MAX_CLOCK_SKEW_SECONDS:
        return None
    direction = "ahead of" if skew > 0 else "behind"
    return (
        f"{HEADER_TIMESTAMP} {timestamp} is {abs(skew):.0f} s {direction} the server's clock, more than the "
        f"{MAX_CLOCK_SKEW_SECONDS} s allowed either way: keep the bridge's clock synchronized (NTP)"
    )
