"""The bare app, served exactly as `tradeguard serve` serves tradeguard (the CLI's own uvicorn options).

python bench/serve_bare_like_cli.py PORT
"""

from __future__ import annotations

import sys

import uvicorn

from tradeguard.cli import server_options
from tradeguard.settings import Settings

if __name__ == "__main__":
    uvicorn.run("bench.bare_app:app", **server_options(Settings(), "127.0.0.1", int(sys.argv[1])))
