"""Steady ingest at scale, as a user runs it: `tradeguard serve --workers 2` plus `tradeguard worker`.

Every seeded account (10,000 with the default seed) sends snapshots of its positions (10 by
default), matched by ticket to as many expected trades. The requests of each phase are signed
before it starts (`bench.presign`: own nonce, current timestamp, later `taken_at` per account),
so the load loop only writes bytes and reads answers. Phases, in one run:

1. closed loop: `--concurrency` senders (64), each owning its accounts, back to back;
2. open-loop sweep: for each of `--rates`, requests due at evenly spaced times whatever the
   answers do, latency from when each was due; the sweep stops after the first rate the server
   does not keep up with (achieved < 95 % of offered, or errors). The knee is the highest rate kept;
3. the same closed loop against a bare ASGI app that reads the same POST bodies and answers as
   many bytes, on the same server settings (`bench.serve_like`): the ratio.

Reported per phase: snapshots/s, p50/p99, errors, and CPU milliseconds per snapshot of the API
processes, the worker, PostgreSQL, Redis and the load generator itself. After the tradeguard
phases the database is asked how many snapshots it applied (the growth of
account_states.total_syncs), which must cover every answer that said `applied`. The memory of
every process (each API worker, the worker, PostgreSQL, Redis) is read after the closed loop.
The machine's load (/proc/loadavg) is noted before and after: figures are only comparable
within one run.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2 --stale-after-seconds 3600 \\
        --output bench/results/seed-scale.json                           # once: 10,000 accounts
    .venv/bin/python -m bench scale --seed bench/results/seed-scale.json

The seed's stale-feed limit of an hour keeps the measurement on steady snapshots: at today's
rates a phase reaches each of 10,000 accounts less often than once a minute (the default limit),
and the worker would mark them stale in between, which a bridge on its 5 s cadence never is.
Each phase records how many of its accounts were stale when it began.

Writes bench/results/scale.json.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import environment, harness, load, memory, presign
from bench.arguments import base_parser, console, progress_printer, server_env
from bench.client import Connection
from bench.counters import CpuMeter
from bench.rates import applied_check, knee, per_snapshot_ms
from bench.report import environment_line, scale_tables, write_json
from bench.seed import Seed
from bench.servers import HOST, Server, running, worker_process
from bench.snapshots import SnapshotSigner

RATES = (125, 250, 500, 1000, 2000)
KEPT = 0.95


def _meter(server: Server, worker_pid: int | None) -> CpuMeter:
    return CpuMeter(
        [server.process.pid, *server.pids()], groups={"worker": [worker_pid]} if worker_pid else None
    )


async def _stale(server: Server, signers: Sequence[SnapshotSigner]) -> int:
    ids = [signer.account.account_id for signer in signers]
    return await harness.stale_feeds(server.spec.env["TRADEGUARD_DATABASE_URL"], ids)


def _with_cpu(run: dict, cpu: dict, snapshots: int) -> dict:
    return run | {"cpu": cpu, "cpu_ms_per_snapshot": per_snapshot_ms(cpu["cpu_seconds"], snapshots)}


async def closed_phase(
    server: Server,
    signers: Sequence[SnapshotSigner],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    ceiling: float,
    acks: load.Acknowledged,
    worker_pid: int | None = None,
    repeat: bool = False,
) -> dict:
    """Pre-sign enough for `ceiling` snapshots/s over the phase, then run the closed loop.

    With `repeat` each sender sends its requests over and over: for the bare app, which checks
    no nonce, and is many times faster than the memory for that many distinct requests allows.
    """
    senders = max(1, min(concurrency, len(signers)))
    each = presign.budget(signers[0], math.ceil(ceiling * (duration + warmup)), host=HOST, port=server.port)
    each = math.ceil(each / senders)
    signing = time.perf_counter()
    queues = presign.per_sender(signers, senders, each, host=HOST, port=server.port)
    signed_in = time.perf_counter() - signing
    presign.settle()
    # Only tradeguard runs with a worker; the bare app has no accounts to be stale.
    stale = await _stale(server, signers) if worker_pid is not None else None
    meter = _meter(server, worker_pid)
    began = time.perf_counter()
    run = await load.closed_loop_prebuilt(
        HOST,
        server.port,
        [itertools.cycle(queue) for queue in queues] if repeat else queues,
        duration=duration,
        warmup=warmup,
        acks=acks,
    )
    cpu = meter.read(time.perf_counter() - began)
    return _with_cpu(run, cpu, run["sent_including_warmup"]) | {
        "accounts": len(signers),
        "presigned": senders * each,
        "stale_feeds_at_start": stale,
        "presigning_s": round(signed_in, 2),
    }


async def open_phase(
    server: Server,
    signers: Sequence[SnapshotSigner],
    *,
    rate: float,
    duration: float,
    max_connections: int,
    acks: load.Acknowledged,
    worker_pid: int | None = None,
) -> dict:
    count = presign.budget(signers[0], int(rate * duration), host=HOST, port=server.port)
    messages = presign.round_robin(signers, count, host=HOST, port=server.port)
    presign.settle()
    stale = await _stale(server, signers)
    meter = _meter(server, worker_pid)
    began = time.perf_counter()
    run = await load.open_loop_prebuilt(
        HOST, server.port, messages, rate=rate, max_connections=max_connections, acks=acks
    )
    cpu = meter.read(time.perf_counter() - began)
    return _with_cpu(run, cpu, len(messages)) | {"accounts": len(signers), "stale_feeds_at_start": stale}


async def _answer_size(server: Server, signer: SnapshotSigner, acks: load.Acknowledged) -> int:
    """The bytes of one ingest answer, so the bare app answers as many."""
    connection = Connection(HOST, server.port)
    try:
        (message,) = presign.round_robin([signer], 1, host=HOST, port=server.port)
        answer = await connection.send(message)
    finally:
        await connection.close()
    acks.note(answer)
    if answer.status != 200:
        raise RuntimeError(f"a steady snapshot was refused: {answer.status} {answer.body[:300]!r}")
    return len(answer.body)


async def run_scale(
    seed: Seed,
    *,
    accounts: int | None = None,
    workers: int = 2,
    concurrency: int = 64,
    duration: float = 15.0,
    warmup: float = 3.0,
    ceiling: float = 2500.0,
    rates: Sequence[float] = RATES,
    rate_duration: float = 10.0,
    max_connections: int = 256,
    server_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    note = on_phase or (lambda _phase, _fraction: None)
    chosen = seed.accounts[: accounts or len(seed.accounts)]
    extra = server_env or {}
    spec = harness.server_spec(seed, workers=workers, launcher="tradeguard serve", **extra)
    results: dict = {
        "benchmark": "scale",
        "load_average_before": harness.load_average(),
        "environment": await environment.describe(
            database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
        ),
        "load": {
            "generator": "bench.client, pre-signed requests (bench.presign), in the bench process",
            "accounts": len(chosen),
            "positions_per_snapshot": seed.positions_per_account,
            "concurrency": concurrency,
            "duration_s": duration,
            "warmup_s": warmup,
            "rates": list(rates),
            "rate_duration_s": rate_duration,
            "max_connections_open_loop": max_connections,
            "worker": "tradeguard worker, a process of its own (TRADEGUARD_RUN_WORKER_IN_API=false)",
            "note": "the load generator runs on the same 2 cores as the servers, PostgreSQL and Redis",
        },
    }
    await harness.flush_redis(seed.redis_url)
    acks = load.Acknowledged()
    signers = harness.signers_for(chosen)
    async with running(spec, log_dir=log_dir) as server:
        with worker_process({**seed.server_env(), **extra}, log_dir=log_dir) as worker:
            note("priming", 0.0)
            started = time.perf_counter()
            primed = await harness.ensure_primed(seed, server.port, chosen)
            results["priming"] = primed and primed | {"seconds": round(time.perf_counter() - started, 1)}
            syncs_before = await harness.total_syncs(seed.database_url)
            answer_bytes = await _answer_size(server, signers[0], acks)

            note(f"closed loop, {concurrency} connections", 0.1)
            results["closed_loop"] = await closed_phase(
                server,
                signers,
                concurrency=concurrency,
                duration=duration,
                warmup=warmup,
                ceiling=ceiling,
                acks=acks,
                worker_pid=worker.pid,
            )
            results["memory_steady"] = await memory.snapshot(
                api_master=server.process.pid,
                api_workers=server.pids(),
                worker=worker.pid,
                database_url=seed.database_url,
            )
            results["sweep"] = []
            for index, rate in enumerate(sorted(rates)):
                note(f"open loop, {rate:g}/s offered", 0.3 + 0.5 * index / len(rates))
                point = await open_phase(
                    server,
                    signers,
                    rate=rate,
                    duration=rate_duration,
                    max_connections=max_connections,
                    acks=acks,
                    worker_pid=worker.pid,
                )
                results["sweep"].append(point)
                if point["errors"] or point["achieved_per_s"] < KEPT * rate:
                    break
            note("counting in the database", 0.85)
            results["applied"] = applied_check(
                acks.applied, await harness.total_syncs(seed.database_url) - syncs_before
            )

    note("bare ASGI app, closed loop", 0.9)
    bare_spec = harness.server_spec(
        seed,
        workers=workers,
        app=harness.BARE_APP,
        factory=False,
        launcher="serve-like",
        TG_BARE_SIZES=f"api/v1/ingest/snapshots={answer_bytes}",
    )
    async with running(bare_spec, log_dir=log_dir) as bare:
        results["bare"] = await closed_phase(
            bare,
            signers,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            ceiling=ceiling,
            acks=load.Acknowledged(),
            repeat=True,
        ) | {"server": bare_spec.describe(), "answer_bytes": answer_bytes}
    results["load_average_after"] = harness.load_average()
    ours, theirs = results["closed_loop"]["snapshots_per_s"], results["bare"]["snapshots_per_s"]
    results["summary"] = {
        "closed_loop_snapshots_per_s": ours,
        "closed_loop_p99_ms": results["closed_loop"]["latency"].get("p99_ms"),
        "bare_snapshots_per_s": theirs,
        "ratio_to_bare": round(ours / theirs, 4) if ours and theirs else None,
        "knee_offered_per_s": knee(results["sweep"], kept=KEPT),
        "errors": results["closed_loop"]["errors"] + sum(point["errors"] for point in results["sweep"]),
        "every_acknowledged_applied": results["applied"]["every_acknowledged_applied"],
        "target_snapshots_per_s": 2000,
        "target_met": bool(ours and ours >= 2000),
    }
    note("done", 1.0)
    return results


def main() -> int:
    parser = base_parser(__doc__, profile=False)
    parser.add_argument(
        "--accounts", type=int, default=None, help="the first N seeded accounts (default: all)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="closed-loop connections")
    parser.add_argument("--duration", type=float, default=15.0, help="closed-loop seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="closed-loop seconds before measuring")
    parser.add_argument(
        "--ceiling",
        type=float,
        default=2500.0,
        help="snapshots/s the closed loop is pre-signed for; a sender that runs out stops (see exhausted_senders)",
    )
    parser.add_argument(
        "--rates", default=",".join(map(str, RATES)), help="open-loop offered rates, per second"
    )
    parser.add_argument(
        "--rate-duration", type=float, default=10.0, help="seconds of requests per offered rate"
    )
    parser.add_argument("--max-connections", type=int, default=256, help="open-loop connection limit")
    args = parser.parse_args()
    seed = Seed.load(args.seed)
    result = asyncio.run(
        run_scale(
            seed,
            accounts=args.accounts,
            workers=args.workers,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            ceiling=args.ceiling,
            rates=[float(rate) for rate in args.rates.split(",")],
            rate_duration=args.rate_duration,
            max_connections=args.max_connections,
            server_env=server_env(args.env),
            log_dir=harness.RESULTS / "logs",
            on_phase=progress_printer("scale"),
        )
    )
    path = write_json(result, args.output or harness.RESULTS / "scale.json")
    console.print(environment_line(result["environment"]))
    for table in scale_tables(result):
        console.print(table)
    console.print(f"written {path}")
    return 0
