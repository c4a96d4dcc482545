"""Deterministic-ish profile of single requests, in process, with pyinstrument.

    .venv/bin/python -m bench profile_inprocess --requests 300

Runs the real app (lifespan included) against the benchmark database and Redis, sends
sequential signed snapshots and cached reads through an in-process ASGI transport, and writes
pyinstrument's call trees (wall time, awaits included, so time waiting on PostgreSQL or Redis
shows under the call that awaited it) to bench/results/profiles/inprocess-*.txt. Complements the
py-spy samples of the loaded servers, which show CPU only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import httpx

from bench.harness import RESULTS
from bench.seed import Seed
from bench.snapshots import SnapshotSigner
from tradeguard.bridges.client import SNAPSHOTS_PATH


async def _profile(args: argparse.Namespace) -> int:
    # A profiler of its own, installed for this benchmark only (see run_all.sh).
    from pyinstrument import Profiler

    seed = Seed.load(args.seed)
    os.environ.update(seed.server_env())
    from tradeguard.app import create_app
    from tradeguard.settings import Settings

    app = create_app(Settings())
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            signers = [SnapshotSigner(account) for account in seed.accounts[: args.requests]]
            user = seed.users[0]
            auth = {"Authorization": f"Bearer {user.token}"}
            for signer in signers[:20]:  # warm the pool, statement caches and the cache
                body = signer.body()
                await http.post(SNAPSHOTS_PATH, content=body, headers=signer.headers(body))
            engine = app.state.services.engine
            statements = StatementClock(engine)
            timings = {}
            for name, run in (
                ("ingest", lambda i: _ingest(http, signers[i % len(signers)])),
                (
                    "read-status",
                    lambda i: http.get(
                        f"/api/v1/reconciliation/status?account_id={user.accounts[0]}", headers=auth
                    ),
                ),
            ):
                statements.reset()
                began = time.perf_counter()
                cpu = time.process_time()
                for index in range(args.requests):
                    await run(index)
                elapsed = time.perf_counter() - began
                print(
                    f"{name}: {elapsed / args.requests * 1000:.2f} ms wall, "
                    f"{(time.process_time() - cpu) / args.requests * 1000:.2f} ms CPU per request (sequential, "
                    f"unprofiled, client included); {statements.count / args.requests:.1f} SQL statements, "
                    f"{statements.seconds / args.requests * 1000:.2f} ms inside cursor.execute per request"
                )
                for sql, (count, seconds) in statements.top(8):
                    print(f"    {count / args.requests:5.1f}x {seconds / count * 1e6:7.0f} us  {sql}")
            for name, run in (
                ("ingest", lambda i: _ingest(http, signers[i % len(signers)])),
                (
                    "read-status",
                    lambda i: http.get(
                        f"/api/v1/reconciliation/status?account_id={user.accounts[0]}", headers=auth
                    ),
                ),
            ):
                profiler = Profiler(interval=0.0002, async_mode="enabled")
                began = time.perf_counter()
                profiler.start()
                for index in range(args.requests):
                    answer = await run(index)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:200]}")
                profiler.stop()
                elapsed = time.perf_counter() - began
                timings[name] = elapsed / args.requests * 1000
                path = out / f"inprocess-{name}.txt"
                path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
                print(f"{name}: {timings[name]:.2f} ms per request (sequential, profiled) -> {path}")
    return 0


class StatementClock:
    """Count and time every statement (before/after cursor execute: driver + round trip)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.reset()
        self._started: list[float] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)
        event.listen(engine.sync_engine, "commit", self._commit)

    def reset(self) -> None:
        self.count = 0
        self.commits = 0
        self.seconds = 0.0
        self.by_sql: dict[str, list] = {}

    def _before(self, *_args) -> None:
        self._started.append(time.perf_counter())

    def _after(self, _conn, _cursor, statement, *_args) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        self.count += 1
        self.seconds += elapsed
        key = " ".join(statement.split())[:90]
        entry = self.by_sql.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += elapsed

    def _commit(self, _conn) -> None:
        self.commits += 1

    def top(self, limit: int):
        return sorted(self.by_sql.items(), key=lambda item: -item[1][1])[:limit]


async def _ingest(http: httpx.AsyncClient, signer: SnapshotSigner) -> httpx.Response:
    body = signer.body()
    return await http.post(SNAPSHOTS_PATH, content=body, headers=signer.headers(body))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=Path, default=RESULTS / "seed.json")
    parser.add_argument("--requests", type=int, default=300)
    return asyncio.run(_profile(parser.parse_args()))
