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
from bench import CHECKOUT, wrk
from bench.__main__ import BENCHMARKS
from bench.bare_app import constant_body
from bench.counters import parse_prometheus_text
from bench.plot import Series, line_chart
from bench.quick import seed_accounts
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
