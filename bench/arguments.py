"""Arguments and output shared by the benchmarks' command lines."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.harness import RESULTS

console = Console()


def base_parser(description: str, *, profile: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark takes; `profile=False` for those that sample nothing."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=Path, default=RESULTS / "seed.json", help="written by `python -m bench seed`"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    if profile:
        parser.add_argument("--profile", action="store_true", help="also sample a worker with py-spy")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server setting, e.g. TRADEGUARD_DB_POOL_SIZE=30 (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=None)
    return parser


def server_env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def progress_printer(label: str):
    last = {"phase": None}

    def on_phase(phase: str, fraction: float) -> None:
        if phase != last["phase"]:
            console.print(f"[dim]{label}: {phase} ({fraction:.0%})[/dim]")
            last["phase"] = phase

    return on_phase
