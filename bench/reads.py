"""Cached reads against a bare ASGI app, in one run, on the same server settings.

tradeguard and the bare app run side by side under the same uvicorn command line. For each read
endpoint, wrk first drives the bare app (answering a constant body as large as that endpoint's
real answer) and then tradeguard, with 100 connections rotating the seeded users' tokens and
account ids. Before measuring, every (user, account, endpoint) is read once so the cache is warm;
the hit rate of each run comes from the server's own counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import environment, harness, profiling, wrk
from bench.client import Connection
from bench.counters import CpuMeter, cache_counts
from bench.seed import Seed
from bench.servers import HOST, ServerSpec, running

ENDPOINTS = {
    "status": "/api/v1/reconciliation/status",
    "positions": "/api/v1/positions/open",
    "guards": "/api/v1/guards/status",
}


def callers_of(seed: Seed, users: int) -> list[tuple[str, int]]:
    return [(user.token, account) for user in seed.users[:users] for account in user.accounts]


WARMING_CONNECTIONS = 8


async def warm(port: int, callers: Sequence[tuple[str, int]], path: str) -> int:
    """Read every caller's account over several connections; returns the size of an answer's body.

    Each server process keeps its own copies and learns who owns an account from its own first
    read of it; connections are spread over the processes by the kernel, so one connection would
    warm one process only.
    """

    async def read_all() -> int:
        connection = Connection(HOST, port)
        size = 0
        try:
            for token, account in callers:
                answer = await connection.request(
                    "GET", f"{path}?account_id={account}", {"Authorization": f"Bearer {token}"}
                )
                if answer.status != 200:
                    raise RuntimeError(f"{path}: {answer.status} {answer.body[:200]!r}")
                size = len(answer.body)
        finally:
            await connection.close()
        return size

    sizes = await asyncio.gather(*(read_all() for _ in range(WARMING_CONNECTIONS)))
    return sizes[-1]


async def _wrk(url: str, **options) -> dict:
    return await asyncio.to_thread(wrk.run, url, **options)


async def run_reads(
    seed: Seed,
    *,
    workers: int = 2,
    users: int = 100,
    connections: int = 100,
    threads: int = 2,
    duration: float = 15.0,
    endpoints: dict[str, str] = ENDPOINTS,
    server_env: dict[str, str] | None = None,
    profile_dir: Path | None = None,
    profile_endpoint: str = "status",
    log_dir: Path | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict:
    if not wrk.available():
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    note = on_phase or (lambda _phase, _fraction: None)
    callers = callers_of(seed, users)
    await harness.flush_redis(seed.redis_url)
    spec = harness.server_spec(seed, workers=workers, **(server_env or {}))
    results: dict = {
        "benchmark": "reads_vs_bare",
        "environment": await environment.describe(
            database_url=seed.database_url, redis_url=seed.redis_url, server=spec.describe()
        ),
        "load": {
            "generator": "wrk (C), Lua script rotating (token, account_id) pairs",
            "connections": connections,
            "threads": threads,
            "duration_s": duration,
            "users": len({token for token, _ in callers}),
            "accounts": len(callers),
            "note": "wrk runs on the same 2 cores as the servers, PostgreSQL and Redis; closed loop",
        },
        "endpoints": {},
    }
    async with running(spec, log_dir=log_dir) as server:
        note("priming", 0.0)
        await harness.ensure_primed(seed, server.port, [seed.account(a) for _, a in callers])
        sizes = {name: await warm(server.port, callers, path) for name, path in endpoints.items()}
        bare_spec = ServerSpec(
            app=harness.BARE_APP,
            factory=False,
            workers=workers,
            env={"TG_BARE_SIZES": ",".join(f"{name}={size}" for name, size in sizes.items())},
            ready_path="/",
        )
        results["environment"]["bare_server"] = bare_spec.describe()
        async with running(bare_spec, log_dir=log_dir) as bare:
            for index, (name, path) in enumerate(endpoints.items()):
                note(f"{name}: bare", (2 * index) / (2 * len(endpoints)))
                options = dict(connections=connections, threads=threads, duration=duration)
                meter = CpuMeter(bare.pids())
                began = time.perf_counter()
                bare_run = await _wrk(f"{bare.url}/{name}", **options)
                bare_run["cpu"] = meter.read(time.perf_counter() - began)

                note(f"{name}: tradeguard", (2 * index + 1) / (2 * len(endpoints)))
                await warm(server.port, callers, path)
                before = await cache_counts(HOST, server.port)
                meter = CpuMeter(server.pids())
                began = time.perf_counter()
                run = await _wrk(f"{server.url}", callers=callers, path=path, **options)
                run["cpu"] = meter.read(time.perf_counter() - began)
                after = await cache_counts(HOST, server.port)
                run["cache"] = after.minus(before).summary()
                p99 = run["latency_ms"].get("p99_ms")
                ratio = (
                    run["requests_per_s"] / bare_run["requests_per_s"] if bare_run["requests_per_s"] else None
                )
                results["endpoints"][name] = {
                    "path": path,
                    "body_bytes": sizes[name],
                    "bare": bare_run,
                    "tradeguard": run,
                    "throughput_ratio": round(ratio, 3) if ratio is not None else None,
                    "p99_ms": p99,
                    "p99_target_met": p99 is not None and p99 < 10,
                    "ratio_target_met": ratio is not None and ratio >= 0.5,
                }
            if profile_dir is not None:
                # Apart from the measured runs: sampling costs the sampled worker a little CPU.
                note(f"{profile_endpoint}: profiling", 0.99)
                path = endpoints[profile_endpoint]
                profile_path = profile_dir / f"reads-{profile_endpoint}.raw.txt"
                profiler = profiling.start(server.pids()[0], max(1, duration - 2), profile_path)
                run = await _wrk(
                    f"{server.url}",
                    callers=callers,
                    path=path,
                    connections=connections,
                    threads=threads,
                    duration=duration,
                )
                profiling.finish(profiler)
                if profile_path.exists():
                    results["profile"] = {
                        "endpoint": profile_endpoint,
                        "requests_per_s_while_sampled": run["requests_per_s"],
                        "raw": str(profile_path),
                        **profiling.read_profile(profile_path),
                    }
    note("done", 1.0)
    return results
