"""Driving wrk (a C load generator) with a Lua script that rotates callers and accounts.

Each request takes the next (Authorization, account_id) pair of the seeded users, per wrk thread
with its own starting offset; `done()` prints wrk's own latency distribution as one JSON line.
wrk measures from the moment it writes a request; under a closed loop of N connections that is
the service time plus queueing, not an open-loop (wrk2-style) latency.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

MARKER = "WRK_JSON "

_LUA = r"""
local callers = {
%(callers)s
}
local path = "%(path)s"
local with_account = %(with_account)s
local counter = 0
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  local caller = callers[(counter %% #callers) + 1]
  local target = path
  if with_account then
    target = path .. "?account_id=" .. caller[2]
  end
  return wrk.format("GET", target, {["Authorization"] = caller[1]})
end

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 75, 90, 95, 99, 99.9}) do
    p[#p + 1] = string.format('"p%%s_us": %%d', string.gsub(tostring(q), "%%.", "_"), latency:percentile(q))
  end
  io.write(string.format(
    '%(marker)s{"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency": {"min_us": %%d, "mean_us": %%.1f, "max_us": %%d, "stdev_us": %%.1f, %%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, table.concat(p, ", ")))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_script(callers: list[tuple[str, int | None]], path: str) -> str:
    rows = ",\n".join(f'  {{"Bearer {token}", "{account or ""}"}}' for token, account in callers)
    with_account = "true" if any(account for _, account in callers) else "false"
    return _LUA % {"callers": rows, "path": path, "with_account": with_account, "marker": MARKER}


def run(
    url: str,
    *,
    callers: list[tuple[str, int | None]] | None = None,
    path: str = "/",
    connections: int = 100,
    threads: int = 2,
    duration: float = 15.0,
    timeout: float = 5.0,
) -> dict:
    """Run wrk once; return its numbers (latencies in milliseconds) and throughput."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(callers or [("-", None)], path))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    argv += [f"--timeout={timeout:g}s", "--latency", "-s", script.name, url]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    latency = {key.replace("_us", "_ms"): round(value / 1000, 3) for key, value in raw["latency"].items()}
    errors = raw["errors"]
    return {
        "command": " ".join(argv[:-3] + ["-s", "<generated.lua>", url]),
        "requests": raw["requests"],
        "duration_s": round(seconds, 3),
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "bytes_per_request": round(raw["bytes"] / raw["requests"], 1) if raw["requests"] else None,
        "errors": errors,
        "error_count": sum(errors.values()),
        "latency_ms": latency,
    }
