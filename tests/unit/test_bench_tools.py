"""The benchmarks (bench/, beside the package, not in it): their pure parts, the quick benchmark's
seeding, and that the package neither imports nor ships any of them. No servers, no clocks asserted."""

from __future__ import annotations

import ast
import asyncio
import importlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from bench import CHECKOUT, presign, wrk
from bench.__main__ import BENCHMARKS
from bench.bare_app import constant_body, read_body
from bench.client import HTTPError
from bench.counters import parse_prometheus_text
from bench.growth import growth_series
from bench.harness import server_spec
from bench.load import Tally
from bench.memory import parse_kib
from bench.plot import Series, line_chart
from bench.quick import seed_accounts
from bench.rates import applied_check, knee, per_snapshot_ms, send_offsets
from bench.seed import Seed, SeededAccount, SeededUser, new_secrets, position_specs
from bench.snapshots import SnapshotSigner
from bench.stats import latency_summary, percentile
from sqlalchemy.ext.asyncio import create_async_engine

import tradeguard
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


@pytest.mark.parametrize("accounts", [1, 4, 5])
def test_bench_seeds_exactly_the_number_of_accounts_asked_for(tmp_path, accounts):
    async def seed():
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}")
        jwt_secret, secret_key = new_secrets()
        try:
            return await seed_accounts(
                engine, accounts, positions=1, jwt_secret=jwt_secret, secret_key=secret_key
            )
        finally:
            await engine.dispose()

    seeded = asyncio.run(seed())

    assert len(seeded.accounts) == accounts
    assert sorted(account for user in seeded.users for account in user.accounts) == sorted(
        account.account_id for account in seeded.accounts
    )


def test_every_benchmark_of_python_m_bench_has_a_command_line():
    for name in BENCHMARKS:
        assert callable(importlib.import_module(f"bench.{name}").main), name


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every module `path` (the source of `module`) imports, and every name it imports from one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            anchor = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(filter(None, (anchor, node.module)))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _is_benchmark(module: str) -> bool:
    return module == "bench" or module.startswith(("bench.", "tradeguard.bench"))


def test_the_import_walk_sees_benchmark_imports_of_every_form(tmp_path):
    sample = tmp_path / "tradeguard" / "sample.py"
    sample.parent.mkdir()
    sample.write_text("import bench.quick\nfrom bench import seed\nfrom . import bench\nimport json\n")

    found = _imported_modules(sample, "tradeguard.sample")

    assert sorted(filter(_is_benchmark, found)) == ["bench", "bench.quick", "bench.seed", "tradeguard.bench"]


def test_no_module_of_the_package_imports_benchmark_code():
    source = Path(tradeguard.__file__).parent
    imports = {}
    for path in source.rglob("*.py"):
        module = ".".join(("tradeguard", *path.relative_to(source).with_suffix("").parts))
        imports[module.removesuffix(".__init__")] = _imported_modules(path, module.removesuffix(".__init__"))

    wrong_way = {module: sorted(filter(_is_benchmark, names)) for module, names in imports.items()}

    assert "tradeguard.services" in imports["tradeguard.cli"]
    assert {module: names for module, names in wrong_way.items() if names} == {}


