"""Resident memory of the processes under test, from /proc: RSS, and PSS where it can be read.

RSS counts every shared page in full in each process (PostgreSQL's shared buffers appear in every
backend), so a sum of RSS over processes overstates their total; PSS divides each shared page
among the processes that map it, so PSS adds up. Both are reported, in MiB.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def parse_kib(text: str, field: str) -> int | None:
    """The value in kB of `field:` in /proc/<pid>/status or smaps_rollup text (None when absent)."""
    prefix = f"{field}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix) :].split()[0])
    return None


def _read(path: str) -> str:
    try:
        with open(path) as source:
            return source.read()
    except OSError:
        return ""


def process_memory(pid: int) -> dict | None:
    """RSS and PSS of one process in MiB (PSS None when smaps_rollup cannot be read); None if gone."""
    rss = parse_kib(_read(f"/proc/{pid}/status"), "VmRSS")
    if rss is None:
        return None
    pss = parse_kib(_read(f"/proc/{pid}/smaps_rollup"), "Pss")
    return {
        "pid": pid,
        "rss_mib": round(rss / 1024, 1),
        "pss_mib": None if pss is None else round(pss / 1024, 1),
    }


def total(pids: Iterable[int]) -> dict:
    """RSS and PSS summed over the processes still alive, with how many there were."""
    found = [memory for memory in map(process_memory, pids) if memory is not None]
    pss = [memory["pss_mib"] for memory in found]
    return {
        "processes": len(found),
        "rss_mib": round(sum(memory["rss_mib"] for memory in found), 1),
        "pss_mib": round(sum(pss), 1) if found and None not in pss else None,
    }


def pids_named(prefix: str) -> list[int]:
    """Processes whose command name (/proc/<pid>/comm) starts with `prefix`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _read(f"/proc/{entry}/comm").startswith(prefix):
            found.append(int(entry))
    return sorted(found)


async def snapshot(*, api_master: int, api_workers: list[int], worker: int | None, database_url: str) -> dict:
    """Memory of every process of a run: each API process, the worker, PostgreSQL, Redis.

    PostgreSQL's figure is split in two: the backends serving this run's database (found in
    pg_stat_activity) and every postgres process (the server's own, other databases' backends);
    Redis is one server shared by every database number, so its figure is the whole server's.
    """
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        backends = [
            row["pid"]
            for row in await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    finally:
        await connection.close()
    return {
        "api_master": process_memory(api_master),
        "api_workers": [process_memory(pid) for pid in api_workers],
        "worker": process_memory(worker) if worker is not None else None,
        "postgresql_backends_of_this_database": total(backends),
        "postgresql_all_processes": total(pids_named("postgres")),
        "redis_server": total(pids_named("redis-server")),
    }
