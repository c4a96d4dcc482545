"""Serve another ASGI app exactly as `tradeguard serve --workers N` serves tradeguard's.

`python -m bench.serve_like APP [--factory] --host H --port P --workers N --log-level L` calls
`uvicorn.run` with the keyword arguments `tradeguard.cli._run_server` passes (import string,
factory, host, port, workers, log level; every other uvicorn setting at its default), so the bare
app and the benchmark's stopwatch-wrapped app are compared with the real command on the same
server settings. Keep the call in step with `_run_server` when that changes.
"""

from __future__ import annotations

import argparse

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("app", help="uvicorn import string")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    uvicorn.run(
        args.app,
        factory=args.factory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
