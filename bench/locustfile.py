"""The standard load profile: 100 users, 10/s ramp, reads weighted 5/3/2, plus a share of signed ingests.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2          # once
    # a server started from the seed's settings (as `python -m bench standard_profile` does), then:
    TG_SEED=bench/results/seed.json .venv/bin/locust -f bench/locustfile.py --headless \\
        -u 100 -r 10 -t 60s --host http://127.0.0.1:8000 --only-summary

Each simulated user is one seeded user with its own JWT and accounts (taken in order, one seeded
user per simulated user). Its tasks: reconciliation status 5, open positions 3, guard status 2,
each for one of its accounts, and, with weight TG_INGEST_WEIGHT (default 1, i.e. ~9 % of
requests), a signed snapshot of one of its accounts, as its bridge would send it (HMAC signature
of tradeguard.ingest.signature.sign, fresh nonce, strictly newer taken_at), so the cache sees
the invalidations real writes cause.

TG_BRIDGE_CADENCE (seconds, e.g. 5, the design's cadence) instead makes each account's bridge
send a snapshot at that steady pace beside its user's reads, as bridges do, and the ingest task
weight becomes 0 unless TG_INGEST_WEIGHT or TRADEGUARD_BENCH_INGEST_SHARE is also set.

TG_WARMUP (seconds) ends a warm-up: latencies and the hit rate are then taken from that point
on (the whole run's hit rate is kept beside it), so the first read of each key, a miss however
good the cache, does not count against the steady state.

TRADEGUARD_BENCH_INGEST_SHARE (a fraction, e.g. 0.02) sets the ingest share of the tasks
directly instead: the read weights become 500/300/200 and the ingest weight
round(1000 * share / (1 - share)) (0.02 → 20, i.e. 1.96 % of tasks). When it is set it wins
over TG_INGEST_WEIGHT. Users wait TG_WAIT_MIN..TG_WAIT_MAX seconds (default
0.5..1.5) between tasks.

TG_OPERATORS (default 0) adds that many operators (the seed's users of role owner) beside the
followers, each with the dashboard's platform page open, reading what the page reads while events
keep arriving: every TG_OPERATOR_PERIOD seconds (default 1) the first page of
`/api/v1/platform/accounts` (50 accounts, ranked), and every TG_OPERATOR_EXPOSURE_PERIOD seconds
(default 5) `/api/v1/platform/exposure`. Operators are spawned first and count in `-u`.

At the end it prints p50/p95/p99, throughput and errors, and the server's cache hit rate over
the run, from `tradeguard_cache_hits_total` / `tradeguard_cache_misses_total` read before and
after, over HTTP from /metrics (which adds up every worker when the server runs with
PROMETHEUS_MULTIPROC_DIR, as `tradeguard serve --workers N` does). The numbers also go to
TG_RESULT (default bench/results/locust.json).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import threading
import time
import urllib.request
from pathlib import Path

import gevent
from locust import FastHttpUser, between, constant_pacing, events, task

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(CHECKOUT), str(CHECKOUT / "src")]

from bench.counters import CacheCounts, parse_prometheus_text  # noqa: E402
from bench.seed import Seed  # noqa: E402
from bench.snapshots import SnapshotSigner  # noqa: E402
from tradeguard.bridges.client import SNAPSHOTS_PATH  # noqa: E402

SEED_PATH = Path(os.environ.get("TG_SEED", "bench/results/seed.json"))
RESULT_PATH = Path(os.environ.get("TG_RESULT", "bench/results/locust.json"))
INGEST_SHARE = os.environ.get("TRADEGUARD_BENCH_INGEST_SHARE")
BRIDGE_CADENCE = float(os.environ.get("TG_BRIDGE_CADENCE") or 0)
if INGEST_SHARE:
    _share = float(INGEST_SHARE)
    if not 0.0 <= _share < 1.0:
        raise SystemExit(f"TRADEGUARD_BENCH_INGEST_SHARE must be in [0, 1), not {INGEST_SHARE}")
    READ_SCALE = 100
    INGEST_WEIGHT = round(10 * READ_SCALE * _share / (1.0 - _share))
else:
    READ_SCALE = 1
    INGEST_WEIGHT = int(os.environ.get("TG_INGEST_WEIGHT", "0" if BRIDGE_CADENCE else "1"))
STATUS_WEIGHT, POSITIONS_WEIGHT, GUARDS_WEIGHT = 5 * READ_SCALE, 3 * READ_SCALE, 2 * READ_SCALE
WAIT_MIN = float(os.environ.get("TG_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("TG_WAIT_MAX", "1.5"))
WARMUP_SECONDS = float(os.environ.get("TG_WARMUP") or 0)
OPERATORS = int(os.environ.get("TG_OPERATORS") or 0)
OPERATOR_PERIOD = float(os.environ.get("TG_OPERATOR_PERIOD") or 1.0)
OPERATOR_EXPOSURE_PERIOD = float(os.environ.get("TG_OPERATOR_EXPOSURE_PERIOD") or 5.0)
PLATFORM_PAGE = "/api/v1/platform/accounts?limit=50"
PLATFORM_EXPOSURE = "/api/v1/platform/exposure"

_seed = Seed.load(SEED_PATH)
_next_user = itertools.count()
_next_operator = itertools.count()
_lock = threading.Lock()
_counts: dict[str, CacheCounts] = {}


def _cache_counts(host: str) -> CacheCounts:
    with urllib.request.urlopen(f"{host}/metrics", timeout=10) as answer:
        return parse_prometheus_text(answer.read().decode())


@events.test_start.add_listener
def _before(environment, **_kwargs) -> None:
    _counts["before"] = _cache_counts(environment.host)
    if WARMUP_SECONDS:
        gevent.spawn_later(WARMUP_SECONDS, _end_warmup, environment)


def _end_warmup(environment) -> None:
    """From here on the run is steady: every key has been read once, so misses are no longer cold."""
    _counts["warm"] = _cache_counts(environment.host)
    environment.stats.reset_all()


@events.test_stop.add_listener
def _after(environment, **_kwargs) -> None:
    _counts["after"] = _cache_counts(environment.host)
    _report(environment)


def _followers_views(cache: dict) -> dict:
    """The hit rate of the views followers read, the platform's left out."""
    views = {
        view: counts for view, counts in cache.get("by_view", {}).items() if not view.startswith("platform")
    }
    hits = sum(counts["hits"] for counts in views.values())
    misses = sum(counts["misses"] for counts in views.values())
    return {
        "hits": hits,
        "misses": misses,
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
    }


