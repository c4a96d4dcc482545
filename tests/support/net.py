"""Ports on this machine: which are free, which are listening."""

from __future__ import annotations

import asyncio
import socket

import httpx

SHORT_KEEPALIVE = httpx.Limits(keepalive_expiry=1.0)
"""For clients of a served app: uvicorn closes a connection idle for 5 s, httpx keeps one for 5 s,
and a request sent on it as the server closes it fails with a ReadError. Dropping idle
connections first leaves no such moment."""


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not reachable("127.0.0.1", port):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"nothing listening on port {port}")
        await asyncio.sleep(0.05)
