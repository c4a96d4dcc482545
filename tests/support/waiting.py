"""Waiting for what another process does: a bridge's snapshot applied, a command acknowledged."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], what: str, timeout: float = 10.0) -> T:
    """The first true result of `check`, polled until `timeout`; the test fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"still not so after {timeout} s: {what}")
        await asyncio.sleep(0.05)