def _report(environment) -> None:
    total = environment.stats.total
    steady_from = _counts.get("warm", _counts["before"])
    cache = _counts["after"].minus(steady_from).summary() if "after" in _counts else {}
    whole_run = _counts["after"].minus(_counts["before"]).summary() if "after" in _counts else {}
    by_name = {}
    for entry in environment.stats.entries.values():
        by_name[f"{entry.method} {entry.name}"] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
        }
    result = {
        "benchmark": "locust_standard_profile",
        "host": environment.host,
        "users": environment.parsed_options.num_users if environment.parsed_options else None,
        "spawn_rate": environment.parsed_options.spawn_rate if environment.parsed_options else None,
        "run_time": environment.parsed_options.run_time if environment.parsed_options else None,
        "weights": {
            "reconciliation_status": STATUS_WEIGHT,
            "open_positions": POSITIONS_WEIGHT,
            "guard_status": GUARDS_WEIGHT,
            "ingest": INGEST_WEIGHT,
        },
        "ingest_task_share": round(
            INGEST_WEIGHT / (STATUS_WEIGHT + POSITIONS_WEIGHT + GUARDS_WEIGHT + INGEST_WEIGHT), 4
        ),
        "bridge_cadence_seconds": BRIDGE_CADENCE or None,
        "ingest_request_share": round(
            sum(e.num_requests for e in environment.stats.entries.values() if e.method == "POST")
            / max(total.num_requests, 1),
            4,
        ),
        "wait_seconds": [WAIT_MIN, WAIT_MAX],
        "requests": total.num_requests,
        "errors": total.num_failures,
        "requests_per_s": round(total.total_rps, 1),
        "p50_ms": total.get_response_time_percentile(0.50),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "by_request": by_name,
        "warmup_seconds": WARMUP_SECONDS,
        "operators": OPERATORS,
        "operator_period_seconds": OPERATOR_PERIOD if OPERATORS else None,
        "operator_exposure_period_seconds": OPERATOR_EXPOSURE_PERIOD if OPERATORS else None,
        "cache": cache,
        "cache_followers_views": _followers_views(cache),
        "cache_whole_run": whole_run,
    }
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(result, indent=2) + "\n")
    hit = cache.get("hit_rate")
    hit_text = f"{hit:.1%}" if hit is not None else "n/a"
    whole_hit = whole_run.get("hit_rate")
    if WARMUP_SECONDS and whole_hit is not None:
        hit_text += f" after a {WARMUP_SECONDS:g} s warm-up, {whole_hit:.1%} over the whole run"
    print(
        f"\nstandard profile: {result['requests']} requests, {result['requests_per_s']} req/s, "
        f"errors {result['errors']}, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"p99 {result['p99_ms']} ms, cache hit rate {hit_text} "
        f"(hits {cache.get('hits')}, misses {cache.get('misses')}); written {RESULT_PATH}"
    )


