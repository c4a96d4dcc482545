"""Where the checkout is, for tests that read its docs and configuration or write artifacts beside it."""

from __future__ import annotations

from pathlib import Path

# tests/support/paths.py: two folders below the checkout's root, wherever the test using it sits.
REPO_ROOT = Path(__file__).resolve().parents[2]
