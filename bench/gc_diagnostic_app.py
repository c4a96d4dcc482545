"""Diagnostic only: tradeguard's app with every full (generation 2) garbage collection logged.

Not a benchmark of its own and not part of run_all.sh; it is how the "garbage collection" finding
of docs/benchmarks.md was measured. Each worker appends one line per full collection to
$TG_GC_LOG_DIR/gc-<pid>.log: wall time, pause in ms, objects in the oldest generation. With
TG_GC_FREEZE=1 the app first runs gc.collect(); gc.freeze() on each worker's first HTTP request,
so the objects alive after startup are no longer scanned by later full collections.

    # a seeded database (`python -m bench seed`) and the seed's server settings in the environment, then:
    PYTHONPATH=.:src TG_GC_LOG_DIR=/tmp/gc [TG_GC_FREEZE=1] .venv/bin/uvicorn \\
        bench.gc_diagnostic_app:create_app --factory --workers 2 --loop uvloop --http httptools \\
        --no-access-log --port 18777
    wrk -t2 -c100 -d15s --latency -H "Authorization: Bearer $TOKEN" \\
        "http://127.0.0.1:18777/api/v1/reconciliation/status?account_id=$ACCOUNT"
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from tradeguard.app import create_app as _create_tradeguard_app

_LOG_DIR = Path(os.environ.get("TG_GC_LOG_DIR", "/tmp/tradeguard-gc"))
_FREEZE = os.environ.get("TG_GC_FREEZE") == "1"
_started: dict[str, float] = {}


def _on_gc(phase: str, info: dict) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _started["at"] = time.perf_counter()
        return
    pause_ms = (time.perf_counter() - _started.get("at", time.perf_counter())) * 1000
    with open(_LOG_DIR / f"gc-{os.getpid()}.log", "a") as log:
        log.write(f"{time.time():.3f} {pause_ms:.1f} {len(gc.get_objects(2))}\n")


class _FreezeOnFirstRequest:
    def __init__(self, app) -> None:
        self.app = app
        self.frozen = False

    async def __call__(self, scope, receive, send) -> None:
        if not self.frozen and scope["type"] == "http":
            self.frozen = True
            gc.collect()
            gc.freeze()
        await self.app(scope, receive, send)


def create_app():
    _LOG_DIR.mkdir(parents=True, exist_ok=True)
    gc.callbacks.append(_on_gc)
    app = _create_tradeguard_app()
    return _FreezeOnFirstRequest(app) if _FREEZE else app
