"""Breach storm: many accounts on one symbol breach in the same second; every close command committed?

A fresh pool of `--accounts` accounts (all holding the same first symbol among their positions)
each gets a normal snapshot (its equity peak); then every account's critical snapshot (equity 25 %
under the peak, past the default 20 % critical drawdown, auto-close on: all its positions closed)
is sent open-loop, evenly spread over `--window` seconds, each on a connection of its own as
independent bridges send them. The server is tradeguard's app wrapped by the benchmark's
stopwatch (`bench.instrumented`) under `uvicorn.run` with the arguments `tradeguard serve
--workers 2` passes (`bench.serve_like`), beside a `tradeguard worker`.

Measured, per critical snapshot:

- from its send: the moment it was due (its place in the window) to its answer, connecting
  included: what the bridge sees;
- from its arrival (server side, as `python -m bench breach` measures it): the stopwatch's
  ASGI call to the request's COMMIT, when its close commands exist for every other connection;
  when the COMMIT is made outside the request (snapshots applied in batches), the stopwatch does
  not see it, and arrival → answer (sent after the commit) is the server-side bound instead;
- requests without an answer, by what happened (connection closed, time-out), and answers
  other than 200. The load generator waits `--timeout` seconds (600) for each answer, so that
  every answer's time is measured; how many came later than a bridge waits
  (`tradeguard.bridges.runtime.REQUEST_TIMEOUT_SECONDS`, 10 s) is counted apart.

"Arrival" is when uvicorn calls the app, once it has accepted the connection and parsed the
request: time spent before that in the kernel's accept queue or the worker's event loop is only
in the from-send figure.

The pool's accounts are seeded with a stale-feed limit of `--stale-after-seconds` (3600): priming
10,000 accounts takes longer than the default 60 s, and the first-primed would otherwise be
stale by the storm, which is not the situation of bridges on their 5 s cadence.

Then the database is asked: every pool account must have its close commands (positions × accounts
in all). The memory of every process is read after the storm. With `--background-rate` other
accounts (the seed's) stream normal snapshots open-loop at that rate, from two seconds before the
storm to its last answer: breach → command under steady ingest (e.g. half the capacity
`python -m bench scale` measured, with a smaller storm such as 500 accounts over 10 s).

    .venv/bin/python -m bench storm --seed bench/results/seed-scale.json --accounts 1000 --window 1
    .venv/bin/python -m bench storm --seed bench/results/seed-scale.json --accounts 10000 --window 5
    .venv/bin/python -m bench storm --seed bench/results/seed-scale.json --accounts 500 --window 10 \\
        --background-rate 175

Writes bench/results/storm-<accounts>.json (storm-<accounts>-background.json with a background).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from bench import environment, harness, load, memory, presign
from bench.arguments import base_parser, console, progress_printer, server_env
from bench.breach import Timings, stored_commands
from bench.counters import CpuMeter
from bench.rates import per_snapshot_ms
from bench.report import environment_line, memory_table, storm_table, write_json
from bench.seed import Seed
from bench.servers import HOST, running, worker_process
from bench.snapshots import SnapshotSigner
from tradeguard.bridges.runtime import REQUEST_TIMEOUT_SECONDS

BACKGROUND_LEAD_S = 2.0


async def run_storm(
    seed: Seed,
    *,
    accounts: int = 1000,
    window: float = 1.0,
    workers: int = 2,
    max_connections: int | None = None,
    background_rate: float = 0.0,
    background_accounts: int | None = None,
    timeout: float = 600.0,
    stale_after_seconds: int = 3600,
    server_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    note = on_phase or (lambda _phase, _fraction: None)
    note("seeding the storm pool", 0.0)
    pool = await harness.seed_pool(seed, accounts, stale_after_seconds=stale_after_seconds)
    extra = server_env or {}
    spec = harness.server_spec(
        seed, workers=workers, app=harness.INSTRUMENTED_APP, launcher="serve-like", **extra
    )
    background_pool = seed.accounts[: background_accounts or len(seed.accounts)] if background_rate else []
    results: dict = {
        "benchmark": "storm",
        "load_average_before": harness.load_average(),
        "environment": await environment.describe(
            database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
        ),
        "load": {
            "accounts": accounts,
            "window_s": window,
            "offered_per_s": accounts / window,
            "positions_per_account": seed.positions_per_account,
            "connections": "one per critical snapshot, opened when it is due",
            "answer_timeout_s": timeout,
            "pool_stale_after_seconds": stale_after_seconds,
            "background_snapshots_per_s": background_rate,
            "background_accounts": len(background_pool),
            "generator": "bench.client, pre-signed requests (bench.presign), open loop, in the bench process",
            "worker": "tradeguard worker, a process of its own (TRADEGUARD_RUN_WORKER_IN_API=false)",
        },
    }
    await harness.flush_redis(seed.redis_url)
    signers = harness.signers_for(pool.accounts)
    async with running(spec, log_dir=log_dir) as server:
        with worker_process({**seed.server_env(), **extra}, log_dir=log_dir) as worker:
            note("priming the pool (each account's peak)", 0.1)
            results["priming"] = await load.prime(HOST, server.port, signers, concurrency=32)
            background = None
            stop = asyncio.Event()
            if background_rate:
                note("priming the background accounts", 0.2)
                await harness.ensure_primed(seed, server.port, background_pool)
                span = BACKGROUND_LEAD_S + window + 10.0
                streaming = presign.round_robin(
                    harness.signers_for(background_pool),
                    int(background_rate * span),
                    host=HOST,
                    port=server.port,
                )
            storm = presign.round_robin(
                signers, len(signers), host=HOST, port=server.port, make=SnapshotSigner.critical
            )
            presign.settle()
            meter = CpuMeter([server.process.pid, *server.pids()], groups={"worker": [worker.pid]})
            began = time.perf_counter()
            if background_rate:
                note("background stream", 0.3)
                background = asyncio.create_task(
                    load.open_loop_prebuilt(
                        HOST,
                        server.port,
                        streaming,
                        rate=background_rate,
                        max_connections=256,
                        acks=load.Acknowledged(),
                        stop=stop,
                    )
                )
                await asyncio.sleep(BACKGROUND_LEAD_S)
            note("the storm", 0.4)
            timings = Timings()
            storm_began = time.perf_counter()
            results["storm"] = await load.open_loop_prebuilt(
                HOST,
                server.port,
                storm,
                rate=accounts / window,
                max_connections=max_connections or accounts,
                fresh_connections=True,
                timeout=timeout,
                acks=load.Acknowledged(),
                on_answer=lambda answer, elapsed: timings(None, answer, elapsed),
            )
            storm_took = time.perf_counter() - storm_began
            if background is not None:
                stop.set()
                results["background"] = await background
            cpu = meter.read(time.perf_counter() - began)
            requests = accounts + (results["background"]["requests"] if background is not None else 0)
            results["cpu"] = cpu | {"ms_per_request": per_snapshot_ms(cpu["cpu_seconds"], requests)}
            results["memory_after_storm"] = await memory.snapshot(
                api_master=server.process.pid,
                api_workers=server.pids(),
                worker=worker.pid,
                database_url=seed.database_url,
            )
    note("counting in the database", 0.9)
    results["timings"] = timings.summary()
    results["stored"] = await stored_commands(seed, [account.account_id for account in pool.accounts])
    expected = accounts * seed.positions_per_account
    results["load_average_after"] = harness.load_average()
    server_side = results["timings"]["server_arrival_to_commit"]
    results["summary"] = {
        "accounts": accounts,
        "window_s": window,
        "answered": results["storm"]["snapshots_ok"],
        "no_answer": results["storm"]["no_answer"],
        "not_200": {code: n for code, n in results["storm"]["statuses"].items() if code != "200"},
        "commands_expected": expected,
        "commands_stored": results["stored"]["commands_stored"],
        # Every pool account must have its commands; a command the worker expired unacknowledged
        # and issued again is a row more, so the count may exceed positions × accounts.
        "every_command_committed": results["stored"]["accounts_with_commands"] == accounts
        and results["stored"]["commands_stored"] >= expected,
        "accounts_with_commands": results["stored"]["accounts_with_commands"],
        "last_answer_after_s": round(storm_took, 3),
        "bridge_timeout_s": REQUEST_TIMEOUT_SECONDS,
        "answered_within_bridge_timeout": sum(
            1 for elapsed in timings.client if elapsed <= REQUEST_TIMEOUT_SECONDS
        ),
        "p50_from_send_ms": results["storm"]["latency"].get("p50_ms"),
        "p99_from_send_ms": results["storm"]["latency"].get("p99_ms"),
        "p50_from_arrival_ms": server_side.get("p50_ms"),
        "p99_from_arrival_ms": server_side.get("p99_ms"),
        # The stopwatch notes the request's own COMMIT; a commit made elsewhere for it (a batch of
        # snapshots applied together) is not seen, and then only arrival → answer, which follows
        # the commit, bounds it.
        "answers_with_commit_time": server_side.get("count", 0),
        "p99_from_arrival_to_answer_ms": results["timings"]["server_arrival_to_answer"].get("p99_ms"),
        "target_p99_from_arrival_ms": 1000 if not background_rate else 50,
    }
    note("done", 1.0)
    return results


def main() -> int:
    parser = base_parser(__doc__, profile=False)
    parser.add_argument(
        "--accounts", type=int, default=1000, help="accounts that breach, one critical snapshot each"
    )
    parser.add_argument(
        "--window", type=float, default=1.0, help="seconds over which the critical snapshots are sent"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="at most this many at once (default: one per account)",
    )
    parser.add_argument(
        "--background-rate",
        type=float,
        default=0.0,
        help="normal snapshots per second from other accounts meanwhile",
    )
    parser.add_argument(
        "--background-accounts",
        type=int,
        default=None,
        help="the first N seeded accounts stream (default: all)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each answer")
    parser.add_argument(
        "--stale-after-seconds", type=int, default=3600, help="the pool accounts' stale-feed limit"
    )
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_storm(
            seed,
            accounts=args.accounts,
            window=args.window,
            workers=args.workers,
            max_connections=args.max_connections,
            background_rate=args.background_rate,
            background_accounts=args.background_accounts,
            timeout=args.timeout,
            stale_after_seconds=args.stale_after_seconds,
            server_env=server_env(args.env),
            log_dir=harness.RESULTS / "logs",
            on_phase=progress_printer("storm"),
        )
    )
    suffix = "-background" if args.background_rate else ""
    path = write_json(result, args.output or harness.RESULTS / f"storm-{args.accounts}{suffix}.json")
    console.print(environment_line(result["environment"]))
    console.print(storm_table(result))
    console.print(memory_table(result["memory_after_storm"], "memory after the storm"))
    console.print(f"written {path}")
    return 0
