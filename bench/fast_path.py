"""What a cache hit costs inside the app: the ASGI call alone, in process, no HTTP server, no network.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2    # once
    .venv/bin/python -m bench fast_path --requests 50000

Runs the real app (lifespan included) against the benchmark database and Redis, reads one
reconciliation status twice through HTTP to fill the cache, then calls the app directly with the
same request many times, and a constant-body ASGI app the same way; prints microseconds per call.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from bench.arguments import base_parser, console
from bench.seed import Seed

PATH = "/api/v1/reconciliation/status"


async def measure(seed: Seed, requests: int) -> dict[str, float]:
    os.environ.update(seed.server_env())
    from tradeguard.app import create_app
    from tradeguard.settings import Settings

    app = create_app(Settings())
    user = seed.users[0]
    account = user.accounts[0]
    headers = {"Authorization": f"Bearer {user.token}"}
    scope = {
        "type": "http",
        "method": "GET",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": f"account_id={account}".encode(),
        "headers": [(b"host", b"tradeguard"), (b"authorization", headers["Authorization"].encode())],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("tradeguard", 80),
        "client": ("bench", 1),
        "root_path": "",
    }
    statuses = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def bare(_scope, _receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tradeguard") as client:
            for _ in range(2):
                answer = await client.get(PATH, params={"account_id": account}, headers=headers)
                answer.raise_for_status()
        timings = {}
        for name, target in (("tradeguard cache hit", app), ("bare ASGI app", bare)):
            statuses.clear()
            began = time.perf_counter()
            for _ in range(requests):
                await target(dict(scope), receive, send)
            timings[name] = (time.perf_counter() - began) / requests * 1e6
            if statuses.count(200) != requests:
                raise SystemExit(f"{name}: {requests - statuses.count(200)} answers were not 200")
    return timings


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    timings = asyncio.run(measure(Seed.load(args.seed), args.requests))
    for name, microseconds in timings.items():
        console.print(f"{name}: {microseconds:.1f} µs per call")
    return 0
