"""The direction of imports, as pyproject.toml's import-linter contracts state it, and proof that each
contract refuses a wrong-way import planted in a copy of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import tradeguard
from tests.support.paths import REPO_ROOT

PACKAGE = Path(tradeguard.__file__).parent
CONFIG = REPO_ROOT / "pyproject.toml"
CONTRACT_NAMES = {
    contract["id"]: contract["name"]
    for contract in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
}


def lint_imports(source_root: Path) -> tuple[int, str, dict[str, str]]:
    """The exit code, the report, and each contract's verdict (KEPT or BROKEN) for the package under
    `source_root`."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            str(CONFIG),
        ],
        env={**os.environ, "PYTHONPATH": str(source_root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = run.stdout + run.stderr
    verdicts = {
        contract_id: line.removeprefix(name).split()[0]
        for contract_id, name in CONTRACT_NAMES.items()
        for line in report.splitlines()
        if line.startswith(f"{name} ")
    }
    return run.returncode, report, verdicts


def test_the_package_keeps_every_contract():
    returncode, report, verdicts = lint_imports(PACKAGE.parent)

    assert returncode == 0, report
    assert verdicts == dict.fromkeys(CONTRACT_NAMES, "KEPT"), report


@pytest.mark.parametrize(
    ("contract_id", "importer", "statement"),
    [
        ("pure-domain", "domain", "from tradeguard.values import Numeric"),
        ("pure-domain", "domain", "import sqlalchemy"),
        ("pure-domain", "domain", "from pydantic import BaseModel"),
        ("api-outermost", "queries", "from tradeguard.api.schemas import ErrorBody"),
        ("api-outermost", "actions", "from tradeguard.api import deps"),
        ("composition-root", "stream", "from tradeguard.services import Services"),
        ("composition-root", "api", "import tradeguard.services"),
        ("no-benchmarks", "accounts", "from bench.quick import run_quick_bench"),
    ],
)
def test_a_wrong_way_import_breaks_its_contract(tmp_path, contract_id, importer, statement):
    copy = tmp_path / "tradeguard"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / importer / "wrong_way.py").write_text(f"{statement}\n")

    returncode, report, verdicts = lint_imports(tmp_path)

    assert returncode != 0, report
    assert verdicts == {**dict.fromkeys(CONTRACT_NAMES, "KEPT"), contract_id: "BROKEN"}, report
    assert f"tradeguard.{importer}.wrong_way -> " in report
