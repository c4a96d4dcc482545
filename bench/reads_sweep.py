"""Latency against load for cached reads: the reads benchmark at several connection counts, plotted.

    .venv/bin/python -m bench reads_sweep --duration 8 --connections 1 10 25 50 100 200
    .venv/bin/python -m bench reads_sweep --replot bench/results/reads-sweep.json   # figure only

Each point is one run of `bench reads_vs_bare`'s method on reconciliation status (servers
started afresh, cache warm, wrk closed loop), tradeguard and the bare app side by side. Writes
bench/results/reads-sweep.json and docs/img/reads-latency-vs-load.svg.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench.arguments import base_parser, console, server_env
from bench.harness import RESULTS
from bench.plot import Series, line_chart
from bench.reads import ENDPOINTS, run_reads
from bench.report import write_json
from bench.seed import Seed

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "img" / "reads-latency-vs-load.svg"


async def sweep(args) -> dict:
    seed = Seed.load(args.seed)
    points = []
    for connections in args.connections:
        console.print(f"[dim]{connections} connections[/dim]")
        run = await run_reads(
            seed,
            workers=args.workers,
            connections=connections,
            threads=min(2, connections),
            duration=args.duration,
            endpoints={"status": ENDPOINTS["status"]},
            server_env=server_env(args.env),
        )
        measured = run["endpoints"]["status"]
        points.append(
            {
                "connections": connections,
                "tradeguard": _summary(measured["tradeguard"]),
                "bare": _summary(measured["bare"]),
                "throughput_ratio": measured["throughput_ratio"],
                "hit_rate": measured["tradeguard"]["cache"]["hit_rate"],
            }
        )
    return {"benchmark": "reads_sweep", "environment": run["environment"], "points": points}


def _summary(run: dict) -> dict:
    latency = run["latency_ms"]
    return {"requests_per_s": run["requests_per_s"], "p50_ms": latency["p50_ms"], "p99_ms": latency["p99_ms"]}


def plot(result: dict) -> Path:
    points = result["points"]

    def series(side: str, measure: str) -> list[tuple[float, float]]:
        return [(point["connections"], point[side][measure]) for point in points]

    return line_chart(
        FIGURE,
        [
            Series("tradeguard p50", series("tradeguard", "p50_ms")),
            Series("tradeguard p99", series("tradeguard", "p99_ms")),
            Series("bare ASGI p50", series("bare", "p50_ms"), dashed=True),
            Series("bare ASGI p99", series("bare", "p99_ms"), dashed=True),
        ],
        title="Cached reconciliation status: latency against concurrent connections (wrk, closed loop)",
        x_label="connections",
        y_label="latency (ms)",
        y_line=(10.0, "p99 target"),
    )


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10, 25, 50, 100, 200])
    parser.add_argument("--replot", type=Path, help="draw the figure again from this result, without running")
    args = parser.parse_args()
    if args.replot:
        console.print(f"written {plot(json.loads(args.replot.read_text()))}")
        return 0
    result = asyncio.run(sweep(args))
    path = write_json(result, args.output or RESULTS / "reads-sweep.json")
    figure = plot(result)
    for point in result["points"]:
        console.print(
            f"{point['connections']:>4} connections: tradeguard {point['tradeguard']['requests_per_s']:,.0f} req/s "
            f"p50 {point['tradeguard']['p50_ms']} p99 {point['tradeguard']['p99_ms']} ms; "
            f"bare {point['bare']['requests_per_s']:,.0f} req/s p99 {point['bare']['p99_ms']} ms; "
            f"ratio {point['throughput_ratio']}"
        )
    console.print(f"written {path} and {figure}")
    return 0
