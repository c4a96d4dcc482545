"""The benchmark tooling's pure parts: no servers, no clocks asserted."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradeguard.bench import wrk
from tradeguard.bench.bare_app import constant_body
from tradeguard.bench.counters import parse_prometheus_text
from tradeguard.bench.plot import Series, line_chart
from tradeguard.bench.seed import Seed, SeededAccount, SeededUser, position_specs
from tradeguard.bench.snapshots import SnapshotSigner
from tradeguard.bench.stats import latency_summary, percentile
from tradeguard.ingest.signature import sign
from tradeguard.ingest.validation import SnapshotIn, parse_snapshot
from tradeguard.values import ServerClock


def test_bare_body_is_valid_json_of_exactly_the_requested_size():
    for size in (12, 556, 2586):
        body = constant_body(size)
        assert len(body) == size
        json.loads(body)


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert latency_summary([0.001, 0.002])["p50_ms"] == 1.0


def test_cache_counters_are_read_per_view_from_prometheus_text():
    text = (
        'tradeguard_cache_hits_total{view="guard_status"} 7.0\n'
        'tradeguard_cache_misses_total{view="guard_status"} 3.0\n'
        "# HELP something else\n"
    )
    summary = parse_prometheus_text(text).summary()
    assert summary["hits"] == 7 and summary["misses"] == 3 and summary["hit_rate"] == 0.7


def test_wrk_script_rotates_every_caller():
    script = wrk.lua_script([("token-a", 1), ("token-b", 2)], "/api/v1/guards/status")
    assert '"Bearer token-a", "1"' in script and '"Bearer token-b", "2"' in script
    assert wrk.MARKER in script


def _account() -> SeededAccount:
    opened = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    return SeededAccount(7, 3, "dev_x_7", "secret", position_specs(7, 10, opened))


def _as_the_server_reads(body: bytes) -> SnapshotIn:
    return parse_snapshot(body, clock=ServerClock(datetime.now(UTC), timedelta(0)), account_currency="USD")


def test_bench_snapshots_are_valid_signed_and_newer_each_time():
    signer = SnapshotSigner(_account())
    first, second = signer.body(), signer.body()
    one, two = _as_the_server_reads(first), _as_the_server_reads(second)
    assert len(one.positions) == 10 and len({p.symbol for p in one.positions}) == 10
    assert two.taken_at > one.taken_at
    headers = signer.headers(first)
    expected = sign(
        "secret", "POST", "/api/v1/ingest/snapshots", headers["X-Timestamp"], headers["X-Nonce"], first
    )
    assert headers["X-Signature"] == expected


def test_critical_snapshot_is_past_the_default_critical_drawdown():
    signer = SnapshotSigner(_account())
    critical = _as_the_server_reads(signer.critical())
    assert critical.equity <= Decimal("10000") * Decimal("0.80")


def test_seed_file_round_trips_without_storing_positions(tmp_path):
    opened = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    seed = Seed(
        "lbl", "postgresql+asyncpg://x@h/db", "", "j", "k", opened.isoformat(), opened.isoformat(), "pw", 10
    )
    seed.users.append(SeededUser(3, "u@bench.local", "tok", (7,)))
    seed.accounts.append(_account())
    path = tmp_path / "seed.json"
    seed.save(path)
    assert all("positions" not in account for account in json.loads(path.read_text())["accounts"])
    loaded = Seed.load(path)
    assert loaded.account(7).positions == _account().positions
    assert loaded.users[0].accounts == (7,)


def test_latency_chart_draws_each_series_through_its_points_and_the_target_line(tmp_path):
    path = line_chart(
        tmp_path / "chart.svg",
        [
            Series("p50", [(1000, 1.0), (20000, 5.0)]),
            Series("p99", [(1000, 3.0), (20000, 25.0)], dashed=True),
        ],
        title="latency <against> load",
        x_label="req/s",
        y_label="ms",
        y_line=(10.0, "target"),
    )

    svg = ElementTree.parse(path).getroot()
    namespace = "{http://www.w3.org/2000/svg}"
    texts = [text.text for text in svg.iter(f"{namespace}text")]
    circles = svg.findall(f"{namespace}circle")
    dashed = [line for line in svg.iter(f"{namespace}polyline") if line.get("stroke-dasharray") == "6,4"]
    assert "latency <against> load" in texts
    assert {"p50", "p99", "target"} <= set(texts)
    assert len(circles) == 4
    assert len(dashed) == 1
