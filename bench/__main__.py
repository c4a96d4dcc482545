"""`python -m bench <benchmark> [options]`, from the checkout's root (`tradeguard bench` runs `quick`)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "quick": "a short run of reads, ingest and breach on the configured database (`tradeguard bench`)",
    "seed": "seed the benchmark database: users, accounts, devices, expected trades, tokens",
    "reads_vs_bare": "cached reads (wrk, 100 connections) against a bare ASGI app",
    "reads_default": "cached reads from plain `tradeguard serve` against the bare app served the same way",
    "reads_sweep": "cached reads at 1 to 200 connections, plotted",
    "ingest": "ingest throughput for 1 to 10,000 active accounts",
    "breach": "breach to close command latency",
    "growth": "how a steady snapshot's cost grows with accounts (1 to 10,000) and positions (1, 10, 50), plotted",
    "storm": "breach storm: 1,000 or 10,000 accounts breaching within seconds, every close command counted",
    "scale": "steady ingest at 10,000 accounts on tradeguard serve + worker, closed loop, rate sweep, bare ratio",
    "standard_profile": "the standard load profile under Locust",
    "profile_inprocess": "pyinstrument profiles of single requests, in process",
    "profile_breach": "what one breach costs in process: CPU, statements and commits, cProfile",
    "overlap": "steady snapshots in process with 1, 2, 4 ... batches in flight: rate, CPU, commits",
    "fast_path": "what a cache hit costs inside the app, in process",
    "history_month": "a simulated month of equity history: table sizes, the ingest's insert, a month's chart",
    "rules_decide": "the drawdown guard's decision per snapshot, pure, for rule sets of growing size",
    "platform_views": "what building the operator's platform views costs, in process, on the seeded database",
}


def usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = [f"  {name:<{width}}  {summary}" for name, summary in BENCHMARKS.items()]
    return (
        "usage: python -m bench <benchmark> [options]   (--help after a name for its options)\n\n"
        + "\n".join(lines)
    )


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        print(usage(), file=sys.stderr)
        return 2
    name, *options = argv
    sys.argv = [f"python -m bench {name}", *options]
    return importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
