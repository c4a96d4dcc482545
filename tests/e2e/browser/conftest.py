"""Chromium for the dashboard's browser tests: Debian's, headless, driven by Playwright.

Chromium comes from Debian (`apt-get install chromium`), never from `playwright install`. Without it
the tests are skipped with a reason, except under CI=true, where its absence fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.services import IN_CI

CHROMIUM = Path(os.environ.get("TRADEGUARD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it (the test set-up installs Debian's chromium)")
    pytest.skip(f"{reason}; install it with `apt-get install chromium` (CI=true makes this a failure)")


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (it is in the `test` extra)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
