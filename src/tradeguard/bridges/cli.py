"""`tradeguard bridge mt5|ccxt`: run a shipped bridge from its configuration file.

Kept thin, and light to import: `tradeguard serve` registers this app without loading any bridge
code; the runtime and the platform adapter are imported when a bridge command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from tradeguard.bridges.broker import Binding
    from tradeguard.bridges.config import BridgeFile

bridge_app = typer.Typer(
    help="Run a bridge: report a broker account to tradeguard and carry out its close commands."
)

ConfigFile = Annotated[
    Path, typer.Option("--config", help="The bridge's TOML configuration file (see docs/bridges.md).")
]
LogFile = Annotated[
    Path | None, typer.Option("--log-file", help="Also log to this file, rotated at 10 MB, 5 kept.")
]
Verbose = Annotated[bool, typer.Option("--verbose", help="Log debug lines too.")]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_BYTES = 10_000_000
LOG_FILES_KEPT = 5


@bridge_app.command("mt5")
def mt5(
    config: ConfigFile,
    mt5_module: Annotated[
        str | None,
        typer.Option("--mt5-module", help="The module to import instead of MetaTrader5 (a compatible one)."),
    ] = None,
    mt5_host: Annotated[
        str | None, typer.Option("--mt5-host", help="Host of a remote MetaTrader5 module server.")
    ] = None,
    mt5_port: Annotated[int | None, typer.Option("--mt5-port", help="Port of that server.")] = None,
    log_file: LogFile = None,
    verbose: Verbose = False,
) -> None:
    """Bridge MetaTrader 5 accounts (docs/bridge-mt5.md)."""

    def bindings(file: BridgeFile) -> list[Binding]:
        from tradeguard.bridges.mt5 import bindings_from_config

        return bindings_from_config(file, module=mt5_module, host=mt5_host, port=mt5_port)

    run_bridge_command(config, bindings, log_file=log_file, verbose=verbose)


@bridge_app.command("ccxt")
def ccxt(config: ConfigFile, log_file: LogFile = None, verbose: Verbose = False) -> None:
    """Bridge exchange accounts through ccxt (docs/bridge-ccxt.md)."""

    def bindings(file: BridgeFile) -> list[Binding]:
        from tradeguard.bridges.exchange import bindings_from_config

        return bindings_from_config(file)

    run_bridge_command(config, bindings, log_file=log_file, verbose=verbose)


def run_bridge_command(
    config: Path,
    bindings_of: Callable[[BridgeFile], list[Binding]],
    *,
    log_file: Path | None,
    verbose: bool,
) -> None:
    """Load the file, run the bindings it names until SIGINT or SIGTERM.

    Exit 1 on a configuration error, 2 when tradeguard refuses a device, 0 on a clean stop.
    """
    import asyncio
    import signal

    from tradeguard.bridges import config as bridge_config
    from tradeguard.bridges.runtime import BridgeRefused, run_bridges

    try:
        file = bridge_config.load(config)
        bindings = bindings_of(file)
    except bridge_config.ConfigError as error:
        _fail(str(error), 1)
    _configure_logging(log_file, verbose)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await run_bridges(file, bindings, stop=stop)

    try:
        asyncio.run(run())
    except bridge_config.ConfigError as error:
        _fail(str(error), 1)
    except BridgeRefused as error:
        _fail(str(error), 2)


def _fail(message: str, code: int) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(code)


def _configure_logging(log_file: Path | None, verbose: bool) -> None:
    import logging
    import logging.handlers
    import sys

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILES_KEPT, encoding="utf-8"
            )
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True
    )
    # httpx logs every request at INFO, and its debug lines come close to the signed headers.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
