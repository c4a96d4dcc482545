"""Serve another ASGI app exactly as `tradeguard serve --workers N` serves tradeguard's.

`python -m bench.serve_like APP [--factory] --host H --port P --workers N` calls `uvicorn.run`
with `tradeguard.cli.server_options` (the options `tradeguard serve` itself passes: log level,
access log, from the same TRADEGUARD_* settings) and the workers and factory flag the CLI adds,
so the bare app and the benchmark's stopwatch-wrapped app are compared with the real command on
the same server settings. (`bench/serve_bare_like_cli.py` does the same for one bare process.)
"""

from __future__ import annotations

import argparse

import uvicorn

from tradeguard.cli import server_options
from tradeguard.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("app", help="uvicorn import string")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run(
        args.app,
        factory=args.factory,
        workers=args.workers,
        **server_options(Settings(), args.host, args.port),
    )


if __name__ == "__main__":
    main()