def test_the_wheel_carries_no_benchmark_file(tmp_path):
    checkout = tmp_path / "checkout"
    for name in ("src", "bench"):
        shutil.copytree(
            CHECKOUT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, checkout / name)

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "wheels"),
            str(checkout),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("tradeguard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
        packages = archive.read(top_level).decode().split()

    assert "tradeguard/cli.py" in names and "tradeguard/store/migrations/env.py" in names
    assert packages == ["tradeguard"]
    assert [name for name in names if "bench" in name.split("/")[:-1] or name.startswith("bench")] == []


def _split_request(message: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return request_line, headers, body


def test_presigned_requests_carry_unique_nonces_valid_signatures_and_newer_snapshots_per_account():
    opened = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    accounts = [
        SeededAccount(n, 1, f"dev_{n}", f"secret-{n}", position_specs(n, 10, opened)) for n in (7, 8, 9)
    ]
    signers = [SnapshotSigner(account) for account in accounts]

    messages = presign.round_robin(signers, 30, host="127.0.0.1", port=8123)

    nonces, taken = set(), {}
    for index, message in enumerate(messages):
        request_line, headers, body = _split_request(message)
        account = accounts[index % 3]
        assert request_line == "POST /api/v1/ingest/snapshots HTTP/1.1"
        assert headers["Host"] == "127.0.0.1:8123" and int(headers["Content-Length"]) == len(body)
        assert headers["X-Device-Id"] == account.device_id
        expected = sign(
            account.secret,
            "POST",
            "/api/v1/ingest/snapshots",
            headers["X-Timestamp"],
            headers["X-Nonce"],
            body,
        )
        assert headers["X-Signature"] == expected
        nonces.add(headers["X-Nonce"])
        snapshot = _as_the_server_reads(body)
        assert snapshot.taken_at > taken.get(account.account_id, opened)
        taken[account.account_id] = snapshot.taken_at
    assert len(nonces) == 30


def test_presigned_senders_own_disjoint_accounts_and_budget_leaves_the_signer_untouched():
    opened = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    signers = [
        SnapshotSigner(SeededAccount(n, 1, f"dev_{n}", "s", position_specs(n, 1, opened))) for n in range(10)
    ]

    queues = presign.per_sender(signers, 4, 3, host="h", port=1)
    owners = [{_split_request(message)[1]["X-Device-Id"] for message in queue} for queue in queues]

    assert [len(queue) for queue in queues] == [3, 3, 3, 3]
    assert owners[0] == {"dev_0", "dev_4", "dev_8"} and owners[3] == {"dev_3", "dev_7"}
    assert not set.intersection(*owners)

    before = signers[0]._last_taken
    size = len(presign.round_robin(signers[:1], 1, host="h", port=1)[0])
    assert signers[0]._last_taken != before  # signing advances the signer ...
    before = signers[0]._last_taken
    # Half a request of slack: prices, and so the bytes of a body, differ a little from one to the next.
    assert presign.budget(signers[0], 1_000, host="h", port=1, memory=size * 10 + size // 2) == 10
    assert presign.budget(signers[0], 5, host="h", port=1, memory=size * 10 + size // 2) == 5
    assert signers[0]._last_taken == before  # ... the budget's probe does not


def test_open_loop_offsets_are_evenly_spaced_at_the_rate():
    assert send_offsets(4, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        send_offsets(0, 1)


def test_the_knee_is_the_highest_rate_kept_before_the_first_missed():
    sweep = [
        {"offered_per_s": 500, "achieved_per_s": 499.0, "errors": 0},
        {"offered_per_s": 250, "achieved_per_s": 250.0, "errors": 0},
        {"offered_per_s": 1000, "achieved_per_s": 700.0, "errors": 0},
        {"offered_per_s": 2000, "achieved_per_s": 1990.0, "errors": 0},
    ]
    assert knee(sweep) == 500
    assert knee([{"offered_per_s": 250, "achieved_per_s": 250.0, "errors": 1}]) is None
    assert knee([]) is None


def test_every_acknowledged_snapshot_must_be_counted_in_the_database():
    assert applied_check(100, 100) == {
        "acknowledged_applied": 100,
        "total_syncs_delta": 100,
        "missing": 0,
        "unacknowledged_but_stored": 0,
        "every_acknowledged_applied": True,
    }
    short = applied_check(100, 97)
    assert short["missing"] == 3 and not short["every_acknowledged_applied"]
    assert applied_check(100, 101)["unacknowledged_but_stored"] == 1


def test_cpu_per_snapshot_is_milliseconds_of_each_group():
    assert per_snapshot_ms({"server": 2.0, "postgresql": 0.5}, 1000) == {"server": 2.0, "postgresql": 0.5}
    assert per_snapshot_ms({"server": 2.0}, 0) == {}


def test_memory_fields_are_read_in_kib_from_proc_text():
    status = "Name:\tpython\nVmPeak:\t  200 kB\nVmRSS:\t  123456 kB\n"
    assert parse_kib(status, "VmRSS") == 123456
    assert parse_kib("Rss:  10 kB\nPss:   7 kB\n", "Pss") == 7
    assert parse_kib(status, "Pss") is None


def test_growth_series_put_accounts_on_a_log_scale_one_series_per_positions_count():
    runs = [
        {"positions": 10, "accounts": 1, "snapshots_per_s": 100.0},
        {"positions": 10, "accounts": 1000, "snapshots_per_s": 300.0},
        {"positions": 1, "accounts": 10, "snapshots_per_s": None},
        {"positions": 1, "accounts": 100, "snapshots_per_s": 400.0},
    ]
    series = growth_series(runs, lambda run: run["snapshots_per_s"])
    assert [(one.label, list(one.points)) for one in series] == [
        ("1 position", [(2.0, 400.0)]),
        ("10 positions", [(0.0, 100.0), (3.0, 300.0)]),
    ]


def test_bench_snapshots_with_more_positions_than_symbols_quote_each_symbol_once():
    opened = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    body = SnapshotSigner(SeededAccount(7, 3, "d", "s", position_specs(7, 50, opened))).body()
    snapshot = _as_the_server_reads(body)
    assert len(snapshot.positions) == 50 and len({p.ticket for p in snapshot.positions}) == 50
    assert len(snapshot.quotes) == len({quote.symbol for quote in snapshot.quotes}) == 10


def test_the_bare_app_reads_a_post_body_split_over_several_messages():
    messages = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]

    async def receive():
        return messages.pop(0)

    assert asyncio.run(read_body(receive)) == b"abcd"
    assert messages == []


def test_unanswered_requests_are_counted_by_what_happened():
    tally = Tally()
    tally.failed(HTTPError("POST snapshot: IncompleteReadError"))
    tally.failed(HTTPError("POST snapshot: IncompleteReadError (after reconnecting)"))
    tally.failed(ConnectionResetError())
    tally.record(503, b"busy", 0.1)
    summary = tally.summary(1.0)
    assert summary["errors"] == 4 and summary["statuses"] == {"503": 1}
    assert summary["no_answer"] == {
        "ConnectionResetError": 1,
        "IncompleteReadError": 1,
        "IncompleteReadError (after reconnecting)": 1,
    }


def test_servers_are_started_as_tradeguard_serve_or_with_its_uvicorn_options():
    seed = Seed("lbl", "postgresql+asyncpg://x@h/db", "", "j", "k", "", "", "pw", 10)

    serve = server_spec(seed, workers=2, launcher="tradeguard serve")
    bare = server_spec(seed, workers=2, app="bench.bare_app:app", factory=False, launcher="serve-like")
    stopwatch = server_spec(seed, workers=2, app="bench.instrumented:create_app", launcher="serve-like")

    assert serve.command == (
        "-m",
        "tradeguard.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "2",
    )
    assert bare.command == (
        "-m",
        "bench.serve_like",
        "bench.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "2",
    )
    assert stopwatch.command[:4] == ("-m", "bench.serve_like", "bench.instrumented:create_app", "--factory")
    assert server_spec(seed, workers=2).command == ()
    with pytest.raises(ValueError):
        server_spec(seed, workers=2, app="bench.bare_app:app", launcher="tradeguard serve")
