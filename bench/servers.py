"""Servers under test, as subprocesses in process groups of their own, always stopped on exit.

By default the uvicorn command line `--loop uvloop --http httptools --workers N`, no access log;
with `ServerSpec.command`, Python's own arguments: `serve_command` for `tradeguard serve` as a
user runs it, `serve_like_command` for another app (the bare one, the stopwatch) served with the
same uvicorn options (`bench.serve_like`). Every app compared in a run is started the same way,
so the only difference measured is the app.

`worker_process` starts `tradeguard worker` beside a server whose API runs no worker of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import CHECKOUT
from bench.client import HTTPError, get

HOST = "127.0.0.1"
TRADEGUARD_APP = "tradeguard.app:create_app"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class ServerSpec:
    app: str
    """uvicorn import string; a factory when `factory` is set."""
    factory: bool = True
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/api/v1/trading/health"
    metrics_dir: bool = False
    """Give the workers a PROMETHEUS_MULTIPROC_DIR, so /metrics adds up every worker's counters."""
    command: tuple[str, ...] = ()
    """Python's arguments to start the server with instead of uvicorn's command line; `{port}` is
    replaced by the port (for a server started as a user starts it, e.g. `tradeguard serve`)."""

    def describe(self) -> dict:
        if self.command:
            return {
                "command": " ".join(self.command),
                "workers": self.workers,
                "settings": {k: v for k, v in self.env.items() if "SECRET" not in k and "KEY" not in k},
            }
        return {
            "app": self.app,
            "server": "uvicorn",
            "loop": "uvloop",
            "http": "httptools",
            "workers": self.workers,
            "access_log": False,
            "guard_workers": 0,
            "settings": {k: v for k, v in self.env.items() if "SECRET" not in k and "KEY" not in k},
        }


def serve_command(workers: int) -> tuple[str, ...]:
    """`tradeguard serve --workers N` as a user runs it (the console script's own entry)."""
    return ("-m", "tradeguard.cli", "serve", "--host", HOST, "--port", "{port}", "--workers", str(workers))


def serve_like_command(app: str, *, factory: bool, workers: int) -> tuple[str, ...]:
    """Another app served with `tradeguard serve`'s own uvicorn options (`bench.serve_like`)."""
    factory_flag = ("--factory",) if factory else ()
    return (
        "-m",
        "bench.serve_like",
        app,
        *factory_flag,
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        str(workers),
    )


class Server:
    """A running uvicorn; `pids()` are the processes that serve (the workers, or the one process)."""

    def __init__(self, spec: ServerSpec, port: int, process: subprocess.Popen, log: Path):
        self.spec = spec
        self.port = port
        self.process = process
        self.log = log

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        children = _children(self.process.pid)
        workers = [pid for pid in children if "resource_tracker" not in _cmdline(pid)]
        return workers or [self.process.pid]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}; see {server.log}")
        with contextlib.suppress(OSError, HTTPError):
            answer = await get(HOST, server.port, server.spec.ready_path)
            if answer.status < 500 and len(server.pids()) >= min(server.spec.workers, 2):
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"server not ready after {timeout:.0f} s; see {server.log}")


@contextlib.asynccontextmanager
async def running(spec: ServerSpec, *, log_dir: Path | None = None, ready_timeout: float = 60.0):
    """Start the server, wait until it answers, and stop its whole process group on the way out."""
    port = free_port()
    log_dir = log_dir or Path(tempfile.gettempdir())
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"server-{port}.log"
    env = {**os.environ, **spec.env}
    # The apps under test may be this package's own (the stopwatch, the bare app).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    metrics = None
    if spec.metrics_dir:
        metrics = Path(tempfile.mkdtemp(prefix="tg-bench-metrics-"))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    if spec.command:
        argv = [sys.executable, *(part.replace("{port}", str(port)) for part in spec.command)]
    else:
        argv = [sys.executable, "-m", "uvicorn", spec.app, *(["--factory"] if spec.factory else [])]
        argv += ["--host", HOST, "--port", str(port), "--workers", str(spec.workers)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(spec, port, process, log)
    try:
        await _wait_ready(server, ready_timeout)
        yield server
    finally:
        stop(process)
        if metrics is not None:
            for leftover in metrics.glob("*"):
                leftover.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                metrics.rmdir()


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the server's own process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    # A worker that outlived its master is still in the group: end it too.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def worker_process(env: dict[str, str], *, log_dir: Path | None = None):
    """`tradeguard worker` (the sweep and alert delivery) with these settings; stopped on the way out."""
    log_dir = log_dir or Path(tempfile.gettempdir())
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"worker-{os.getpid()}-{time.monotonic_ns()}.log"
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), full_env.get("PYTHONPATH")]))
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tradeguard.cli", "worker"],
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(f"tradeguard worker exited with {process.returncode}; see {log}")
        yield process
    finally:
        stop(process)
