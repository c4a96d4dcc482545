"""`tradeguard bench` (`python -m bench quick`): a short run of the three benchmarks, with a progress
bar and a summary table.

On the configured database and cache (TRADEGUARD_DATABASE_URL / TRADEGUARD_REDIS_URL) or,
without them, embedded (a throwaway SQLite file and the in-process cache). It never touches the
configured database's data: on PostgreSQL it creates a database of its own on the same server and
drops it afterwards; with Redis it uses another database number (`redis_db`, 14 by default),
which it empties first. The numbers are indicative; bench/ has the full benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import environment, harness, load, wrk
from bench.breach import Timings
from bench.counters import CacheCounts, cache_counts
from bench.reads import ENDPOINTS, callers_of, warm
from bench.report import write_json
from bench.seed import Seed, new_secrets, seed_database
from bench.servers import HOST, ServerSpec, running
from bench.snapshots import SnapshotSigner
from bench.stats import ms
from tradeguard.settings import Settings, get_settings

STEPS = ("seed", "reads", "ingest", "breach")


def _bench_urls(settings: Settings, scratch: Path, redis_db: int) -> tuple[str, str, bool]:
    """(database URL, Redis URL, whether the database is a server-side one to create and drop)."""
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        url = make_url(settings.database_url)
        database_url = url.set(database=f"tradeguard_quickbench_{uuid.uuid4().hex[:8]}")
        database = database_url.render_as_string(hide_password=False)
        server_side = True
    else:
        database = f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        server_side = False
    redis_url = ""
    if settings.redis_url:
        base = settings.redis_url.split("?", 1)[0].rstrip("/")
        if base.count("/") > 2:
            base = base.rsplit("/", 1)[0]
        redis_url = f"{base}/{redis_db}"
    return database, redis_url, server_side


async def _quick(
    settings: Settings,
    *,
    accounts: int,
    breaches: int,
    duration: float,
    workers: int | None,
    redis_db: int,
    progress: Progress,
) -> dict:
    tasks = {step: progress.add_task(step, total=1.0) for step in STEPS}
    scratch = Path(tempfile.mkdtemp(prefix="tradeguard-bench-"))
    database_url, redis_url, server_side = _bench_urls(settings, scratch, redis_db)
    embedded = database_url.startswith("sqlite")
    workers = workers or (1 if embedded else 2)
    jwt_secret, secret_key = new_secrets()
    result: dict = {"benchmark": "quick", "mode": "embedded" if embedded else "production"}
    if server_side:
        await harness.create_database(database_url)
    try:
        await harness.flush_redis(redis_url)
        engine = create_async_engine(database_url)
        try:
            common = dict(positions=10, jwt_secret=jwt_secret, secret_key=secret_key, redis_url=redis_url)
            seed = await seed_accounts(engine, accounts, **common)
            progress.update(tasks["seed"], completed=0.5)
            pool = await seed_database(
                engine, users=breaches, accounts_per_user=1, migrate_first=False, **common
            )
        finally:
            await engine.dispose()
        progress.update(tasks["seed"], completed=1.0)

        extra = {"TRADEGUARD_DATA_DIR": str(scratch)}
        spec = harness.server_spec(seed, workers=workers, app=harness.INSTRUMENTED_APP, **extra)
        result["environment"] = await environment.describe(
            database_url=database_url, redis_url=redis_url, server=spec.describe()
        )
        async with running(spec, log_dir=scratch) as server:
            await harness.ensure_primed(seed, server.port, seed.accounts)
            result["reads"] = await _reads(seed, server, workers, duration, progress, tasks["reads"])
            result["ingest"] = await _ingest(seed, server, duration, progress, tasks["ingest"])
            result["breach"] = await _breach(pool, server, progress, tasks["breach"])
    finally:
        if server_side:
            await harness.drop_database(database_url)
        await harness.flush_redis(redis_url)
        shutil.rmtree(scratch, ignore_errors=True)
    return result


async def seed_accounts(engine, accounts: int, **common) -> Seed:
    """Exactly `accounts` accounts, two per user so that a user's reads cover several (one for the
    last user when the number is odd)."""
    pairs, single = divmod(accounts, 2)
    batches = [(users, per_user) for users, per_user in ((pairs, 2), (single, 1)) if users]
    seed = await seed_database(engine, users=batches[0][0], accounts_per_user=batches[0][1], **common)
    for batch, (users, per_user) in enumerate(batches[1:], start=1):
        more = await seed_database(
            engine,
            users=users,
            accounts_per_user=per_user,
            label=f"{seed.label}-{batch}",
            migrate_first=False,
            **common,
        )
        seed.extend(more)
    return seed


async def _reads(seed, server, workers: int, duration: float, progress: Progress, task) -> dict:
    callers = callers_of(seed, len(seed.users))
    out: dict = {"endpoints": {}}
    share = 1.0 / len(ENDPOINTS)
    sizes = {}
    measured = CacheCounts({}, {})
    for index, (name, path) in enumerate(ENDPOINTS.items()):
        # Warmed right before its run: entries nobody read for longer than the TTL have expired.
        sizes[name] = await warm(server.port, callers, path)
        before = await cache_counts(HOST, server.port)
        if wrk.available():
            run = await asyncio.to_thread(
                wrk.run, server.url, callers=callers, path=path, connections=100, threads=2, duration=duration
            )
            run["generator"] = "wrk"
        else:
            run = await load.read_loop(HOST, server.port, callers, path, concurrency=32, duration=duration)
            run["latency_ms"] = run.pop("latency")
            run["generator"] = "python (wrk not installed)"
        out["endpoints"][name] = run | {"body_bytes": sizes[name]}
        measured = measured.plus((await cache_counts(HOST, server.port)).minus(before))
        progress.update(task, completed=(index + 1) * share * 0.8)
    out["cache"] = measured.summary()
    if wrk.available():
        bare = ServerSpec(
            app=harness.BARE_APP,
            factory=False,
            workers=workers,
            env={"TG_BARE_SIZES": f"status={sizes['status']}"},
            ready_path="/",
        )
        async with running(bare) as bare_server:
            out["bare"] = await asyncio.to_thread(
                wrk.run, f"{bare_server.url}/status", connections=100, threads=2, duration=duration
            )
        ours = out["endpoints"]["status"]["requests_per_s"]
        out["status_vs_bare"] = round(ours / out["bare"]["requests_per_s"], 3)
    progress.update(task, completed=1.0)
    return out


async def _ingest(seed, server, duration: float, progress: Progress, task) -> dict:
    signers = harness.signers_for(seed.accounts)
    return await load.closed_loop(
        HOST,
        server.port,
        signers,
        concurrency=16,
        duration=duration,
        warmup=1.0,
        on_tick=lambda fraction: progress.update(task, completed=fraction),
    )


async def _breach(pool, server, progress: Progress, task) -> dict:
    signers = harness.signers_for(pool.accounts)
    await load.prime(HOST, server.port, signers, concurrency=8)
    progress.update(task, completed=0.3)
    timings = Timings()
    tally = await load.paced(
        HOST,
        server.port,
        [(signer, SnapshotSigner.critical) for signer in signers],
        rate=20,
        on_answer=timings,
    )
    progress.update(task, completed=1.0)
    return timings.summary() | {"errors": tally.errors}


def summary_table(result: dict) -> Table:
    env = result.get("environment", {})
    table = Table(
        title=f"tradeguard bench ({result['mode']}: {env.get('database_version', '')[:30]}, "
        f"cache {env.get('cache')}, {env.get('cores')} cores)",
        title_justify="left",
    )
    for column in ("benchmark", "throughput", "p50 ms", "p95 ms", "p99 ms", "notes"):
        table.add_column(column, justify="left" if column in ("benchmark", "notes") else "right")
    reads = result["reads"]
    for name, run in reads["endpoints"].items():
        latency = run["latency_ms"]
        table.add_row(
            f"read {name}",
            f"{run['requests_per_s']:,.0f} req/s",
            ms(latency.get("p50_ms")),
            ms(latency.get("p95_ms")),
            ms(latency.get("p99_ms")),
            f"{run['generator']}, {run['error_count']} errors",
        )
    if "bare" in reads:
        bare = reads["bare"]
        table.add_row(
            "bare ASGI (status size)",
            f"{bare['requests_per_s']:,.0f} req/s",
            ms(bare["latency_ms"].get("p50_ms")),
            ms(bare["latency_ms"].get("p95_ms")),
            ms(bare["latency_ms"].get("p99_ms")),
            f"status/bare = {reads['status_vs_bare']:.2f}",
        )
    hit = reads["cache"].get("hit_rate")
    ingest = result["ingest"]
    table.add_row(
        f"ingest ({ingest['accounts']} accounts)",
        f"{ingest['snapshots_per_s']:,.0f} snap/s",
        ms(ingest["latency"].get("p50_ms")),
        ms(ingest["latency"].get("p95_ms")),
        ms(ingest["latency"].get("p99_ms")),
        f"{ingest['errors']} errors; read hit rate {hit:.1%}" if hit is not None else "",
    )
    breach = result["breach"]["server_arrival_to_commit"]
    client = result["breach"]["client_round_trip"]
    table.add_row(
        "breach → command",
        f"{breach.get('count', 0)} breaches",
        ms(breach.get("p50_ms")),
        ms(breach.get("p95_ms")),
        ms(breach.get("p99_ms")),
        f"server arrival→commit; client p99 {ms(client.get('p99_ms'))} ms",
    )
    return table


def run_quick_bench(
    settings: Settings | None = None,
    *,
    accounts: int = 40,
    breaches: int = 40,
    duration: float = 5.0,
    workers: int | None = None,
    redis_db: int = 14,
    output: Path | None = Path("var/bench/quick.json"),
    console: Console | None = None,
) -> dict:
    """Run the short benchmarks; print the table; write JSON to `output` (unless None); return the result."""
    settings = settings or get_settings()
    console = console or Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        result = asyncio.run(
            _quick(
                settings,
                accounts=accounts,
                breaches=breaches,
                duration=duration,
                workers=workers,
                redis_db=redis_db,
                progress=progress,
            )
        )
    result["seconds"] = round(time.perf_counter() - started, 1)
    console.print(summary_table(result))
    if output is not None:
        write_json(result, output)
        result["output"] = str(output)
        console.print(f"written {output}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description="A short benchmark: cached reads against a bare ASGI app, ingest, breach to close "
        "command. On PostgreSQL and Redis when configured (TRADEGUARD_DATABASE_URL, TRADEGUARD_REDIS_URL; "
        "in a database of its own, created and dropped, and Redis db 14), otherwise embedded. "
        "The full benchmarks: python -m bench --help, and docs/benchmarks.md."
    )
    parser.add_argument(
        "--accounts", type=_at_least_one(int), default=40, help="seeded accounts (default 40)"
    )
    parser.add_argument(
        "--breaches",
        type=_at_least_one(int),
        default=40,
        help="critical snapshots timed for breach to command (default 40)",
    )
    parser.add_argument(
        "--duration",
        type=_at_least_one(float),
        default=5.0,
        help="seconds of load per read measurement (default 5)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("var/bench/quick.json"),
        help="where the machine-readable result goes (default var/bench/quick.json)",
    )
    args = parser.parse_args()
    run_quick_bench(
        accounts=args.accounts, breaches=args.breaches, duration=args.duration, output=args.output
    )
    return 0


def _at_least_one(kind):
    def parse(text: str):
        value = kind(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text} is below 1")
        return value

    parse.__name__ = kind.__name__
    return parse
