"""How the cost of a steady snapshot grows: with the accounts sending (1 to 10,000) and the positions
per snapshot (1, 10, 50), on `tradeguard serve --workers 2` plus `tradeguard worker`.

One seed per positions count (`python -m bench seed --positions N --output …`; each seed brings
its own server secrets, so each is served by a server of its own). For each seed, every size of
the active account set runs the closed loop of `python -m bench scale` (pre-signed requests,
min(concurrency, accounts) senders each owning its accounts): snapshots/s, p50/p99, and CPU
milliseconds per snapshot of the API processes, the worker, PostgreSQL, Redis and the load
generator. The machine's load is noted before and after.

    for n in 1 10 50; do .venv/bin/python -m bench seed --positions $n --users 5000 \\
        --accounts-per-user 2 --stale-after-seconds 3600 --output bench/results/seed-p$n.json; done
    .venv/bin/python -m bench growth \\
        --seeds bench/results/seed-p1.json,bench/results/seed-p10.json,bench/results/seed-p50.json

Writes bench/results/growth.json and two figures beside it: growth-rate.svg (snapshots/s) and
growth-cpu.svg (server CPU ms per snapshot), against the number of accounts on a log scale.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import environment, harness, load
from bench.arguments import base_parser, console, progress_printer, server_env
from bench.plot import Series, line_chart
from bench.report import growth_table, write_json
from bench.scale import closed_phase
from bench.seed import Seed
from bench.servers import running, worker_process

SIZES = (1, 10, 100, 1_000, 10_000)


def growth_series(runs: Sequence[dict], value: Callable[[dict], float | None]) -> list[Series]:
    """One series per positions count: (log10 of the accounts, value), for the runs that have one."""
    by_positions: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        measured = value(run)
        if measured is not None:
            by_positions.setdefault(run["positions"], []).append((math.log10(run["accounts"]), measured))
    return [
        Series(f"{positions} position{'s' if positions != 1 else ''}", points)
        for positions, points in sorted(by_positions.items())
    ]


async def run_growth(
    seeds: Sequence[Seed],
    *,
    sizes: Sequence[int] = SIZES,
    workers: int = 2,
    concurrency: int = 64,
    duration: float = 8.0,
    warmup: float = 2.0,
    ceiling: float = 2500.0,
    server_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    note = on_phase or (lambda _phase, _fraction: None)
    extra = server_env or {}
    first = harness.server_spec(seeds[0], workers=workers, launcher="tradeguard serve", **extra)
    results: dict = {
        "benchmark": "growth",
        "load_average_before": harness.load_average(),
        "environment": await environment.describe(
            database_url=seeds[0].database_url, redis_url=seeds[0].redis_url, server=first.describe()
        ),
        "load": {
            "generator": "bench.client, pre-signed requests (bench.presign), closed loop, in the bench process",
            "concurrency": concurrency,
            "duration_s": duration,
            "warmup_s": warmup,
            "sizes": list(sizes),
            "positions": [seed.positions_per_account for seed in seeds],
            "worker": "tradeguard worker, a process of its own (TRADEGUARD_RUN_WORKER_IN_API=false)",
        },
        "runs": [],
        "priming": [],
    }
    for seed_index, seed in enumerate(seeds):
        spec = harness.server_spec(seed, workers=workers, launcher="tradeguard serve", **extra)
        chosen = [size for size in sizes if size <= len(seed.accounts)]
        await harness.flush_redis(seed.redis_url)
        async with running(spec, log_dir=log_dir) as server:
            with worker_process({**seed.server_env(), **extra}, log_dir=log_dir) as worker:
                note(f"{seed.positions_per_account} positions: priming", seed_index / len(seeds))
                started = time.perf_counter()
                primed = await harness.ensure_primed(seed, server.port, seed.accounts[: max(chosen)])
                if primed:
                    results["priming"].append(
                        primed
                        | {
                            "positions": seed.positions_per_account,
                            "seconds": round(time.perf_counter() - started, 1),
                        }
                    )
                signers = harness.signers_for(seed.accounts[: max(chosen)])
                for size_index, size in enumerate(chosen):
                    note(
                        f"{seed.positions_per_account} positions, {size:,} accounts",
                        (seed_index + size_index / len(chosen)) / len(seeds),
                    )
                    run = await closed_phase(
                        server,
                        signers[:size],
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        ceiling=ceiling,
                        acks=load.Acknowledged(),
                        worker_pid=worker.pid,
                    )
                    results["runs"].append(run | {"positions": seed.positions_per_account})
    results["load_average_after"] = harness.load_average()
    return results


def plot(result: dict, directory: Path) -> list[Path]:
    runs = result["runs"]
    rate = line_chart(
        directory / "growth-rate.svg",
        growth_series(runs, lambda run: run["snapshots_per_s"]),
        title="steady ingest: snapshots/s against active accounts",
        x_label="active accounts (log10: 0 = 1, 4 = 10,000)",
        y_label="snapshots/s",
        y_line=(2000.0, "target 2,000/s"),
    )
    cpu = line_chart(
        directory / "growth-cpu.svg",
        growth_series(runs, lambda run: run["cpu_ms_per_snapshot"].get("server")),
        title="API CPU per snapshot against active accounts",
        x_label="active accounts (log10: 0 = 1, 4 = 10,000)",
        y_label="API processes' CPU ms per snapshot",
    )
    return [rate, cpu]


def main() -> int:
    parser = base_parser(__doc__, profile=False)
    parser.add_argument("--seeds", required=True, help="comma-separated seed files, one per positions count")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--ceiling", type=float, default=2500.0, help="snapshots/s each phase is pre-signed for"
    )
    args = parser.parse_args()
    seeds = [Seed.load(Path(path)) for path in args.seeds.split(",")]
    result = asyncio.run(
        run_growth(
            seeds,
            sizes=[int(size) for size in args.sizes.split(",")],
            workers=args.workers,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            ceiling=args.ceiling,
            server_env=server_env(args.env),
            log_dir=harness.RESULTS / "logs",
            on_phase=progress_printer("growth"),
        )
    )
    path = write_json(result, args.output or harness.RESULTS / "growth.json")
    figures = plot(result, path.parent)
    console.print(growth_table(result))
    console.print(f"written {path}, {', '.join(map(str, figures))}")
    return 0
