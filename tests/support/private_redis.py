"""A redis-server of a test's own, so it can be killed, paused and restarted without touching anyone else's."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.support.net import wait_for_port


class PrivateRedis:
    """With `data_dir`, every write is appended and synced there, so a restart comes back with the data."""

    def __init__(self, port: int, data_dir: Path | None = None) -> None:
        self.port = port
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        persistence = (
            ["--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always"]
            if self.data_dir is not None
            else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_for_port(self.port)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.kill()
