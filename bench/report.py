"""Human summaries (Rich tables) and machine-readable results (JSON) of the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.stats import ms


def write_json(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def environment_line(env: dict) -> str:
    server = env.get("server", {})
    return (
        f"{env.get('cores')} cores ({env.get('cpu_model')}), {env.get('database_version', '')[:40]}, "
        f"cache {env.get('cache')} {env.get('cache_version') or ''}, uvicorn x{server.get('workers')} "
        f"(uvloop, httptools), guard workers {server.get('guard_workers', 0)}"
    )


def reads_table(result: dict) -> Table:
    table = Table(title="cached reads vs bare ASGI (wrk, same server settings)", title_justify="left")
    for column in (
        "endpoint",
        "body B",
        "req/s",
        "bare req/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "bare p99",
        "hit rate",
        "errors",
    ):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, row in result["endpoints"].items():
        ours, bare = row["tradeguard"], row["bare"]
        hit = ours.get("cache", {}).get("hit_rate")
        table.add_row(
            name,
            str(row["body_bytes"]),
            f"{ours['requests_per_s']:,.0f}",
            f"{bare['requests_per_s']:,.0f}",
            f"{row['throughput_ratio']:.2f}" if row["throughput_ratio"] is not None else "-",
            ms(ours["latency_ms"].get("p50_ms")),
            ms(ours["latency_ms"].get("p99_ms")),
            ms(bare["latency_ms"].get("p99_ms")),
            f"{hit:.1%}" if hit is not None else "-",
            str(ours["error_count"]),
        )
    return table


def ingest_table(result: dict) -> Table:
    table = Table(
        title="ingest: signed snapshots, 10 positions, reconciled and guarded", title_justify="left"
    )
    for column in (
        "accounts",
        "in flight",
        "snapshots/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "server CPU ms/snap",
        "PG CPU ms/snap",
    ):
        table.add_column(column, justify="right")
    for run in result["runs"]:
        latency = run["latency"]
        per = run.get("cpu_ms_per_snapshot", {})
        table.add_row(
            f"{run['accounts']:,}",
            str(run["concurrency"]),
            f"{run['snapshots_per_s']:,.0f}" if run["snapshots_per_s"] else "-",
            ms(latency.get("p50_ms")),
            ms(latency.get("p95_ms")),
            ms(latency.get("p99_ms")),
            str(run["errors"]),
            ms(per.get("server")),
            ms(per.get("postgresql")),
        )
    return table


def breach_table(result: dict) -> Table:
    table = Table(title="breach → close command (one critical snapshot per account)", title_justify="left")
    for column in ("measure", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    rows = [
        ("server: arrival → commit", result["breach"]["server_arrival_to_commit"]),
        ("server: arrival → answer", result["breach"]["server_arrival_to_answer"]),
        ("client round trip", result["breach"]["client_round_trip"]),
        ("stored last_sync_duration_ms", result["stored"]["last_sync_duration"]),
    ]
    for name, summary in rows:
        table.add_row(
            name,
            str(summary.get("count", 0)),
            ms(summary.get("p50_ms")),
            ms(summary.get("p95_ms")),
            ms(summary.get("p99_ms")),
            ms(summary.get("max_ms")),
        )
    return table


def profile_table(profile: dict, title: str, limit: int = 12) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("layer (self time)")
    table.add_column("%", justify="right")
    for row in profile["by_layer_self"][:limit]:
        table.add_row(row["name"], f"{row['pct']:.1f}")
    return table


def show(console: Console, *tables: Table) -> None:
    for table in tables:
        console.print(table)


def _load_row(table: Table, label: str, run: dict, offered: str = "-") -> None:
    latency, per = run["latency"], run.get("cpu_ms_per_snapshot", {})
    rate = run["snapshots_per_s"]
    table.add_row(
        label,
        offered,
        f"{rate:,.0f}" if rate else "-",
        ms(latency.get("p50_ms")),
        ms(latency.get("p99_ms")),
        str(run["errors"]),
        *(ms(per.get(group)) for group in ("server", "worker", "postgresql", "redis", "load_generator")),
    )


def _load_table(title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "phase",
        "offered/s",
        "snapshots/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "API CPU ms/snap",
        "worker",
        "PG",
        "Redis",
        "load gen",
    ):
        table.add_column(column, justify="left" if column == "phase" else "right")
    return table


def scale_tables(result: dict) -> list[Table]:
    load = result["load"]
    table = _load_table(
        f"steady ingest: {load['accounts']:,} accounts, {load['positions_per_snapshot']} positions, "
        "tradeguard serve + worker"
    )
    _load_row(table, f"closed, {load['concurrency']}", result["closed_loop"])
    for point in result["sweep"]:
        _load_row(table, "open", point, f"{point['offered_per_s']:,.0f}")
    _load_row(table, f"bare, closed, {load['concurrency']}", result["bare"])
    summary, applied = result["summary"], result["applied"]
    verdict = Table(title="summary", title_justify="left")
    for column in (
        "ratio to bare",
        "knee (offered/s)",
        "errors",
        "acknowledged applied",
        "stored",
        "missing",
    ):
        verdict.add_column(column, justify="right")
    verdict.add_row(
        f"{summary['ratio_to_bare']:.3f}" if summary["ratio_to_bare"] else "-",
        f"{summary['knee_offered_per_s']:,.0f}" if summary["knee_offered_per_s"] else "none kept",
        str(summary["errors"]),
        str(applied["acknowledged_applied"]),
        str(applied["total_syncs_delta"]),
        str(applied["missing"]),
    )
    return [table, verdict, memory_table(result["memory_steady"], "memory after the closed loop")]


def memory_table(snapshot: dict, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("process", "count", "RSS MiB", "PSS MiB"):
        table.add_column(column, justify="left" if column == "process" else "right")

    def row(name: str, one: dict | None, count: int = 1) -> None:
        if one is None:
            return
        pss = one.get("pss_mib")
        table.add_row(
            name,
            str(one.get("processes", count)),
            f"{one['rss_mib']:.1f}",
            "-" if pss is None else f"{pss:.1f}",
        )

    row("API master", snapshot["api_master"])
    for index, worker in enumerate(snapshot["api_workers"]):
        row(f"API worker {index + 1}", worker)
    row("tradeguard worker", snapshot["worker"])
    row("PostgreSQL backends (this database)", snapshot["postgresql_backends_of_this_database"])
    row("PostgreSQL, all processes", snapshot["postgresql_all_processes"])
    row("Redis server", snapshot["redis_server"])
    return table


def storm_table(result: dict) -> Table:
    summary, load = result["summary"], result["load"]
    title = f"breach storm: {load['accounts']:,} critical snapshots within {load['window_s']:g} s"
    if load["background_snapshots_per_s"]:
        title += f", {load['background_snapshots_per_s']:g} steady snapshots/s meanwhile"
    table = Table(title=title, title_justify="left")
    for column in ("measure", "count", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    rows = [
        ("from send (client)", result["storm"]["latency"]),
        ("from arrival to commit (server)", result["timings"]["server_arrival_to_commit"]),
        ("from arrival to answer (server)", result["timings"]["server_arrival_to_answer"]),
    ]
    if "background" in result:
        rows.append(("background snapshots, from send", result["background"]["latency"]))
    for name, latency in rows:
        table.add_row(
            name,
            str(latency.get("count", 0)),
            ms(latency.get("p50_ms")),
            ms(latency.get("p99_ms")),
            ms(latency.get("max_ms")),
        )
    table.caption = (
        f"commands {summary['commands_stored']:,} of {summary['commands_expected']:,} committed; "
        f"no answer {summary['no_answer'] or 0}; other statuses {summary['not_200'] or 0}; "
        f"last answer after {summary['last_answer_after_s']:.1f} s; "
        f"{summary['answered_within_bridge_timeout']:,} answered within a bridge's "
        f"{summary['bridge_timeout_s']:g} s"
    )
    return table


def growth_table(result: dict) -> Table:
    table = Table(title="how the cost of a steady snapshot grows (closed loop)", title_justify="left")
    for column in (
        "positions",
        "accounts",
        "conn",
        "snap/s",
        "p50 ms",
        "p99 ms",
        "err",
        "API",
        "worker",
        "PG",
        "Redis",
        "load gen",
    ):
        table.add_column(column, justify="right")
    for run in result["runs"]:
        latency, per = run["latency"], run.get("cpu_ms_per_snapshot", {})
        table.add_row(
            str(run["positions"]),
            f"{run['accounts']:,}",
            str(run["concurrency"]),
            f"{run['snapshots_per_s']:,.0f}" if run["snapshots_per_s"] else "-",
            ms(latency.get("p50_ms")),
            ms(latency.get("p99_ms")),
            str(run["errors"]),
            *(ms(per.get(group)) for group in ("server", "worker", "postgresql", "redis", "load_generator")),
        )
    table.caption = "CPU columns: milliseconds per snapshot"
    return table