class Follower(FastHttpUser):
    """One seeded user: their token, their accounts, their accounts' bridges."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        with _lock:
            index = next(_next_user)
        user = _seed.users[index % len(_seed.users)]
        self.auth = {"Authorization": f"Bearer {user.token}"}
        self.accounts = list(user.accounts)
        self.bridges = {account: SnapshotSigner(_seed.account(account)) for account in self.accounts}
        self.paced_bridges = (
            [gevent.spawn(self._send_steadily, bridge) for bridge in self.bridges.values()]
            if BRIDGE_CADENCE
            else []
        )

    def on_stop(self) -> None:
        gevent.killall(self.paced_bridges)

    def _send(self, bridge: SnapshotSigner) -> None:
        body = bridge.body()
        self.client.post(SNAPSHOTS_PATH, data=body, headers=bridge.headers(body), name=SNAPSHOTS_PATH)

    def _send_steadily(self, bridge: SnapshotSigner) -> None:
        gevent.sleep(random.uniform(0, BRIDGE_CADENCE))
        while True:
            began = time.monotonic()
            self._send(bridge)
            gevent.sleep(max(0.0, BRIDGE_CADENCE - (time.monotonic() - began)))

    def _read(self, path: str, name: str) -> None:
        account = random.choice(self.accounts)
        self.client.get(f"{path}?account_id={account}", headers=self.auth, name=name)

    @task(STATUS_WEIGHT)
    def reconciliation_status(self) -> None:
        self._read("/api/v1/reconciliation/status", "/api/v1/reconciliation/status")

    @task(POSITIONS_WEIGHT)
    def open_positions(self) -> None:
        self._read("/api/v1/positions/open", "/api/v1/positions/open")

    @task(GUARDS_WEIGHT)
    def guard_status(self) -> None:
        self._read("/api/v1/guards/status", "/api/v1/guards/status")

    @task(INGEST_WEIGHT)
    def ingest(self) -> None:
        self._send(self.bridges[random.choice(self.accounts)])


class Operator(FastHttpUser):
    """One of the seed's operators, with the dashboard's platform page open."""

    fixed_count = OPERATORS
    weight = 0  # without operators, Locust leaves the class out rather than weigh it as a follower
    wait_time = constant_pacing(OPERATOR_PERIOD)

    def on_start(self) -> None:
        if not _seed.operators:
            raise SystemExit("TG_OPERATORS needs a seed with operators: python -m bench seed --operators 1")
        with _lock:
            index = next(_next_operator)
        self.auth = {"Authorization": f"Bearer {_seed.operators[index % len(_seed.operators)].token}"}
        self.exposure_read_at = -OPERATOR_EXPOSURE_PERIOD

    @task
    def platform_page(self) -> None:
        self.client.get(PLATFORM_PAGE, headers=self.auth, name=PLATFORM_PAGE)
        if time.monotonic() - self.exposure_read_at >= OPERATOR_EXPOSURE_PERIOD:
            self.exposure_read_at = time.monotonic()
            self.client.get(PLATFORM_EXPOSURE, headers=self.auth, name=PLATFORM_EXPOSURE)
