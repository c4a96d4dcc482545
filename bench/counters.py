"""Reading the server's counters: cache hits and misses, and CPU time per process group.

The bench's servers run with PROMETHEUS_MULTIPROC_DIR, as `tradeguard serve --workers N` does,
so `/metrics` from whichever worker answers adds up every worker's counters.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from bench.client import get

HITS = "tradeguard_cache_hits_total"
MISSES = "tradeguard_cache_misses_total"


@dataclass(frozen=True, slots=True)
class CacheCounts:
    hits: dict[str, float]
    misses: dict[str, float]

    def minus(self, earlier: CacheCounts) -> CacheCounts:
        return CacheCounts(
            {view: count - earlier.hits.get(view, 0) for view, count in self.hits.items()},
            {view: count - earlier.misses.get(view, 0) for view, count in self.misses.items()},
        )

    def plus(self, other: CacheCounts) -> CacheCounts:
        return CacheCounts(
            {view: self.hits.get(view, 0) + other.hits.get(view, 0) for view in self.hits | other.hits},
            {
                view: self.misses.get(view, 0) + other.misses.get(view, 0)
                for view in self.misses | other.misses
            },
        )

    def summary(self) -> dict:
        hits, misses = sum(self.hits.values()), sum(self.misses.values())
        views = sorted(set(self.hits) | set(self.misses))
        return {
            "hits": int(hits),
            "misses": int(misses),
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
            "by_view": {
                view: {"hits": int(self.hits.get(view, 0)), "misses": int(self.misses.get(view, 0))}
                for view in views
            },
        }


def parse_prometheus_text(text: str) -> CacheCounts:
    hits: dict[str, float] = {}
    misses: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(HITS) or line.startswith(MISSES):
            name_and_labels, value = line.rsplit(" ", 1)
            view = name_and_labels.split('view="', 1)[1].split('"', 1)[0] if 'view="' in line else ""
            target = hits if line.startswith(HITS) else misses
            target[view] = target.get(view, 0) + float(value)
    return CacheCounts(hits, misses)


async def cache_counts(host: str, port: int) -> CacheCounts:
    answer = await get(host, port, "/metrics")
    return parse_prometheus_text(answer.body.decode())


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_table() -> dict[int, tuple[str, int, float]]:
    """pid → (command name, parent pid, CPU seconds used so far)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return table


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds used by the server, PostgreSQL, Redis, the load generator and the rest, between two reads.

    Processes that end between the reads are not in /proc any more; the bench's own finished
    children (wrk, locust) are counted from rusage, other short-lived processes are not.
    """

    def __init__(
        self,
        server_pids: list[int],
        client_pids: list[int] | None = None,
        *,
        groups: dict[str, list[int]] | None = None,
    ) -> None:
        """`groups` names further processes of the run (e.g. {"worker": [pid]}), each with its children."""
        self._server = set(server_pids)
        self._client = set(client_pids or [os.getpid()])
        self._named = {pid: name for name, pids in (groups or {}).items() for pid in pids}
        self._start = _process_table()
        self._children_start = _children_cpu()

    def _group(self, pid: int, name: str, table) -> str:
        parent = table.get(pid, ("", 0, 0))[1]
        if pid in self._named or parent in self._named:
            return self._named.get(pid) or self._named[parent]
        if pid in self._server or parent in self._server:
            return "server"
        if pid in self._client:
            return "load_generator"
        if name.startswith("postgres"):
            return "postgresql"
        if name.startswith("redis"):
            return "redis"
        if name.startswith("wrk") or name.startswith("locust"):
            return "load_generator"
        if name.startswith("py-spy"):
            return "profiler"
        return "other"

    def read(self, elapsed_seconds: float) -> dict:
        end = _process_table()
        used: dict[str, float] = {}
        others: dict[str, float] = {}
        # Per server process: uvicorn's workers share one listening socket, and how evenly the
        # kernel hands them connections decides whether both cores can be used.
        servers: dict[int, float] = {}
        for pid, (name, _parent, cpu) in end.items():
            before = self._start.get(pid)
            if before is not None and before[0] != name:
                continue  # a kernel worker renamed itself: not comparable
            delta = cpu - (before[2] if before else 0.0)
            if delta <= 0:
                continue
            group = self._group(pid, name, end)
            used[group] = used.get(group, 0.0) + delta
            if group == "other":
                others[name] = others.get(name, 0.0) + delta
            elif group == "server" and pid in self._server:
                servers[pid] = servers.get(pid, 0.0) + delta
        # Load generators run as subprocesses (wrk, locust) have exited by now: count them from rusage.
        finished_children = _children_cpu() - self._children_start
        if finished_children > 0:
            used["load_generator"] = used.get("load_generator", 0.0) + finished_children
        total = sum(used.values())
        return {
            "elapsed_s": round(elapsed_seconds, 3),
            "cpu_seconds": {group: round(value, 2) for group, value in sorted(used.items())},
            "cores_busy": round(total / elapsed_seconds, 2) if elapsed_seconds else None,
            "server_processes": {str(pid): round(value, 2) for pid, value in sorted(servers.items())},
            "other_processes": {
                name: round(value, 2) for name, value in sorted(others.items(), key=lambda kv: -kv[1])[:5]
            },
        }
