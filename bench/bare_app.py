"""The bare ASGI baseline, for running by hand:

    TG_BARE_SIZES=status=2493 .venv/bin/python -m uvicorn bench.bare_app:app --loop uvloop --http httptools

It is `tradeguard.bench.bare_app`, which the benchmarks start themselves.
"""

from tradeguard.bench.bare_app import app, constant_body

__all__ = ["app", "constant_body"]
