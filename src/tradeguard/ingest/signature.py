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


def timestamp_within_window(timestamp: int, now_unix: float) -> bool:
    return abs(now_unix - timestamp) <= MAX_CLOCK_SKEW_SECONDS
