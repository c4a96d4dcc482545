"""`tradeguard bridge mt5|ccxt` from outside, as docs/bridges.md promises it to an operator.

Exit 1 with one line naming the setting at fault; exit 2 with one line naming the device tradeguard
refuses, and nothing secret on either stream; a broker or a tradeguard away at start retried and
said once; SIGTERM answered by exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.apps import make_settings, serve_live
from tests.support.bridging import register_follower
from tests.support.net import free_port
from tests.support.servers import TRADEGUARD
from tests.support.waiting import eventually
from tradeguard.bridges.mt5.standin_terminal import StandinTerminal
from tradeguard.cli import app

STANDIN = "tradeguard.bridges.mt5.standin"
LOGIN = 5012345
PASSWORD = "broker-password"
SECRET_VARIABLE = "TG_BRIDGE_CLI_DEVICE_SECRET"
PASSWORD_VARIABLE = "TG_BRIDGE_CLI_MT5_PASSWORD"


def mt5_file(tmp_path: Path, url: str, device_id: str, terminal: Path, *, extra: str = "") -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'[tradeguard]\nurl = "{url}"\ndevice_id = "{device_id}"\nsecret_env = "{SECRET_VARIABLE}"\n\n'
        "[bridge]\nread_seconds = 0.1\ncommand_poll_seconds = 0.2\nmax_backoff_seconds = 0.2\n"
        'journal = "journal.sqlite3"\n\n'
        f"[mt5]\nlogin = {LOGIN}\npassword_env = \"{PASSWORD_VARIABLE}\"\npath = '{terminal}'\n"
        f'server_utc_offset = 2\nwatch = ["EURUSD"]\n{extra}',
        encoding="utf-8",
    )
    return path


def new_terminal(tmp_path: Path) -> StandinTerminal:
    terminal = StandinTerminal.create(tmp_path / "terminal.sqlite3", server_utc_offset_hours=2)
    terminal.add_account(LOGIN, password=PASSWORD, balance="10000")
    terminal.add_symbol("EURUSD", bid="1.08500", ask="1.08510")
    return terminal


@pytest.fixture
def logging_restored():
    """The bridge command configures the root logger; an in-process run must not leave it so."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


TRADEGUARD_TABLE = '[tradeguard]\nurl = "http://127.0.0.1:1"\ndevice_id = "dev_1"\nsecret = "device-secret"\n'
MT5 = "[mt5]\nlogin = 5012345\nserver_utc_offset = 2\n"
ACCOUNT = 'name = "a"\nexchange = "binanceusdm"\napi_url = "http://127.0.0.1:1"\napi_key = "k"\napi_secret = "s"\ndevice_id = "dev_1"\nsecret = "x"\n'


@pytest.mark.parametrize(
    ("bridge", "text", "named"),
    [
        ("mt5", TRADEGUARD_TABLE + "timeout = 5\n" + MT5, "tradeguard.timeout is not a setting"),
        (
            "mt5",
            TRADEGUARD_TABLE + "[bridge]\nsnapshot_second = 5\n" + MT5,
            "bridge.snapshot_second is not a setting",
        ),
        ("mt5", TRADEGUARD_TABLE + MT5 + "deviaton = 5\n", "mt5.deviaton is not a setting"),
        (
            "mt5",
            TRADEGUARD_TABLE + "[brigde]\nread_seconds = 1\n" + MT5,
            "[brigde] is not a table of this bridge",
        ),
        ("mt5", TRADEGUARD_TABLE + '[bridge]\njournal = "taken/journal.sqlite3"\n' + MT5, "bridge.journal"),
        ("ccxt", TRADEGUARD_TABLE + "[[accounts]]\n" + ACCOUNT, "tradeguard.device_id is not read here"),
        (
            "ccxt",
            '[tradeguard]\nurl = "http://127.0.0.1:1"\n[[account]]\n' + ACCOUNT,
            "[account] is not a table",
        ),
    ],
    ids=["tradeguard", "bridge", "mt5", "misspelt-table", "journal", "ccxt-device", "ccxt-table"],
)
def test_a_wrong_setting_exits_1_with_one_line_naming_it(tmp_path, logging_restored, bridge, text, named):
    (tmp_path / "taken").write_text("a file where the journal's folder would be", encoding="utf-8")
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    module = ["--mt5-module", STANDIN] if bridge == "mt5" else []

    result = CliRunner().invoke(app, ["bridge", bridge, "--config", str(path), *module])

    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert named in line and str(path) in line
    assert "device-secret" not in result.output


async def run_bridge(config: Path, secret: str) -> asyncio.subprocess.Process:
    environment = {**os.environ, SECRET_VARIABLE: secret, PASSWORD_VARIABLE: PASSWORD}
    command = ["bridge", "mt5", "--config", str(config), "--mt5-module", STANDIN]
    return await asyncio.create_subprocess_exec(
        *TRADEGUARD,
        *command,
        "--log-file",
        str(config.parent / "bridge.log"),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_wrong_device_secret_exits_2_with_one_line_naming_the_device_and_no_secret(tmp_path):
    terminal = new_terminal(tmp_path)
    data = tmp_path / "tradeguard"
    data.mkdir()
    async with serve_live(make_settings(data, f"sqlite+aiosqlite:///{data / 'tradeguard.db'}")) as server:
        follower = await register_follower(server.api)
        config = mt5_file(tmp_path, server.url, follower.device_id, terminal.path)
        wrong_secret = "w" * 43
        bridge = await run_bridge(config, wrong_secret)
        stdout, stderr = await asyncio.wait_for(bridge.communicate(), 30)
        syncs = (await follower.status())["total_syncs"]
    terminal.close()

    assert bridge.returncode == 2, stderr.decode()
    assert stdout == b""
    output = stderr.decode()
    assert output.splitlines()[-1] == (
        f"tradeguard refused device {follower.device_id} (mt5-{LOGIN}): bad signature"
    )
    assert "Traceback" not in output
    logged = (tmp_path / "bridge.log").read_text(encoding="utf-8")
    for secret in (wrong_secret, follower.secret, PASSWORD):
        assert secret not in output and secret not in logged
    assert syncs == 0


async def test_a_broker_and_a_tradeguard_away_at_start_are_retried_said_once_and_sigterm_exits_0(tmp_path):
    terminal = new_terminal(tmp_path)
    terminal.stop()
    config = mt5_file(tmp_path, f"http://127.0.0.1:{free_port()}", "dev_1", terminal.path)
    log = tmp_path / "bridge.log"

    def lines(containing: str) -> list[str]:
        return [line for line in log.read_text(encoding="utf-8").splitlines() if containing in line]

    bridge = await run_bridge(config, "device-secret")
    try:
        await eventually(lambda: log.exists() and lines("broker unavailable"), "the terminal missed")
        # Several attempts at max_backoff_seconds = 0.2 meanwhile, each failing for the same reason.
        await asyncio.sleep(1)
        terminal.start()
        await eventually(lambda: lines("tradeguard unreachable"), "tradeguard missed")
        await asyncio.sleep(1)
        bridge.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(bridge.communicate(), 15)
    finally:
        if bridge.returncode is None:
            bridge.kill()
            await bridge.wait()
    terminal.close()

    assert bridge.returncode == 0, stderr.decode()
    [unavailable] = lines("broker unavailable")
    assert "IPC timeout" in unavailable
    assert len(lines(f"connected to mt5 login {LOGIN}")) == 1
    [unreachable] = lines("tradeguard unreachable")
    assert unreachable.endswith("; retrying") and "ConnectError" in unreachable
    assert "device-secret" not in log.read_text(encoding="utf-8") + stderr.decode()
