"""Sampling a server worker with py-spy while a benchmark runs, and reading the samples.

py-spy's raw output is one collapsed stack per line ("frame;frame;... count"); `read_profile`
turns it into where the time goes: by layer (HTTP server, framework, auth, database driver, ORM,
validation, tradeguard's own code, cache client), by function including callees, and by function
alone. Samples of an idle event loop (waiting in epoll) are not taken (py-spy without --idle).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

# First match wins: (layer, substring of the frame's file path or function).
LAYERS = (
    ("bench (instrumentation)", "(bench/"),
    ("auth: jwt decode", "(jwt/"),
    ("prometheus metrics", "(prometheus_client/"),
    ("tradeguard: domain (reconcile, guards)", "(tradeguard/domain/"),
    ("tradeguard: ingest step", "(tradeguard/ingest/"),
    ("tradeguard: actions (guards, commands, audit)", "(tradeguard/actions/"),
    ("tradeguard: queries + cache", "(tradeguard/queries/"),
    ("tradeguard: queries + cache", "(tradeguard/cache/"),
    ("tradeguard: api", "(tradeguard/api/"),
    ("tradeguard: auth (token cache, principal)", "(tradeguard/auth/"),
    ("tradeguard: other", "(tradeguard/"),
    ("redis client", "(redis/"),
    ("asyncpg driver", "(asyncpg/"),
    ("sqlalchemy", "(sqlalchemy/"),
    ("pydantic", "(pydantic"),
    ("fastapi/starlette/anyio", "(fastapi/"),
    ("fastapi/starlette/anyio", "(starlette/"),
    ("fastapi/starlette/anyio", "(anyio/"),
    ("uvicorn/httptools", "(uvicorn/"),
    ("uvicorn/httptools", "(httptools"),
    ("hmac/hashlib/cryptography", "(hmac.py"),
    ("hmac/hashlib/cryptography", "(cryptography/"),
    ("event loop (uvloop C, asyncio)", "(asyncio/"),
    ("event loop (uvloop C, asyncio)", "(uvloop"),
    ("threads (thread-pool hand-off)", "(threading.py"),
    ("threads (thread-pool hand-off)", "(queue.py"),
)

# A thread-pool worker parked on its queue is waiting, not working, whatever the sampler thinks.
_IDLE_LEAVES = ("Condition.wait (threading.py", "_wait_for_tstate_lock (threading.py")


def available() -> bool:
    return shutil.which("py-spy") is not None or Path(_venv_py_spy()).exists()


def _venv_py_spy() -> str:
    import sys

    return str(Path(sys.executable).parent / "py-spy")


def start(pid: int, duration: float, output: Path, rate: int = 100) -> subprocess.Popen | None:
    """py-spy record in the background; None when py-spy is not installed."""
    executable = shutil.which("py-spy") or _venv_py_spy()
    if not Path(executable).exists():
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [executable, "record", "--pid", str(pid), "--duration", str(max(1, round(duration)))]
    argv += ["--rate", str(rate), "--format", "raw", "--output", str(output), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(process: subprocess.Popen | None, timeout: float = 60.0) -> None:
    if process is None:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(10)


def _frames(stack: str) -> list[str]:
    return [frame for frame in stack.split(";") if frame]


def _layer(frame: str) -> str | None:
    for layer, marker in LAYERS:
        if marker in frame:
            return layer
    return None


def _short(frame: str) -> str:
    """'function (path/to/module.py:123)' → 'function (module.py)' with a package hint."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    for anchor in (
        "tradeguard",
        "sqlalchemy",
        "asyncpg",
        "pydantic",
        "starlette",
        "fastapi",
        "uvicorn",
        "redis",
    ):
        if anchor in parts:
            return f"{name} ({'/'.join(parts[parts.index(anchor) :])})"
    return f"{name} ({'/'.join(parts[-2:])})"


def read_profile(path: Path, top: int = 25) -> dict:
    samples = 0
    idle = 0
    self_by_layer: Counter[str] = Counter()
    self_by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    tradeguard_inclusive: Counter[str] = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        leaf = frames[-1]
        if any(marker in leaf for marker in _IDLE_LEAVES):
            idle += count
            continue
        samples += count
        # Self time goes to the innermost frame that belongs to a known layer (C calls show as their caller).
        layer = next((found for found in map(_layer, reversed(frames)) if found), "other (stdlib, C)")
        self_by_layer[layer] += count
        self_by_function[_short(leaf)] += count
        seen = set()
        for frame in frames:
            short = _short(frame)
            if short in seen:
                continue
            seen.add(short)
            inclusive[short] += count
            if "tradeguard/" in frame and "(bench/" not in frame:
                tradeguard_inclusive[short] += count

    def share(counter: Counter[str], limit: int) -> list[dict]:
        return [
            {"name": name, "samples": count, "pct": round(100 * count / samples, 1)}
            for name, count in counter.most_common(limit)
        ]

    return {
        "samples": samples,
        "idle_thread_samples_excluded": idle,
        "by_layer_self": share(self_by_layer, 30),
        "top_self": share(self_by_function, top),
        "top_inclusive": share(inclusive, top),
        "tradeguard_inclusive": share(tradeguard_inclusive, top),
    }
