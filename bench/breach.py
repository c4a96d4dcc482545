"""Breach to close command: from a critical snapshot's arrival to its close commands existing.

Accounts of a fresh pool each get a normal snapshot (their peak equity), then one critical
snapshot (equity 25 % under the peak, past the default 20 % critical drawdown, auto-close on),
sent open-loop at a fixed rate, optionally while other accounts stream normal snapshots.

Three measures, each of one breach per account:

- client round trip: from writing the critical snapshot to reading the answer that carries the
  close commands. The ingest step inserts the commands and commits before it answers, so the
  answer is proof the commands exist; this bounds the latency from above (it adds the client's
  and the loopback's share).
- server, arrival → commit: the instrumented app (`bench.instrumented`) notes the
  server's monotonic clock when the ASGI app is called and when the request's COMMIT returned,
  i.e. when the commands became visible to every other connection. This is the number the target
  (≤ 50 ms p99 from the snapshot's arrival) speaks of.
- `last_sync_duration_ms`, which the service stores itself: from the handler's start to the
  flush that inserted the commands, before COMMIT. A cross-check from the database.

The stored `created_at` of a command is not usable for this: the ingest step stamps it with the
snapshot's `taken_at` (the bridge's clock), not the server's time, and `sent_at` with the
server's receive time; `sent_at - created_at` only measures the bridge-to-server delay.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2    # once
    .venv/bin/python -m bench breach --pool 500 --rate 50
    .venv/bin/python -m bench breach --pool 500 --rate 50 --background-rate 100

Writes bench/results/breach.json.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bench import environment, harness, load
from bench.arguments import base_parser, console, progress_printer, server_env
from bench.counters import CpuMeter
from bench.report import breach_table, environment_line, write_json
from bench.seed import Seed
from bench.servers import HOST, running
from bench.snapshots import SnapshotSigner
from bench.stats import latency_summary
from tradeguard.store.models import AccountState, CloseCommand


class Timings:
    def __init__(self) -> None:
        self.client: list[float] = []
        self.commit: list[float] = []
        self.app: list[float] = []
        self.statements: list[float] = []
        self.commands: list[int] = []

    def __call__(self, _signer: SnapshotSigner, answer, elapsed: float) -> None:
        if answer.status != 200:
            return
        self.client.append(elapsed)
        headers = answer.headers
        if "x-bench-commit-ms" in headers:
            self.commit.append(float(headers["x-bench-commit-ms"]) / 1000)
        if "x-bench-app-ms" in headers:
            self.app.append(float(headers["x-bench-app-ms"]) / 1000)
        if "x-bench-statements" in headers:
            # A snapshot applied in a batch reports its batch's statements: its share of them.
            self.statements.append(int(headers["x-bench-statements"]) / int(headers.get("x-bench-batch", 1)))
        self.commands.append(answer.body.count(b'"command_id"'))

    def summary(self) -> dict:
        statements = sorted(self.statements)
        return {
            "client_round_trip": latency_summary(self.client),
            "server_arrival_to_commit": latency_summary(self.commit),
            "server_arrival_to_answer": latency_summary(self.app),
            "sql_statements_per_request": {
                "min": statements[0],
                "median": statements[len(statements) // 2],
                "max": statements[-1],
            }
            if statements
            else None,
            "commands_per_answer": {
                "min": min(self.commands),
                "max": max(self.commands),
            }
            if self.commands
            else None,
        }


async def stored_commands(seed: Seed, account_ids: list[int]) -> dict:
    """What the database holds for these accounts: their close commands, and their stored sync times."""
    engine = create_async_engine(seed.database_url)
    try:
        async with engine.connect() as connection:
            durations = (
                await connection.execute(
                    select(AccountState.last_sync_duration_ms).where(AccountState.account_id.in_(account_ids))
                )
            ).scalars()
            durations = [float(value) / 1000 for value in durations if value is not None]
            counts = (
                await connection.execute(
                    select(CloseCommand.account_id, func.count())
                    .where(CloseCommand.account_id.in_(account_ids), CloseCommand.cause == "drawdown")
                    .group_by(CloseCommand.account_id)
                )
            ).all()
            delays = (
                await connection.execute(
                    select(CloseCommand.sent_at, CloseCommand.created_at).where(
                        CloseCommand.account_id.in_(account_ids)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    with_commands = [count for _, count in counts]
    return {
        "last_sync_duration": latency_summary(durations),
        "accounts_with_commands": len(with_commands),
        "commands_stored": sum(with_commands),
        "sent_at_minus_created_at": latency_summary(
            [(sent - created).total_seconds() for sent, created in delays if sent and created]
        ),
    }


async def run_breach(
    seed: Seed,
    *,
    pool: int = 500,
    rate: float = 50.0,
    workers: int = 2,
    background_rate: float = 0.0,
    background_accounts: int = 2_000,
    server_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    note = on_phase or (lambda _phase, _fraction: None)
    note("seeding the breach pool", 0.0)
    breach_seed = await harness.seed_pool(seed, pool)
    spec = harness.server_spec(seed, workers=workers, app=harness.INSTRUMENTED_APP, **(server_env or {}))
    results: dict = {
        "benchmark": "breach_to_command",
        "environment": await environment.describe(
            database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
        ),
        "load": {
            "breaches": pool,
            "breach_rate_per_s": rate,
            "background_snapshots_per_s": background_rate,
            "background_accounts": min(background_accounts, len(seed.accounts)) if background_rate else 0,
            "positions_per_account": seed.positions_per_account,
            "generator": "bench.client, open loop (paced), in the bench process",
        },
    }
    await harness.flush_redis(seed.redis_url)
    async with running(spec, log_dir=log_dir) as server:
        signers = harness.signers_for(breach_seed.accounts)
        note("priming the breach pool", 0.1)
        results["priming"] = await load.prime(HOST, server.port, signers, concurrency=16)

        note("steady snapshots (statement count)", 0.2)
        steady = Timings()
        sample = harness.signers_for(breach_seed.accounts[: min(100, pool)])
        await load.paced(
            HOST, server.port, [(signer, SnapshotSigner.body) for signer in sample], rate=50, on_answer=steady
        )
        results["steady_snapshot"] = steady.summary()

        stop = asyncio.Event()
        background = None
        background_tally = None
        if background_rate > 0:
            universe = harness.signers_for(seed.accounts[:background_accounts])
            await harness.ensure_primed(seed, server.port, seed.accounts[:background_accounts])
            background = asyncio.create_task(
                load.paced(
                    HOST,
                    server.port,
                    [(signer, SnapshotSigner.body) for signer in universe],
                    rate=background_rate,
                    max_in_flight=64,
                    stop=stop,
                    cycle=True,
                )
            )
            await asyncio.sleep(2.0)

        note("critical snapshots", 0.4)
        timings = Timings()
        meter = CpuMeter(server.pids())
        began = time.perf_counter()
        tally = await load.paced(
            HOST,
            server.port,
            [(signer, SnapshotSigner.critical) for signer in signers],
            rate=rate,
            max_in_flight=64,
            on_answer=timings,
        )
        elapsed = time.perf_counter() - began
        results["cpu"] = meter.read(elapsed)
        if background is not None:
            stop.set()
            background_tally = await background
            results["background"] = background_tally.summary(elapsed + 2.0)
    note("reading the database", 0.9)
    results["breach"] = timings.summary() | {
        "errors": tally.errors,
        "first_error": tally.first_error,
        "seconds": round(elapsed, 2),
    }
    results["stored"] = await stored_commands(seed, [account.account_id for account in breach_seed.accounts])
    p99 = results["breach"]["server_arrival_to_commit"].get("p99_ms")
    results["summary"] = {
        "server_p99_ms": p99,
        "client_p99_ms": results["breach"]["client_round_trip"].get("p99_ms"),
        "target_p99_ms": 50,
        "target_met": p99 is not None and p99 <= 50,
    }
    note("done", 1.0)
    return results


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--pool", type=int, default=500, help="accounts that breach, one critical snapshot each"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="critical snapshots per second (open loop)")
    parser.add_argument(
        "--background-rate", type=float, default=0.0, help="normal snapshots per second meanwhile"
    )
    parser.add_argument("--background-accounts", type=int, default=2000)
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_breach(
            seed,
            pool=args.pool,
            rate=args.rate,
            workers=args.workers,
            background_rate=args.background_rate,
            background_accounts=args.background_accounts,
            server_env=server_env(args.env),
            log_dir=harness.RESULTS / "logs",
            on_phase=progress_printer("breach"),
        )
    )
    path = write_json(result, args.output or harness.RESULTS / "breach.json")
    console.print(environment_line(result["environment"]))
    console.print(breach_table(result))
    steady = result["steady_snapshot"]
    console.print(
        f"SQL statements per request: breach {result['breach']['sql_statements_per_request']}, "
        f"steady snapshot {steady['sql_statements_per_request']}; "
        f"commands per answer {result['breach']['commands_per_answer']}"
    )
    console.print(f"written {path}")
    return 0
