"""docs/bridges.md, bridge-mt5.md and bridge-ccxt.md are the contract an operator writes a bridge file from.

Every ```toml block of the three pages is loaded as the bridge would load it (with the
environment variables and files it names provided), and the settings the pages list are the
settings the code accepts, with the documented defaults.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT
from tradeguard.bridges import config, exchange, mt5
from tradeguard.bridges.mt5 import settings as mt5_settings

DOCS = REPO_ROOT / "docs"
PAGES = ("bridges.md", "bridge-mt5.md", "bridge-ccxt.md")
_TOML_BLOCK = re.compile(r"^( *)```toml\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
STANDIN = "tradeguard.bridges.mt5.standin"


def toml_blocks() -> list[tuple[str, str]]:
    """(page, block) for every ```toml block, indented ones (in a list item) dedented."""
    blocks = []
    for page in PAGES:
        for indent, body in _TOML_BLOCK.findall((DOCS / page).read_text(encoding="utf-8")):
            blocks.append((page, "\n".join(line.removeprefix(indent) for line in body.splitlines())))
    return blocks


def documented_settings(page: str, first_key: str) -> dict[str, str]:
    """The table of the page whose first row names `first_key`: each key it lists and its default."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip().startswith(f"| `{first_key}` |"))
    settings = {}
    for line in lines[start:]:
        if not line.strip().startswith("|"):
            break
        keys, default = (cell.strip() for cell in line.strip().split("|")[1:3])
        for key in re.findall(r"`([\w.]+)`", keys):
            settings[key] = default
    return settings


def provide_what_it_names(tables: dict, folder: Path, monkeypatch) -> None:
    """Every `*_env` key's variable set and every `*_file` key's file written, wherever they are."""
    for key, value in tables.items():
        if isinstance(value, dict):
            provide_what_it_names(value, folder, monkeypatch)
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for item in value:
                provide_what_it_names(item, folder, monkeypatch)
        elif key.endswith("_env"):
            monkeypatch.setenv(value, f"value-of-{value}")
        elif key.endswith("_file"):
            (folder / value).write_text(f"value-of-{value}\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("page", "block"), toml_blocks(), ids=[f"{page}#{index}" for index, (page, _) in enumerate(toml_blocks())]
)
def test_every_documented_bridge_file_loads(page, block, tmp_path, monkeypatch):
    path = tmp_path / "bridge.toml"
    path.write_text(block, encoding="utf-8")
    provide_what_it_names(tomllib.loads(block), tmp_path, monkeypatch)

    file = config.load(path)

    assert file.journal_path.parent == tmp_path
    if "mt5" in file.tables:
        [binding] = mt5.bindings_from_config(file, module=STANDIN, host=None, port=None)
        assert binding.device.secret == "value-of-device-secret.txt"
    elif "accounts" in file.tables:
        bindings = exchange.bindings_from_config(file)
        assert [binding.name for binding in bindings] == [entry["name"] for entry in file.tables["accounts"]]
        assert all(binding.device.secret.startswith("value-of-") for binding in bindings)
    else:
        assert page == "bridges.md"
        assert file.tables["tradeguard"]["secret_env"] == "TRADEGUARD_DEVICE_SECRET"


def test_the_pages_have_a_bridge_file_for_each_shipped_bridge():
    pages = [page for page, _ in toml_blocks()]
    assert pages.count("bridge-mt5.md") == 1 and pages.count("bridge-ccxt.md") == 1
    assert "bridges.md" in pages


def test_the_bridge_table_lists_every_setting_with_its_default(tmp_path):
    documented = documented_settings("bridges.md", "tradeguard.url")
    path = tmp_path / "bridge.toml"
    path.write_text('[tradeguard]\nurl = "http://127.0.0.1:1"\n', encoding="utf-8")
    loaded = config.load(path)

    timings = {f"bridge.{field.name}" for field in dataclasses.fields(config.BridgeTimings)}
    assert {key for key in documented if key.startswith("bridge.")} == {*timings, "bridge.journal"}
    for key in timings:
        assert float(documented[key]) == getattr(loaded.timings, key.removeprefix("bridge."))
    assert documented["bridge.journal"] == f"`{loaded.journal_path.name}`"
    assert {"tradeguard.url", "tradeguard.device_id", "secret", "secret_env", "secret_file"} <= set(
        documented
    )


def test_the_mt5_table_lists_every_setting_the_code_accepts():
    documented = documented_settings("bridge-mt5.md", "login")
    assert set(documented) == mt5_settings.KEYS
    defaults = mt5_settings.Mt5Settings(login=1)
    for key in ("deviation", "magic", "max_retries"):
        assert documented[key] == f"`{getattr(defaults, key)}`"


def test_the_ccxt_table_lists_every_setting_the_code_accepts():
    assert set(documented_settings("bridge-ccxt.md", "name")) == exchange.KEYS
