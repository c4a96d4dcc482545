"""Batches in flight, in process: what a steady snapshot costs with 1, 2, 4 ... batches applied at once.

    .venv/bin/python -m bench overlap --seed bench/results/seed-scale.json --accounts 512 \
        --concurrency 64 --in-flight 1,2,4 --rounds 3

Seeds `--accounts` fresh accounts beside the seed's (as `profile_breach` does), then, for each
round and each `--in-flight` value in turn (so the values alternate in one sitting), runs the real
app (lifespan included) with `TRADEGUARD_INGEST_BATCHES_IN_FLIGHT` set to it, against the seed's
database and Redis through an in-process ASGI transport: one event loop, as one API process has.
`--concurrency` senders, each owning its accounts, send steady snapshots back to back
(`--snapshots` in all, after one from every account that is not measured). Printed per run: snapshots/s,
the process's CPU per snapshot (the in-process client's included), how busy the process was (CPU
over wall time), statements and commits per snapshot (one commit per batch), the mean batch, and
the statements sent most often.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import httpx

from bench.harness import RESULTS, seed_pool
from bench.profile_inprocess import StatementClock
from bench.seed import Seed
from bench.snapshots import SnapshotSigner
from tradeguard.bridges.client import SNAPSHOTS_PATH


async def _closed_loop(
    http: httpx.AsyncClient, signers: list[SnapshotSigner], concurrency: int, total: int
) -> int:
    """Each sender sends its own accounts' snapshots one after the other; returns how many were applied."""
    left = total
    applied = 0

    async def sender(own: list[SnapshotSigner]) -> None:
        nonlocal left, applied
        turn = 0
        while left > 0:
            left -= 1
            signer = own[turn % len(own)]
            turn += 1
            body = signer.body()
            answer = await http.post(SNAPSHOTS_PATH, content=body, headers=signer.headers(body))
            if answer.status_code != 200:
                raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")
            applied += answer.json()["applied"]

    await asyncio.gather(*(sender(signers[index::concurrency]) for index in range(concurrency)))
    return applied


async def _run(signers: list[SnapshotSigner], in_flight: int, args: argparse.Namespace) -> None:
    os.environ["TRADEGUARD_INGEST_BATCHES_IN_FLIGHT"] = str(in_flight)
    from tradeguard.app import create_app
    from tradeguard.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            # A snapshot from every account first: the new app's caches (device secrets) fill.
            await _closed_loop(http, signers, args.concurrency, len(signers))
            statements = StatementClock(app.state.services.engine)
            began, cpu = time.perf_counter(), time.process_time()
            applied = await _closed_loop(http, signers, args.concurrency, args.snapshots)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    count = args.snapshots
    print(
        f"in flight {in_flight}: {count / elapsed:7.1f} snapshots/s, {cpu / count * 1000:5.2f} ms CPU per "
        f"snapshot, process {cpu / elapsed:4.2f} busy; {statements.count / count:5.2f} statements and "
        f"{statements.commits / count:.3f} commits per snapshot (batch of {count / max(statements.commits, 1):4.1f}); "
        f"{applied} of {count} applied",
        flush=True,
    )
    for sql, (times, _seconds) in sorted(statements.by_sql.items(), key=lambda item: -item[1][0])[:8]:
        print(f"    {times / count:6.3f}x  {sql}")


async def _overlap(args: argparse.Namespace) -> int:
    seed = Seed.load(args.seed)
    pool = await seed_pool(seed, args.accounts, stale_after_seconds=3600)
    os.environ.update(seed.server_env())
    signers = [SnapshotSigner(account) for account in pool.accounts]
    values = [int(value) for value in args.in_flight.split(",")]
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}, load {Path('/proc/loadavg').read_text().strip()}", flush=True)
        for in_flight in values:
            await _run(signers, in_flight, args)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=Path, default=RESULTS / "seed.json")
    parser.add_argument("--accounts", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--snapshots", type=int, default=3000, help="per run")
    parser.add_argument("--in-flight", default="1,2,4", help="the values compared, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    return asyncio.run(_overlap(parser.parse_args()))
