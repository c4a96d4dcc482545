"""What one breach costs inside the app: CPU, SQL statements and commits per breach, in process.

    .venv/bin/python -m bench profile_breach --seed bench/results/seed-scale.json --accounts 400

Seeds `--accounts` fresh accounts beside the seed's (as `storm` does), runs the real app
(lifespan included) against the seed's database and Redis through an in-process ASGI transport,
primes each account with a normal snapshot, sends each a steady one (prices moved; one round per
`--steady-rounds`), then sends every account's critical snapshot (equity 25 % under its peak:
ten close commands, a critical alert and a halt) with `--concurrency` in flight, so that the
snapshots group into batches as they do in a storm. Printed: process CPU per
breach (the in-process client's included), statements and commits per breach, the statements that
took the most time, and, with `--profile` (or `--profile steady`), cProfile's functions by
cumulative and by own CPU for the breaches (or the steady snapshots) written to
bench/results/profiles/<round>-cprofile.txt, the raw statistics beside it as .prof for pstats.
The same numbers for the priming and the steady snapshots come first, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import time
from pathlib import Path

import httpx

from bench.harness import RESULTS, seed_pool
from bench.profile_inprocess import StatementClock
from bench.seed import Seed
from bench.snapshots import SnapshotSigner
from tradeguard.bridges.client import SNAPSHOTS_PATH


async def _send_all(
    http: httpx.AsyncClient, bodies: list[tuple[SnapshotSigner, bytes]], concurrency: int
) -> None:
    queue = list(reversed(bodies))

    async def sender() -> None:
        while queue:
            signer, body = queue.pop()
            answer = await http.post(SNAPSHOTS_PATH, content=body, headers=signer.headers(body))
            if answer.status_code != 200:
                raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")

    await asyncio.gather(*(sender() for _ in range(concurrency)))


async def _measure(
    name: str,
    http: httpx.AsyncClient,
    statements: StatementClock,
    bodies: list[tuple[SnapshotSigner, bytes]],
    concurrency: int,
    profiler: cProfile.Profile | None = None,
) -> None:
    statements.reset()
    began, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    await _send_all(http, bodies, concurrency)
    if profiler is not None:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    count = len(bodies)
    print(
        f"{name}: {count} snapshots, {concurrency} in flight: {cpu / count * 1000:.2f} ms CPU and "
        f"{elapsed / count * 1000:.2f} ms wall per snapshot; {statements.count / count:.2f} statements, "
        f"{statements.commits / count:.3f} commits, {statements.seconds / count * 1000:.2f} ms inside "
        "cursor.execute per snapshot"
    )
    for sql, (times, seconds) in statements.top(10):
        print(f"    {times / count:6.2f}x {seconds / times * 1e6:7.0f} us  {sql}")


async def _profile(args: argparse.Namespace) -> int:
    seed = Seed.load(args.seed)
    pool = await seed_pool(seed, args.accounts, stale_after_seconds=3600)
    os.environ.update(seed.server_env())
    from tradeguard.app import create_app
    from tradeguard.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            signers = [SnapshotSigner(account) for account in pool.accounts]
            statements = StatementClock(app.state.services.engine)
            profiler = cProfile.Profile() if args.profile else None
            rounds = (
                ("priming", SnapshotSigner.body),
                *[("steady", SnapshotSigner.body)] * args.steady_rounds,
                ("breach", SnapshotSigner.critical),
            )
            for name, body in rounds:
                await _measure(
                    name,
                    http,
                    statements,
                    [(s, body(s)) for s in signers],
                    args.concurrency,
                    profiler if args.profile == name else None,
                )
    if profiler is not None:
        out = RESULTS / "profiles" / f"{args.profile}-cprofile.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
        out.write_text(text.getvalue())
        profiler.dump_stats(out.with_suffix(".prof"))
        print(f"cProfile by cumulative and own time -> {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=Path, default=RESULTS / "seed.json")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--steady-rounds",
        type=int,
        default=1,
        help="steady snapshots sent to every account, one round after another",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="breach",
        choices=("steady", "breach"),
        help="write cProfile's view of the breaches (the default) or of the steady snapshots",
    )
    return asyncio.run(_profile(parser.parse_args()))
